// A deliberately simple blocking HTTP/1.1 client over a real socket, able to send any bytes
// (including malformed requests) and read responses one at a time.
#pragma once

#include <string>
#include <vector>

namespace jwtgate::testing {

struct HttpResponse {
  int status = 0;  // 0: no complete response (connection closed or timed out)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string header(const std::string& name) const;  // first value, case-insensitive; "" if absent
};

class RawConnection {
 public:
  // `source`: the local IPv4 address to connect from (any of 127/8 reaches 127.0.0.1 on Linux),
  // for tests that need several distinct peers; "" lets the kernel choose.
  explicit RawConnection(int port, double timeout_seconds = 5, const std::string& source = "");
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  // Reads one response (Content-Length, chunked, or until close). `head_request`: no body.
  HttpResponse read_response(bool head_request = false);
  // True when the peer has closed the connection (reads EOF within the timeout).
  bool closed_by_peer();
  // Everything until the peer closes or the timeout passes.
  std::string read_all();
  int fd() const { return fd_; }

 private:
  bool fill();
  int fd_ = -1;
  std::string buffer_;
};

// One request on a fresh connection.
HttpResponse http_request(int port, const std::string& raw_request, double timeout_seconds = 10);

}  // namespace jwtgate::testing
