// The upstream's answers as a compromised or broken service gives them (issue 13, points 1-5).
// tests/support/evil_upstream.py answers /s/<scenario> with raw bytes; the oracle is the raw
// byte stream the client receives: one response per request, framed by jwtgate, with nothing
// of a malformed upstream answer relayed.
#include <doctest/doctest.h>

#include <cctype>
#include <chrono>
#include <string>
#include <thread>

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

// ---------------------------------------------------------------------------------------------
// The attack review of the first response-path fix: "HELD" cases held against it; the cases
// after them got through it (they fail on d38ec72) and are fixed since.

namespace {

std::string header_of(const std::string& raw, const std::string& name) {
  const std::string head = raw.substr(0, raw.find("\r\n\r\n") + 2);
  std::string lower_head = head;
  for (char& ch : lower_head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string needle = "\r\n" + name + ":";
  for (char& ch : needle) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const auto at = lower_head.find(needle);
  if (at == std::string::npos) return "<absent>";
  auto start = at + needle.size();
  while (start < head.size() && head[start] == ' ') ++start;
  return head.substr(start, head.find("\r\n", start) - start);
}

int status_of(const std::string& raw) { return raw.size() > 12 ? std::atoi(raw.c_str() + 9) : 0; }

}  // namespace

TEST_CASE("HELD: a 1xx/103/final sequence split at every byte is one response") {
  EvilEnv e;
  const std::string out = e.raw("GET", "/s/bytewise");
  CHECK(status_line(out) == "HTTP/1.1 200 OK");
  CHECK(count(out, "HTTP/1.") == 1);
  CHECK(header_of(out, "x-a") == "1");
  CHECK_FALSE(contains(out, "Link:"));
  CHECK_FALSE(contains(out, "X-T"));  // the trailer is not relayed
  CHECK(contains(out, "0\r\n\r\n"));
  // With Expect: 100-continue jwtgate sends its own 100 first, then exactly one final response.
  RawConnection c(e.env.port);
  REQUIRE(c.send("POST /s/bytewise HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nabcd"));
  const std::string with_expect = c.read_all();
  CHECK(status_line(with_expect) == "HTTP/1.1 100 Continue");
  CHECK(count(with_expect, "HTTP/1.1 200 OK") == 1);
  CHECK(count(with_expect, "HTTP/1.") == 2);
  CHECK_FALSE(contains(with_expect, "Early Hints"));
}

TEST_CASE("HELD: interim limits, malformed framing and oversized pieces are a 502") {
  EvilEnv e;
  CHECK(status_line(e.raw("GET", "/s/interim-16")) == "HTTP/1.1 200 OK");
  for (const char* scenario : {"/s/interim-17", "/s/interim-cl0", "/s/long-reason", "/s/te-cl", "/s/cl-dup-equal",
                               "/s/cl-dup-differ", "/s/cl-plus", "/s/obs-fold", "/s/value-nul", "/s/name-space",
                               "/s/interim-close"}) {
    CAPTURE(scenario);
    const std::string out = e.raw("GET", scenario);
    CHECK(status_line(out) == "HTTP/1.1 502 Bad Gateway");
    CHECK(count(out, "HTTP/1.") == 1);
  }
  const std::string zeros = e.raw("GET", "/s/cl-zeros");
  CHECK(header_of(zeros, "content-length") == "5");
  const std::string fields = e.raw("GET", "/s/fields-200");
  CHECK(status_line(fields) == "HTTP/1.1 200 OK");
  CHECK(count(fields, "X-F") == 199);
  // 150 fields of 300 bytes (45 KB), each split across two TCP writes: under the cap, relayed whole.
  const std::string split = e.raw("GET", "/s/split-fields");
  CHECK(status_line(split) == "HTTP/1.1 200 OK");
  CHECK(count(split, "X-F") == 150);
  // Whitespace after the colon is not counted against the cap (and not stored): 1 MiB of it passes.
  CHECK(status_line(e.raw("GET", "/s/ows-flood")) == "HTTP/1.1 200 OK");
}

TEST_CASE("HELD: chunked bodies: overflowing sizes cut the response, extensions and trailers are dropped") {
  EvilEnv e;
  // The head is still in jwtgate's batch when llhttp fails, so the client gets nothing at all
  // (a bare close, not a 502): never a complete-looking body.
  const std::string overflow = e.raw("GET", "/s/chunk-overflow");
  CHECK_FALSE(contains(overflow, "0\r\n\r\n"));
  CHECK_FALSE(contains(overflow, "abc"));
  const std::string ext = e.raw("GET", "/s/chunk-ext");
  CHECK_FALSE(contains(ext, "eee"));
  CHECK(contains(ext, "4\r\nreal\r\n0\r\n\r\n"));
  const std::string trailers = e.raw("GET", "/s/trailers");
  CHECK(contains(trailers, "4\r\nreal\r\n0\r\n\r\n"));
  CHECK_FALSE(contains(trailers, "forged"));
  CHECK_FALSE(contains(trailers, "X-T"));
  // A Content-Length in the trailers: llhttp refuses it, the client never sees a complete message.
  const std::string trailer_cl = e.raw("GET", "/s/trailer-cl");
  CHECK_FALSE(contains(trailer_cl, "0\r\n\r\n"));
  CHECK_FALSE(contains(trailer_cl, "99"));
}

TEST_CASE("HELD: bodies on 204/304/HEAD never reach the next request; pooled reuse still works") {
  EvilEnv e;
  e.log();
  RawConnection c(e.env.port);
  REQUIRE(c.send("GET /s/no-content-te-late HTTP/1.1\r\nHost: test\r\n\r\n"));
  CHECK(c.read_response(true).status == 204);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the late body reaches the idle connection
  REQUIRE(c.send("GET /s/not-modified-body HTTP/1.1\r\nHost: test\r\n\r\n"));
  const HttpResponse nm = c.read_response(true);
  CHECK(nm.status == 304);
  CHECK(nm.header("etag") == "\"e\"");
  REQUIRE(c.send("GET /s/ok HTTP/1.1\r\nHost: test\r\n\r\n"));
  const HttpResponse ok = c.read_response();
  CHECK(ok.body == "real");
  CHECK(ok.header("set-cookie").empty());
  // Ordinary responses keep the upstream connection: CL, chunked, HTTP/1.0 keep-alive, 204.
  e.log();
  for (const char* path : {"/s/ok", "/s/chunked", "/s/http10-keepalive", "/s/ok"}) {
    REQUIRE(c.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: test\r\n\r\n"));
    CHECK(c.read_response().body == "real");
  }
  const std::string log = e.log();
  CAPTURE(log);
  CHECK(count(log, "[") == 4);
  const std::string first_conn = log.substr(1, log.find(',') - 1);
  CHECK(count(log, "[" + first_conn + ",") == 4);
}

TEST_CASE("HELD: close-delimited responses, HTTP/1.0 clients, unsolicited bytes on an idle connection") {
  EvilEnv e;
  const std::string eof = e.raw("GET", "/s/http10-eof");
  CHECK(header_of(eof, "transfer-encoding") == "chunked");
  CHECK(contains(eof, "4\r\nreal\r\n0\r\n\r\n"));
  RawConnection old(e.env.port);
  REQUIRE(old.send("GET /s/chunked HTTP/1.0\r\nHost: test\r\n\r\n"));
  const std::string one = old.read_all();
  CHECK(header_of(one, "connection") == "close");
  CHECK(header_of(one, "transfer-encoding") == "<absent>");
  CHECK(one.substr(one.size() - 4) == "real");
  // The upstream sends a forged response 300 ms after a real one, on the idle pooled connection.
  e.log();
  RawConnection c(e.env.port);
  REQUIRE(c.send("GET /s/early-next HTTP/1.1\r\nHost: test\r\n\r\n"));
  CHECK(c.read_response().body == "real");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  REQUIRE(c.send("GET /s/ok HTTP/1.1\r\nHost: test\r\n\r\n"));
  const HttpResponse next = c.read_response();
  CHECK(next.body == "real");
  CHECK(next.header("set-cookie").empty());
}

TEST_CASE("HELD: a 101 with a Content-Length is a tunnel; its bytes are tunnel bytes") {
  EvilEnv e;
  RawConnection u(e.env.port);
  REQUIRE(u.send("GET /s/switch-cl HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
  const std::string sw = u.read_all();
  CHECK(status_line(sw) == "HTTP/1.1 101 Switching Protocols");
  CHECK(header_of(sw, "content-length") == "<absent>");
  CHECK(contains(sw, "raw-tunnel-bytes"));
}

TEST_CASE("a body sent late after a HEAD response cannot become the next request's response") {
  // Upstream bytes: "HTTP/1.1 200 OK\r\nContent-Length: 72\r\n\r\n" to HEAD, then 300 ms later the
  // 72-byte "body" FAKE (a whole 200 with Set-Cookie: session=forged). jwtgate pools the
  // connection as soon as the HEAD head ends; the next request is sent on it and reads FAKE as
  // its answer. From then on that connection is one response behind: each later request, from
  // any client, gets the previous request's answer.
  EvilEnv e;
  RawConnection c(e.env.port);
  REQUIRE(c.send("HEAD /s/head-late-body HTTP/1.1\r\nHost: test\r\n\r\n"));
  CHECK(c.read_response(true).status == 200);
  REQUIRE(c.send("GET /s/echo?who=next HTTP/1.1\r\nHost: test\r\n\r\n"));
  const HttpResponse next = c.read_response();
  CHECK(next.header("set-cookie").empty());
  CHECK(next.body == "/s/echo?who=next");
  // Other clients, one connection each, in turn: each must get the answer to its own request.
  for (int i = 0; i < 6; ++i) {
    CAPTURE(i);
    const std::string path = "/s/echo?client=" + std::to_string(i);
    const std::string out = e.raw("GET", path);
    CHECK(out.substr(out.size() - path.size()) == path);
  }
}

TEST_CASE("a response transfer coding other than chunked is a 502, not stripped") {
  // Upstream: "Transfer-Encoding: gzip, chunked" with a gzip body. The client gets
  // "Transfer-Encoding: chunked" and the gzip bytes as the content, with nothing saying so.
  EvilEnv e;
  for (const char* scenario : {"/s/te-gzip-chunked", "/s/te-gzip-eof"}) {
    CAPTURE(scenario);
    const std::string out = e.raw("GET", scenario);
    CHECK(status_of(out) == 502);
  }
}

TEST_CASE("a response version other than HTTP/1.0 or 1.1 is a 502") {
  EvilEnv e;
  for (const char* scenario : {"/s/version-2", "/s/version-09"}) {
    CAPTURE(scenario);
    CHECK(status_line(e.raw("GET", scenario)) == "HTTP/1.1 502 Bad Gateway");
  }
}

TEST_CASE("CONNECT is refused (501) before anything reaches the upstream") {
  // "CONNECT /s/connect-ok HTTP/1.1" passes (origin-form target); the upstream receives
  // "Connection: Upgrade\r\nUpgrade: \r\n". Its "200 Connection Established" (no length) reaches
  // the client as "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked" + a chunk: a client treats every
  // byte after a 2xx to CONNECT as tunnel data (RFC 9110 9.3.6), so jwtgate's framing is read as
  // payload. A 101 to CONNECT switches to a tunnel.
  EvilEnv e;
  for (const char* scenario : {"/s/connect-ok", "/s/switch"}) {
    CAPTURE(scenario);
    RawConnection c(e.env.port);
    REQUIRE(c.send(std::string("CONNECT ") + scenario + " HTTP/1.1\r\nHost: test\r\n\r\n"));
    const std::string out = c.read_all();
    CAPTURE(out);
    CHECK(status_of(out) == 501);
  }
  CHECK_FALSE(contains(e.log(), "connect-ok"));
}

TEST_CASE("a 101 to a protocol the client did not offer is a 502") {
  EvilEnv e;
  RawConnection u(e.env.port);
  REQUIRE(u.send("GET /s/switch-h2c HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
  const std::string out = u.read_all();
  CHECK(status_line(out) == "HTTP/1.1 502 Bad Gateway");
}

TEST_CASE("a request whose upstream sent an interim response is never retried") {
  EvilEnv e;
  RawConnection c(e.env.port);
  REQUIRE(c.send("GET /s/ok HTTP/1.1\r\nHost: test\r\n\r\n"));
  REQUIRE(c.read_response().body == "real");
  e.log();
  // Sent on the pooled connection; the upstream answers 103 and closes. A retry would run the
  // request a second time on a service that had already begun answering it.
  REQUIRE(c.send("GET /s/interim-close HTTP/1.1\r\nHost: test\r\n\r\n"));
  CHECK(c.read_response().status == 502);
  CHECK(count(e.log(), "/s/interim-close") == 1);
}
