#include <doctest/doctest.h>

#include "proxy/route_table.h"

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
  proxy::RouteTable t({route("/", {}, AuthMode::none), route("/admin"), route("/admin/public", {}, AuthMode::optional)});
  CHECK(t.match("/admin", "GET")->prefix == "/admin");
  CHECK(t.match("/admin/x", "GET")->prefix == "/admin");
  CHECK(t.match("/admin/", "GET")->prefix == "/admin");
  CHECK(t.match("/administrator", "GET")->prefix == "/");
  CHECK(t.match("/admin/public/a", "GET")->prefix == "/admin/public");
  CHECK(t.match("/admin/publicity", "GET")->prefix == "/admin");
  CHECK(t.match("/", "GET")->prefix == "/");
}

TEST_CASE("method lists select among routes; a route without the method does not match") {
  proxy::RouteTable t({route("/", {}), route("/api", {"GET"}, AuthMode::none), route("/api", {"POST", "PUT"})});
  CHECK(t.match("/api/x", "GET")->auth == AuthMode::none);
  CHECK(t.match("/api/x", "POST")->methods.size() == 2);
  CHECK(t.match("/api/x", "DELETE")->prefix == "/");
}

TEST_CASE("without a catch-all, uncovered paths match nothing") {
  proxy::RouteTable t({route("/api")});
  CHECK(t.match("/other", "GET") == nullptr);
  CHECK(t.match("/api", "GET") != nullptr);
  CHECK(t.index_of(t.match("/api", "GET")) == 0);
}
