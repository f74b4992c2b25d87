#include "proxy/config_file_watch.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

// A rename and its neighbours (the kubelet's swap is a symlink, a rename and a delete) arrive
// as a burst; the file is looked at once it has settled.
constexpr std::uint64_t kSettleMs = 100;
constexpr std::uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE;

void split(const std::string& path, std::string& dir, std::string& name) {
  const auto slash = path.rfind('/');
  // Built with constructors: GCC 12 warns (-Wrestrict, a false positive) on assigning a literal.
  dir = slash == std::string::npos ? std::string(1, '.') : slash == 0 ? std::string(1, '/') : path.substr(0, slash);
  name = slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string resolved(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : std::string();
}

}  // namespace

// Each part is freed on its own once libuv has closed it; the inotify descriptor goes with the
// poll handle that reads it.
struct ConfigFileWatch::Handles {
  struct Poll {
    uv_poll_t handle{};
    int fd = -1;
    ~Poll() {
      if (fd >= 0) ::close(fd);
    }
  };
  struct Settle {
    uv_timer_t handle{};
  };
  std::unique_ptr<Poll> poll = std::make_unique<Poll>();
  std::unique_ptr<Settle> settle = std::make_unique<Settle>();
  bool poll_started = false;
};

ConfigFileWatch::ConfigFileWatch(uv_loop_t* loop, std::string path, std::function<void()> changed)
    : loop_(loop), path_(std::move(path)), changed_(std::move(changed)), handles_(std::make_unique<Handles>()) {
  split(path_, path_dir_, path_name_);
  uv_timer_init(loop_, &handles_->settle->handle);
  handles_->settle->handle.data = this;
}

ConfigFileWatch::~ConfigFileWatch() { close(); }

bool ConfigFileWatch::start(std::string& error) {
  seen_ = identify_file(path_);
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    error = std::string("inotify: ") + std::strerror(errno);
    return false;
  }
  handles_->poll->fd = fd;
  path_wd_ = ::inotify_add_watch(fd, path_dir_.c_str(), kMask);
  if (path_wd_ < 0) {
    error = "cannot watch " + path_dir_ + ": " + std::strerror(errno);
    return false;
  }
  watch_resolved_directory();
  if (int rc = uv_poll_init(loop_, &handles_->poll->handle, fd); rc != 0) {
    error = std::string("uv_poll_init: ") + uv_strerror(rc);
    return false;
  }
  handles_->poll_started = true;
  handles_->poll->handle.data = this;
  uv_poll_start(&handles_->poll->handle, UV_READABLE, on_readable);
  return true;
}

void ConfigFileWatch::watch_resolved_directory() {
  const std::string real = resolved(path_);
  if (real.empty()) return;
  std::string dir, name;
  split(real, dir, name);
  resolved_name_ = name;
  if (dir == resolved_dir_) return;
  const int fd = handles_->poll->fd;
  if (resolved_wd_ >= 0 && resolved_wd_ != path_wd_) ::inotify_rm_watch(fd, resolved_wd_);
  resolved_dir_ = dir;
  // The same directory as the path's gives the same descriptor back.
  resolved_wd_ = ::inotify_add_watch(fd, dir.c_str(), kMask);
}

void ConfigFileWatch::close() {
  if (!handles_) return;
  auto* settle = reinterpret_cast<uv_handle_t*>(&handles_->settle->handle);
  close_and_free(std::move(handles_->settle), settle);
  if (handles_->poll_started) {
    auto* poll = reinterpret_cast<uv_handle_t*>(&handles_->poll->handle);
    close_and_free(std::move(handles_->poll), poll);
  }
  handles_.reset();  // a poll never started is freed here, with its descriptor
}

void ConfigFileWatch::on_readable(uv_poll_t* handle, int status, int) {
  auto* w = static_cast<ConfigFileWatch*>(handle->data);
  if (status < 0) return;
  w->read_events();
}

void ConfigFileWatch::read_events() {
  alignas(struct inotify_event) char buf[4096];
  bool relevant = false;
  for (;;) {
    const ssize_t n = ::read(handles_->poll->fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t at = 0; at < n;) {
      const auto* e = reinterpret_cast<const struct inotify_event*>(buf + at);
      at += static_cast<ssize_t>(sizeof(struct inotify_event) + e->len);
      const std::string name = e->len > 0 ? std::string(e->name) : std::string();
      if (e->mask & IN_Q_OVERFLOW) {
        // Events were lost: only a replacement is trusted from here.
        moved_in_ = relevant = true;
        continue;
      }
      if (e->mask & IN_CLOSE_WRITE) {
        // The file itself, under the name it is opened by; another file closing says nothing of
        // a writer of this one that is still going.
        if ((e->wd == path_wd_ && name == path_name_) || (e->wd == resolved_wd_ && name == resolved_name_)) {
          closed_after_write_ = relevant = true;
        }
      }
      if (e->mask & IN_MOVED_TO) moved_in_ = relevant = true;
      if ((e->mask & IN_CREATE) && !name.empty()) {
        // A new symlink is whole when it appears; a new regular file is not (its writer has
        // just opened it) and is reported by its close.
        const std::string dir = e->wd == path_wd_ ? path_dir_ : resolved_dir_;
        struct stat st{};
        if (::lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISLNK(st.st_mode)) moved_in_ = relevant = true;
      }
    }
  }
  if (relevant) uv_timer_start(&handles_->settle->handle, on_settled, kSettleMs, 0);
}

void ConfigFileWatch::on_settled(uv_timer_t* timer) {
  auto* w = static_cast<ConfigFileWatch*>(timer->data);
  const FileIdentity now = identify_file(w->path_);
  const bool replaced = w->seen_.replaced_by(now);
  const bool report = now.exists && now != w->seen_ && (w->closed_after_write_ || (w->moved_in_ && replaced));
  w->closed_after_write_ = w->moved_in_ = false;
  w->watch_resolved_directory();
  if (!report) return;
  w->seen_ = now;
  if (w->changed_) w->changed_();
}

}  // namespace jwtgate::proxy
