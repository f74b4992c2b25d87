#include "proxy/keys/file_watch.h"

#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {
// Writers (and the ConfigMap swap) produce several events; read once they have settled.
constexpr std::uint64_t kSettleMs = 100;

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}
}  // namespace

// Each handle is freed on its own once closed, so the FileWatch can go away at once.
struct FileWatch::Handles {
  struct Event {
    uv_fs_event_t handle{};
  };
  struct Poll {
    uv_fs_poll_t handle{};
  };
  struct Settle {
    uv_timer_t handle{};
  };
  std::unique_ptr<Event> event = std::make_unique<Event>();
  std::unique_ptr<Poll> poll = std::make_unique<Poll>();
  std::unique_ptr<Settle> settle = std::make_unique<Settle>();
};

FileWatch::FileWatch(uv_loop_t* loop, std::string path, std::chrono::milliseconds poll_interval,
                     std::function<void()> changed)
    : loop_(loop), path_(std::move(path)), poll_interval_(poll_interval), changed_(std::move(changed)),
      handles_(std::make_unique<Handles>()) {
  uv_fs_event_init(loop_, &handles_->event->handle);
  uv_fs_poll_init(loop_, &handles_->poll->handle);
  uv_timer_init(loop_, &handles_->settle->handle);
  handles_->event->handle.data = this;
  handles_->poll->handle.data = this;
  handles_->settle->handle.data = this;
}

FileWatch::~FileWatch() { close(); }

bool FileWatch::start(std::string& error) {
  seen_ = identify_file(path_);
  uv_fs_poll_start(&handles_->poll->handle, on_poll, path_.c_str(), static_cast<unsigned>(poll_interval_.count()));
  const std::string dir = directory_of(path_);
  if (int rc = uv_fs_event_start(&handles_->event->handle, on_event, dir.c_str(), 0); rc != 0) {
    error = "cannot watch " + dir + ": " + uv_strerror(rc);
    return false;
  }
  return true;
}

void FileWatch::close() {
  if (!handles_) return;
  // The handle's address is taken before ownership moves into close_and_free.
  auto* event = reinterpret_cast<uv_handle_t*>(&handles_->event->handle);
  auto* poll = reinterpret_cast<uv_handle_t*>(&handles_->poll->handle);
  auto* settle = reinterpret_cast<uv_handle_t*>(&handles_->settle->handle);
  close_and_free(std::move(handles_->event), event);
  close_and_free(std::move(handles_->poll), poll);
  close_and_free(std::move(handles_->settle), settle);
  handles_.reset();
}

void FileWatch::on_event(uv_fs_event_t* handle, const char*, int, int) {
  auto* w = static_cast<FileWatch*>(handle->data);
  // Any entry of the directory may be the symlink chain's link, so every event counts; reading
  // the file and comparing it is cheap and filters out the unrelated ones.
  uv_timer_start(&w->handles_->settle->handle, on_settled, kSettleMs, 0);
}

void FileWatch::on_poll(uv_fs_poll_t* handle, int, const uv_stat_t*, const uv_stat_t*) {
  auto* w = static_cast<FileWatch*>(handle->data);
  uv_timer_start(&w->handles_->settle->handle, on_settled, kSettleMs, 0);
}

void FileWatch::on_settled(uv_timer_t* timer) {
  auto* w = static_cast<FileWatch*>(timer->data);
  const FileIdentity now = identify_file(w->path_);
  if (now == w->seen_) return;
  w->seen_ = now;
  if (w->changed_) w->changed_();
}

}  // namespace jwtgate::proxy
