#include <doctest/doctest.h>

#include <set>

#include "core/rfc6750.h"

using namespace jwtgate::core;

TEST_CASE("reasons map to HTTP status and RFC 6750 error codes") {
  CHECK(http_error(Reason::missing_token).http_status == 401);
  CHECK(http_error(Reason::missing_token).error_code.empty());
  CHECK(http_error(Reason::expired).http_status == 401);
  CHECK(http_error(Reason::expired).error_code == "invalid_token");
  CHECK(http_error(Reason::bad_signature).error_code == "invalid_token");
  CHECK(http_error(Reason::insufficient_scope).http_status == 403);
  CHECK(http_error(Reason::insufficient_scope).error_code == "insufficient_scope");
  CHECK(http_error(Reason::claim_mismatch).http_status == 403);
  CHECK(http_error(Reason::multiple_tokens).http_status == 400);
  CHECK(http_error(Reason::multiple_tokens).error_code == "invalid_request");
  CHECK(http_error(Reason::keys_unavailable).http_status == 503);
  CHECK(http_error(Reason::certificate_binding).http_status == 401);
  CHECK(http_error(Reason::certificate_binding).error_code == "invalid_token");
}

TEST_CASE("every reason has a distinct stable name") {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(kLastReason); ++i) {
    auto name = reason_name(static_cast<Reason>(i));
    CHECK(name != "unknown");
    CHECK(names.insert(name).second);
  }
  CHECK(reason_name(Reason::bad_signature) == "bad_signature");
  CHECK(reason_name(Reason::unknown_kid) == "unknown_kid");
  CHECK(reason_name(Reason::certificate_binding) == "certificate_binding");
  // One past the last reason has no name: kLastReason really is the last.
  CHECK(reason_name(static_cast<Reason>(static_cast<int>(kLastReason) + 1)) == "unknown");
}

TEST_CASE("WWW-Authenticate carries no error attribute when no token was sent") {
  CHECK(www_authenticate(Status(Reason::missing_token, "")) == "Bearer realm=\"jwtgate\"");
}

TEST_CASE("WWW-Authenticate descriptions cannot break out of the header") {
  std::string h = www_authenticate(Status(Reason::invalid_claim, "bad \"x\"\r\nSet-Cookie: a=b\\"));
  CHECK(h.find('\r') == std::string::npos);
  CHECK(h.find('\n') == std::string::npos);
  CHECK(h == "Bearer realm=\"jwtgate\", error=\"invalid_token\", error_description=\"bad ?x???Set-Cookie: a=b?\"");
}

TEST_CASE("error bodies are JSON with escaped text") {
  CHECK(error_body(Status(Reason::expired, "the token has expired")) ==
        R"({"error":"invalid_token","error_description":"the token has expired"})");
  CHECK(error_body(Status(Reason::malformed, "a\"b\n")) == R"({"error":"invalid_token","error_description":"a\"b\n"})");
}
