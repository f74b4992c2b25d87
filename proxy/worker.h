// One worker thread: its own libuv loop, its own listening socket on each shared port (the
// proxy's, forward_auth's; SO_REUSEPORT lets the kernel spread connections), its own
// authenticator, verified-token cache, upstream pool, counters and access-log buffer. Other threads talk to it only through
// one ordered inbox and uv_async.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "proxy/http/tls_server_context.h"
#include "proxy/worker_context.h"

namespace jwtgate::proxy {

class Worker final : public WorkerContext {
 public:
  // `listen_fd`: the proxy's listening socket, `check_fd`: forward_auth's; -1 for one not run.
  Worker(std::shared_ptr<const RuntimeConfig> runtime, int listen_fd, int check_fd, std::size_t max_connections,
         std::function<void(std::size_t provider)> key_refresh);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();  // runs the loop on a new thread
  void join();

  // Thread-safe; applied in call order. Keys take effect for the next request this worker
  // handles.
  void publish_keys(std::size_t provider, std::shared_ptr<const core::KeySet> keys);
  // A refresh of `provider`'s keys ended; connections waiting on it go on.
  void notify_refreshed(std::size_t provider);
  // A new configuration for new requests, with its providers' current keys. Requests in flight
  // finish with the one they started with.
  void install(std::shared_ptr<const RuntimeConfig> runtime, std::vector<std::shared_ptr<const core::KeySet>> keys);
  // Thread-safe: the revocations every later request is checked against.
  void publish_revocations(std::shared_ptr<const core::RevocationSet> set);
  // Before start() only: the set the first request is checked against, in place before the
  // listener opens (a message could lose the race with the first connection).
  void preset_revocations(std::shared_ptr<const core::RevocationSet> set);
  // Thread-safe: the proxy listener's TLS context for connections accepted from now on.
  void publish_tls(std::shared_ptr<const TlsServerContext> tls);
  // Stop accepting, let in-flight exchanges finish, close idle connections; after `deadline`
  // whatever remains is closed.
  void drain(std::chrono::milliseconds deadline);

  std::size_t connection_count() const { return connection_count_.load(); }
  // After join(): connections the drain deadline closed.
  std::size_t connections_cut() const { return connections_cut_; }
  const WorkerMetrics& worker_metrics() const { return metrics_; }

  // WorkerContext
  uv_loop_t* loop() override { return &loop_; }
  const std::shared_ptr<Generation>& generation() override { return generation_; }
  WorkerMetrics& metrics() override { return metrics_; }
  LogBuffer& access_log() override { return access_log_; }
  bool draining() const override { return draining_; }
  std::int64_t now_seconds() const override;
  void connection_closed(ClientConnection* c) override;
  bool await_keys(std::size_t provider, ClientConnection* c) override;
  void cancel_key_wait(ClientConnection* c) override;
  FlushQueue& flush_queue() override { return flush_queue_; }

 private:
  // Connections waiting for a refresh of one provider's keys. One request per provider is
  // outstanding at a time, so a flood of unknown kids costs the key manager one message.
  struct KeyWait {
    bool pending = false;
    bool finished_once = false;
    std::uint64_t finished_ms = 0;  // uv_now when the last refresh ended
    std::vector<ClientConnection*> parked;
  };
  struct Message {
    enum class Kind { keys, refreshed, install, tls, revocations } kind = Kind::keys;
    std::size_t provider = 0;
    std::shared_ptr<const core::KeySet> keys;
    std::shared_ptr<const RuntimeConfig> runtime;
    std::vector<std::shared_ptr<const core::KeySet>> all_keys;
    std::shared_ptr<const TlsServerContext> tls;
    std::shared_ptr<const core::RevocationSet> revocations;
  };

  void run();
  void post(Message m);
  void apply_install(std::shared_ptr<const RuntimeConfig> runtime, std::vector<std::shared_ptr<const core::KeySet>> keys);
  void release_key_waits();
  static void on_connection(uv_stream_t* server, int status);
  static void on_check_connection(uv_stream_t* server, int status);
  void accept_connection(uv_stream_t* server, int status, Mode mode);
  bool open_listener(uv_tcp_t& handle, int fd, uv_connection_cb cb);
  static void on_async(uv_async_t* async);
  static void on_deadline(uv_timer_t* timer);
  static void on_log_flush(uv_timer_t* timer);
  void begin_drain();
  void maybe_finish();

  int listen_fd_;
  int check_fd_;
  std::size_t max_connections_;
  std::function<void(std::size_t)> key_refresh_;
  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_tcp_t check_listener_{};  // forward_auth.listen
  uv_async_t async_{};
  uv_timer_t deadline_timer_{};
  uv_timer_t log_timer_{};
  FlushQueue flush_queue_;
  WorkerMetrics metrics_;
  LogBuffer access_log_;
  std::shared_ptr<Generation> generation_;
  // Set when the proxy listener speaks TLS (fixed at start): until a context arrives, and
  // whatever happens, its connections are closed rather than ever served in plaintext.
  bool tls_required_ = false;
  std::shared_ptr<const TlsServerContext> tls_;
  std::shared_ptr<const core::RevocationSet> revocations_;  // given to every generation
  std::vector<std::shared_ptr<UpstreamPool>> retired_pools_;  // upstreams of earlier configurations
  std::vector<KeyWait> key_waits_;
  std::unordered_set<ClientConnection*> connections_;  // each owned by itself until connection_closed
  std::atomic<std::size_t> connection_count_{0};
  bool draining_ = false;
  bool finished_ = false;
  std::thread thread_;

  std::mutex inbox_mutex_;  // guards the inbox below; taken only by posters and on_async
  std::vector<Message> inbox_;
  bool drain_requested_ = false;
  std::chrono::milliseconds drain_deadline_{0};
  std::size_t connections_cut_ = 0;  // worker thread only; read after join()
};

}  // namespace jwtgate::proxy
