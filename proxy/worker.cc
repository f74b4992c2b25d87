#include "proxy/worker.h"

#include <ctime>

#include "proxy/client_connection.h"
#include "proxy/error_response.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {

namespace {
constexpr std::size_t kVerifiedCacheEntries = 16384;
constexpr std::size_t kMaxIdleUpstream = 256;
}  // namespace

Worker::Worker(std::shared_ptr<const RuntimeConfig> runtime, int listen_fd, std::size_t max_connections,
               std::function<void(std::size_t)> key_refresh)
    : runtime_(std::move(runtime)), key_refresh_(std::move(key_refresh)), key_waits_(runtime_->providers.size()),
      listen_fd_(listen_fd), max_connections_(max_connections) {
  uv_loop_init(&loop_);
  uv_tcp_init(&loop_, &listener_);
  uv_async_init(&loop_, &async_, on_async);
  uv_timer_init(&loop_, &deadline_timer_);
  listener_.data = this;
  async_.data = this;
  deadline_timer_.data = this;
  authenticator_ = std::make_unique<Authenticator>(runtime_, kVerifiedCacheEntries);
  pool_ = std::make_unique<UpstreamPool>(&loop_, runtime_->config.upstream, kMaxIdleUpstream);
}

Worker::~Worker() {
  join();
  uv_loop_close(&loop_);
}

void Worker::start() { thread_ = std::thread([this] { run(); }); }

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  if (uv_tcp_open(&listener_, listen_fd_) != 0 ||
      uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 1024, on_connection) != 0) {
    begin_drain();
  }
  on_async(&async_);  // keys published before the loop started
  uv_run(&loop_, UV_RUN_DEFAULT);
}

std::int64_t Worker::now_seconds() const { return static_cast<std::int64_t>(std::time(nullptr)); }

void Worker::on_connection(uv_stream_t* server, int status) {
  auto* w = static_cast<Worker*>(server->data);
  if (status != 0 || w->draining_) return;
  auto owned = std::make_unique<ClientConnection>(*w);
  ClientConnection* c = owned.release();  // freed in connection_closed
  w->connections_.insert(c);
  w->connection_count_.store(w->connections_.size());
  if (!c->accept(server)) return;
  if (w->connections_.size() > w->max_connections_) {
    // Over the limit: refused cleanly; connections already open are unaffected.
    c->refuse(plain_error_response(503, "overloaded", "too many connections", false));
  }
}

void Worker::connection_closed(ClientConnection* c) {
  connections_.erase(c);
  connection_count_.store(connections_.size());
  std::unique_ptr<ClientConnection> owned(c);
  owned.reset();
  maybe_finish();
}

void Worker::publish_keys(std::size_t provider, std::shared_ptr<const core::KeySet> keys) {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    key_inbox_.emplace_back(provider, std::move(keys));
  }
  uv_async_send(&async_);
}

void Worker::notify_refreshed(std::size_t provider) {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    refreshed_inbox_.push_back(provider);
  }
  uv_async_send(&async_);
}

bool Worker::await_keys(std::size_t provider, ClientConnection* c) {
  if (!key_refresh_ || provider >= key_waits_.size() || draining_) return false;
  const config::JwksConfig& jwks = runtime_->providers[provider].config.jwks;
  if (!jwks.configured()) return false;
  KeyWait& w = key_waits_[provider];
  if (!w.pending) {
    // The key manager enforces the cooldown too; knowing it here spares it the message.
    const auto cooldown = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(jwks.min_refresh_interval).count());
    if (w.finished_once && uv_now(&loop_) - w.finished_ms < cooldown) return false;
    w.pending = true;
    key_refresh_(provider);
  }
  w.parked.push_back(c);
  return true;
}

void Worker::cancel_key_wait(ClientConnection* c) {
  for (KeyWait& w : key_waits_) std::erase(w.parked, c);
}

void Worker::drain(std::chrono::milliseconds deadline) {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    drain_requested_ = true;
    drain_deadline_ = deadline;
  }
  uv_async_send(&async_);
}

void Worker::on_async(uv_async_t* async) {
  auto* w = static_cast<Worker*>(async->data);
  std::vector<std::pair<std::size_t, std::shared_ptr<const core::KeySet>>> keys;
  std::vector<std::size_t> refreshed;
  bool drain = false;
  std::chrono::milliseconds deadline{0};
  {
    std::lock_guard<std::mutex> lock(w->inbox_mutex_);
    keys.swap(w->key_inbox_);
    refreshed.swap(w->refreshed_inbox_);
    drain = w->drain_requested_;
    deadline = w->drain_deadline_;
    w->drain_requested_ = false;
  }
  for (auto& [provider, set] : keys) w->authenticator_->set_keys(provider, std::move(set));
  // After the keys: a resumed request sees the set the refresh produced.
  for (std::size_t provider : refreshed) {
    if (provider >= w->key_waits_.size()) continue;
    KeyWait& kw = w->key_waits_[provider];
    kw.pending = false;
    kw.finished_once = true;
    kw.finished_ms = uv_now(&w->loop_);
    std::vector<ClientConnection*> parked;
    parked.swap(kw.parked);
    for (ClientConnection* c : parked) c->keys_refreshed();
  }
  if (drain && !w->draining_) {
    uv_timer_start(&w->deadline_timer_, on_deadline, static_cast<std::uint64_t>(deadline.count()), 0);
    w->begin_drain();
  }
}

void Worker::begin_drain() {
  draining_ = true;
  close_handle(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  // Connections between requests close now; the others after their response.
  std::vector<ClientConnection*> snapshot(connections_.begin(), connections_.end());
  for (ClientConnection* c : snapshot) c->begin_drain();
  maybe_finish();
}

void Worker::on_deadline(uv_timer_t* timer) {
  auto* w = static_cast<Worker*>(timer->data);
  std::vector<ClientConnection*> snapshot(w->connections_.begin(), w->connections_.end());
  for (ClientConnection* c : snapshot) c->close();
}

void Worker::maybe_finish() {
  if (!draining_ || finished_ || !connections_.empty()) return;
  finished_ = true;
  pool_->close_idle();
  close_handle(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  close_handle(reinterpret_cast<uv_handle_t*>(&deadline_timer_), nullptr);
  close_handle(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
}

}  // namespace jwtgate::proxy
