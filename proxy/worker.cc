#include "proxy/worker.h"

#include <ctime>

#include "proxy/http/client_connection.h"
#include "proxy/http/error_response.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {

namespace {
constexpr std::size_t kVerifiedCacheEntries = 16384;
constexpr std::size_t kMaxIdleUpstream = 1024;
// Access-log lines leave the worker in batches at least this often.
constexpr std::uint64_t kLogFlushMs = 100;
}  // namespace

Worker::Worker(std::shared_ptr<const RuntimeConfig> runtime, int listen_fd, int check_fd, std::size_t max_connections,
               std::function<void(std::size_t)> key_refresh)
    : listen_fd_(listen_fd), check_fd_(check_fd), max_connections_(max_connections), key_refresh_(std::move(key_refresh)) {
  uv_loop_init(&loop_);
  uv_tcp_init(&loop_, &listener_);
  uv_tcp_init(&loop_, &check_listener_);
  check_listener_.data = this;
  uv_async_init(&loop_, &async_, on_async);
  uv_timer_init(&loop_, &deadline_timer_);
  uv_timer_init(&loop_, &log_timer_);
  flush_queue_.init(&loop_);
  listener_.data = this;
  async_.data = this;
  deadline_timer_.data = this;
  log_timer_.data = this;
  tls_required_ = runtime->config.tls.has_value();
  apply_install(std::move(runtime), {});
}

Worker::~Worker() {
  join();
  uv_loop_close(&loop_);
}

void Worker::start() { thread_ = std::thread([this] { run(); }); }

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

bool Worker::open_listener(uv_tcp_t& handle, int fd, uv_connection_cb cb) {
  return fd < 0 || (uv_tcp_open(&handle, fd) == 0 && uv_listen(reinterpret_cast<uv_stream_t*>(&handle), 1024, cb) == 0);
}

void Worker::run() {
  if (!open_listener(listener_, listen_fd_, on_connection) || !open_listener(check_listener_, check_fd_, on_check_connection)) {
    begin_drain();
  }
  uv_timer_start(&log_timer_, on_log_flush, kLogFlushMs, kLogFlushMs);
  on_async(&async_);  // messages posted before the loop started
  uv_run(&loop_, UV_RUN_DEFAULT);
  access_log_.flush();
}

std::int64_t Worker::now_seconds() const { return static_cast<std::int64_t>(std::time(nullptr)); }

void Worker::on_connection(uv_stream_t* server, int status) {
  static_cast<Worker*>(server->data)->accept_connection(server, status, Mode::proxy);
}

void Worker::on_check_connection(uv_stream_t* server, int status) {
  static_cast<Worker*>(server->data)->accept_connection(server, status, Mode::forward_auth);
}

void Worker::accept_connection(uv_stream_t* server, int status, Mode mode) {
  if (status != 0 || draining_) return;
  const bool tls = mode == Mode::proxy && tls_required_;
  auto owned = std::make_unique<ClientConnection>(*this, mode, tls ? tls_ : nullptr);
  ClientConnection* c = owned.release();  // freed in connection_closed
  connections_.insert(c);
  connection_count_.store(connections_.size());
  metrics_.connections_total.add();
  metrics_.connections_active.set(static_cast<std::int64_t>(connections_.size()));
  if (!c->accept(server)) return;
  if (tls && !tls_) {
    c->close();  // cannot happen after start (the context is published first); never plaintext
    return;
  }
  if (connections_.size() > max_connections_) {
    // Over the limit: refused cleanly; connections already open are unaffected.
    c->refuse(plain_error_response(503, "overloaded", "too many connections", false));
  }
}

void Worker::connection_closed(ClientConnection* c) {
  connections_.erase(c);
  connection_count_.store(connections_.size());
  metrics_.connections_active.set(static_cast<std::int64_t>(connections_.size()));
  std::unique_ptr<ClientConnection> owned(c);
  owned.reset();
  maybe_finish();
}

void Worker::post(Message m) {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    inbox_.push_back(std::move(m));
  }
  uv_async_send(&async_);
}

void Worker::publish_keys(std::size_t provider, std::shared_ptr<const core::KeySet> keys) {
  Message m;
  m.kind = Message::Kind::keys;
  m.provider = provider;
  m.keys = std::move(keys);
  post(std::move(m));
}

void Worker::notify_refreshed(std::size_t provider) {
  Message m;
  m.kind = Message::Kind::refreshed;
  m.provider = provider;
  post(std::move(m));
}

void Worker::publish_tls(std::shared_ptr<const TlsServerContext> tls) {
  Message m;
  m.kind = Message::Kind::tls;
  m.tls = std::move(tls);
  post(std::move(m));
}

void Worker::publish_revocations(std::shared_ptr<const core::RevocationSet> set) {
  Message m;
  m.kind = Message::Kind::revocations;
  m.revocations = std::move(set);
  post(std::move(m));
}

void Worker::preset_revocations(std::shared_ptr<const core::RevocationSet> set) {
  revocations_ = std::move(set);
  generation_->authenticator->set_revocations(revocations_);
}

void Worker::install(std::shared_ptr<const RuntimeConfig> runtime, std::vector<std::shared_ptr<const core::KeySet>> keys) {
  Message m;
  m.kind = Message::Kind::install;
  m.runtime = std::move(runtime);
  m.all_keys = std::move(keys);
  post(std::move(m));
}

