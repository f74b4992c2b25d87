// The proxy end to end: the jwtgate binary, a real upstream (Python's http.server), real keys,
// real sockets on 127.0.0.1.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "core/base64url.h"
#include "tests/support/proxy_env.h"

using namespace jwtgate;
using namespace jwtgate::testing;

TEST_CASE("a valid token is forwarded with its claims as headers") {
  Env env;
  HttpResponse r = env.get_with_token("/orders?id=7", env.token(R"("realm_access":{"roles":["a","b"]})"));
  REQUIRE_MESSAGE(r.status == 200, env.proxy->stderr_text());
  CHECK(echoed_path(r) == "/orders?id=7");
  CHECK(echoed_header(r, "X-Jwt-Sub") == "alice");
  CHECK(echoed_header(r, "X-Jwt-Roles") == "a,b");
  CHECK(echoed_header(r, "X-Jwt-Payload") != "<absent>");
  CHECK(echoed_header(r, "X-Forwarded-For") == "127.0.0.1");
  CHECK(echoed_header(r, "X-Forwarded-Proto") == "http");
  CHECK(echoed_header(r, "X-Forwarded-Host") == "test");
  CHECK(echoed_header(r, "Authorization").rfind("Bearer ", 0) == 0);
}

TEST_CASE("every rejection has its status, WWW-Authenticate and JSON body") {
  Env env;
  HttpResponse none = env.get("/x");
  CHECK(none.status == 401);
  CHECK(none.header("WWW-Authenticate") == "Bearer realm=\"jwtgate\"");

  HttpResponse expired = env.get_with_token("/x", env.token("", -3600));
  CHECK(expired.status == 401);
  CHECK(expired.header("WWW-Authenticate").find("error=\"invalid_token\"") != std::string::npos);
  CHECK(expired.header("WWW-Authenticate").find("error_description=\"the token has expired\"") != std::string::npos);
  CHECK(expired.body == R"({"error":"invalid_token","error_description":"the token has expired"})");
  CHECK(expired.header("Content-Type") == "application/json");

  TestKey other = make_key(core::Alg::ES256, "k1");
  CHECK(env.get_with_token("/x", signed_token(header_for(other), payload_now(), other)).status == 401);
  CHECK(env.get_with_token("/x", "not.a.token").status == 401);

  HttpResponse scope = env.get_with_token("/admin", env.token(R"("scope":"read")"));
  CHECK(scope.status == 403);
  CHECK(scope.header("WWW-Authenticate").find("error=\"insufficient_scope\"") != std::string::npos);
  CHECK(env.get_with_token("/admin", env.token(R"("scope":"read admin")")).status == 200);

  HttpResponse two = env.get_with_token("/x", env.token(), "Authorization: Bearer " + env.token("\"x\":1") + "\r\n");
  CHECK(two.status == 400);
  CHECK(two.body.find("invalid_request") != std::string::npos);

  HttpResponse evil = env.get_with_token("/x", "a\".b.c");
  CHECK(evil.status == 401);
  CHECK(evil.header("WWW-Authenticate").find("a\"") == std::string::npos);
}

TEST_CASE("client-sent claim headers are removed on protected, optional and public routes") {
  Env env;
  const std::string spoof = "X-Jwt-Sub: mallory\r\nx-jwt-roles: admin\r\nX-Jwt-Payload: e30\r\n";
  HttpResponse prot = env.get_with_token("/x", env.token(), spoof);
  CHECK(echoed_header(prot, "X-Jwt-Sub") == "alice");
  CHECK(prot.body.find("mallory") == std::string::npos);
  CHECK(prot.body.find("\"admin\"") == std::string::npos);
  HttpResponse optional = env.get("/maybe/x", spoof);
  REQUIRE(optional.status == 200);
  CHECK(optional.body.find("mallory") == std::string::npos);
  CHECK(echoed_header(optional, "X-Jwt-Sub") == "<absent>");
  HttpResponse pub = env.get("/public/x", spoof);
  REQUIRE(pub.status == 200);
  CHECK(pub.body.find("mallory") == std::string::npos);
  CHECK(echoed_header(pub, "X-Jwt-Payload") == "<absent>");
}

