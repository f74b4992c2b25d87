// The upstream's answers as a compromised or broken service gives them (issue 13, points 1-5).
// tests/support/evil_upstream.py answers /s/<scenario> with raw bytes; the oracle is the raw
// byte stream the client receives: one response per request, framed by jwtgate, with nothing
// of a malformed upstream answer relayed.
#include <doctest/doctest.h>

#include <string>

#include "tests/support/proxy_env.h"

using namespace jwtgate;
using namespace jwtgate::testing;

namespace {

struct EvilEnv {
  Env env;
  std::unique_ptr<Child> upstream;

  explicit EvilEnv(const std::string& limits = "")
      : env("routes:\n  - prefix: /\n    auth: none\n", "", "", false, limits) {
    upstream = std::make_unique<Child>(
        std::vector<std::string>{"/usr/bin/python3", JWTGATE_EVIL_UPSTREAM_SCRIPT, std::to_string(env.upstream_port)},
        env.dir.path(), "evil-upstream");
    REQUIRE(std::atoi(upstream->first_stdout_line().c_str()) == env.upstream_port);
  }

  // Everything the client receives for one request sent with Connection: close.
  std::string raw(const std::string& method, const std::string& path, const std::string& headers = "") const {
    RawConnection c(env.port);
    REQUIRE(c.connected());
    REQUIRE(c.send(method + " " + path + " HTTP/1.1\r\nHost: test\r\n" + headers + "Connection: close\r\n\r\n"));
    return c.read_all();
  }

  // The upstream's record of (connection number, path) per request, cleared.
  std::string log() const {
    return http_request(env.upstream_port, "GET /__log HTTP/1.1\r\nHost: u\r\n\r\n").body;
  }
};

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string status_line(const std::string& raw) { return raw.substr(0, raw.find("\r\n")); }

}  // namespace

TEST_CASE("an interim response's body is never relayed: one request, one response") {
  EvilEnv e;
  for (const char* scenario : {"/s/interim-body", "/s/interim-chunked"}) {
    CAPTURE(scenario);
    const std::string out = e.raw("GET", scenario);
    CHECK(status_line(out) == "HTTP/1.1 502 Bad Gateway");
    CHECK(count(out, "HTTP/1.") == 1);
    CHECK_FALSE(contains(out, "forged"));
  }
  // Interim heads without a body are dropped and the final response follows.
  const std::string ok = e.raw("GET", "/s/interim-ok");
  CHECK(status_line(ok) == "HTTP/1.1 200 OK");
  CHECK(count(ok, "HTTP/1.") == 1);
  CHECK(ok.substr(ok.size() - 4) == "real");
  // An endless stream of them is an upstream that never answers.
  CHECK(status_line(e.raw("GET", "/s/interim-flood")) == "HTTP/1.1 502 Bad Gateway");
}

TEST_CASE("an interim body cannot become the answer to a keep-alive client's next request") {
  EvilEnv e;
  RawConnection c(e.env.port);
  REQUIRE(c.send("GET /s/interim-body HTTP/1.1\r\nHost: test\r\n\r\nGET /s/ok HTTP/1.1\r\nHost: test\r\n\r\n"));
  const HttpResponse first = c.read_response();
  CHECK(first.status == 502);
  CHECK(first.header("set-cookie").empty());
  // The 502 closes the connection; whatever comes after must not be the forged response.
  const std::string rest = c.read_all();
  CHECK_FALSE(contains(rest, "forged"));
}

TEST_CASE("response heads are bounded: limits.max_response_header_bytes and 200 fields") {
  EvilEnv e;
  const std::string huge = e.raw("GET", "/s/huge-head");
  CHECK(status_line(huge) == "HTTP/1.1 502 Bad Gateway");
  CHECK_FALSE(contains(huge, "X-Filler"));
  check_peak_rss(e.env, "after a 100 MiB response head", 64 * 1024, 400 * 1024);
  const std::string many = e.raw("GET", "/s/many-fields");
  CHECK(status_line(many) == "HTTP/1.1 502 Bad Gateway");
  CHECK_FALSE(contains(many, "X-F1:"));
  // A 50 KB head is under the 64 KiB default.
  const std::string under = e.raw("GET", "/s/head-under-cap");
  CHECK(status_line(under) == "HTTP/1.1 200 OK");
  CHECK(under.substr(under.size() - 2) == "ok");
  CHECK(eventually([&] { return contains(e.env.proxy->stdout_text() + e.env.proxy->stderr_text(), "larger than limits.max_response_header_bytes"); }, 3));
}

TEST_CASE("limits.max_response_header_bytes is configurable") {
  EvilEnv e(", max_response_header_bytes: 16KiB");
  CHECK(status_line(e.raw("GET", "/s/head-under-cap")) == "HTTP/1.1 502 Bad Gateway");
  CHECK(status_line(e.raw("GET", "/s/ok")) == "HTTP/1.1 200 OK");
}

