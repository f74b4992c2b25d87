#include <doctest/doctest.h>

#include "proxy/http/request_target.h"

using jwtgate::proxy::normalize_request_target;
using jwtgate::proxy::RequestTarget;

namespace {
std::string path_of(const char* target) {
  RequestTarget t;
  std::string error;
  REQUIRE_MESSAGE(normalize_request_target(target, t, error), error);
  return t.path;
}
std::string match_of(const char* target) {
  RequestTarget t;
  std::string error;
  REQUIRE_MESSAGE(normalize_request_target(target, t, error), error);
  return t.match_path;
}
bool refused(const char* target) {
  RequestTarget t;
  std::string error;
  return !normalize_request_target(target, t, error);
}
}  // namespace

TEST_CASE("dot segments, encoded dots and repeated slashes cannot hide a path") {
  CHECK(path_of("/public/../admin") == "/admin");
  CHECK(path_of("/public/%2e%2e/admin") == "/admin");
  CHECK(path_of("/public/%2E%2E/admin") == "/admin");
  CHECK(path_of("/public/.%2e/admin") == "/admin");
  CHECK(path_of("/./admin") == "/admin");
  CHECK(path_of("//admin") == "/admin");
  CHECK(path_of("/a//b///c") == "/a/b/c");
  CHECK(path_of("/../../admin") == "/admin");
  CHECK(path_of("/a/b/..") == "/a/");
  CHECK(path_of("/") == "/");
  CHECK(path_of("/a/") == "/a/");
  CHECK(path_of("/%61dmin") == "/admin");
}

TEST_CASE("path parameters do not change which route matches, and the upstream sees them") {
  CHECK(match_of("/admin;x") == "/admin");
  CHECK(path_of("/admin;x") == "/admin;x");
  CHECK(match_of("/public;a=b/../admin") == "/admin");
  CHECK(match_of("/public/..;/admin") == "/admin");
}

TEST_CASE("a segment of ;params alone vanishes for matching, as Tomcat, Jetty and Spring drop it") {
  CHECK(match_of("/;x/admin/users") == "/admin/users");
  CHECK(path_of("/;x/admin/users") == "/;x/admin/users");
  CHECK(match_of("/;/admin") == "/admin");
  CHECK(match_of("/;a=b/;c/admin;d/") == "/admin/");
  // ".." after such a segment: RFC 3986 removes ";x" (/public/admin), Tomcat removes "public"
  // (/admin). Through a forward-auth gateway the service reads the path as written: refused.
  CHECK(refused("/public/;x/../admin"));
  CHECK(refused("/public/;/../admin"));
  CHECK(refused("/public/;x/..;y/api/admin"));
  CHECK(refused("/public/;x/%2e%2e/admin"));
  CHECK(match_of("/public/a;x/../admin") == "/public/admin");  // a named segment: one reading
  CHECK(match_of("/public/;x/./admin") == "/public/admin");
  CHECK(match_of("/;x") == "/");
  CHECK(match_of("/;x/") == "/");
}

TEST_CASE("the query never takes part in the path") {
  RequestTarget t;
  std::string error;
  REQUIRE(normalize_request_target("/x?/public", t, error));
  CHECK(t.path == "/x");
  CHECK(t.query == "/public");
  CHECK(t.has_query);
  REQUIRE(normalize_request_target("/x", t, error));
  CHECK_FALSE(t.has_query);
}

TEST_CASE("ambiguous or hostile targets are refused") {
  for (const char* bad : {"", "admin", "*", "http://example.com/admin", "/a%2fb", "/a%2Fb", "/a%5cb", "/a\\b",
                          "/a%00", "/a%zz", "/public/..%3B/admin", "/public/..%3bx/admin", "/.%3B/admin", "/a%2", "/a%", "/a#frag", "/a b", "/a\x01", "/caf\xc3\xa9", "/x?y#z"}) {
    CAPTURE(std::string(bad));
    CHECK(refused(bad));
  }
}

TEST_CASE("escapes of reserved characters stay encoded, in canonical form") {
  CHECK(path_of("/a%3fb") == "/a%3Fb");
  CHECK(path_of("/a%20b") == "/a%20b");
  CHECK(path_of("/a%7e") == "/a~");
}
