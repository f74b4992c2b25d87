// The request path as an attacker tries it (issue 12): each case is a request that got past
// jwtgate before, and its oracle is what the upstream actually received (tests/support/
// upstream.py records every request head it parses).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "tests/support/proxy_env.h"

using namespace jwtgate;
using namespace jwtgate::testing;

namespace {

// /public is open, /admin needs a token with the admin scope, everything else is open too: a
// bypass of /admin lands on a public route, where the upstream would serve it.
const std::string kRoutes =
    "routes:\n  - prefix: /public\n    auth: none\n  - prefix: /admin\n    require_scopes: [admin]\n"
    "  - prefix: /\n    auth: none\n";

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// Any header the upstream saw whose name a CGI stack reads as `name` (case ignored, _ as -).
bool upstream_saw_header(const std::string& seen, std::string name) {
  std::string lowered;
  for (char& c : name) c = static_cast<char>(c == '_' ? '-' : std::tolower(static_cast<unsigned char>(c)));
  for (std::size_t at = seen.find("[\""); at != std::string::npos; at = seen.find("[\"", at + 2)) {
    const std::size_t end = seen.find('"', at + 2);
    std::string field = seen.substr(at + 2, end - at - 2);
    for (char& c : field) c = static_cast<char>(c == '_' ? '-' : std::tolower(static_cast<unsigned char>(c)));
    if (field == name) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("Connection cannot unframe a request: the body is never read upstream as a second request") {
  Env env(kRoutes);
  upstream_seen(env);
  const std::string smuggled = "GET /admin HTTP/1.1\r\nHost: svc\r\nX-Jwt-Sub: admin\r\n\r\n";
  for (const char* listed : {"keep-alive, Content-Length", "Content-Length", "content-length", "Transfer-Encoding",
                             "close, Host", "Content_Length"}) {
    CAPTURE(listed);
    RawConnection c(env.port);
    REQUIRE(c.send("POST /public HTTP/1.1\r\nHost: svc\r\nConnection: " + std::string(listed) +
                   "\r\nContent-Length: " + std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled));
    HttpResponse r = c.read_response();
    CHECK(r.status == 400);
    CHECK(contains(r.body, "Connection header must not list"));
    CHECK(c.closed_by_peer());
  }
  const std::string seen = upstream_seen(env);
  CHECK_MESSAGE(!contains(seen, "/admin"), seen);
  CHECK_MESSAGE(!upstream_saw_header(seen, "X-Jwt-Sub"), seen);
  CHECK(seen == "[]");

  // Other listed names are hop-by-hop as usual; the body still arrives as this request's body.
  RawConnection ok(env.port);
  REQUIRE(ok.send("POST /public HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
                  "Content-Length: 5\r\n\r\nhello"));
  HttpResponse r = ok.read_response();
  REQUIRE(r.status == 200);
  CHECK(contains(r.body, "\"body_length\": 5"));
  CHECK(echoed_header(r, "X-Drop") == "<absent>");
  CHECK(echoed_header(r, "Content-Length") == "5");

  // Spellings a '_'-folding stack would frame by never reach the upstream.
  RawConnection folded(env.port);
  REQUIRE(folded.send("POST /public HTTP/1.1\r\nHost: svc\r\nContent_Length: 40\r\nTransfer_Encoding: chunked\r\n"
                      "Content-Length: 5\r\n\r\nhello"));
  HttpResponse f = folded.read_response();
  REQUIRE(f.status == 200);
  CHECK(echoed_header(f, "Content_Length") == "<absent>");
  CHECK(echoed_header(f, "Transfer_Encoding") == "<absent>");
  CHECK(contains(f.body, "\"body_length\": 5"));
}

TEST_CASE("duplicate, missing or list-like Host, and transfer codings other than chunked, are refused") {
  Env env(kRoutes);
  upstream_seen(env);
  CHECK(http_request(env.port, "GET /public HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status == 400);
  CHECK(http_request(env.port, "GET /public HTTP/1.1\r\n\r\n").status == 400);
  CHECK(http_request(env.port, "GET /public HTTP/1.1\r\nHost: a, b\r\n\r\n").status == 400);
  CHECK(http_request(env.port, "GET /public HTTP/1.1\r\nHost: a b\r\n\r\n").status == 400);
  CHECK(http_request(env.port, "GET /public HTTP/1.1\r\nHost: evil.com%2Cgood\r\n\r\n").status == 400);
  CHECK(http_request(env.port, "GET /public HTTP/2.0\r\n\r\n").status == 400);
  CHECK(http_request(env.port, "GET /public HTTP/1.9\r\nHost: a\r\n\r\n").status == 400);
  // An Upgrade request with a body: the tunnel's first bytes would be that body.
  CHECK(http_request(env.port, "GET /public/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                               "Content-Length: 5\r\n\r\nhello").status == 400);
  // Without chunked last the body's length is unknown; gzip before it would reach the upstream undone.
  CHECK(http_request(env.port, "POST /public HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").status == 400);
  CHECK(http_request(env.port, "POST /public HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n").status == 400);
  CHECK(http_request(env.port, "POST /public HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").status == 501);
  CHECK(http_request(env.port, "POST /public HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").status == 400);
  CHECK(upstream_seen(env) == "[]");
  CHECK(http_request(env.port, "GET /public HTTP/1.0\r\n\r\n").status == 200);
  CHECK(http_request(env.port, "GET /public HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").status == 200);
  CHECK(http_request(env.port, "POST /public HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").status == 200);
}

TEST_CASE("a ;params-only segment and upper case cannot skip the /admin route") {
  Env env(kRoutes);
  const std::string admin = env.token(R"("scope":"admin")");
  // `exact`: the path meets /admin as written, so /admin's identity is forwarded. The others meet
  // it only without case: they must pass /admin's rule too, and are served as exact matching
  // reads them (route "/", auth: none), which forwards no identity.
  for (const auto& [path, exact] : {std::pair{"/;x/admin/users", true}, {"/;/admin", true}, {"/ADMIN/users", false},
                                    {"/Admin", false}, {"/;x/ADMIN;y/users", false}, {"/public/../ADMIN", false},
                                    {"/%41dmin/users", false}}) {
    CAPTURE(path);
    CHECK(env.get(path).status == 401);
    const HttpResponse r = env.get_with_token(path, admin, "X-Jwt-Sub: forged\r\n");
    CHECK(r.status == 200);
    CHECK(echoed_header(r, "X-Jwt-Sub") == (exact ? "alice" : "<absent>"));
  }
  const std::string seen = upstream_seen(env);
  std::size_t arrived = 0;
  for (std::size_t at = seen.find("\"method\""); at != std::string::npos; at = seen.find("\"method\"", at + 1)) ++arrived;
  CHECK(arrived == 7);
  CHECK_MESSAGE(!contains(seen, "forged"), seen);
}

TEST_CASE("matched without case, a path must also pass the route exact matching gives it") {
  // /PUBLIC/x is /public to Express, but to a case-sensitive upstream it is what "/" protects.
  Env env("routes:\n  - prefix: /public\n    auth: none\n  - prefix: /\n");
  CHECK(env.get("/public/x").status == 200);
  CHECK(env.get("/PUBLIC/x").status == 401);
  HttpResponse r = env.get_with_token("/PUBLIC/x", env.token());
  REQUIRE(r.status == 200);
  CHECK(echoed_header(r, "X-Jwt-Sub") == "alice");
}

TEST_CASE("matched without case, a path exact matching refuses (404 or 405) is refused") {
  {
    Env env("routes:\n  - prefix: /api\n    methods: [GET]\n    require_scopes: [read]\n  - prefix: /api/docs\n"
            "    auth: none\n");
    upstream_seen(env);
    HttpResponse r = http_request(env.port, "POST /api/DOCS/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    CHECK(r.status == 405);
    CHECK(r.header("Allow") == "GET");
    CHECK(env.get("/api/DOCS/x").status == 401);
    CHECK(env.get("/api/docs/x").status == 200);
  }
  {
    Env env("routes:\n  - prefix: /docs\n    auth: none\n  - prefix: /admin\n");
    CHECK(env.get("/DOCS/x").status == 404);
    CHECK(env.get("/docs/x").status == 200);
    CHECK(env.get_with_token("/ADMIN/x", env.token()).status == 404);
    CHECK(env.get_with_token("/admin/x", env.token()).status == 200);
  }
}

TEST_CASE("routes_case_sensitive: true restores exact prefix matching") {
  Env env(kRoutes, "routes_case_sensitive: true\n");
  CHECK(env.get("/admin/users").status == 401);
  CHECK(env.get("/ADMIN/users").status == 200);  // the catch-all, as configured
}

TEST_CASE("identity headers are removed in every spelling, on public, optional and protected routes") {
  Env env("routes:\n  - prefix: /public\n    auth: none\n  - prefix: /maybe\n    auth: optional\n  - prefix: /\n");
  const std::string spoof =
      "X_Jwt_Sub: root\r\nx-jwt-sub: root\r\nX-JWT_SUB: root\r\nx_jwt_roles: admin\r\nX_Jwt_Payload: e30\r\n"
      "X_Forwarded_For: 10.0.0.1\r\nX_Forwarded_Host: evil\r\nX-Forwarded_Proto: https\r\n"
      // lighttpd's CGI gateways turn every non-alphanumeric byte into '_'
      "X.Jwt.Sub: root\r\nX~Jwt~Sub: root\r\nX!Jwt#Sub: root\r\n"
      // what other frameworks read where jwtgate sets X-Forwarded-*
      "Forwarded: for=10.0.0.1;host=evil;proto=https\r\nX-Forwarded-Prefix: /evil\r\nX-Forwarded-Port: 1\r\n"
      "X-Forwarded-Scheme: https\r\nX-Forwarded-Ssl: on\r\nFront-End-Https: on\r\nX-Real-IP: 10.0.0.1\r\n"
      "True-Client-IP: 10.0.0.1\r\nX-Client-IP: 10.0.0.1\r\n";
  upstream_seen(env);
  REQUIRE(env.get("/public/x", spoof).status == 200);
  REQUIRE(env.get("/maybe/x", spoof).status == 200);
  HttpResponse mine = env.get_with_token("/x", env.token(), spoof);
  REQUIRE(mine.status == 200);
  CHECK(echoed_header(mine, "X-Jwt-Sub") == "alice");
  const std::string seen = upstream_seen(env);
  CHECK_MESSAGE(!contains(seen, "root"), seen);
  CHECK_MESSAGE(!contains(seen, "10.0.0.1"), seen);
  CHECK_MESSAGE(!contains(seen, "evil"), seen);
  CHECK_MESSAGE(!contains(seen, "\"https\""), seen);
  CHECK_MESSAGE(!upstream_saw_header(seen, "X-Jwt-Roles"), seen);
  CHECK_MESSAGE(!upstream_saw_header(seen, "Forwarded"), seen);
  CHECK_MESSAGE(!upstream_saw_header(seen, "X-Forwarded-Port"), seen);
  for (const char* h : {"X-Forwarded-Scheme", "X-Forwarded-Ssl", "Front-End-Https", "X-Real-IP", "True-Client-IP", "X-Client-IP"}) {
    CHECK_MESSAGE(!upstream_saw_header(seen, h), h);
  }
}

TEST_CASE("override headers are removed unless forward_override_headers is set") {
  const std::string overrides =
      "X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\n"
      "X-Method-Override: DELETE\r\nx_original_url: /admin\r\n";
  {
    Env env(kRoutes);
    upstream_seen(env);
    REQUIRE(env.get("/public/x", overrides).status == 200);
    const std::string seen = upstream_seen(env);
    for (const char* h : {"X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}) {
      CHECK_MESSAGE(!upstream_saw_header(seen, h), h);
    }
    CHECK(!contains(seen, "DELETE"));
  }
  {
    Env env(kRoutes, "forward_override_headers: true\n");
    HttpResponse r = env.get("/public/x", overrides);
    REQUIRE(r.status == 200);
    CHECK(echoed_header(r, "X-Original-URL") == "/admin");
    CHECK(echoed_header(r, "X-HTTP-Method-Override") == "DELETE");
  }
}

TEST_CASE("a method the path's route excludes is a 405 with Allow, never a weaker route") {
  Env env("routes:\n  - prefix: /admin\n    methods: [GET]\n  - prefix: /admin\n    methods: [PUT]\n"
          "  - prefix: /\n    auth: none\n");
  upstream_seen(env);
  for (const std::string method : {"POST", "HEAD", "DELETE"}) {
    CAPTURE(method);
    RawConnection c(env.port);
    REQUIRE(c.send(method + " /admin/users HTTP/1.1\r\nHost: t\r\n\r\n"));
    HttpResponse r = c.read_response(method == "HEAD");
    CHECK(r.status == 405);
    CHECK(r.header("Allow") == "GET, PUT");
    // The connection stays usable.
    REQUIRE(c.send("GET /public/x HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK(c.read_response().status == 200);
  }
  CHECK(env.get("/admin/users").status == 401);
  const std::string seen = upstream_seen(env);
  CHECK_MESSAGE(!contains(seen, "/admin"), seen);
}

TEST_CASE("two cookies of the token's name are refused; forward_token: false strips the token everywhere") {
  Env env(kRoutes, "",
          "    token_sources:\n      - {header: Authorization, prefix: \"Bearer \"}\n      - {cookie: at}\n"
          "      - {query: access_token}\n      - {header: X-Api-Token}\n"
          "    forward_token: false\n");
  const std::string token = env.token(R"("scope":"admin")");
  TestKey other = make_key(core::Alg::ES256, "k1");
  const std::string forged = signed_token(header_for(other), payload_now(R"("scope":"admin")"), other);
  for (const std::string& cookies : {"Cookie: at=" + token + "; At=" + forged + "\r\n",
                                     "Authorization: Bearer " + token + "\r\nCookie: AT=" + forged + "\r\n",
                                     "Authorization: Bearer " + token + "\r\nCookie: a=b, at=" + forged + "\r\n",
                                     "Cookie: at=" + token + "; at=" + forged + "\r\n",
                                     "Cookie: at=" + token + "\r\nCookie: at=" + forged + "\r\n",
                                     "Cookie: at=" + forged + ";at =" + token + "\r\n",
                                     // Django strips \xa0, Rack decodes names, PHP reads at[] as at
                                     "Authorization: Bearer " + token + "\r\nCookie: \xa0" "at=" + forged + "\r\n",
                                     "Authorization: Bearer " + token + "\r\nCookie: %61t=" + forged + "\r\n",
                                     "Authorization: Bearer " + token + "\r\nCookie: at[]=" + forged + "\r\n",
                                     // a CGI stack reads X_Api_Token as the X-Api-Token source
                                     "Authorization: Bearer " + token + "\r\nX_Api_Token: " + forged + "\r\n"}) {
    HttpResponse r = env.get("/admin/x", cookies);
    CHECK(r.status == 400);
    CHECK(contains(r.body, "invalid_request"));
  }
  // A query parameter name is what the upstream decodes it to.
  for (const std::string& query : {"access_token=" + token + "&access%5Ftoken=" + forged,
                                   "%61ccess_token=" + forged + "&access_token=" + token,
                                   "access_token=" + token + "&ACCESS_TOKEN=" + forged,   // ASP.NET Core
                                   "access_token=" + token + "&x=1;access_token=" + forged,  // Rack splits on ;
                                   "access_token=" + token + "&access.token=" + forged,   // PHP: access_token
                                   "access_token=" + token + "&access_token[]=" + forged,
                                   "access_token=" + token + "&access_token%00=" + forged,
                                   "access_token=" + token + "&+access_token=" + forged}) {
    CAPTURE(query.substr(query.size() - 60));
    CHECK(env.get("/admin/x?" + query).status == 400);
  }
  upstream_seen(env);
  HttpResponse encoded = env.get("/admin/x?a=1&access%5Ftoken=" + token + "&b=2");
  REQUIRE(encoded.status == 200);
  CHECK(echoed_path(encoded) == "/admin/x?a=1&b=2");
  HttpResponse both = env.get_with_token("/admin/x", token, "Cookie: a=1; at=" + token + " ;\tb=2\r\n");
  REQUIRE(both.status == 200);
  CHECK(echoed_header(both, "X-Jwt-Sub") == "alice");
  CHECK(echoed_header(both, "Cookie") == "a=1; b=2");
  const std::string seen = upstream_seen(env);
  CHECK_MESSAGE(!contains(seen, token.substr(0, 40)), seen);
  CHECK(!upstream_saw_header(seen, "Authorization"));
}

TEST_CASE("pipelined refusals: output above the high-water mark stops reading, and processing is iterative") {
  Env env(kRoutes);
  RawConnection c(env.port, 10);
  const int fd = c.fd();
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string block;
  const std::string request = "GET /admin HTTP/1.1\r\nHost: t\r\n\r\n";
  while (block.size() < 64 * 1024) block += request;
  // Write without ever reading the 401s. A proxy that keeps reading accepts all of it.
  constexpr std::size_t kCap = 64u * 1024 * 1024;
  std::size_t sent = 0;
  auto stalled_since = std::chrono::steady_clock::now();
  while (sent < kCap) {
    const ssize_t n = ::send(fd, block.data(), block.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      stalled_since = std::chrono::steady_clock::now();
      continue;
    }
    if (std::chrono::steady_clock::now() - stalled_since > std::chrono::milliseconds(1500)) break;
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, 100);
  }
  MESSAGE("bytes accepted before the proxy stopped reading: " << sent);
  CHECK(sent < kCap);
  check_peak_rss(env, "with the refusals unread", 48 * 1024, 200 * 1024);
  // The proxy is alive and answers others at once.
  CHECK(env.get("/public/x").status == 200);
  // Reading the answers lets it go on: the first ones are the refusals, in order.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  for (int i = 0; i < 1000; ++i) {
    HttpResponse r = c.read_response();
    REQUIRE(r.status == 401);
  }
}

TEST_CASE("a retry on a fresh upstream connection keeps pipelined responses in order") {
  Env env(kRoutes, "", "", true, "");
  RawConnection c(env.port);
  // The first request leaves a pooled upstream connection that closes, unanswered, at the next
  // request it is given: that request is retried once on a fresh connection.
  REQUIRE(c.send("GET /public/close-next HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(c.read_response().status == 200);
  REQUIRE(c.send("GET /public/a?n=2 HTTP/1.1\r\nHost: t\r\n\r\nGET /public/b?n=3 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /public/c?n=4 HTTP/1.1\r\nHost: t\r\n\r\n"));
  for (const char* want : {"/public/a?n=2", "/public/b?n=3", "/public/c?n=4"}) {
    HttpResponse r = c.read_response();
    REQUIRE_MESSAGE(r.status == 200, want);
    CHECK(echoed_path(r) == want);
  }
  const std::string seen = upstream_seen(env);
  // /public/a twice (the stale connection read it, then the retry), b and c once each.
  std::size_t a = 0;
  for (std::size_t at = seen.find("/public/a?n=2"); at != std::string::npos; at = seen.find("/public/a?n=2", at + 1)) ++a;
  CHECK(a == 2);
  CHECK(contains(seen, "/public/b?n=3"));
}

TEST_CASE("limits.body_timeout: a stalled request body gets 408, a stalled response body is cut off") {
  Env env(kRoutes, "", "", true, ", body_timeout: 1s");
  {
    RawConnection c(env.port, 10);
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(c.send("POST /public/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789"));
    HttpResponse r = c.read_response();
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(r.status == 408);
    CHECK(waited < std::chrono::seconds(4));  // the upstream_timeout here is 5s
    CHECK(c.closed_by_peer());
  }
  {
    // A body that trickles in keeps the request alive past body_timeout in total.
    RawConnection c(env.port, 10);
    REQUIRE(c.send("POST /public/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n"));
    for (char ch : std::string("abcd")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      REQUIRE(c.send(std::string(1, ch)));
    }
    HttpResponse r = c.read_response();
    CHECK(r.status == 200);
    CHECK(contains(r.body, "\"body_length\": 4"));
  }
  {
    RawConnection c(env.port, 10);
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(c.send("GET /public/stall-body?ms=8000 HTTP/1.1\r\nHost: t\r\n\r\n"));
    HttpResponse r = c.read_response();
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(r.status == 0);  // never completed: the connection was closed mid-body
    CHECK(waited < std::chrono::seconds(4));
  }
}

TEST_CASE("a refused Upgrade request does not leave the pipelined requests after it hanging") {
  Env env(kRoutes);
  RawConnection c(env.port);
  REQUIRE(c.send("GET /admin/ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                 "GET /public/after HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(c.read_response().status == 401);
  HttpResponse after = c.read_response();
  CHECK(after.status == 200);
  CHECK(echoed_path(after) == "/public/after");
}

TEST_CASE("a NumericDate no 64-bit clock holds is an invalid claim at the proxy too") {
  Env env(kRoutes);
  HttpResponse r = env.get_with_token("/admin", signed_token(header_for(env.key),
                                                             R"({"iss":"https://idp.test/","aud":"api","sub":"alice","scope":"admin","exp":1e300})",
                                                             env.key));
  CHECK(r.status == 401);
  CHECK(contains(r.header("WWW-Authenticate"), "invalid_token"));
}

TEST_CASE("pipelined refusals answered inside an upstream read do not stall the connection") {
  Env env(kRoutes);
  RawConnection c(env.port, 20);
  std::string blob = "GET /public/first HTTP/1.1\r\nHost: a\r\n\r\n";
  for (int i = 0; i < 7000; ++i) blob += "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
  blob += "GET /public/last HTTP/1.1\r\nHost: a\r\n\r\n";
  std::thread sender([&] { c.send(blob); });
  REQUIRE(c.read_response().status == 200);
  int refused = 0;
  for (; refused < 7000; ++refused) {
    if (c.read_response().status != 401) break;
  }
  CHECK(refused == 7000);
  HttpResponse last = c.read_response();
  CHECK(last.status == 200);
  CHECK(echoed_path(last) == "/public/last");
  sender.join();
}

TEST_CASE("oversized trailers after an early response close the connection; nothing is spliced into the body") {
  Env env(kRoutes);
  RawConnection c(env.port, 10);
  REQUIRE(c.send("POST /public/early HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the early response is under way
  std::string trailers = "0\r\n";
  for (int i = 0; i < 400; ++i) trailers += "X-T" + std::to_string(i) + ": " + std::string(40, 'v') + "\r\n";
  c.send(trailers + "\r\n");
  const std::string got = c.read_all();
  CHECK(contains(got, "HTTP/1.1 200"));
  CHECK_MESSAGE(!contains(got, "431"), got);
  CHECK(!contains(got, "HTTP/1.1 4"));
}

TEST_CASE("a pipelining client that reads slowly is not cut off by the idle timeout") {
  Env env(kRoutes);  // idle_timeout: 5s
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  const int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(env.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  std::string blob = "GET /public/download?size=700000 HTTP/1.1\r\nHost: a\r\n\r\n";
  for (int i = 0; i < 20000; ++i) blob += "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
  std::thread sender([&] {
    std::size_t sent = 0;
    while (sent < blob.size()) {
      const ssize_t n = ::send(fd, blob.data() + sent, blob.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  });
  // About 60 KB/s for 7 s: slower than the proxy can answer, never silent for long.
  const auto start = std::chrono::steady_clock::now();
  std::size_t received = 0;
  bool cut = false;
  char buf[4096];
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(7)) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      cut = true;
      break;
    }
    received += static_cast<std::size_t>(n);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
  }
  MESSAGE("received " << received << " bytes in 7 s");
  CHECK_FALSE(cut);
  CHECK(received > 100000);
  ::shutdown(fd, SHUT_RDWR);
  sender.join();
  ::close(fd);
}

TEST_CASE("an answer still being written is not cut off by the idle timeout, however slowly it is read") {
  // The upstream is done with the answer at once; most of it waits in jwtgate's queue (a small
  // MSS keeps the kernel's send buffer small) for a reader that needs longer than the timeout at
  // hand to get through it. Idle means nothing left to send, and a connection that closes after
  // its answer waits for a reader that keeps reading.
  std::string headers;
  int pause_ms = 16;  // some 250 KB/s: 3.6 s for what idle_timeout (1 s) must not cut
  bool drain = false;
  SUBCASE("kept alive: idle_timeout") {}
  SUBCASE("Connection: close") {
    headers = "Connection: close\r\n";
    pause_ms = 33;  // some 120 KB/s: 7.5 s, past the 5 s jwtgate once gave such a reader
  }
  SUBCASE("draining (SIGTERM) once the upstream is done") { drain = true; }
  Env env(kRoutes, "", "", true, ", idle_timeout: 1s");  // body_timeout: 60s
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  const int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const int mss = 536;
  ::setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(env.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::size_t size = 900000;  // below the high-water mark: the upstream is never paused
  const std::string request = "GET /public/download?size=" + std::to_string(size) + " HTTP/1.1\r\nHost: a\r\n" + headers + "\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  const auto start = std::chrono::steady_clock::now();
  std::string got;
  char buf[4096];
  bool cut = false;
  std::size_t body = 0;
  bool signalled = false;
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      cut = true;
      break;
    }
    got.append(buf, static_cast<std::size_t>(n));
    if (drain && !signalled && got.size() > 100000) {
      env.proxy->signal(SIGTERM);  // the connection is idle in HTTP terms, not yet in TCP terms
      signalled = true;
    }
    if (const std::size_t head_end = got.find("\r\n\r\n"); head_end != std::string::npos) {
      body = got.size() - (head_end + 4);
      if (body >= size) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("received " << got.size() << " bytes in " << seconds << " s");
  CHECK(contains(got, "HTTP/1.1 200"));
  CHECK_FALSE(cut);
  CHECK(body == size);
  if (drain) {
    // All sent: the draining process closes the connection and exits.
    CHECK(::recv(fd, buf, sizeof buf, 0) == 0);
    CHECK(env.proxy->wait_exit(10) == 0);
  }
  ::close(fd);
}
