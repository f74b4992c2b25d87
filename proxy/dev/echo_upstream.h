// A tiny built-in upstream for the development default: answers every request with a JSON
// description of what it received (method, path, headers), so a new user sees exactly what
// jwtgate forwarded. Also serves a fixed document at one path (the development JWKS). `jwtgate
// echo` runs it alone, as a stand-in service.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace jwtgate::proxy {

class EchoUpstream {
 public:
  // An empty `document_path` serves no document. A non-empty `service` is reported as "service"
  // in every answer, so a stack with several echoes shows which one answered.
  EchoUpstream(std::string document_path, std::string document, std::string service = {});
  ~EchoUpstream();
  EchoUpstream(const EchoUpstream&) = delete;
  EchoUpstream& operator=(const EchoUpstream&) = delete;

  // Listens on 127.0.0.1 (any free port) in its own thread. False with `error` on failure.
  bool start(std::string& error) { return start("127.0.0.1", 0, error); }
  // Listens on `host`:`port` (0: any free port).
  bool start(const std::string& host, std::uint16_t port, std::string& error);
  std::uint16_t port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
};

}  // namespace jwtgate::proxy
