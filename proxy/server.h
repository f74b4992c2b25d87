// The proxy process: N workers sharing one listening port, keys published to all of them, and
// a graceful drain.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/runtime_config.h"
#include "proxy/worker.h"

namespace jwtgate::proxy {

class Server {
 public:
  explicit Server(std::shared_ptr<const RuntimeConfig> runtime);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening sockets (one per worker, same port) and starts the workers. On failure
  // returns false with `error` set and starts nothing.
  bool start(std::string& error);
  std::uint16_t port() const { return port_; }  // 0 when the proxy listener is not run
  std::uint16_t check_port() const { return check_port_; }  // forward_auth's; 0 when not run
  std::size_t worker_count() const { return workers_.size(); }

  // Called by workers (any thread) when a token names a kid its provider's set lacks. Set
  // before start().
  void set_key_refresh(std::function<void(std::size_t provider)> request) { key_refresh_ = std::move(request); }
  // Control thread only. Keys published before start() reach the workers when they start.
  void publish_keys(std::size_t provider, std::shared_ptr<const core::KeySet> keys);
  // Control thread only: a key refresh of `provider` ended; requests waiting on it are decided.
  void notify_refreshed(std::size_t provider);
  // Control thread only: new requests use `runtime` (with these keys, by its provider order).
  // The listening sockets and the worker count stay as they are.
  void reload(std::shared_ptr<const RuntimeConfig> runtime, std::vector<std::shared_ptr<const core::KeySet>> keys);
  // Control thread only: the revocations later requests are checked against. One published
  // before start() is in place before the first connection is accepted.
  void publish_revocations(std::shared_ptr<const core::RevocationSet> set);
  // Control thread only: the TLS context new proxy connections get. One published before
  // start() is in place before the first connection is accepted.
  void publish_tls(std::shared_ptr<const TlsServerContext> tls);
  const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }
  // Stop accepting, finish in-flight requests, force-close what remains after `deadline`.
  void drain(std::chrono::milliseconds deadline);
  // Blocks until every worker has stopped.
  void wait();
  // After wait(): how many connections the drain deadline closed with a request in flight.
  std::size_t connections_cut() const { return connections_cut_; }

 private:
  std::shared_ptr<const RuntimeConfig> runtime_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::shared_ptr<const core::KeySet>> latest_keys_;
  std::shared_ptr<const TlsServerContext> latest_tls_;
  std::shared_ptr<const core::RevocationSet> latest_revocations_;
  std::function<void(std::size_t)> key_refresh_;
  std::uint16_t port_ = 0;
  std::uint16_t check_port_ = 0;
  std::size_t connections_cut_ = 0;
};

// Binds a TCP listening socket with SO_REUSEADDR and SO_REUSEPORT. Returns the fd or -1.
int bind_listener(const std::string& host, std::uint16_t port, std::uint16_t* bound_port, std::string& error);

}  // namespace jwtgate::proxy
