#include <doctest/doctest.h>

#include "core/claims.h"
#include "core/json_object.h"
#include "tests/support/tokens.h"

using namespace jwtgate::core;
using jwtgate::testing::kNow;

namespace {

// Parses a claims set and keeps the parser alive for the Claims view.
struct Parsed {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  explicit Parsed(const std::string& json) {
    REQUIRE(init_json_parser(parser));
    Status s = parse_json_object(parser, json, false, "claims", obj);
    REQUIRE_MESSAGE(s.ok(), s.detail());
  }
  Claims claims() const { return Claims(obj); }
};

ClaimPolicy skew30() {
  ClaimPolicy p;
  p.clock_skew_seconds = 30;
  return p;
}

Status check(const std::string& json, const ClaimPolicy& policy = skew30(), std::int64_t now = kNow) {
  Parsed p(json);
  return check_claims(p.claims(), policy, now);
}

std::string at(const char* name, double offset) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "{\"%s\":%.1f,\"exp\":%lld}", name, static_cast<double>(kNow) + offset,
                static_cast<long long>(kNow + 3600));
  return buf;
}

}  // namespace

TEST_CASE("exp boundaries around the clock skew") {
  auto exp = [](double offset) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "{\"exp\":%.1f}", static_cast<double>(kNow) + offset);
    return check(buf);
  };
  CHECK(exp(-29).ok());
  CHECK(exp(-29.5).ok());
  CHECK(exp(-30).reason() == Reason::expired);  // now must be strictly before exp + skew
  CHECK(exp(-31).reason() == Reason::expired);
  CHECK(exp(1000).ok());
  ClaimPolicy no_skew;
  no_skew.clock_skew_seconds = 0;
  CHECK(check("{\"exp\":" + std::to_string(kNow) + "}", no_skew).reason() == Reason::expired);
  CHECK(check("{\"exp\":" + std::to_string(kNow + 1) + "}", no_skew).ok());
}

TEST_CASE("nbf boundaries around the clock skew") {
  CHECK(check(at("nbf", 30)).ok());
  CHECK(check(at("nbf", 30.5)).reason() == Reason::not_yet_valid);
  CHECK(check(at("nbf", 31)).reason() == Reason::not_yet_valid);
  CHECK(check(at("nbf", -1000)).ok());
}

TEST_CASE("iat in the future beyond the clock skew is refused") {
  CHECK(check(at("iat", 30)).ok());
  CHECK(check(at("iat", 31)).reason() == Reason::issued_in_future);
  CHECK(check(at("iat", -100000)).ok());
}

TEST_CASE("exp is required unless configured otherwise") {
  CHECK(check("{}").reason() == Reason::missing_claim);
  ClaimPolicy p = skew30();
  p.require_exp = false;
  CHECK(check("{}", p).ok());
}

TEST_CASE("NumericDate accepts integers and decimals, nothing else") {
  CHECK(check("{\"exp\":" + std::to_string(kNow + 10) + ".75}").ok());
  CHECK(check("{\"exp\":1.8e9}").ok());
  CHECK(check("{\"exp\":9000000000000000000}").ok());  // far, but a time a 64-bit clock holds
  for (const char* bad : {R"({"exp":"1800000000"})", R"({"exp":true})", R"({"exp":null})", R"({"exp":[1800000000]})",
                          R"({"exp":{}})", R"({"exp":1800000000,"nbf":"0"})", R"({"exp":1800000000,"iat":false})"}) {
    CAPTURE(bad);
    CHECK(check(bad).reason() == Reason::invalid_claim);
  }
}

TEST_CASE("maximum token lifetime") {
  ClaimPolicy p = skew30();
  p.max_lifetime_seconds = 3600;
  auto life = [&](std::int64_t iat_offset, std::int64_t exp_offset) {
    return check("{\"iat\":" + std::to_string(kNow + iat_offset) + ",\"exp\":" + std::to_string(kNow + exp_offset) + "}", p);
  };
  CHECK(life(0, 3600).ok());
  CHECK(life(0, 3630).ok());  // within skew
  CHECK(life(0, 3631).reason() == Reason::lifetime_too_long);
  CHECK(life(-3000, 1000).reason() == Reason::lifetime_too_long);
  // Without iat or nbf, the lifetime left counts from now.
  CHECK(check("{\"exp\":" + std::to_string(kNow + 7200) + "}", p).reason() == Reason::lifetime_too_long);
  p.require_exp = false;
  CHECK(check("{}", p).reason() == Reason::missing_claim);
}