TEST_CASE("optional routes pass without a token but refuse a bad one; public routes ignore tokens") {
  Env env;
  CHECK(env.get("/maybe/x").status == 200);
  CHECK(env.get_with_token("/maybe/x", "bad.token.here").status == 401);
  HttpResponse ok = env.get_with_token("/maybe/x", env.token());
  CHECK(echoed_header(ok, "X-Jwt-Sub") == "alice");
  HttpResponse pub = env.get_with_token("/public/x", "garbage");
  CHECK(pub.status == 200);
  CHECK(echoed_header(pub, "X-Jwt-Sub") == "<absent>");
}

TEST_CASE("paths are normalized before matching, and the upstream sees the authorized path") {
  Env env;
  for (const char* path : {"/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E/admin", "//admin", "/admin;x",
                           "/public/./../admin"}) {
    CAPTURE(std::string(path));
    CHECK(env.get(path).status == 401);
  }
  HttpResponse r = env.get_with_token("/public/../admin/x", env.token(R"("scope":"admin")"));
  REQUIRE(r.status == 200);
  CHECK(echoed_path(r) == "/admin/x");
  CHECK(env.get("/x?/public").status == 401);
  CHECK(env.get("/a%2fb").status == 400);
  // Client-sent forwarding headers do not change the decision.
  CHECK(env.get("/admin", "X-Original-URI: /public\r\nX-Forwarded-Prefix: /public\r\n").status == 401);
}

TEST_CASE("keep-alive and pipelining") {
  Env env;
  const std::string token = env.token();
  RawConnection c(env.port);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(c.send("GET /k" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token + "\r\n\r\n"));
    HttpResponse r = c.read_response();
    REQUIRE(r.status == 200);
    CHECK(echoed_path(r) == "/k" + std::to_string(i));
  }
  RawConnection p(env.port);
  std::string burst;
  for (int i = 0; i < 5; ++i) burst += "GET /public/p" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n";
  burst += "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n";  // 401, still in order
  REQUIRE(p.send(burst));
  for (int i = 0; i < 5; ++i) {
    HttpResponse r = p.read_response();
    REQUIRE(r.status == 200);
    CHECK(echoed_path(r) == "/public/p" + std::to_string(i));
  }
  CHECK(p.read_response().status == 401);
  // HTTP/1.0 closes after the response.
  RawConnection old(env.port);
  REQUIRE(old.send("GET /public/x HTTP/1.0\r\n\r\n"));
  CHECK(old.read_response().status == 200);
  CHECK(old.closed_by_peer());
}

