// Forward-auth checks with a body, as an attacker uses them (issue 15, Phase::discarding): since
// a check's body is read and dropped and the connection kept, jwtgate's idea of where a check
// ends decides which bytes the next answer is for. A gateway that announces a body it never
// sends must not let a client pick the bytes jwtgate answers next.
#include <doctest/doctest.h>

#include <cctype>

#include "tests/support/proxy_env.h"

using namespace jwtgate;
using namespace jwtgate::testing;

namespace {

constexpr const char* kGateway = "127.0.0.2";  // the trusted gateway

struct FaEnv {
  int check_port = free_port();
  Env env;
  FaEnv()
      : env("", "forward_auth:\n  listen: 127.0.0.1:" + std::to_string(check_port) + "\n  trusted_proxies: [127.0.0.2]\n") {
    REQUIRE_MESSAGE(wait_for_port(check_port), env.proxy->stderr_text());
  }
};

// nginx's auth_request subrequest as nginx writes it, for the original request `method uri`
// (captured from Debian's nginx with proxy_pass_request_body off, proxy_http_version 1.1 and an
// upstream keepalive pool): the client's headers follow nginx's own.
std::string nginx_check(const std::string& method, const std::string& uri, const std::string& client_headers) {
  return "GET /authz HTTP/1.1\r\nX-Original-URI: " + uri + "\r\nX-Original-Method: " + method +
         "\r\nHost: jwtgate\r\n" + client_headers + "\r\n";
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

TEST_CASE("a gateway's check that announces a body it never sends does not let the client choose the next answer") {
  // nginx's auth_request without `proxy_set_header Content-Length ""` (the line nginx's own
  // example has, and many configs lack) sends the client's Content-Length on a GET check with
  // proxy_pass_request_body off: no body follows. Before discarding, jwtgate answered such a
  // check with Connection: close, so nginx never reused the connection. Kept alive, jwtgate
  // waits for N body bytes, which are the first N bytes of nginx's NEXT check on the pooled
  // connection; a client that sent the first request with Content-Length N makes the rest of its
  // next check start at a header value of its choosing. Reproduced with real nginx 1.22: GET
  // /admin without a token reached the app, jwtgate logged a 200 for GET /public.
  FaEnv fa;
  const std::string smuggled = "GET /authz/public HTTP/1.0";  // no Host needed, public: a 200
  const std::string second = nginx_check("GET", "/admin", "X-A: " + smuggled + "\r\n");
  const std::size_t n = second.find(smuggled);
  REQUIRE(n != std::string::npos);

  RawConnection c(fa.check_port, 3, kGateway);
  REQUIRE(c.connected());
  // The client's POST /public/upload (Content-Length: n, a public route): nginx's check for it.
  REQUIRE(c.send(nginx_check("POST", "/public/upload", "Content-Length: " + std::to_string(n) + "\r\n")));
  const HttpResponse first = c.read_response();
  CHECK(first.status == 200);
  if (lower(first.header("Connection")) == "close") return;  // nginx would open a new connection
  // The client's GET /admin without a token: nginx's next check on the kept-alive connection.
  c.send(second);
  const HttpResponse answer = c.read_response();
  CAPTURE(answer.status);
  CHECK(answer.status != 200);  // a 200 here is nginx letting GET /admin through
  CHECK((answer.status == 401 || answer.status == 0));
}

TEST_CASE("a check that waits for 100 Continue in a second Expect header is answered and closed too") {
  // Expect: 100-continue keeps a check's body from being awaited (the client may never send
  // it); the rule reads only the first Expect header, so a second one is missed and the next
  // request the client sends instead of the body is eaten as that body.
  FaEnv fa;
  RawConnection c(fa.check_port, 3, kGateway);
  REQUIRE(c.connected());
  REQUIRE(c.send("POST /authz/public/x HTTP/1.1\r\nHost: j\r\nExpect: foo\r\nExpect: 100-continue\r\n"
                 "Content-Length: 40\r\n\r\n"));
  CHECK(c.read_response().status == 200);
  CHECK(c.closed_by_peer());
}