void Worker::apply_install(std::shared_ptr<const RuntimeConfig> runtime, std::vector<std::shared_ptr<const core::KeySet>> keys) {
  auto g = std::make_shared<Generation>();
  g->authenticator = std::make_unique<Authenticator>(runtime, kVerifiedCacheEntries);
  for (std::size_t i = 0; i < keys.size(); ++i) g->authenticator->set_keys(i, std::move(keys[i]));
  g->authenticator->set_revocations(revocations_);
  // An upstream the new configuration still names keeps its warm connections across a reload.
  std::vector<bool> kept(generation_ ? generation_->pools.size() : 0, false);
  for (const config::UpstreamUrl& u : runtime->upstreams) {
    std::shared_ptr<UpstreamPool> pool;
    for (std::size_t i = 0; i < kept.size() && !pool; ++i) {
      if (!kept[i] && RuntimeConfig::same_pool(generation_->runtime->upstreams[i], generation_->runtime->config.upstream_tls, u,
                                               runtime->config.upstream_tls)) {
        pool = generation_->pools[i];
        kept[i] = true;
      }
    }
    std::shared_ptr<const TlsClientContext> tls = u.tls ? runtime->upstream_tls : nullptr;
    if (pool) pool->set_tls(std::move(tls));
    g->pools.push_back(pool ? std::move(pool) : std::make_shared<UpstreamPool>(&loop_, u, kMaxIdleUpstream, std::move(tls),
                                                                                   &flush_queue_));
  }
  // Pools of earlier configurations stay while a connection points at them, or an exchange of
  // that configuration (holding its generation) may still ask them for one.
  std::erase_if(retired_pools_,
                [](const std::shared_ptr<UpstreamPool>& p) { return p->live() == 0 && p.use_count() == 1; });
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (kept[i]) continue;
    generation_->pools[i]->retire();
    retired_pools_.push_back(generation_->pools[i]);
  }
  for (const auto& route : runtime->config.routes) g->route_metrics.push_back(metrics_.route(route.prefix));
  g->runtime = std::move(runtime);
  // Waiting requests belong to the old configuration's provider numbering: decide them now.
  release_key_waits();
  key_waits_.assign(g->runtime->providers.size(), KeyWait{});
  generation_ = std::move(g);
}

void Worker::release_key_waits() {
  std::vector<ClientConnection*> parked;
  for (KeyWait& w : key_waits_) {
    parked.insert(parked.end(), w.parked.begin(), w.parked.end());
    w.parked.clear();
  }
  for (ClientConnection* c : parked) c->keys_refreshed();
}

bool Worker::await_keys(std::size_t provider, ClientConnection* c) {
  if (!key_refresh_ || provider >= key_waits_.size() || draining_) return false;
  const config::JwksConfig& jwks = generation_->runtime->providers[provider].config.jwks;
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
  std::vector<Message> messages;
  bool drain = false;
  std::chrono::milliseconds deadline{0};
  {
    std::lock_guard<std::mutex> lock(w->inbox_mutex_);
    messages.swap(w->inbox_);
    drain = w->drain_requested_;
    deadline = w->drain_deadline_;
    w->drain_requested_ = false;
  }
  // In order: keys published before a refresh's end are in place when its waiters resume, and
  // keys published after an install go to the new configuration.
  for (Message& m : messages) {
    switch (m.kind) {
      case Message::Kind::keys:
        w->generation_->authenticator->set_keys(m.provider, std::move(m.keys));
        break;
      case Message::Kind::install:
        w->apply_install(std::move(m.runtime), std::move(m.all_keys));
        break;
      case Message::Kind::tls:
        w->tls_ = std::move(m.tls);
        break;
      case Message::Kind::revocations:
        w->revocations_ = std::move(m.revocations);
        w->generation_->authenticator->set_revocations(w->revocations_);
        break;
      case Message::Kind::refreshed: {
        if (m.provider >= w->key_waits_.size()) break;
        KeyWait& kw = w->key_waits_[m.provider];
        kw.pending = false;
        kw.finished_once = true;
        kw.finished_ms = uv_now(&w->loop_);
        std::vector<ClientConnection*> parked;
        parked.swap(kw.parked);
        for (ClientConnection* c : parked) c->keys_refreshed();
        break;
      }
    }
  }
  if (drain && !w->draining_) {
    uv_timer_start(&w->deadline_timer_, on_deadline, static_cast<std::uint64_t>(deadline.count()), 0);
    w->begin_drain();
  }
}

void Worker::on_log_flush(uv_timer_t* timer) { static_cast<Worker*>(timer->data)->access_log_.flush(); }

void Worker::begin_drain() {
  draining_ = true;
  close_handle(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  close_handle(reinterpret_cast<uv_handle_t*>(&check_listener_), nullptr);
  // Connections between requests close now; the others after their response.
  std::vector<ClientConnection*> snapshot(connections_.begin(), connections_.end());
  for (ClientConnection* c : snapshot) c->begin_drain();
  maybe_finish();
}

void Worker::on_deadline(uv_timer_t* timer) {
  auto* w = static_cast<Worker*>(timer->data);
  std::vector<ClientConnection*> snapshot(w->connections_.begin(), w->connections_.end());
  w->connections_cut_ += snapshot.size();
  for (ClientConnection* c : snapshot) c->close();
}

void Worker::maybe_finish() {
  if (!draining_ || finished_ || !connections_.empty()) return;
  finished_ = true;
  for (auto& pool : generation_->pools) pool->close_idle();
  for (auto& pool : retired_pools_) pool->close_idle();
  access_log_.flush();
  close_handle(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  close_handle(reinterpret_cast<uv_handle_t*>(&deadline_timer_), nullptr);
  close_handle(reinterpret_cast<uv_handle_t*>(&log_timer_), nullptr);
  flush_queue_.close();
  close_handle(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  close_handle(reinterpret_cast<uv_handle_t*>(&check_listener_), nullptr);
}

}  // namespace jwtgate::proxy
