#include "proxy/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace jwtgate::proxy {

int bind_listener(const std::string& host, std::uint16_t port, std::uint16_t* bound_port, std::string& error) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  const std::string h = host == "localhost" ? "127.0.0.1" : host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    error = "cannot listen on " + host + ": not an IP address";
    return -1;
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    error = "cannot listen on " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (bound_port) {
    sockaddr_storage actual{};
    socklen_t actual_len = sizeof actual;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&actual), &actual_len);
    *bound_port = ntohs(actual.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&actual)->sin6_port
                                                     : reinterpret_cast<sockaddr_in*>(&actual)->sin_port);
  }
  return fd;
}

Server::Server(std::shared_ptr<const RuntimeConfig> runtime) : runtime_(std::move(runtime)) {}

Server::~Server() {
  if (!workers_.empty()) {
    drain(std::chrono::milliseconds(0));
    wait();
  }
}

bool Server::start(std::string& error) {
  const auto& cfg = runtime_->config;
  unsigned n = cfg.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  std::vector<int> fds, check_fds;
  auto close_all = [&] {
    for (int f : fds) ::close(f);
    for (int f : check_fds) ::close(f);
  };
  // One socket per worker on each listener. The first settles the port (it may be 0: any free
  // port); the others share it.
  auto bind_all = [&](const config::ListenAddress& at, std::vector<int>& out, std::uint16_t& bound) {
    std::uint16_t port = at.port;
    for (unsigned i = 0; i < n; ++i) {
      const int fd = bind_listener(at.host, port, i == 0 ? &port : nullptr, error);
      if (fd < 0) return false;
      out.push_back(fd);
    }
    bound = port;
    return true;
  };
  if ((cfg.proxy && !bind_all(cfg.listen, fds, port_)) ||
      (cfg.forward_auth && !bind_all(cfg.forward_auth->listen, check_fds, check_port_))) {
    close_all();
    return false;
  }
  const std::size_t per_worker = (cfg.limits.max_connections + n - 1) / n;
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(runtime_, fds.empty() ? -1 : fds[i],
                                                check_fds.empty() ? -1 : check_fds[i], per_worker, key_refresh_));
  }
  for (auto& w : workers_) {
    if (latest_tls_) w->publish_tls(latest_tls_);
    if (latest_revocations_) w->preset_revocations(latest_revocations_);
    for (std::size_t i = 0; i < latest_keys_.size(); ++i) {
      if (latest_keys_[i]) w->publish_keys(i, latest_keys_[i]);
    }
    w->start();
  }
  return true;
}

void Server::publish_keys(std::size_t provider, std::shared_ptr<const core::KeySet> keys) {
  if (latest_keys_.size() <= provider) latest_keys_.resize(provider + 1);
  latest_keys_[provider] = keys;
  for (auto& w : workers_) w->publish_keys(provider, keys);
}

void Server::reload(std::shared_ptr<const RuntimeConfig> runtime, std::vector<std::shared_ptr<const core::KeySet>> keys) {
  runtime_ = runtime;
  latest_keys_ = keys;
  for (auto& w : workers_) w->install(runtime, keys);
}

void Server::publish_revocations(std::shared_ptr<const core::RevocationSet> set) {
  latest_revocations_ = set;
  for (auto& w : workers_) w->publish_revocations(set);
}

void Server::publish_tls(std::shared_ptr<const TlsServerContext> tls) {
  latest_tls_ = tls;
  for (auto& w : workers_) w->publish_tls(tls);
}

void Server::notify_refreshed(std::size_t provider) {
  for (auto& w : workers_) w->notify_refreshed(provider);
}

void Server::drain(std::chrono::milliseconds deadline) {
  for (auto& w : workers_) w->drain(deadline);
}

void Server::wait() {
  for (auto& w : workers_) {
    w->join();
    connections_cut_ += w->connections_cut();
  }
  workers_.clear();
}

}  // namespace jwtgate::proxy
