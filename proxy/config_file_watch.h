// Notices a new version of the config file once it is complete, for watch_config.
//
// Unlike a key file (proxy/file_watch.h), a YAML config cut off mid-write can still parse, as a
// weaker configuration: a route without its require_scopes. So a change counts only when the
// kernel says the file is whole: its writer closed it (inotify IN_CLOSE_WRITE on the file
// itself), or a new file was put at the path in one step (a rename over it, a new symlink, a
// Kubernetes ConfigMap's `..data` swap), which changes the inode the path resolves to. A
// writer that pauses with the file open is never read half-way, however long it pauses. There
// is no periodic stat: it could not tell a paused writer from a finished one.
//
// The directory of the path and the directory the path resolves to are watched (re-resolved
// after each change), so a symlink into another directory is followed too.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "proxy/file_identity.h"

namespace jwtgate::proxy {

class ConfigFileWatch {
 public:
  ConfigFileWatch(uv_loop_t* loop, std::string path, std::function<void()> changed);
  ~ConfigFileWatch();
  ConfigFileWatch(const ConfigFileWatch&) = delete;
  ConfigFileWatch& operator=(const ConfigFileWatch&) = delete;

  // False with `error` when inotify is not available for the path's directory; nothing is
  // watched then (SIGHUP still reloads).
  bool start(std::string& error);
  void close();

 private:
  struct Handles;
  static void on_readable(uv_poll_t* handle, int status, int events);
  static void on_settled(uv_timer_t* timer);
  void read_events();
  void watch_resolved_directory();

  uv_loop_t* loop_;
  std::string path_;
  std::string path_dir_, path_name_;          // as given
  std::string resolved_dir_, resolved_name_;  // after symlinks
  int path_wd_ = -1, resolved_wd_ = -1;
  std::function<void()> changed_;
  std::unique_ptr<Handles> handles_;
  FileIdentity seen_;
  // Since the last report: the file itself was closed after writing, or something was renamed
  // or symlinked into a watched directory.
  bool closed_after_write_ = false;
  bool moved_in_ = false;
};

}  // namespace jwtgate::proxy