TEST_CASE("the status line is jwtgate's: its own reason phrase, statuses outside 100-599 refused") {
  EvilEnv e;
  const std::string ctl = e.raw("GET", "/s/reason-ctl");
  CHECK(status_line(ctl) == "HTTP/1.1 200 OK");
  CHECK_FALSE(contains(ctl, "\x01"));
  CHECK_FALSE(contains(ctl, "\x7f"));
  const std::string crlf = e.raw("GET", "/s/reason-crlf");
  CHECK_FALSE(contains(crlf, "302"));
  CHECK(count(crlf, "HTTP/1.") == 1);
  for (const char* scenario : {"/s/status-000", "/s/status-099", "/s/status-600", "/s/status-999"}) {
    CAPTURE(scenario);
    CHECK(status_line(e.raw("GET", scenario)) == "HTTP/1.1 502 Bad Gateway");
  }
  CHECK(status_line(e.raw("GET", "/s/status-599")) == "HTTP/1.1 599 Server Error");
}

TEST_CASE("an upstream's Connection header cannot unframe the response") {
  EvilEnv e;
  RawConnection c(e.env.port);
  for (const char* scenario : {"/s/conn-cl", "/s/conn-te", "/s/cl-spelling"}) {
    CAPTURE(scenario);
    REQUIRE(c.send(std::string("GET ") + scenario + " HTTP/1.1\r\nHost: test\r\n\r\n"));
    const HttpResponse r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.body == "hello");
    CHECK(r.header("connection") == "keep-alive");
    CHECK((r.header("content-length") == "5" || r.header("transfer-encoding") == "chunked"));
    CHECK(r.header("content_length").empty());
  }
  // The same client connection still works: the responses were framed.
  REQUIRE(c.send("GET /s/ok HTTP/1.1\r\nHost: test\r\n\r\n"));
  CHECK(c.read_response().body == "real");
}

TEST_CASE("HEAD and 204 responses keep their metadata and carry no framing they do not have") {
  EvilEnv e;
  RawConnection c(e.env.port);
  REQUIRE(c.send("HEAD /s/head-cl HTTP/1.1\r\nHost: test\r\n\r\n"));
  const HttpResponse head = c.read_response(true);
  CHECK(head.status == 200);
  CHECK(head.header("content-length") == "1234");
  REQUIRE(c.send("GET /s/no-content-cl HTTP/1.1\r\nHost: test\r\n\r\n"));
  const HttpResponse none = c.read_response(true);
  CHECK(none.status == 204);
  CHECK(none.header("content-length").empty());
  REQUIRE(c.send("GET /s/ok HTTP/1.1\r\nHost: test\r\n\r\n"));
  CHECK(c.read_response().body == "real");
}

TEST_CASE("bytes after a complete upstream response: that connection is not reused") {
  EvilEnv e;
  e.log();
  RawConnection c(e.env.port);
  REQUIRE(c.send("GET /s/leftover HTTP/1.1\r\nHost: test\r\n\r\n"));
  CHECK(c.read_response().body == "ok");
  REQUIRE(c.send("GET /s/ok HTTP/1.1\r\nHost: test\r\n\r\n"));
  const HttpResponse next = c.read_response();
  CHECK(next.status == 200);
  CHECK(next.body == "real");
  // Both requests reached the upstream, on two different connections.
  const std::string log = e.log();
  CAPTURE(log);
  const auto first = log.find(", \"/s/leftover\"]");
  const auto second = log.find(", \"/s/ok\"]");
  REQUIRE(first != std::string::npos);
  REQUIRE(second != std::string::npos);
  const std::string conn_first = log.substr(log.rfind('[', first) + 1, first - log.rfind('[', first) - 1);
  const std::string conn_second = log.substr(log.rfind('[', second) + 1, second - log.rfind('[', second) - 1);
  CHECK(conn_first != conn_second);
}

TEST_CASE("an upstream 101 to a request that did not ask to upgrade is a 502") {
  EvilEnv e;
  const std::string out = e.raw("GET", "/s/switch");
  CHECK(status_line(out) == "HTTP/1.1 502 Bad Gateway");
  CHECK_FALSE(contains(out, "raw-tunnel-bytes"));
  CHECK_FALSE(contains(out, "101"));
  // A 101 without an Upgrade header, even to an upgrade request.
  RawConnection c(e.env.port);
  REQUIRE(c.send("GET /s/switch-no-upgrade HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
  const std::string ws = c.read_all();
  CHECK(status_line(ws) == "HTTP/1.1 502 Bad Gateway");
  // A real upgrade still switches.
  RawConnection u(e.env.port);
  REQUIRE(u.send("GET /s/switch HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
  const std::string sw = u.read_all();
  CHECK(status_line(sw) == "HTTP/1.1 101 Switching Protocols");
  CHECK(contains(sw, "raw-tunnel-bytes"));
}
