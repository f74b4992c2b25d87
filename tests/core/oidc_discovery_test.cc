#include "core/oidc_discovery.h"

#include <doctest/doctest.h>

using namespace jwtgate::core;

TEST_CASE("the discovery URL drops one trailing slash of the issuer") {
  CHECK(discovery_url("https://idp.example") == "https://idp.example/.well-known/openid-configuration");
  CHECK(discovery_url("https://idp.example/") == "https://idp.example/.well-known/openid-configuration");
  CHECK(discovery_url("https://idp.example/tenant/") == "https://idp.example/tenant/.well-known/openid-configuration");
}

TEST_CASE("jwks_uri is taken only from a document whose issuer matches exactly") {
  const std::string doc = R"({"issuer":"https://idp.example/","jwks_uri":"https://idp.example/keys"})";
  auto ok = jwks_uri_from_discovery(doc, "https://idp.example/", false);
  REQUIRE(ok);
  CHECK(ok.value() == "https://idp.example/keys");

  // No normalisation: a trailing slash, case or a port make a different issuer (OIDC Discovery 4.3).
  for (const char* configured : {"https://idp.example", "https://IDP.example/", "https://idp.example:443/"}) {
    CAPTURE(configured);
    auto r = jwks_uri_from_discovery(doc, configured, false);
    REQUIRE_FALSE(r);
    CHECK(r.status().reason() == Reason::bad_issuer);
    CHECK(r.status().detail().find("https://idp.example/") != std::string::npos);
  }
}

TEST_CASE("a discovery document without a usable jwks_uri is refused") {
  const char* bad[] = {
      R"({"jwks_uri":"https://idp.example/keys"})",
      R"({"issuer":"https://idp.example/"})",
      R"({"issuer":"https://idp.example/","jwks_uri":42})",
      R"({"issuer":"https://idp.example/","jwks_uri":"http://idp.example/keys"})",
      R"({"issuer":"https://idp.example/","jwks_uri":"file:///etc/passwd"})",
      R"({"issuer":"https://idp.example/","jwks_uri":"https://idp.example/a b"})",
      R"({"issuer":"https://idp.example/","issuer":"https://idp.example/","jwks_uri":"https://x/"})",
      "not json",
  };
  for (const char* doc : bad) {
    CAPTURE(doc);
    CHECK_FALSE(jwks_uri_from_discovery(doc, "https://idp.example/", false));
  }
  // Plain http only when the caller allows it (an http issuer on loopback, for development).
  CHECK(jwks_uri_from_discovery(R"({"issuer":"http://127.0.0.1:9/","jwks_uri":"http://127.0.0.1:9/k"})",
                                "http://127.0.0.1:9/", true));
}

TEST_CASE("a jwks_uri with any control or non-ASCII byte is refused (found by fuzz_oidc_discovery)") {
  // It goes into fetches and log lines; only \0, CR, LF, space and tab used to be refused, so DEL,
  // VT or ESC (a terminal escape in a log) passed.
  for (const char* uri : {"https://keycl\\u007fak.example.com/certs", "https://idp.example/\\u000bkeys",
                          "https://idp.example/\\u001b[2Jkeys", "https://idp.example/k\\u00e9ys",
                          "https://idp.example/k\xc3\xa9ys"}) {
    CAPTURE(uri);
    const std::string doc = std::string(R"({"issuer":"https://idp.example/","jwks_uri":")") + uri + "\"}";
    CHECK_FALSE(jwks_uri_from_discovery(doc, "https://idp.example/", false));
  }
  CHECK(jwks_uri_from_discovery(R"({"issuer":"https://idp.example/","jwks_uri":"https://idp.example/k%C3%A9ys?a=b~"})",
                                "https://idp.example/", false));
}
