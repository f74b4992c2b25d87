#include <doctest/doctest.h>

#include "proxy/http/http1_rules.h"

using namespace jwtgate::proxy;

TEST_CASE("hop-by-hop fields are known in any case, end-to-end ones are not") {
  CHECK(is_hop_by_hop_field("Connection"));
  CHECK(is_hop_by_hop_field("TRANSFER-ENCODING"));
  CHECK(is_hop_by_hop_field("proxy-authorization"));
  CHECK(is_hop_by_hop_field("Te"));
  CHECK_FALSE(is_hop_by_hop_field("Content-Length"));  // framing, handled by the codec
  CHECK_FALSE(is_hop_by_hop_field("Authorization"));
  CHECK_FALSE(is_hop_by_hop_field("Trailers"));
}

TEST_CASE("a Connection header may not list what frames or routes the request, in any spelling") {
  CHECK(frames_or_routes("Content-Length"));
  CHECK(frames_or_routes("content_length"));
  CHECK(frames_or_routes("Transfer.Encoding"));
  CHECK(frames_or_routes("HOST"));
  CHECK_FALSE(frames_or_routes("X-Host"));
  CHECK_FALSE(frames_or_routes("keep-alive"));
}

TEST_CASE("a host is a name or address with an optional port, never a list") {
  CHECK(valid_host("example.com"));
  CHECK(valid_host("example.com:8080"));
  CHECK(valid_host("[::1]:443"));
  CHECK(valid_host("10.0.0.1"));
  CHECK_FALSE(valid_host("a.com, b.com"));
  CHECK_FALSE(valid_host("a.com b.com"));
  CHECK_FALSE(valid_host("a.com/x"));
  CHECK_FALSE(valid_host("a.com@b.com"));
}

TEST_CASE("the Connection header's options are collected from every field, trimmed") {
  HeaderList h;
  h.add("Connection", "keep-alive, X-Secret");
  h.add("connection", " Upgrade ,,");
  const auto options = http1_connection_options(h);
  REQUIRE(options.size() == 3);
  CHECK(options[1] == "X-Secret");
  CHECK(options[2] == "Upgrade");
  CHECK(names_include(options, "x-secret"));
  CHECK_FALSE(names_include(options, "x-secret2"));
}

TEST_CASE("a chunk carries its size in hex") {
  CHECK(http1_chunk("hello") == "5\r\nhello\r\n");
  CHECK(http1_chunk(std::string(26, 'a')) == "1a\r\n" + std::string(26, 'a') + "\r\n");
}

TEST_CASE("a 101 may only switch to a protocol the request offered") {
  CHECK(http1_upgrade_offered("websocket", "websocket"));
  CHECK(http1_upgrade_offered("h2c, WebSocket", "websocket"));
  CHECK(http1_upgrade_offered("foo/2", "foo"));
  CHECK_FALSE(http1_upgrade_offered("foo/2", "foo/3"));
  CHECK_FALSE(http1_upgrade_offered("websocket", "h2c"));
  CHECK_FALSE(http1_upgrade_offered("websocket", ""));
}