TEST_CASE("chunked bodies both ways, Expect: 100-continue after authorization") {
  Env env;
  const std::string token = env.token();
  RawConnection c(env.port);
  REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
                 "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  HttpResponse up = c.read_response();
  REQUIRE(up.status == 200);
  CHECK(up.body.find("\"body_length\": 11") != std::string::npos);
  REQUIRE(c.send("GET /download?size=300000&chunked=1 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token + "\r\n\r\n"));
  HttpResponse down = c.read_response();
  REQUIRE(down.status == 200);
  CHECK(down.header("Transfer-Encoding") == "chunked");
  CHECK(down.body.size() == 300000);

  RawConnection e(env.port);
  REQUIRE(e.send("POST /upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
                 "\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  const std::string interim = [&] {
    char buf[64] = {};
    const ssize_t n = ::recv(e.fd(), buf, 25, 0);
    return std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  }();
  CHECK(interim == "HTTP/1.1 100 Continue\r\n\r\n");
  REQUIRE(e.send("data"));
  HttpResponse after = e.read_response();
  CHECK(after.status == 200);
  CHECK(after.body.find("\"body_length\": 4") != std::string::npos);
  CHECK(after.body.find("Expect") == std::string::npos);

  RawConnection denied(env.port);
  REQUIRE(denied.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  HttpResponse no = denied.read_response();
  CHECK(no.status == 401);  // no 100 Continue first: the body is never invited
  CHECK(no.header("Connection") == "close");
}

TEST_CASE("100 MiB upload and download stream through with bounded proxy memory") {
  Env env;
  const std::string token = env.token();
  constexpr std::size_t kSize = 100u * 1024 * 1024;
  RawConnection down(env.port, 60);
  REQUIRE(down.send("GET /download?size=" + std::to_string(kSize) + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token + "\r\n\r\n"));
  HttpResponse r = down.read_response();
  REQUIRE(r.status == 200);
  CHECK(r.body.size() == kSize);
  r.body.clear();
  r.body.shrink_to_fit();

  RawConnection up(env.port, 60);
  REQUIRE(up.send("POST /upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
                  "\r\nContent-Length: " + std::to_string(kSize) + "\r\n\r\n"));
  const std::string block(1 << 20, 'u');
  for (std::size_t sent = 0; sent < kSize; sent += block.size()) REQUIRE(up.send(block));
  HttpResponse ok = up.read_response();
  REQUIRE(ok.status == 200);
  CHECK(ok.body.find("\"body_length\": " + std::to_string(kSize)) != std::string::npos);
  check_peak_rss(env, "after 2 x 100 MiB", 48 * 1024, 160 * 1024);  // far below the 200 MiB moved
}

TEST_CASE("a client that does not read does not grow the proxy's memory") {
  Env env;
  RawConnection c(env.port, 60);
  constexpr std::size_t kSize = 64u * 1024 * 1024;
  REQUIRE(c.send("GET /public/download?size=" + std::to_string(kSize) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the upstream could send it all by now
  check_peak_rss(env, "with a stalled 64 MiB download", 32 * 1024, 160 * 1024);
  HttpResponse r = c.read_response();
  CHECK(r.status == 200);
  CHECK(r.body.size() == kSize);
}

TEST_CASE("clients that hang up before their response is written do not take the proxy down") {
  // Writing to a socket the peer has reset raises SIGPIPE, whose default action ends the process;
  // load generators do exactly this when they stop.
  Env env;
  for (int i = 0; i < 20; ++i) {
    RawConnection c(env.port, 5);
    if (!c.send("GET /public/download?size=4194304 HTTP/1.1\r\nHost: t\r\n\r\n")) break;  // the proxy is gone
    linger hard_close{1, 0};  // close with RST, as a killed client's kernel does
    setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &hard_close, sizeof hard_close);
    std::this_thread::sleep_for(std::chrono::milliseconds(i % 2 ? 20 : 0));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_MESSAGE(env.proxy->wait_exit(0) == -1, env.proxy->stderr_text());
  CHECK(env.get("/public/x").status == 200);
}

TEST_CASE("WebSocket upgrade is tunnelled after authorization") {
  Env env;
  const std::string upgrade = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  RawConnection denied(env.port);
  REQUIRE(denied.send(upgrade + "\r\n"));
  CHECK(denied.read_response().status == 401);

  RawConnection c(env.port);
  REQUIRE(c.send(upgrade + "Authorization: Bearer " + env.token() + "\r\n\r\n"));
  HttpResponse r = c.read_response();
  REQUIRE(r.status == 101);
  CHECK(r.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  // A masked text frame "hello"; the echo comes back unmasked.
  const unsigned char mask[4] = {1, 2, 3, 4};
  std::string frame = "\x81\x85";
  frame.append(reinterpret_cast<const char*>(mask), 4);
  for (int i = 0; i < 5; ++i) frame += static_cast<char>("hello"[i] ^ mask[i % 4]);
  REQUIRE(c.send(frame));
  char buf[16] = {};
  std::size_t got = 0;
  while (got < 7) {
    const ssize_t n = ::recv(c.fd(), buf + got, sizeof buf - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  CHECK(std::string(buf, got) == std::string("\x81\x05hello", 7));
}

TEST_CASE("slow and oversized request heads are cut off") {
  Env env;
  RawConnection slow(env.port);
  REQUIRE(slow.send("GET /public/x HTTP/1.1\r\nHost: t\r\n"));  // never finishes the head
  HttpResponse r = slow.read_response();
  CHECK(r.status == 408);
  RawConnection silent(env.port);
  CHECK(silent.closed_by_peer());  // nothing sent at all: closed after header_timeout

  HttpResponse big = env.get("/public/x", "X-Big: " + std::string(20000, 'a') + "\r\n");
  CHECK(big.status == 431);
  std::string many;
  for (int i = 0; i < 300; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  CHECK(env.get("/public/x", many).status == 431);
}

TEST_CASE("request smuggling attempts get 400 and a closed connection") {
  Env env;
  const std::string attempts[] = {
      "POST /public/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST /public/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      "POST /public/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello",
      "POST /public/x HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
      "GET /public/x HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
      "GET /public/x HTTP/1.1\nHost: t\n\n",
      "GET /public/x HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
      "GET /public/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST /public/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
  };
  for (const auto& a : attempts) {
    CAPTURE(a);
    RawConnection c(env.port);
    REQUIRE(c.send(a));
    HttpResponse r = c.read_response();
    CHECK(r.status == 400);
    CHECK(c.closed_by_peer());
  }
}

TEST_CASE("upstream down, slow, and closing mid-response") {
  {
    Env down("", "", "", false);
    HttpResponse r = down.get("/public/x");
    CHECK(r.status == 502);
    CHECK(r.body.find("bad_gateway") != std::string::npos);
  }
  Env env("", "", "", true, ", upstream_timeout: 1s");
  HttpResponse slow = env.get("/public/slow?ms=3000");
  CHECK(slow.status == 504);
  RawConnection c(env.port);
  REQUIRE(c.send("GET /public/close-mid HTTP/1.1\r\nHost: t\r\n\r\n"));
  const std::string all = c.read_all();
  CHECK(all.find("HTTP/1.1 200") == 0);
  CHECK(all.find("Content-Length: 100000") != std::string::npos);
  CHECK(all.size() < 100000);  // truncated, and the connection is closed so the client knows
  // The proxy is still healthy afterwards.
  CHECK(env.get("/public/x").status == 200);
}

TEST_CASE("keys not loaded: protected routes answer 503 with Retry-After") {
  Env env("", "", "  - name: later\n    issuer: https://later.test/\n    algorithms: [RS256]\n    jwks: {file: /nonexistent/jwks.json}\n",
          true);
  const std::string now = std::to_string(std::time(nullptr));
  const std::string t = signed_token(header_for(env.key), R"({"iss":"https://later.test/","aud":"api","exp":)" + now + "0}", env.key);
  HttpResponse r = env.get_with_token("/x", t);
  CHECK(r.status == 503);
  CHECK(r.header("Retry-After") == "5");
  CHECK(env.get_with_token("/x", env.token()).status == 200);
}

TEST_CASE("forward_token: false strips the token before the upstream sees it") {
  Env env("", "", "    forward_token: false\n");
  HttpResponse r = env.get_with_token("/x", env.token());
  REQUIRE(r.status == 200);
  CHECK(echoed_header(r, "Authorization") == "<absent>");
  CHECK(echoed_header(r, "X-Jwt-Sub") == "alice");
}

TEST_CASE("no route: 404") {
  Env env("routes:\n  - prefix: /api\n");
  CHECK(env.get("/other").status == 404);
  CHECK(env.get("/api/x").status == 401);
}

TEST_CASE("concurrent clients across workers all get through") {
  Env env;
  const std::string token = env.token();
  std::atomic<int> ok{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      RawConnection c(env.port);
      for (int i = 0; i < 40; ++i) {
        const std::string path = "/c" + std::to_string(t) + "-" + std::to_string(i);
        if (!c.send("GET " + path + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token + "\r\n\r\n")) return;
        HttpResponse r = c.read_response();
        if (r.status == 200 && echoed_path(r) == path) {
          ++ok;
        } else {
          std::lock_guard<std::mutex> lock(failures_mutex);
          failures.push_back(path + ": status " + std::to_string(r.status));
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  for (const auto& f : failures) MESSAGE(f);
  CHECK(ok == 8 * 40);
}

TEST_CASE("max_connections: connections beyond the limit are refused, existing ones keep working") {
  Env env("", "", "", true, ", max_connections: 2");
  // workers: 2 and max_connections: 2 gives each worker one connection.
  RawConnection a(env.port), b(env.port), c(env.port), d(env.port);
  int refused = 0, served = 0;
  for (RawConnection* conn : {&a, &b, &c, &d}) {
    conn->send("GET /public/x HTTP/1.1\r\nHost: t\r\n\r\n");
    HttpResponse r = conn->read_response();
    if (r.status == 503) ++refused;
    if (r.status == 200) ++served;
  }
  CHECK(refused >= 1);
  CHECK(served >= 1);
  CHECK(refused + served == 4);
}

TEST_CASE("SIGTERM drains: in-flight requests finish, then the process exits 0") {
  Env env("", "", "", true, "");
  RawConnection busy(env.port, 10);
  REQUIRE(busy.send("GET /public/slow?ms=700 HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  RawConnection idle(env.port);
  REQUIRE(idle.send("GET /public/x HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(idle.read_response().status == 200);
  env.proxy->signal(SIGTERM);
  HttpResponse r = busy.read_response();
  CHECK(r.status == 200);
  CHECK(r.header("Connection") == "close");
  CHECK(idle.closed_by_peer());
  CHECK(env.proxy->wait_exit(10) == 0);
  CHECK_FALSE(RawConnection(env.port).connected());
}
