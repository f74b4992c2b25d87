#include <doctest/doctest.h>
#include <uv.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proxy/admin_server.h"
#include "tests/support/http_client.h"

using namespace jwtgate;
using testing::HttpResponse;
using testing::RawConnection;
using testing::http_request;

namespace {

struct Seen {
  std::string method, path, query;
};

// An AdminServer on an ephemeral port, on its own loop thread as on the control loop; the test
// thread stops it through a uv_async because the server may only be touched on its loop.
class RunningAdmin {
 public:
  RunningAdmin() {
    uv_loop_init(&loop_);
    server_ = std::make_unique<proxy::AdminServer>(
        &loop_, [this](std::string_view m, std::string_view p, std::string_view q) { return handle(m, p, q); });
    config::ListenAddress address;
    address.host = "127.0.0.1";
    address.port = 0;
    started_ = server_->start(address, error_);
    uv_async_init(&loop_, &stop_, on_stop);
    stop_.data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~RunningAdmin() { stop(); }

  bool started() const { return started_; }
  const std::string& error() const { return error_; }
  int port() const { return server_->port(); }

  // Closes the server, waits for the loop to run out of handles; returns uv_loop_close's result.
  int stop() {
    if (!thread_.joinable()) return loop_close_result_;
    uv_async_send(&stop_);
    thread_.join();
    server_.reset();
    loop_close_result_ = uv_loop_close(&loop_);
    return loop_close_result_;
  }

  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

 private:
  proxy::AdminResponse handle(std::string_view method, std::string_view path, std::string_view query) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      seen_.push_back({std::string(method), std::string(path), std::string(query)});
    }
    proxy::AdminResponse r;
    if (path == "/healthz") {
      r.body = "ok\n";
    } else if (path == "/readyz") {
      r.status = 503;
      r.body = "not ready\n";
      r.headers.emplace_back("Retry-After", "5");
    } else {
      r.status = 404;
      r.body = "not found\n";
    }
    return r;
  }

  static void on_stop(uv_async_t* async) {
    static_cast<RunningAdmin*>(async->data)->server_->close();
    uv_close(reinterpret_cast<uv_handle_t*>(async), nullptr);
  }

  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::unique_ptr<proxy::AdminServer> server_;
  std::thread thread_;
  bool started_ = false;
  std::string error_;
  int loop_close_result_ = 0;
  std::mutex mutex_;
  std::vector<Seen> seen_;
};

const std::string kGetHealth = "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n";

}  // namespace

TEST_CASE("admin server: health answer carries framing, content type and no-store") {
  RunningAdmin admin;
  REQUIRE_MESSAGE(admin.started(), admin.error());
  CHECK(admin.port() != 0);

  const HttpResponse r = http_request(admin.port(), kGetHealth);
  CHECK(r.status == 200);
  CHECK(r.body == "ok\n");
  CHECK(r.header("Content-Type") == "text/plain; charset=utf-8");
  CHECK(r.header("Content-Length") == "3");
  CHECK(r.header("Cache-Control") == "no-store");
  CHECK(r.header("Connection") == "keep-alive");

  const HttpResponse ready = http_request(admin.port(), "GET /readyz HTTP/1.1\r\nHost: admin\r\n\r\n");
  CHECK(ready.status == 503);
  CHECK(ready.header("Retry-After") == "5");
  CHECK(ready.body == "not ready\n");

  const HttpResponse missing = http_request(admin.port(), "GET /nope HTTP/1.1\r\nHost: admin\r\n\r\n");
  CHECK(missing.status == 404);
  CHECK(missing.body == "not found\n");

  CHECK(http_request(admin.port(), "GET /healthz?verbose=1 HTTP/1.1\r\nHost: admin\r\n\r\n").status == 200);
  const std::vector<Seen> seen = admin.seen();
  REQUIRE(seen.size() == 4);
  CHECK(seen.back().method == "GET");
  CHECK(seen.back().path == "/healthz");
  CHECK(seen.back().query == "verbose=1");
  CHECK(admin.stop() == 0);
}

