#include <doctest/doctest.h>

#include "core/base64url.h"

using jwtgate::core::base64url_decode;
using jwtgate::core::base64url_encode;

TEST_CASE("base64url round-trips every length and byte value") {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    std::string out;
    REQUIRE(base64url_decode(base64url_encode(bytes), out));
    CHECK(out == bytes);
    bytes.push_back(static_cast<char>(i * 37));
  }
}

TEST_CASE("base64url matches RFC 4648 test vectors in the URL-safe alphabet") {
  CHECK(base64url_encode("") == "");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foo") == "Zm9v");
  CHECK(base64url_encode("foob") == "Zm9vYg");
  CHECK(base64url_encode(std::string("\xfb\xff\xbf", 3)) == "-_-_");
}

TEST_CASE("base64url rejects padding, foreign characters and impossible lengths") {
  std::string out;
  CHECK_FALSE(base64url_decode("Zg==", out));
  CHECK_FALSE(base64url_decode("Zm8=", out));
  CHECK_FALSE(base64url_decode("Zm9v+/", out));   // standard alphabet
  CHECK_FALSE(base64url_decode("Zm 9v", out));    // whitespace
  CHECK_FALSE(base64url_decode("Zm9v\n", out));
  CHECK_FALSE(base64url_decode("Zm9vY", out));    // length % 4 == 1
  CHECK_FALSE(base64url_decode(std::string("Zm\0v", 4), out));
  CHECK_FALSE(base64url_decode("Zm9v\xc3\xa9", out));
}

TEST_CASE("base64url rejects non-canonical trailing bits") {
  std::string out;
  CHECK(base64url_decode("Zg", out));
  CHECK_FALSE(base64url_decode("Zh", out));   // same first byte, low bits set
  CHECK(base64url_decode("Zm8", out));
  CHECK_FALSE(base64url_decode("Zm9", out));
}
