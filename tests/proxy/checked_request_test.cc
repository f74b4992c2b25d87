// The forward-auth decisions that need no socket: which request a check asks about, which
// preflights pass, which header spellings are refused, and the allow answer's headers.
#include <doctest/doctest.h>

#include "proxy/http/forward_auth.h"

using namespace jwtgate;
using proxy::CheckedRequest;
using proxy::HeaderList;

namespace {

config::ForwardAuth forward_auth(std::string prefix = "/authz") {
  config::ForwardAuth fa;
  fa.path_prefix = std::move(prefix);
  return fa;
}

struct Check {
  int status = -1;
  CheckedRequest request;
  std::string error;
};

Check check(const config::ForwardAuth& fa, bool trusted, const std::string& method, const std::string& target,
            std::vector<std::pair<std::string, std::string>> headers = {}) {
  proxy::RequestTarget own;
  std::string why;
  REQUIRE_MESSAGE(proxy::normalize_request_target(target, own, why), why);
  HeaderList h;
  for (auto& [n, v] : headers) h.add(n, v);
  Check c;
  c.status = proxy::find_checked_request(fa, trusted, method, own, h, c.request, c.error);
  return c;
}

}  // namespace

TEST_CASE("Envoy style: the original path follows path_prefix, segment by segment") {
  const auto fa = forward_auth();
  Check c = check(fa, false, "POST", "/authz/orders/7?x=1");
  REQUIRE(c.status == 0);
  CHECK(c.request.method == "POST");
  CHECK(c.request.target.path == "/orders/7");
  CHECK(c.request.target.query == "x=1");
  CHECK_FALSE(c.request.forwarded);
  CHECK(check(fa, false, "GET", "/authz").request.target.path == "/");
  CHECK(check(fa, false, "GET", "/authz/").request.target.path == "/");
  CHECK(check(fa, false, "GET", "/authz?q").request.target.query == "q");
  // Outside the prefix, whatever the spelling: a 404, never a path judged as something else.
  for (const char* outside : {"/authzadmin", "/AUTHZ/admin", "/authz;x/admin", "/", "/admin", "/auth"}) {
    CAPTURE(outside);
    CHECK(check(fa, false, "GET", outside).status == 404);
  }
  // The check path is normalized before the prefix comes off: /authz/../admin is /admin.
  CHECK(check(fa, false, "GET", "/authz/../admin").status == 404);
  CHECK(check(fa, false, "GET", "/authz/x/../../admin").status == 404);
  CHECK(check(fa, false, "GET", "/authz/public/../admin").request.target.path == "/admin");
  CHECK(check(fa, false, "GET", "/authz/public/%2e%2e/admin").request.target.path == "/admin");
  CHECK(check(fa, false, "GET", "/authz//admin").request.target.path == "/admin");
  const auto root = forward_auth("/");
  CHECK(check(root, false, "GET", "/admin/x").request.target.path == "/admin/x");
}

TEST_CASE("forwarded headers are believed from trusted peers only") {
  const auto fa = forward_auth();
  const std::vector<std::pair<std::string, std::string>> forged{{"X-Forwarded-Uri", "/public"},
                                                                {"X-Forwarded-Method", "GET"}};
  Check untrusted = check(fa, false, "GET", "/authz/admin", forged);
  REQUIRE(untrusted.status == 0);
  CHECK(untrusted.request.target.path == "/admin");  // judged on its own path (GHSA-7x63-xv5r-3p2x)
  Check trusted = check(fa, true, "GET", "/authz", {{"X-Forwarded-Uri", "/orders/1?a=b"}, {"X-Forwarded-Method", "DELETE"}});
  REQUIRE(trusted.status == 0);
  CHECK(trusted.request.method == "DELETE");
  CHECK(trusted.request.target.path == "/orders/1");
  CHECK(trusted.request.target.query == "a=b");
  CHECK(trusted.request.forwarded);
  Check nginx = check(fa, true, "GET", "/authz", {{"x-original-uri", "/a/../admin"}, {"x-original-method", "PUT"}});
  REQUIRE(nginx.status == 0);
  CHECK(nginx.request.method == "PUT");
  CHECK(nginx.request.target.path == "/admin");
  // A trusted peer that names no URI is Envoy style; a method header it sends must then be the
  // check's own: a trusted Envoy passes a client's X-Forwarded-Method on, a trusted nginx checks
  // with GET whatever the original method, and which one is lying cannot be told.
  Check envoy = check(fa, true, "PATCH", "/authz/x", {{"X-Forwarded-Method", "PATCH"}});
  REQUIRE(envoy.status == 0);
  CHECK(envoy.request.method == "PATCH");
  CHECK(envoy.request.target.path == "/x");
  CHECK(check(fa, true, "PATCH", "/authz/x", {{"X-Forwarded-Method", "GET"}}).status == 400);
  CHECK(check(fa, true, "GET", "/authz/x", {{"X-Original-Method", "POST"}}).status == 400);
  CHECK(check(fa, false, "GET", "/authz/x", {{"X-Original-Method", "POST"}}).status == 0);  // untrusted: not read
}

