// Attacks on 3765117's lingering close (issue 15): a request answered before its declared body
// is read is to close with a FIN after the answer, its remaining input dropped unseen, and
// nothing after its head ever parsed. Each case is a path that closes otherwise.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "tests/support/proxy_env.h"

using namespace jwtgate;
using namespace jwtgate::testing;

namespace {

// A hand-driven upstream on 127.0.0.1:port: each accepted connection's request head is recorded,
// then `serve(fd)` decides what it gets. Bounded: accepting stops after `max_connections` or 8 s.
class RawUpstream {
 public:
  template <class Serve>
  RawUpstream(int port, int max_connections, Serve serve) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(listen_fd_, 16) == 0;
    timeval tv{8, 0};
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this, max_connections, serve] {
      for (int i = 0; i < max_connections; ++i) {
        const int fd = ::accept(listen_fd_, nullptr, nullptr);
        if (fd < 0) return;
        timeval t{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
        std::string head;
        char buf[4096];
        while (head.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
          if (n <= 0) break;
          head.append(buf, static_cast<std::size_t>(n));
        }
        {
          std::lock_guard<std::mutex> lock(mutex_);
          heads_.push_back(head.substr(0, head.find("\r\n")));
        }
        ++accepted_;
        serve(fd);
      }
    });
  }
  ~RawUpstream() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }
  bool ok() const { return ok_; }
  int accepted() const { return accepted_.load(); }
  std::vector<std::string> heads() {
    std::lock_guard<std::mutex> lock(mutex_);
    return heads_;
  }

 private:
  int listen_fd_ = -1;
  bool ok_ = false;
  std::atomic<int> accepted_{0};
  std::mutex mutex_;
  std::vector<std::string> heads_;
  std::thread thread_;
};

const std::string kRoutes = "routes:\n  - prefix: /\n    auth: none\n";

}  // namespace

TEST_CASE("an upstream's early answer to an upload is not destroyed by a reset: the connection lingers as for jwtgate's own") {
  // A 413 (or 401) from the application before it reads the upload is the commonest early
  // answer. jwtgate relays it and closes (upstream_complete -> close_after_writes), but without
  // lingering: body bytes that arrived after it stopped reading make the close a reset, which
  // throws away whatever of the answer is still in jwtgate's send queue.
  Env env(kRoutes, "", "", false);
  constexpr std::size_t kBody = 300000;
  std::atomic<bool> done{false};
  RawUpstream up(env.upstream_port, 1, [&](int fd) {
    const std::string answer = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n" +
                               std::string(kBody, 'x');
    ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
    for (int i = 0; i < 60 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ::close(fd);
  });
  REQUIRE(up.ok());

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int small = 4096;  // a slow reader: most of the answer waits in jwtgate's send queue
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(env.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string head = "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + std::string(1000, 'a');
  REQUIRE(::send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the answer is relayed, reading stopped
  const std::string more(10000, 'b');
  ::send(fd, more.data(), more.size(), MSG_NOSIGNAL);  // more of the upload, as a real client sends it
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  std::string got;
  char buf[65536];
  int error = 0;
  for (int i = 0; i < 10000; ++i) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) error = errno;
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  done = true;
  REQUIRE(got.rfind("HTTP/1.1 413 ", 0) == 0);
  const std::size_t body_at = got.find("\r\n\r\n");
  REQUIRE(body_at != std::string::npos);
  CHECK(error == 0);  // ECONNRESET: the close was a reset
  CHECK(got.size() - body_at - 4 == kBody);
}

TEST_CASE("a refusal written from inside the body parser stops parsing: no pipelined request after it reaches the upstream") {
  // respond() closes the connection and llhttp is expected to read no further; but when the
  // refusal is made inside an llhttp callback (cb_body's write to an upstream that has reset
  // the connection fails at once and upstream_failed answers 502), llhttp_execute goes on with
  // the rest of the buffer: the end of the body, then the next pipelined request, which is
  // parsed, authorized and sent upstream after a "Connection: close" 502 (its answer cannot be
  // written any more: the sending side is shut down). The linger timer is replaced, too.
  // To get the upstream's reset to wait unseen behind the client's bytes, jwtgate is stopped
  // while both arrive (epoll then reports the client first).
  Env env(kRoutes, "", "", false);
  std::atomic<bool> reset_now{false};
  std::atomic<bool> reset_done{false};
  constexpr int kAttempts = 3;  // the order epoll reports the two sockets in is not certain
  RawUpstream up(env.upstream_port, 2 * kAttempts, [&](int fd) {
    if (!reset_done && !reset_now) {
      // The connection carrying POST /first: reset once the client's bytes wait unread.
      for (int i = 0; i < 100 && !reset_now; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      ::close(fd);
      reset_done = true;
      return;
    }
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    ::send(fd, ok.data(), ok.size(), MSG_NOSIGNAL);
    ::close(fd);
  });
  REQUIRE(up.ok());

  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    CAPTURE(attempt);
    reset_now = false;
    reset_done = false;
    const int before = up.accepted();
    RawConnection c(env.port, 5);
    REQUIRE(c.connected());
    REQUIRE(c.send("POST /first HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
    REQUIRE(eventually([&] { return up.accepted() == before + 1; }, 5));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the head has been written upstream
    REQUIRE(::kill(env.proxy->pid(), SIGSTOP) == 0);
    REQUIRE(c.send("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: t\r\n\r\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    reset_now = true;
    for (int i = 0; i < 100 && !reset_done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    REQUIRE(::kill(env.proxy->pid(), SIGCONT) == 0);

    const std::string all = c.read_all();
    CAPTURE(all);
    CHECK(all.rfind("HTTP/1.1 502 ", 0) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    reset_done = true;  // any later connection is served a 200
  }
  const std::vector<std::string> heads = up.heads();
  CAPTURE(heads.size());
  CHECK(up.accepted() == kAttempts);  // one more connection per GET /second sent upstream
  for (const std::string& h : heads) CHECK(h.find("/second") == std::string::npos);
}