TEST_CASE("issuer must match exactly") {
  ClaimPolicy p = skew30();
  p.issuer = "https://idp.test/";
  const std::string exp = ",\"exp\":" + std::to_string(kNow + 60) + "}";
  CHECK(check(R"({"iss":"https://idp.test/")" + exp, p).ok());
  CHECK(check(R"({"iss":"https://idp.test")" + exp, p).reason() == Reason::bad_issuer);
  CHECK(check(R"({"iss":"HTTPS://IDP.TEST/")" + exp, p).reason() == Reason::bad_issuer);
  CHECK(check(R"({"iss":"https://idp.test/x")" + exp, p).reason() == Reason::bad_issuer);
  CHECK(check(R"({"sub":"a")" + exp, p).reason() == Reason::bad_issuer);
}

TEST_CASE("audience as a string or an array must intersect the configured audiences") {
  ClaimPolicy p = skew30();
  p.audiences = {"orders-api", "billing-api"};
  const std::string exp = ",\"exp\":" + std::to_string(kNow + 60) + "}";
  CHECK(check(R"({"aud":"orders-api")" + exp, p).ok());
  CHECK(check(R"({"aud":["x","billing-api"])" + exp, p).ok());
  CHECK(check(R"({"aud":"orders")" + exp, p).reason() == Reason::bad_audience);
  CHECK(check(R"({"aud":[])" + exp, p).reason() == Reason::bad_audience);
  CHECK(check(R"({"sub":"x")" + exp, p).reason() == Reason::bad_audience);
}

TEST_CASE("required claims may be dotted paths") {
  ClaimPolicy p = skew30();
  p.required_claims = {"sub", "realm_access.roles"};
  const std::string exp = ",\"exp\":" + std::to_string(kNow + 60) + "}";
  CHECK(check(R"({"sub":"a","realm_access":{"roles":["x"]})" + exp, p).ok());
  Status s = check(R"({"sub":"a","realm_access":{})" + exp, p);
  CHECK(s.reason() == Reason::missing_claim);
  CHECK(s.detail().find("realm_access.roles") != std::string::npos);
  CHECK(check(R"({"sub":null,"realm_access":{"roles":[]})" + exp, p).reason() == Reason::missing_claim);
}

TEST_CASE("claims are found at dotted paths, and names containing dots win") {
  Parsed p(R"({"realm_access":{"roles":["admin","user"]},"https://example.com/roles":["r"],"a":{"b.c":{"d":1}}})");
  Claims c = p.claims();
  REQUIRE(c.find("realm_access.roles"));
  CHECK(claim_header_value(*c.find("realm_access.roles")) == "admin,user");
  REQUIRE(c.find("https://example.com/roles"));
  CHECK(claim_header_value(*c.find("https://example.com/roles")) == "r");
  REQUIRE(c.find("a.b.c.d"));
  CHECK(claim_header_value(*c.find("a.b.c.d")) == "1");
  CHECK_FALSE(c.find("realm_access.missing"));
  CHECK_FALSE(c.find("realm_access.roles.x"));
}

TEST_CASE("scopes come from scope and scp together") {
  std::vector<std::string_view> got;
  Parsed a(R"({"scope":"read  write admin"})");
  REQUIRE(a.claims().scopes(got).ok());
  CHECK(got == std::vector<std::string_view>{"read", "write", "admin"});
  Parsed b(R"({"scp":["read","write"]})");
  REQUIRE(b.claims().scopes(got).ok());
  CHECK(got.size() == 2);
  Parsed c(R"({"scp":"one two","scope":"three"})");
  REQUIRE(c.claims().scopes(got).ok());
  CHECK(got.size() == 3);
  Parsed bad(R"({"scope":["read"]})");
  CHECK(bad.claims().scopes(got).reason() == Reason::invalid_claim);
  Parsed bad2(R"({"scp":[1]})");
  CHECK(bad2.claims().scopes(got).reason() == Reason::invalid_claim);
}

TEST_CASE("required scopes must all be granted") {
  Parsed p(R"({"scope":"read write"})");
  std::vector<std::string> need = {"read", "write"};
  CHECK(check_scopes(p.claims(), need).ok());
  need.push_back("admin");
  Status s = check_scopes(p.claims(), need);
  CHECK(s.reason() == Reason::insufficient_scope);
  CHECK(s.detail().find("admin") != std::string::npos);
  Parsed none(R"({})");
  CHECK(check_scopes(none.claims(), need).reason() == Reason::insufficient_scope);
  std::vector<std::string> prefix = {"rea"};
  CHECK(check_scopes(p.claims(), prefix).reason() == Reason::insufficient_scope);
}

TEST_CASE("required claim values match strings, array elements, numbers and booleans") {
  Parsed p(R"({"realm_access":{"roles":["user","admin"]},"tier":"gold","level":3,"staff":true})");
  std::vector<std::string> admin = {"admin"}, ops = {"ops", "sre"}, gold = {"silver", "gold"};
  std::vector<std::string> three = {"3"}, yes = {"true"};
  CHECK(check_claim_values(p.claims(), "realm_access.roles", admin).ok());
  CHECK(check_claim_values(p.claims(), "realm_access.roles", ops).reason() == Reason::claim_mismatch);
  CHECK(check_claim_values(p.claims(), "tier", gold).ok());
  CHECK(check_claim_values(p.claims(), "level", three).ok());
  CHECK(check_claim_values(p.claims(), "staff", yes).ok());
  CHECK(check_claim_values(p.claims(), "missing", admin).reason() == Reason::claim_mismatch);
}

TEST_CASE("claim header values: strings as is, arrays joined, objects compact, control characters never") {
  Parsed p(R"({"s":"alice","n":42,"d":1.5,"b":false,"a":["x",1,{"k":"v"}],"o":{"k": ["v"]},"z":null,)"
           R"("crlf":"a\r\nX-Injected: 1","nul":"a\u0000b","arr_ctl":["ok","bad\n"],"obj_ctl":{"k":"a\nb"}})");
  Claims c = p.claims();
  CHECK(claim_header_value(*c.find("s")) == "alice");
  CHECK(claim_header_value(*c.find("n")) == "42");
  CHECK(claim_header_value(*c.find("d")) == "1.5");
  CHECK(claim_header_value(*c.find("b")) == "false");
  CHECK(claim_header_value(*c.find("a")) == "x,1,{\"k\":\"v\"}");
  CHECK(claim_header_value(*c.find("o")) == "{\"k\":[\"v\"]}");
  CHECK_FALSE(claim_header_value(*c.find("z")));
  CHECK_FALSE(claim_header_value(*c.find("crlf")));
  CHECK_FALSE(claim_header_value(*c.find("nul")));
  CHECK_FALSE(claim_header_value(*c.find("arr_ctl")));
  // Inside JSON the newline is escaped, so the compact form is safe.
  CHECK(claim_header_value(*c.find("obj_ctl")) == "{\"k\":\"a\\nb\"}");
}

TEST_CASE("a NumericDate beyond any 64-bit time is invalid, not 'never expires'") {
  for (const char* exp : {"1e300", "9.3e18", "18446744073709551615", "-1e300"}) {
    CAPTURE(exp);
    const Status s = check(std::string("{\"exp\":") + exp + "}");
    CHECK(s.reason() == Reason::invalid_claim);
  }
  CHECK(check("{\"exp\":" + std::to_string(kNow + 3600) + ",\"nbf\":-1e300}").reason() == Reason::invalid_claim);
  CHECK(check("{\"exp\":" + std::to_string(kNow + 3600) + ",\"iat\":1e300}").reason() == Reason::invalid_claim);
  CHECK(check("{\"exp\":4102444800}").ok());  // the year 2100 is a real time
}
