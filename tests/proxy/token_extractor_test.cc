#include <doctest/doctest.h>

#include "proxy/http/token_extractor.h"

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
  CHECK(t.found_in == 0b011);  // both places, so forward_token: false removes it from both
}

TEST_CASE("two cookies of the token's name are an invalid request, whatever their values") {
  const std::vector<TokenSource> cookie = {{TokenSource::Kind::cookie, "at", ""}};
  ExtractedToken t;
  for (std::vector<const char*> headers : std::vector<std::vector<const char*>>{
           {"at=a.b.c; at=x.y.z"},       // in one header (a server may read either)
           {"at=a.b.c; at=a.b.c"},       // even the same value twice
           {"at=a.b.c", "at=x.y.z"},     // in two headers
           {"at=a.b.c; other=1", " at =x.y.z"},
           {"at=a.b.c;at"},              // a bare name some servers read as at=""
           {"at=a.b.c; AT=x.y.z"},       // ASP.NET Core reads cookie names without case
           {"x=1, at=a.b.c, at=x.y.z"},  // ',' separates pairs to RFC 2965-era servers
       }) {
    HeaderList h;
    for (const char* v : headers) h.add("Cookie", v);
    CAPTURE(headers[0]);
    CHECK(proxy::extract_token(h, "", cookie, t).reason() == core::Reason::multiple_tokens);
  }
}

TEST_CASE("cookie names and values are trimmed of spaces and tabs (RFC 6265 section 5.2)") {
  const std::vector<TokenSource> cookie = {{TokenSource::Kind::cookie, "at", ""}};
  for (const char* v : {"at=a.b.c", " at=a.b.c ", "x=1;\tat\t=\ta.b.c", "x=1 ;at = a.b.c;y=2", "at=\"a.b.c\""}) {
    HeaderList h;
    h.add("Cookie", v);
    ExtractedToken t;
    CAPTURE(v);
    REQUIRE(proxy::extract_token(h, "", cookie, t).ok());
    CHECK(t.token == "a.b.c");
  }
  // Removal uses the same reading, so a spelling that was read as the token is also removed.
  CHECK(proxy::without_cookie("x=1 ;\tat = a.b.c; y=2", "at") == "x=1; y=2");
  CHECK(proxy::without_cookie("at=a.b.c", "at").empty());
  CHECK(proxy::without_cookie("at2=1;  at=q", "at") == "at2=1");
  CHECK(proxy::without_cookie("At=1; x=2", "at") == "x=2");
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

TEST_CASE("query parameter names are compared as the upstream decodes them") {
  const std::vector<TokenSource> query = {{TokenSource::Kind::query, "access_token", ""}};
  ExtractedToken t;
  CHECK(proxy::extract_token(HeaderList(), "access_token=a.b.c&access%5Ftoken=x.y.z", query, t).reason() ==
        core::Reason::multiple_tokens);
  CHECK(proxy::extract_token(HeaderList(), "%61ccess_token=a.b.c&access_token=x.y.z", query, t).reason() ==
        core::Reason::multiple_tokens);
  REQUIRE(proxy::extract_token(HeaderList(), "x=1&access%5ftoken=q.r.s", query, t).ok());
  CHECK(t.token == "q.r.s");
  CHECK(proxy::without_query_param("a=1&access%5Ftoken=q&%61ccess_token=r&b=2", "access_token") == "a=1&b=2");
  REQUIRE(proxy::extract_token(HeaderList(), "access_tokens=q.r.s&access_toke=x", query, t).ok());
  CHECK_FALSE(t.present);
  // As ASP.NET Core (case), Rack (';'), PHP (mangling, arrays, NUL) read names.
  for (const char* q : {"access_token=a&ACCESS_TOKEN=b", "access_token=a;access_token=b", "access_token=a&access.token=b",
                        "access_token=a&access+token=b", "access_token=a&access[token=b", "access_token=a&access_token[]=b",
                        "access_token=a&access_token%00x=b", "access_token=a&+access_token=b"}) {
    CAPTURE(q);
    CHECK(proxy::extract_token(HeaderList(), q, query, t).reason() == core::Reason::multiple_tokens);
  }
  CHECK(proxy::without_query_param("a=1;access_token=x;b=2&ACCESS_TOKEN=y&c=3", "access_token") == "a=1;b=2&c=3");
}

TEST_CASE("header names are the same to a CGI stack when only case and punctuation differ") {
  for (const char* name : {"X-Jwt-Sub", "x_jwt_sub", "X.Jwt.Sub", "X~JWT~SUB", "x!jwt#sub"}) {
    CAPTURE(name);
    CHECK(proxy::same_header_to_cgi(name, "X-Jwt-Sub"));
  }
  CHECK_FALSE(proxy::same_header_to_cgi("X-Jwt-Subs", "X-Jwt-Sub"));
  CHECK_FALSE(proxy::same_header_to_cgi("X-Jwt-Sua", "X-Jwt-Sub"));
  CHECK_FALSE(proxy::same_header_to_cgi("XJwt-Sub", "X-Jwt-Sub"));
}
