// The admin listener: a deliberately small HTTP/1.1 server for health, readiness and (later)
// metrics. It runs on the process's control loop rather than a request worker, so it keeps
// answering when the workers are saturated and never competes with proxied traffic.
//
// It is often reachable by more than the kubelet (examples bind it to 0.0.0.0), so nobody who can
// connect may starve the probes: every request must arrive within a head timeout, one peer holds
// at most a few connections, and when the general pool is full a small reserve still answers the
// probe paths (one request per connection, on a shorter timeout). When even the reserve is full,
// the connection that has done nothing useful for longest is closed to make room.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "config/config.h"

namespace jwtgate::proxy {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// method ("GET", ...), path without query, query (without '?')
using AdminHandler =
    std::function<AdminResponse(std::string_view method, std::string_view path, std::string_view query)>;

// The whole request, for handlers that read a body (the development IdP's token endpoint). The
// views are valid during the call only; the body is bounded by the server's request limit.
// A handler that can only answer later (after a reply from Redis) calls `defer` once: the
// AdminResponse it returns is then ignored, and the answer is what it later passes, on the loop,
// to the function `defer` gave it (dropped if the connection closed meanwhile; the head timeout
// still bounds the wait). A deferred answer closes its connection: nothing pipelined after it is
// read.
using AdminDeferredAnswer = std::function<void(AdminResponse)>;

struct AdminRequest {
  std::string_view method;
  std::string_view path;
  std::string_view query;
  std::string_view content_type;  // "" when absent
  std::string_view body;
  std::function<AdminDeferredAnswer()> defer = nullptr;  // set by the server for every request
};
using AdminRequestHandler = std::function<AdminResponse(const AdminRequest& request)>;

struct AdminLimits {
  std::size_t max_connections = 64;          // the general pool
  std::size_t max_connections_per_peer = 8;  // per IPv4 address or IPv6 /64, both pools together
  std::size_t reserve_connections = 8;       // beyond max_connections, for reserved_paths only
  // From accepting a connection (or from the first byte after an answer) to the end of the request.
  std::chrono::milliseconds head_timeout{5000};
  std::chrono::milliseconds idle_timeout{30000};  // a keep-alive connection waiting for its next request
  std::chrono::milliseconds reserve_head_timeout{1000};
  std::vector<std::string> reserved_paths{"/healthz", "/readyz"};
};

// The limits the configuration asks for; the reserve's size and timeout are fixed.
AdminLimits admin_limits(const config::AdminConfig& config);

class AdminServer {
 public:
  AdminServer(uv_loop_t* loop, AdminHandler handler, AdminLimits limits = {});
  AdminServer(uv_loop_t* loop, AdminRequestHandler handler, AdminLimits limits = {});
  ~AdminServer();  // requires close() to have been called and the loop run until handles closed
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds host:port (port 0 = any free port) and listens. false + error on failure.
  bool start(const config::ListenAddress& address, std::string& error);
  std::uint16_t port() const;
  // Stops listening and closes every connection; handles finish closing on the next loop turns.
  void close();
  // For connections accepted from now on (a reload); open connections keep their pool.
  void set_limits(AdminLimits limits) { limits_ = std::move(limits); }
  // Sent on every answer, including the server's own refusals (400, 413, 431, 503).
  void set_common_headers(std::vector<std::pair<std::string, std::string>> headers) {
    common_headers_ = std::move(headers);
  }

 private:
  class Connection;
  struct Listener;
  enum class Pool { general, reserve };

  static void on_connection(uv_stream_t* stream, int status);
  static void on_listener_closed(uv_handle_t* handle);
  void forget(Connection* connection);
  // Which pool a new connection from `peer` joins, after closing one connection if that makes
  // room; nullopt when it is refused.
  std::optional<Pool> place(const std::string& peer);
  Connection* eviction_candidate(const std::string* peer) const;
  void count(const Connection& c, int delta);

  uv_loop_t* loop_;
  AdminRequestHandler handler_;
  AdminLimits limits_;
  std::vector<std::pair<std::string, std::string>> common_headers_;
  std::size_t general_open_ = 0;
  std::size_t reserve_open_ = 0;
  std::unordered_map<std::string, std::size_t> per_peer_open_;
  std::uint64_t activity_ = 0;  // orders connections by their last useful activity
  // Owned by its own close callback, so a failed start() needs no loop turn before destruction.
  Listener* listener_ = nullptr;
  // Each connection is owned by its libuv handles and leaves this set once they have closed.
  std::unordered_set<Connection*> connections_;
  std::uint16_t port_ = 0;
  bool closed_ = false;
};

}  // namespace jwtgate::proxy
