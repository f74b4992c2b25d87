#include <doctest/doctest.h>

#include "proxy/http/route_table.h"

using namespace jwtgate;
using config::AuthMode;
using config::Route;

namespace {
Route route(std::string prefix, std::vector<std::string> methods = {}, AuthMode auth = AuthMode::required) {
  Route r;
  r.prefix = std::move(prefix);
  r.methods = std::move(methods);
  r.auth = auth;
  return r;
}
}  // namespace

TEST_CASE("longest prefix wins, matched per path segment") {
  proxy::RouteTable t({route("/", {}, AuthMode::none), route("/admin"), route("/admin/public", {}, AuthMode::optional)}, true);
  CHECK(t.match("/admin", "GET")->prefix == "/admin");
  CHECK(t.match("/admin/x", "GET")->prefix == "/admin");
  CHECK(t.match("/admin/", "GET")->prefix == "/admin");
  CHECK(t.match("/administrator", "GET")->prefix == "/");
  CHECK(t.match("/admin/public/a", "GET")->prefix == "/admin/public");
  CHECK(t.match("/admin/publicity", "GET")->prefix == "/admin");
  CHECK(t.match("/", "GET")->prefix == "/");
}

TEST_CASE("method lists select among routes of the longest prefix; an excluded method is a 405, never a shorter route") {
  proxy::RouteTable t({route("/", {}), route("/api", {"GET"}, AuthMode::none), route("/api", {"POST", "PUT", "GET"})}, false);
  CHECK(t.match("/api/x", "GET")->auth == AuthMode::none);
  CHECK(t.match("/api/x", "POST")->methods.size() == 3);
  std::string allow = "stale";
  CHECK(t.match("/api/x", "DELETE", &allow) == nullptr);  // not the catch-all "/"
  CHECK(allow == "GET, POST, PUT");
  CHECK(t.match("/api/x", "HEAD", &allow) == nullptr);  // HEAD is its own method: list it to allow it
  CHECK(t.match("/other", "DELETE", &allow)->prefix == "/");
  CHECK(allow.empty());

  // A public GET route in front of a protected catch-all: POST must not fall through to either.
  proxy::RouteTable weak({route("/", {}, AuthMode::none), route("/admin", {"GET"})}, false);
  CHECK(weak.match("/admin/users", "POST", &allow) == nullptr);
  CHECK(allow == "GET");
}

TEST_CASE("prefixes match case-insensitively unless routes_case_sensitive is set") {
  const std::vector<Route> routes{route("/", {}, AuthMode::none), route("/admin")};
  proxy::RouteTable insensitive(routes, false);
  for (const char* path : {"/admin", "/ADMIN/users", "/Admin", "/aDmIn/x"}) {
    CAPTURE(path);
    CHECK(insensitive.match(path, "GET")->prefix == "/admin");
  }
  CHECK(insensitive.match("/ADMINISTRATOR", "GET")->prefix == "/");
  proxy::RouteTable sensitive(routes, true);
  CHECK(sensitive.match("/admin/users", "GET")->prefix == "/admin");
  CHECK(sensitive.match("/ADMIN/users", "GET")->prefix == "/");
}

TEST_CASE("without a catch-all, uncovered paths match nothing") {
  proxy::RouteTable t({route("/api")}, false);
  CHECK(t.match("/other", "GET") == nullptr);
  CHECK(t.match("/api", "GET") != nullptr);
  CHECK(t.index_of(t.match("/api", "GET")) == 0);
}
