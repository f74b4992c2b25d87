// Forward-auth as an attacker tries it (issue 15): each case is a check that forward_auth.listen
// lets pass (200) although the proxy, on the same config, refuses the same original request or
// neutralizes what makes it dangerous. The oracle for the proxy side is what its upstream
// received (tests/support/upstream.py records every request head it parses).
#include <doctest/doctest.h>

#include "tests/support/proxy_env.h"

using namespace jwtgate;
using namespace jwtgate::testing;

namespace {

// The check comes from the gateway at 127.0.0.2 (trusted); 127.0.0.1 is anyone else.
constexpr const char* kGateway = "127.0.0.2";

struct FaEnv {
  int check_port = free_port();
  Env env;
  explicit FaEnv(const std::string& routes, const std::string& forward_auth_extra = "", const std::string& top = "")
      : env(routes, top + "forward_auth:\n  listen: 127.0.0.1:" + std::to_string(check_port) +
                        "\n  trusted_proxies: [127.0.0.2]\n" + forward_auth_extra) {
    REQUIRE_MESSAGE(wait_for_port(check_port), env.proxy->stderr_text());
  }

  // A check from the trusted gateway naming the original request in X-Forwarded-Method/-Uri.
  HttpResponse forwarded(const std::string& method, const std::string& uri, const std::string& headers = "") const {
    RawConnection c(check_port, 5, kGateway);
    REQUIRE(c.connected());
    REQUIRE(c.send("GET /authz HTTP/1.1\r\nHost: jwtgate\r\nX-Forwarded-Method: " + method + "\r\nX-Forwarded-Uri: " +
                   uri + "\r\n" + headers + "\r\n"));
    return c.read_response();
  }
  // A raw check from the gateway.
  HttpResponse check(const std::string& raw, const std::string& source = kGateway) const {
    RawConnection c(check_port, 5, source);
    REQUIRE(c.connected());
    REQUIRE(c.send(raw));
    return c.read_response();
  }
};

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// GET /orders is for every signed-in user, changing orders (POST) needs the admin scope; /public
// is open; /admin needs the admin scope.
const std::string kRoutes =
    "routes:\n  - prefix: /public\n    auth: none\n  - prefix: /admin\n    require_scopes: [admin]\n"
    "  - prefix: /orders\n    methods: [GET]\n  - prefix: /orders\n    methods: [POST]\n    require_scopes: [admin]\n"
    "  - prefix: /\n";

}  // namespace

TEST_CASE("a check carrying a method or URL override header is not let through: the proxy strips those headers") {
  FaEnv fa(kRoutes);
  const std::string user = fa.env.token();  // signed in, no admin scope
  const std::string bearer = "Authorization: Bearer " + user + "\r\n";

  // The proxy: the override headers never reach the upstream, so it serves GET /orders and /public.
  upstream_seen(fa.env);
  REQUIRE(fa.env.get_with_token("/orders", user, "X-HTTP-Method-Override: POST\r\n").status == 200);
  REQUIRE(fa.env.get("/public", "X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n").status == 200);
  const std::string seen = upstream_seen(fa.env);
  REQUIRE_MESSAGE(!contains(seen, "Override"), seen);
  REQUIRE_MESSAGE(!contains(seen, "X-Original-URL"), seen);

  // Forward-auth: nginx, Caddy and Traefik pass the client's headers both to the check and, on a
  // 200, to the service. A 200 here lets Express's method-override, Symfony or IIS run POST
  // /orders as a plain user, or serve /admin for a check on /public.
  struct Case {
    const char* method;
    const char* uri;
    const char* header;
    bool token;
  };
  const Case cases[] = {
      {"GET", "/orders", "X-HTTP-Method-Override: POST", true},
      {"GET", "/orders", "X-Method-Override: POST", true},
      {"GET", "/orders", "X-HTTP-Method: POST", true},
      {"GET", "/orders", "X_HTTP_Method_Override: POST", true},
      {"GET", "/public", "X-Original-URL: /admin", false},
      {"GET", "/public", "X-Rewrite-URL: /admin", false},
      {"GET", "/public", "x_original_url: /admin", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.header);
    const std::string headers = std::string(c.header) + "\r\n" + (c.token ? bearer : "");
    // Named by the trusted gateway's headers ...
    HttpResponse r = fa.forwarded(c.method, c.uri, headers);
    CHECK(r.status == 400);
    // ... and Envoy style, from anyone.
    HttpResponse e = fa.check(std::string(c.method) + " /authz" + c.uri + " HTTP/1.1\r\nHost: jwtgate\r\n" + headers + "\r\n",
                              "127.0.0.1");
    CHECK(e.status == 400);
  }
  // Without an override header the same checks pass, so the refusal is the header's.
  CHECK(fa.forwarded("GET", "/orders", bearer).status == 200);
  CHECK(fa.forwarded("GET", "/public").status == 200);
}