TEST_CASE("admin server: HEAD gets GET's headers and no body") {
  RunningAdmin admin;
  REQUIRE_MESSAGE(admin.started(), admin.error());
  RawConnection c(admin.port());
  REQUIRE(c.connected());
  REQUIRE(c.send("HEAD /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"));
  const std::string raw = c.read_all();
  CHECK(raw.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(raw.find("Content-Length: 3\r\n") != std::string::npos);
  CHECK(raw.size() >= 4);
  CHECK(raw.substr(raw.size() - 4) == "\r\n\r\n");  // nothing after the head
  REQUIRE(admin.seen().size() == 1);
  CHECK(admin.seen().front().method == "HEAD");
}

TEST_CASE("admin server: pipelined requests on one keep-alive connection are answered in order") {
  RunningAdmin admin;
  REQUIRE_MESSAGE(admin.started(), admin.error());
  RawConnection c(admin.port());
  REQUIRE(c.connected());
  REQUIRE(c.send(kGetHealth + "GET /nope HTTP/1.1\r\nHost: admin\r\n\r\n"));
  const HttpResponse first = c.read_response();
  const HttpResponse second = c.read_response();
  CHECK(first.status == 200);
  CHECK(first.body == "ok\n");
  CHECK(second.status == 404);
  CHECK(second.body == "not found\n");

  // A request body is read and ignored, and the connection stays usable after it.
  REQUIRE(c.send("POST /healthz HTTP/1.1\r\nHost: admin\r\nContent-Length: 5\r\n\r\nhello" +
                 std::string("GET /readyz HTTP/1.1\r\nHost: admin\r\n\r\n")));
  CHECK(c.read_response().status == 200);
  CHECK(c.read_response().status == 503);
  REQUIRE(c.send(kGetHealth));
  CHECK(c.read_response().status == 200);
}

TEST_CASE("admin server: Connection: close and HTTP/1.0 end the connection after the answer") {
  RunningAdmin admin;
  REQUIRE_MESSAGE(admin.started(), admin.error());
  {
    RawConnection c(admin.port());
    REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n" + kGetHealth));
    const HttpResponse r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.header("Connection") == "close");
    CHECK(c.closed_by_peer());  // the pipelined request after it is not answered
  }
  {
    RawConnection c(admin.port());
    REQUIRE(c.send("GET /healthz HTTP/1.0\r\n\r\n"));
    CHECK(c.read_response().status == 200);
    CHECK(c.closed_by_peer());
  }
  CHECK(admin.seen().size() == 2);
}

TEST_CASE("admin server: malformed requests get 400 and the connection is closed") {
  RunningAdmin admin;
  REQUIRE_MESSAGE(admin.started(), admin.error());
  for (const std::string bad : {"GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n", "NOT-A-METHOD / HTTP/1.1\r\n\r\n",
                                "GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"}) {
    CAPTURE(bad);
    RawConnection c(admin.port());
    REQUIRE(c.send(bad + kGetHealth));
    const HttpResponse r = c.read_response();
    CHECK(r.status == 400);
    CHECK(r.header("Connection") == "close");
    CHECK(c.closed_by_peer());
  }
  CHECK(admin.seen().empty());
}

TEST_CASE("admin server: oversized heads get 431, oversized requests 413") {
  RunningAdmin admin;
  REQUIRE_MESSAGE(admin.started(), admin.error());
  const auto with_header = [](std::size_t size) {
    return "GET /healthz HTTP/1.1\r\nHost: admin\r\nX-Big: " + std::string(size, 'a') + "\r\n\r\n";
  };
  {
    RawConnection c(admin.port());
    REQUIRE(c.send(with_header(20 * 1024)));
    CHECK(c.read_response().status == 431);
    CHECK(c.closed_by_peer());
  }
  CHECK(http_request(admin.port(), with_header(15 * 1024)).status == 200);  // under the limit
  {
    // Refused from Content-Length alone, before the body is sent.
    RawConnection c(admin.port());
    REQUIRE(c.send("POST /healthz HTTP/1.1\r\nHost: admin\r\nContent-Length: 100000\r\n\r\n"));
    CHECK(c.read_response().status == 413);
    CHECK(c.closed_by_peer());
  }
  {
    RawConnection c(admin.port());
    std::string chunked = "POST /healthz HTTP/1.1\r\nHost: admin\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 10; ++i) chunked += "2000\r\n" + std::string(0x2000, 'b') + "\r\n";
    chunked += "0\r\n\r\n";
    c.send(chunked);  // may fail part-way once the server has refused and closed
    CHECK(c.read_response().status == 413);
  }
  CHECK(admin.seen().size() == 1);
}

TEST_CASE("admin server: connections beyond the limit are closed at once") {
  RunningAdmin admin;
  REQUIRE_MESSAGE(admin.started(), admin.error());
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 64; ++i) {
    held.push_back(std::make_unique<RawConnection>(admin.port()));
    REQUIRE(held.back()->send(kGetHealth));
    REQUIRE(held.back()->read_response().status == 200);  // accepted and being served
  }
  RawConnection extra(admin.port());
  REQUIRE(extra.connected());
  CHECK(extra.closed_by_peer());

  // A slot freed by a client leaving is available again once the server has seen it go.
  held.pop_back();
  int status = 0;
  for (int attempt = 0; attempt < 50 && status != 200; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    status = http_request(admin.port(), kGetHealth, 2).status;
  }
  CHECK(status == 200);
  held.clear();
  CHECK(admin.stop() == 0);
}

TEST_CASE("admin server: start reports addresses it cannot listen on") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    proxy::AdminServer server(&loop, [](std::string_view, std::string_view, std::string_view) {
      return proxy::AdminResponse{};
    });
    config::ListenAddress address;
    address.host = "not-an-ip";
    address.text = "not-an-ip:9901";
    std::string error;
    CHECK_FALSE(server.start(address, error));
    CHECK(error.find("not-an-ip:9901") != std::string::npos);
    server.close();
  }
  {
    // The port is taken by a listener of our own.
    RunningAdmin other;
    REQUIRE(other.started());
    proxy::AdminServer server(&loop, [](std::string_view, std::string_view, std::string_view) {
      return proxy::AdminResponse{};
    });
    config::ListenAddress address;
    address.host = "127.0.0.1";
    address.port = static_cast<std::uint16_t>(other.port());
    std::string error;
    CHECK_FALSE(server.start(address, error));
    CHECK(error.find("cannot listen on") != std::string::npos);
    server.close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
