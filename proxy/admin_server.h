// The admin listener: a deliberately small HTTP/1.1 server for health, readiness and (later)
// metrics. It runs on the process's control loop rather than a request worker, so it keeps
// answering when the workers are saturated and never competes with proxied traffic.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
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

class AdminServer {
 public:
  AdminServer(uv_loop_t* loop, AdminHandler handler);
  ~AdminServer();  // requires close() to have been called and the loop run until handles closed
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds host:port (port 0 = any free port) and listens. false + error on failure.
  bool start(const config::ListenAddress& address, std::string& error);
  std::uint16_t port() const;
  // Stops listening and closes every connection; handles finish closing on the next loop turns.
  void close();

 private:
  class Connection;
  struct Listener;

  static void on_connection(uv_stream_t* stream, int status);
  static void on_listener_closed(uv_handle_t* handle);
  void forget(Connection* connection);

  uv_loop_t* loop_;
  AdminHandler handler_;
  // Owned by its own close callback, so a failed start() needs no loop turn before destruction.
  Listener* listener_ = nullptr;
  // Each connection is owned by its libuv handles and leaves this set once they have closed.
  std::unordered_set<Connection*> connections_;
  std::uint16_t port_ = 0;
  bool closed_ = false;
};

}  // namespace jwtgate::proxy