TEST_CASE("a check naming an override-free request still passes with forward_override_headers: true") {
  // The operator who keeps override headers for the proxy keeps them for checks too.
  FaEnv fa(kRoutes, "", "forward_override_headers: true\n");
  CHECK(fa.forwarded("GET", "/public", "X-HTTP-Method-Override: POST\r\n").status == 200);
}

TEST_CASE("allow_preflight does not pass a path that exact-case matching gives no route (the proxy's 404)") {
  // Case folding only makes rules stricter: /api is /Api without case, but no route covers it as
  // written, so the proxy answers 404 and a case-sensitive service behind a gateway gets nothing.
  FaEnv fa("routes:\n  - prefix: /Api\n", "  allow_preflight: true\n");
  const std::string acrm = "Access-Control-Request-Method: GET\r\nOrigin: https://app.example\r\n";
  REQUIRE(fa.env.get("/api/x", acrm).status == 404);
  CHECK(fa.forwarded("OPTIONS", "/Api/x", acrm).status == 200);  // a covered path: the preflight passes
  CHECK(fa.forwarded("OPTIONS", "/nothing", acrm).status == 404);
  CHECK(fa.forwarded("OPTIONS", "/api/x", acrm).status == 404);
}

TEST_CASE("a forwarded method the proxy refuses (CONNECT, or no HTTP method at all) is not judged as a route's method") {
  FaEnv fa(kRoutes);
  // The proxy never lets these through: CONNECT is 501, a method llhttp does not know is 400.
  CHECK(http_request(fa.env.port, "CONNECT /public HTTP/1.1\r\nHost: test\r\n\r\n").status == 501);
  CHECK(http_request(fa.env.port, "FOO /public HTTP/1.1\r\nHost: test\r\n\r\n").status == 400);
  CHECK(fa.forwarded("CONNECT", "/public").status != 200);
  CHECK(fa.forwarded("FOO", "/public").status != 200);
  CHECK(fa.forwarded("GET", "/public").status == 200);
}

TEST_CASE("a trusted gateway's forwarded method is never silently replaced by the check's own GET") {
  // nginx `proxy_pass http://jwtgate:9001/authz$request_uri;` with `proxy_set_header
  // X-Original-Method $request_method;` names the method by header and the path Envoy style.
  // Judged as the subrequest's own GET, a user's POST /orders (admin only) would pass.
  FaEnv fa(kRoutes);
  const std::string user = fa.env.token();
  REQUIRE(fa.env.get_with_token("/orders", user).status == 200);
  REQUIRE(http_request(fa.env.port, "POST /orders HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " + user +
                                        "\r\nContent-Length: 0\r\n\r\n")
              .status == 403);
  HttpResponse r = fa.check("GET /authz/orders HTTP/1.1\r\nHost: jwtgate\r\nX-Original-Method: POST\r\nAuthorization: Bearer " +
                            user + "\r\n\r\n");
  CHECK(r.status != 200);
}
