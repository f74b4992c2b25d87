#include <doctest/doctest.h>

#include "proxy/token_extractor.h"

using namespace jwtgate;
using config::TokenSource;
using proxy::ExtractedToken;
using proxy::HeaderList;

namespace {
const std::vector<TokenSource> kBearer = {{TokenSource::Kind::header, "Authorization", "Bearer "}};
const std::vector<TokenSource> kAll = {{TokenSource::Kind::header, "Authorization", "Bearer "},
                                       {TokenSource::Kind::cookie, "access_token", ""},
                                       {TokenSource::Kind::query, "access_token", ""}};
}  // namespace

TEST_CASE("the bearer scheme is matched case-insensitively") {
  for (const char* value : {"Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER abc.def.ghi", "Bearer   abc.def.ghi  "}) {
    HeaderList h;
    h.add("authorization", value);
    ExtractedToken t;
    REQUIRE(proxy::extract_token(h, "", kBearer, t).ok());
    CHECK(t.present);
    CHECK(t.token == "abc.def.ghi");
  }
}

TEST_CASE("other schemes and empty values are not tokens") {
  for (const char* value : {"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearerabc"}) {
    HeaderList h;
    h.add("Authorization", value);
    ExtractedToken t;
    REQUIRE(proxy::extract_token(h, "", kBearer, t).ok());
    CHECK_FALSE(t.present);
  }
}

TEST_CASE("two different tokens, or the token header twice, are an invalid request") {
  HeaderList twice;
  twice.add("Authorization", "Bearer a.b.c");
  twice.add("Authorization", "Bearer a.b.c");
  ExtractedToken t;
  CHECK(proxy::extract_token(twice, "", kBearer, t).reason() == core::Reason::multiple_tokens);

  HeaderList both;
  both.add("Authorization", "Bearer a.b.c");
  both.add("Cookie", "x=1; access_token=d.e.f");
  CHECK(proxy::extract_token(both, "", kAll, t).reason() == core::Reason::multiple_tokens);
  CHECK(proxy::extract_token(HeaderList(), "access_token=a&access_token=b", kAll, t).reason() ==
        core::Reason::multiple_tokens);

  // The same token in header and cookie is one token.
  HeaderList same;
  same.add("Authorization", "Bearer a.b.c");
  same.add("Cookie", "access_token=a.b.c");
  REQUIRE(proxy::extract_token(same, "", kAll, t).ok());
  CHECK(t.token == "a.b.c");
}

TEST_CASE("cookies and query parameters are found by exact name") {
  HeaderList h;
  h.add("Cookie", "other=1; my_access_token=x.y.z; access_token=\"a.b.c\"");
  ExtractedToken t;
  REQUIRE(proxy::extract_token(h, "", kAll, t).ok());
  CHECK(t.token == "a.b.c");
  REQUIRE(proxy::extract_token(HeaderList(), "x=1&access_token=q.r.s", kAll, t).ok());
  CHECK(t.token == "q.r.s");
  // Query tokens are only read when configured.
  REQUIRE(proxy::extract_token(HeaderList(), "access_token=q.r.s", kBearer, t).ok());
  CHECK_FALSE(t.present);
}
