// A tiny built-in upstream for the development default: answers every request with a JSON
// description of what it received (method, path, headers), so a new user sees exactly what
// jwtgate forwarded. Also serves a fixed document at one path (the development JWKS).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace jwtgate::proxy {

class EchoUpstream {
 public:
  EchoUpstream(std::string document_path, std::string document);
  ~EchoUpstream();
  EchoUpstream(const EchoUpstream&) = delete;
  EchoUpstream& operator=(const EchoUpstream&) = delete;

  // Listens on 127.0.0.1 (any free port) in its own thread. False with `error` on failure.
  bool start(std::string& error);
  std::uint16_t port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
};

}  // namespace jwtgate::proxy
