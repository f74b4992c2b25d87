#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace jwtgate::testing {

std::string HttpResponse::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return v;
    }
  }
  return {};
}

RawConnection::RawConnection(int port, double timeout_seconds, const std::string& source) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{static_cast<time_t>(timeout_seconds), static_cast<suseconds_t>((timeout_seconds - static_cast<long>(timeout_seconds)) * 1e6)};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (!source.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::send(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

bool RawConnection::fill() {
  char buf[65536];
  const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) return false;
  buffer_.append(buf, static_cast<std::size_t>(n));
  return true;
}

HttpResponse RawConnection::read_response(bool head_request) {
  HttpResponse r;
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return r;
  }
  const std::string head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  std::size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12) return r;
  const int status = std::atoi(status_line.substr(9, 3).c_str());
  while (line_end != std::string::npos) {
    const std::size_t next = head.find("\r\n", line_end + 2);
    const std::string line = head.substr(line_end + 2, next == std::string::npos ? std::string::npos : next - line_end - 2);
    const std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers.emplace_back(line.substr(0, colon), value);
    }
    line_end = next;
  }
  if (status >= 100 && status < 200 && status != 101) return read_response(head_request);  // skip interim
  const std::string length = r.header("Content-Length");
  const bool chunked = r.header("Transfer-Encoding").find("chunked") != std::string::npos;
  if (head_request || status == 204 || status == 304 || status == 101) {
  } else if (chunked) {
    for (;;) {
      std::size_t crlf;
      while ((crlf = buffer_.find("\r\n")) == std::string::npos) {
        if (!fill()) return r;
      }
      const std::size_t size = std::stoul(buffer_.substr(0, crlf), nullptr, 16);
      buffer_.erase(0, crlf + 2);
      while (buffer_.size() < size + 2) {
        if (!fill()) return r;
      }
      r.body.append(buffer_, 0, size);
      buffer_.erase(0, size + 2);
      if (size == 0) break;
    }
  } else if (!length.empty()) {
    const std::size_t size = std::stoul(length);
    while (buffer_.size() < size) {
      if (!fill()) return r;
    }
    r.body = buffer_.substr(0, size);
    buffer_.erase(0, size);
  } else {
    while (fill()) {
    }
    r.body = std::move(buffer_);
    buffer_.clear();
  }
  r.status = status;
  return r;
}

bool RawConnection::closed_by_peer() {
  char c;
  const ssize_t n = ::recv(fd_, &c, 1, 0);
  if (n > 0) buffer_.push_back(c);
  return n == 0;
}

std::string RawConnection::read_all() {
  while (fill()) {
  }
  std::string out = std::move(buffer_);
  buffer_.clear();
  return out;
}

HttpResponse http_request(int port, const std::string& raw_request, double timeout_seconds) {
  RawConnection c(port, timeout_seconds);
  if (!c.connected() || !c.send(raw_request)) return {};
  return c.read_response(raw_request.rfind("HEAD ", 0) == 0);
}

}  // namespace jwtgate::testing
