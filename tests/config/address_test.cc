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

namespace {

UpstreamUrl upstream(const std::string& text) {
  UpstreamUrl u;
  std::string why;
  REQUIRE_MESSAGE(parse_upstream_url(text, u, why), text, ": ", why);
  return u;
}

std::string upstream_error(const std::string& text) {
  UpstreamUrl u;
  std::string why;
  CHECK_FALSE_MESSAGE(parse_upstream_url(text, u, why), text);
  return why;
}

}  // namespace

TEST_CASE("parse_upstream_url: http:// defaults to port 80, https:// to 443 and TLS") {
  UpstreamUrl plain = upstream("http://orders");
  CHECK(plain.host == "orders");
  CHECK(plain.port == 80);
  CHECK_FALSE(plain.tls);
  UpstreamUrl secure = upstream("https://orders.internal/");
  CHECK(secure.host == "orders.internal");
  CHECK(secure.port == 443);
  CHECK(secure.tls);
  CHECK(secure.text == "https://orders.internal/");
  UpstreamUrl port = upstream("https://10.0.0.7:8443");
  CHECK(port.host == "10.0.0.7");
  CHECK(port.port == 8443);
  CHECK(port.tls);
  UpstreamUrl v6 = upstream("https://[::1]");
  CHECK(v6.host == "::1");
  CHECK(v6.port == 443);
  CHECK(upstream("https://[::1]:9443").port == 9443);
  CHECK(upstream("http://orders:3000").port == 3000);
}

TEST_CASE("parse_upstream_url: other schemes, paths and bad ports are refused, saying what is expected") {
  CHECK(upstream_error("ftp://orders") == "expected an http://, https:// or h2c:// URL such as http://127.0.0.1:3000");
  CHECK(upstream_error("HTTPS://orders").find("http://, https:// or h2c://") != std::string::npos);
  CHECK(upstream_error("orders:443").find("http://, https:// or h2c://") != std::string::npos);
  CHECK(upstream_error("https://orders/api").find("paths, queries and credentials are not supported") != std::string::npos);
  CHECK(upstream_error("https://u:p@orders").find("credentials") != std::string::npos);
  CHECK(upstream_error("https://orders:0").find("port from 1 to 65535") != std::string::npos);
  CHECK(upstream_error("https://orders:99999").find("port from 1 to 65535") != std::string::npos);
  CHECK(upstream_error("https://bad_host").find("is not a host name") != std::string::npos);
  CHECK(upstream_error("https://").find("is not a host name") != std::string::npos);
  CHECK(upstream_error("https://[").find("is not a host name") != std::string::npos);
}
