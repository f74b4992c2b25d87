#include <doctest/doctest.h>

#include "config/address.h"

using namespace jwtgate::config;

namespace {

std::string base_for(const std::string& text) {
  ListenAddress a;
  std::string why;
  REQUIRE_MESSAGE(parse_listen_address(text, a, why), why);
  return local_base_url(a);
}

}  // namespace

TEST_CASE("local_base_url: a wildcard listener is reached as localhost, any other address as itself") {
  CHECK(base_for("0.0.0.0:8080") == "http://localhost:8080");
  CHECK(base_for("[::]:8081") == "http://localhost:8081");
  CHECK(base_for("127.0.0.1:8080") == "http://127.0.0.1:8080");
  CHECK(base_for("[::1]:8080") == "http://[::1]:8080");
  CHECK(base_for("192.0.2.7:80") == "http://192.0.2.7:80");
}
