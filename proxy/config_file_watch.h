// Notices a new version of the config file put at its path in one step, for watch_config.
//
// Unlike a key file (proxy/keys/file_watch.h), a YAML config cut off mid-write can still parse, as a
// weaker configuration: a route without its require_scopes. And nothing the kernel reports tells
// when a file written in place is done: a close may be the first of two writes (`a > f; b >> f`),
// another writer's close (`touch f`) says nothing of a slow one, and a file's creation looks the
// same whether it is being written or was linked in whole. So only a replacement reloads by
// itself: a rename onto the path's own name, or a swap of any symlink on the way to it (a
// Kubernetes ConfigMap's `..data`, a `current -> releases/v2` directory link), after which the
// path names another inode. Such a file was complete when it arrived (if its writer renamed it
// once done). A change in place (a write, or a file created at the path) is logged with what to
// do instead (rename, or SIGHUP) and not applied.
//
// Watched with inotify: the directory of every symlink on the path and of the file (only names on
// the chain count; other renames in those directories say nothing), re-resolved after each change,
// and the file itself, so an in-place write through another name (a bind-mounted file written
// from the host) is at least reported.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "proxy/keys/file_identity.h"

namespace jwtgate::proxy {

class ConfigFileWatch {
 public:
  ConfigFileWatch(uv_loop_t* loop, std::string path, std::function<void()> changed);
  ~ConfigFileWatch();
  ConfigFileWatch(const ConfigFileWatch&) = delete;
  ConfigFileWatch& operator=(const ConfigFileWatch&) = delete;

  // False with `error` when inotify is not available for the path; nothing is watched then
  // (SIGHUP still reloads).
  bool start(std::string& error);
  void close();

 private:
  struct Handles;
  // One inotify watch: a directory and the names in it that are on the path's chain, or the
  // file itself.
  struct Watch {
    std::string dir;
    std::set<std::string> names;
    bool file = false;
  };
  static void on_readable(uv_poll_t* handle, int status, int events);
  static void on_settled(uv_timer_t* timer);
  // Reads every queued event; true when one of them calls for a look at the file.
  bool read_events();
  // Notes what the event says (a replacement, a change in place); true when it calls for a look.
  bool handle_event(int wd, std::uint32_t mask, const std::string& name);
  // Resolves the path's chain anew and moves the watches to it.
  void rearm();

  uv_loop_t* loop_;
  std::string path_;
  std::function<void()> changed_;
  std::unique_ptr<Handles> handles_;
  std::map<int, Watch> watches_;
  std::string final_dir_, final_name_;  // where the chain ends: the file itself
  FileIdentity seen_;                   // what the path named when last looked at
  // Since the last look: something was renamed or symlinked onto the chain; the file was written
  // or created in place; inotify dropped events.
  bool replaced_ = false;
  bool in_place_ = false;
  bool events_lost_ = false;
};

}  // namespace jwtgate::proxy
