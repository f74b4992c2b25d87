// Notices when a file may have changed, including the way Kubernetes updates a mounted
// ConfigMap or Secret: the visible path is a symlink into a "..data" directory that is swapped
// atomically, so the file itself is never written and a watch on it would see nothing. The
// watch is on the containing directory (inotify), with a periodic stat as a safety net for
// filesystems without events. Changes are reported once per burst.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "proxy/keys/file_identity.h"

namespace jwtgate::proxy {

class FileWatch {
 public:
  FileWatch(uv_loop_t* loop, std::string path, std::chrono::milliseconds poll_interval, std::function<void()> changed);
  ~FileWatch();
  FileWatch(const FileWatch&) = delete;
  FileWatch& operator=(const FileWatch&) = delete;

  // Starts watching; false with `error` when the directory cannot be watched (the periodic
  // check still runs).
  bool start(std::string& error);
  void close();

 private:
  struct Handles;
  static void on_event(uv_fs_event_t* handle, const char* filename, int events, int status);
  static void on_poll(uv_fs_poll_t* handle, int status, const uv_stat_t* prev, const uv_stat_t* curr);
  static void on_settled(uv_timer_t* timer);

  uv_loop_t* loop_;
  std::string path_;
  std::chrono::milliseconds poll_interval_;
  std::function<void()> changed_;
  std::unique_ptr<Handles> handles_;
  // When last reported; events about other entries of the directory leave it unchanged.
  FileIdentity seen_;
};

}  // namespace jwtgate::proxy
