// Notices a new version of the config file once it is complete, for watch_config.
//
// Unlike a key file (proxy/file_watch.h), a YAML config cut off mid-write can still parse, as a
// weaker configuration: a route without its require_scopes. So a version counts only when the
// kernel says it is whole, and never while a writer of that file is still going:
// - written in place: its writer closed it (IN_CLOSE_WRITE). A write (IN_MODIFY) or a creation
//   of the file marks that inode as being written until the next close, so a truncation's close
//   followed by a slow append, or a file re-created after `rm`, is not read half-way;
// - put at the path in one step: a rename onto the path's own name, or a swap of any symlink
//   on the way to it (a ConfigMap's `..data`, a `current -> releases/v2` directory link).
// Only names on the path's chain count; a rename elsewhere in the directory says nothing.
//
// Watched with inotify: the file itself (so a write through another name of the inode, as a
// bind-mounted single file gets from the host, is seen) and the directory of every symlink on
// the path and of the file, re-resolved after each change. There is no periodic stat: it could
// not tell a paused writer from a finished one.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "proxy/file_identity.h"

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
  // Updates what is known of writers; sets pending_ when the event calls for a look.
  void handle_event(int wd, std::uint32_t mask, const std::string& name);
  // Resolves the path's chain anew and moves the watches to it.
  void rearm();

  uv_loop_t* loop_;
  std::string path_;
  std::function<void()> changed_;
  std::unique_ptr<Handles> handles_;
  std::map<int, Watch> watches_;
  std::string final_dir_, final_name_;  // where the chain ends: the file itself
  FileIdentity seen_;
  unsigned long long file_ino_ = 0;    // the inode the file watch is on
  unsigned long long writing_ino_ = 0;  // an inode written since its last close (0: none)
  bool events_lost_ = false;
  bool pending_ = false;
  bool warned_ = false;
};

}  // namespace jwtgate::proxy
