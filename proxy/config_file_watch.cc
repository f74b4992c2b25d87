#include "proxy/config_file_watch.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include "proxy/admin/log.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

// A rename and its neighbours (the kubelet's swap is a symlink, a rename and a delete) arrive
// as a burst; the file is looked at once it has settled.
constexpr std::uint64_t kSettleMs = 100;
constexpr std::uint32_t kDirMask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE;
constexpr std::uint32_t kFileMask = IN_CLOSE_WRITE;
// The kernel's own limit (MAXSYMLINKS): a chain it follows is followed here to its end.
constexpr int kMaxSymlinkHops = 40;

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= path.size()) {
    const auto slash = path.find('/', at);
    const auto end = slash == std::string::npos ? path.size() : slash;
    if (end > at) out.push_back(path.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::string join(const std::string& dir, const std::string& name) { return dir == "/" ? "/" + name : dir + "/" + name; }

// The path's chain: the directory and name of every symlink met on the way to the file (path
// components included: a `current -> releases/v2` directory link), then the file's own.
struct Chain {
  std::vector<std::pair<std::string, std::string>> links;
  std::string final_dir, final_name;
  bool truncated = false;  // more links than the kernel follows
};

Chain resolve_chain(const std::string& path) {
  std::string absolute = path;
  if (absolute.empty() || absolute[0] != '/') {
    char cwd[PATH_MAX];
    absolute = std::string(::getcwd(cwd, sizeof cwd) ? cwd : "") + "/" + path;
  }
  Chain chain;
  std::deque<std::string> rest;
  for (auto& c : components(absolute)) rest.push_back(std::move(c));
  std::string current;  // resolved so far; "" is the root
  int hops = 0;
  while (!rest.empty()) {
    std::string c = std::move(rest.front());
    rest.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      const auto slash = current.rfind('/');
      current = slash == std::string::npos ? std::string() : current.substr(0, slash);
      continue;
    }
    const std::string dir = current.empty() ? std::string(1, '/') : current;
    const std::string candidate = current + "/" + c;
    struct stat st{};
    if (::lstat(candidate.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (++hops > kMaxSymlinkHops) {
        chain.truncated = true;
        break;
      }
      chain.links.emplace_back(dir, c);
      char target[PATH_MAX];
      const ssize_t n = ::readlink(candidate.c_str(), target, sizeof target - 1);
      if (n > 0) {
        const std::string t(target, static_cast<std::size_t>(n));
        const auto parts = components(t);
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) rest.push_front(*it);
        if (t[0] == '/') current.clear();
        continue;
      }
    }
    if (rest.empty()) {
      chain.final_dir = dir;
      chain.final_name = c;
    }
    current = candidate;
  }
  return chain;
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
  rearm();
  if (watches_.empty()) {
    error = "cannot watch the directory of " + path_ + ": " + std::strerror(errno);
    return false;
  }
  if (int rc = uv_poll_init(loop_, &handles_->poll->handle, fd); rc != 0) {
    error = std::string("uv_poll_init: ") + uv_strerror(rc);
    return false;
  }
  handles_->poll_started = true;
  handles_->poll->handle.data = this;
  uv_poll_start(&handles_->poll->handle, UV_READABLE, on_readable);
  return true;
}

void ConfigFileWatch::rearm() {
  const int fd = handles_->poll->fd;
  const Chain chain = resolve_chain(path_);
  std::map<int, Watch> next;
  int error = 0;
  auto watch_dir = [&](const std::string& dir, const std::string& name) {
    const int wd = ::inotify_add_watch(fd, dir.c_str(), kDirMask);
    if (wd < 0) {
      error = errno;
      return;
    }
    Watch& w = next[wd];
    w.dir = dir;
    w.names.insert(name);
  };
  for (const auto& [dir, name] : chain.links) watch_dir(dir, name);
  watch_dir(chain.final_dir, chain.final_name);
  final_dir_ = chain.final_dir;
  final_name_ = chain.final_name;
  // The file itself (absent while it is deleted): a write through another name of it is seen.
  const std::string file = join(final_dir_, final_name_);
  if (::access(file.c_str(), F_OK) == 0) {
    const int wd = ::inotify_add_watch(fd, file.c_str(), kFileMask);
    if (wd >= 0) {
      next[wd].file = true;
    } else {
      error = errno;
    }
  }
  for (const auto& [wd, w] : watches_) {
    if (next.count(wd) == 0) ::inotify_rm_watch(fd, wd);
  }
  watches_ = std::move(next);
  if (error != 0 || chain.truncated) {
    log_event("warn", "part of the config file's path cannot be watched; SIGHUP still reloads",
              {{"file", path_},
               {"error", chain.truncated ? std::string("more than 40 symlinks") : std::string(std::strerror(error))}});
  }
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
  if (w->read_events()) uv_timer_start(&w->handles_->settle->handle, on_settled, kSettleMs, 0);
}

bool ConfigFileWatch::read_events() {
  alignas(struct inotify_event) char buf[4096];
  bool look = false;
  for (;;) {
    const ssize_t n = ::read(handles_->poll->fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t at = 0; at < n;) {
      const auto* e = reinterpret_cast<const struct inotify_event*>(buf + at);
      at += static_cast<ssize_t>(sizeof(struct inotify_event) + e->len);
      if (e->mask & IN_Q_OVERFLOW) {
        events_lost_ = look = true;
        continue;
      }
      if (handle_event(e->wd, e->mask, e->len > 0 ? std::string(e->name) : std::string())) look = true;
    }
  }
  return look;
}

bool ConfigFileWatch::handle_event(int wd, std::uint32_t mask, const std::string& name) {
  const auto it = watches_.find(wd);
  if (it == watches_.end()) return false;  // a watch dropped since (its events were queued)
  const Watch& w = it->second;
  if (w.file) {
    if (mask & IN_CLOSE_WRITE) in_place_ = true;
    return (mask & IN_CLOSE_WRITE) != 0;
  }
  if (w.names.count(name) == 0) return false;  // another entry of the directory says nothing
  if (mask & IN_MOVED_TO) replaced_ = true;  // renamed onto the chain, whole
  if (mask & IN_CREATE) {
    // A new symlink is whole when it appears; a new file (or a directory made where a link was)
    // is being filled, or was linked in: nothing tells which.
    struct stat st{};
    const bool link = ::lstat(join(w.dir, name).c_str(), &st) == 0 && S_ISLNK(st.st_mode);
    (link ? replaced_ : in_place_) = true;
  }
  if (w.dir != final_dir_ || name != final_name_) {
    // A symlink on the way to the file: swapped, created or removed.
    return (mask & (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)) != 0;
  }
  if (mask & IN_CLOSE_WRITE) in_place_ = true;
  return (mask & (IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM)) != 0;
}

void ConfigFileWatch::on_settled(uv_timer_t* timer) {
  auto* w = static_cast<ConfigFileWatch*>(timer->data);
  // What arrived since the timer was set counts too: a change in place right behind a rename.
  w->read_events();
  w->rearm();
  const bool replaced = std::exchange(w->replaced_, false);
  const bool in_place = std::exchange(w->in_place_, false);
  const bool lost = std::exchange(w->events_lost_, false);
  const FileIdentity now = identify_file(w->path_);
  // Gone for now: a replacement that comes later is compared with what was there before.
  if (!now.exists || now == w->seen_) return;
  const bool new_file = w->seen_.replaced_by(now);
  w->seen_ = now;
  if (replaced && new_file && !in_place && !lost) {
    if (w->changed_) w->changed_();
    return;
  }
  log_event("warn",
            lost ? "the config file changed while watch events were lost; not reloaded: send SIGHUP to apply it"
                 : "the config file changed in place; not reloaded (a file being written cannot be told from a finished "
                   "one): replace it with a rename (write a new file, then mv it over) or send SIGHUP to apply it",
            {{"file", w->path_}});
}

}  // namespace jwtgate::proxy