TEST_CASE("forwarded headers that disagree, repeat differently, lack the method or are not a path are refused") {
  const auto fa = forward_auth();
  auto status = [&](std::vector<std::pair<std::string, std::string>> h) { return check(fa, true, "GET", "/authz", h).status; };
  // Caddy sets X-Forwarded-Uri; the client adds X-Original-URI beside it.
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Original-URI", "/public"}, {"X-Forwarded-Method", "GET"}}) == 400);
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Uri", "/public"}, {"X-Forwarded-Method", "GET"}}) == 400);
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", "GET"}, {"X-Original-Method", "POST"}}) == 400);
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", "GET"}, {"X-Forwarded-Method", "POST"}}) == 400);
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Original-URI", "/admin"}, {"X-Forwarded-Method", "GET"},
                {"X-Original-Method", "GET"}}) == 0);  // agreeing copies are fine
  CHECK(status({{"X-Forwarded-Uri", "/admin"}}) == 400);  // judged as GET, a POST could pass a GET-only route
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", "get"}}) == 400);
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", ""}}) == 400);
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", "GET POST"}}) == 400);
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", "FOO"}}) == 400);  // not a method llhttp knows
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", "CONNECT"}}) == 501);  // as the proxy answers
  CHECK(status({{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", "PROPFIND"}}) == 0);
  for (const char* uri : {"", "admin", "*", "http://evil/admin", "//evil/admin", "/a%2Fb", "/a\\b", "/%zz", "/a#b"}) {
    CAPTURE(uri);
    const int s = status({{"X-Forwarded-Uri", uri}, {"X-Forwarded-Method", "GET"}});
    if (std::string(uri) == "//evil/admin") CHECK((s == 0 || s == 400));  // merged to /evil/admin, never a host
    else CHECK(s == 400);
  }
  CHECK(check(fa, true, "GET", "/authz", {{"X-Forwarded-Uri", "//evil/admin"}, {"X-Forwarded-Method", "GET"}})
            .request.target.path != "/admin");
}

TEST_CASE("preflights pass only when allowed, from a trusted peer, as OPTIONS with Access-Control-Request-Method") {
  auto fa = forward_auth();
  CheckedRequest options;
  options.method = "OPTIONS";
  HeaderList acrm;
  acrm.add("Access-Control-Request-Method", "POST");
  HeaderList none;
  CHECK_FALSE(proxy::is_allowed_preflight(fa, true, options, acrm));  // off by default
  fa.allow_preflight = true;
  CHECK(proxy::is_allowed_preflight(fa, true, options, acrm));
  CHECK_FALSE(proxy::is_allowed_preflight(fa, false, options, acrm));
  CHECK_FALSE(proxy::is_allowed_preflight(fa, true, options, none));
  CheckedRequest get = options;
  get.method = "GET";
  CHECK_FALSE(proxy::is_allowed_preflight(fa, true, get, acrm));
}

TEST_CASE("identity headers: another spelling is caught, the exact name in any case is not") {
  const std::vector<std::string> identity{"X-Jwt-Sub", "X-Jwt-Payload"};
  auto caught = [&](const std::string& name) {
    HeaderList h;
    h.add("Accept", "*/*");
    h.add(name, "forged");
    return std::string(proxy::identity_header_respelled(identity, h));
  };
  CHECK(caught("X_Jwt_Sub") == "X-Jwt-Sub");  // named as configured: nothing from the request is echoed
  CHECK(caught("x_jwt_payload") == "X-Jwt-Payload");
  CHECK(caught("X.Jwt.Sub") == "X-Jwt-Sub");
  CHECK(caught("X-Jwt-Sub").empty());  // the gateway overwrites this one
  CHECK(caught("x-jwt-sub").empty());
  CHECK(caught("X-Jwt-Subject").empty());
}

TEST_CASE("the allow answer is a 200 with every identity header, empty when the token did not set it") {
  proxy::AuthResult auth;
  auth.add_headers.push_back({"X-Jwt-Sub", "alice"});
  const std::string r = proxy::allow_response({"X-Jwt-Sub", "X-Jwt-Email", "X-Jwt-Payload"}, auth, true);
  CHECK(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(r.find("\r\nX-Jwt-Sub: alice\r\n") != std::string::npos);
  CHECK(r.find("\r\nX-Jwt-Email: \r\n") != std::string::npos);
  CHECK(r.find("\r\nX-Jwt-Payload: \r\n") != std::string::npos);
  CHECK(r.find("\r\nContent-Length: 0\r\n") != std::string::npos);
  CHECK(r.find("\r\nConnection: keep-alive\r\n\r\n") != std::string::npos);
  CHECK(r.size() == r.find("\r\n\r\n") + 4);  // no body
  CHECK(proxy::allow_response({}, auth, false).find("Connection: close\r\n\r\n") != std::string::npos);
}
