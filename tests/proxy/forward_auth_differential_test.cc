// Forward-auth against the proxy, on one configuration: every original request (path spelling,
// method, token) must get the same verdict from a check as from the proxy. The proxy's verdict
// is what its upstream received (/__seen), not jwtgate's own view; a check's is its status.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/support/proxy_env.h"

using namespace jwtgate::testing;

namespace {

const char* const kRoutes =
    "routes:\n"
    "  - {prefix: /public, auth: none}\n"
    "  - {prefix: /maybe, auth: optional}\n"
    "  - {prefix: /admin, require_scopes: [admin]}\n"
    "  - {prefix: /api, methods: [GET], auth: none}\n"
    "  - {prefix: /api, methods: [POST, DELETE]}\n"
    "  - {prefix: /ro, methods: [GET, HEAD], auth: none}\n"
    "  - {prefix: /}\n";

struct Verdict {
  bool allowed = false;
  int status = 0;  // of a refusal
};

}  // namespace

TEST_CASE("a check's verdict is the proxy's verdict for the same request, Envoy style and from a trusted gateway") {
  const int check_port = free_port();
  Env env(kRoutes, "forward_auth:\n  listen: 127.0.0.1:" + std::to_string(check_port) +
                       "\n  trusted_proxies: [127.0.0.2]\n");
  REQUIRE(wait_for_port(check_port));
  upstream_seen(env);

  const std::vector<std::string> paths{
      "/", "/x", "/public", "/public/x", "/PUBLIC/x", "/Public", "/public/../admin", "/public/%2e%2e/admin",
      "/public/%2E%2E/admin", "/public;x/../admin", "/public/./../admin", "//admin", "/admin", "/Admin/x",
      "/admin;p", "/admin/", "/administrator", "/maybe", "/maybe/x", "/api", "/api/x", "/API/x", "/ro", "/ro/x",
      "/public/%61dmin", "/%70ublic/x", "/public%2F..%2Fadmin", "/public?x=/admin", "/admin?public"};
  const std::vector<std::string> methods{"GET", "HEAD", "POST", "DELETE", "PUT"};
  const std::vector<std::string> tokens{"", env.token("\"scope\":\"read\""), env.token("\"scope\":\"admin\""),
                                        env.token("\"scope\":\"admin\"", -120), "not.a.token"};
  int compared = 0, allowed = 0;
  for (const std::string& path : paths) {
    for (const std::string& method : methods) {
      for (const std::string& token : tokens) {
        CAPTURE(path);
        CAPTURE(method);
        CAPTURE(token.substr(0, 16));
        const std::string auth = token.empty() ? "" : "Authorization: Bearer " + token + "\r\n";
        const std::string body_headers = method == "POST" || method == "PUT" ? "Content-Length: 0\r\n" : "";
        const bool head = method == "HEAD";

        RawConnection proxied(env.port);
        REQUIRE(proxied.send(method + " " + path + " HTTP/1.1\r\nHost: test\r\n" + auth + body_headers + "\r\n"));
        const HttpResponse p = proxied.read_response(head);
        const std::string seen = upstream_seen(env);
        Verdict proxy{seen.find("\"path\"") != std::string::npos, p.status};

        RawConnection envoy(check_port);
        REQUIRE(envoy.send(method + " /authz" + path + " HTTP/1.1\r\nHost: test\r\n" + auth + body_headers + "\r\n"));
        const HttpResponse e = envoy.read_response(head);

        RawConnection gateway(check_port, 5, "127.0.0.2");
        REQUIRE(gateway.send("GET /authz HTTP/1.1\r\nHost: test\r\nX-Forwarded-Method: " + method +
                             "\r\nX-Forwarded-Uri: " + path + "\r\n" + auth + "\r\n"));
        const HttpResponse g = gateway.read_response();

        CHECK(upstream_seen(env).find("\"path\"") == std::string::npos);  // a check never reaches the upstream
        CHECK((e.status == 200) == proxy.allowed);
        CHECK((g.status == 200) == proxy.allowed);
        if (!proxy.allowed) {
          CHECK(e.status == proxy.status);
          CHECK(g.status == proxy.status);
        }
        CHECK((e.status < 300 || e.status >= 400));
        ++compared;
        allowed += proxy.allowed ? 1 : 0;
      }
    }
  }
  MESSAGE(compared << " requests compared, " << allowed << " allowed by the proxy");
  CHECK(allowed > 50);                 // both verdicts occur, often
  CHECK(compared - allowed > 300);
}

TEST_CASE("a path that servers resolve two ways is refused, as a check and as a proxied request") {
  // RFC 3986 reads /public/;x/../api/admin as /public/api/admin; Tomcat, Jetty and Spring drop the
  // ";x" segment first and serve /api/admin. Behind a forward-auth gateway the service gets the
  // path as written, so jwtgate must not judge it as /public (found by fuzz_forward_auth).
  const int check_port = free_port();
  Env env(kRoutes, "forward_auth:\n  listen: 127.0.0.1:" + std::to_string(check_port) +
                       "\n  trusted_proxies: [127.0.0.2]\n");
  REQUIRE(wait_for_port(check_port));
  for (const std::string path : {"/public/;x/../api/admin", "/public/;/../admin", "/public/;x/%2e%2e/admin"}) {
    CAPTURE(path);
    CHECK(env.get(path).status == 400);
    CHECK(http_request(check_port, "GET /authz" + path + " HTTP/1.1\r\nHost: test\r\n\r\n").status == 400);
    RawConnection gateway(check_port, 5, "127.0.0.2");
    REQUIRE(gateway.send("GET /authz HTTP/1.1\r\nHost: test\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: " + path +
                         "\r\n\r\n"));
    CHECK(gateway.read_response().status == 400);
  }
  CHECK(upstream_seen(env).find("\"path\"") == std::string::npos);
}
