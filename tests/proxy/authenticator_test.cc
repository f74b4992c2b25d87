#include <doctest/doctest.h>

#include "config/loader.h"
#include "core/certificate_binding.h"
#include "core/revocation.h"
#include "core/rfc6750.h"
#include "proxy/http/authenticator.h"
#include "tests/support/tokens.h"

using namespace jwtgate;
using namespace jwtgate::testing;
using proxy::Authenticator;
using proxy::HeaderList;

namespace {

// `bound_provider`: the provider (by index) that gets require_certificate_binding, -1 for none.
std::shared_ptr<const proxy::RuntimeConfig> runtime(const std::string& yaml, int bound_provider = -1) {
  config::LoadOptions o;
  o.check_secrets = false;
  auto r = config::load_config(yaml, "test.yaml", o);
  REQUIRE_MESSAGE(r.config, r.diagnostics.format());
  if (bound_provider >= 0) r.config->providers.at(static_cast<std::size_t>(bound_provider)).require_certificate_binding = true;
  return std::make_shared<const proxy::RuntimeConfig>(std::move(*r.config));
}

const std::string kYaml = R"(upstream: http://127.0.0.1:3000
providers:
  - name: main
    issuer: https://idp.test/
    audiences: [api]
    algorithms: [ES256]
    jwks: {file: /nonexistent}
    claims_to_headers: {sub: X-Sub, realm_access.roles: X-Roles}
    forward_payload_header: X-Payload
  - name: partner
    issuer: https://partner.test/
    audiences: [api]
    algorithms: [EdDSA]
    jwks: {file: /nonexistent}
    forward_token: false
routes:
  - prefix: /public
    auth: none
  - prefix: /maybe
    auth: optional
  - prefix: /admin
    require_scopes: [admin]
    require_claims: {realm_access.roles: [boss]}
  - prefix: /main-only
    providers: [main]
  - prefix: /
)";

HeaderList bearer(const std::string& token) {
  HeaderList h;
  h.add("Authorization", "Bearer " + token);
  return h;
}

struct Fixture {
  explicit Fixture(int bound_provider = -1) : rc(runtime(kYaml, bound_provider)) { install_keys(); }
  explicit Fixture(const std::string& yaml) : rc(runtime(yaml)) { install_keys(); }
  std::shared_ptr<const proxy::RuntimeConfig> rc;
  TestKey main = make_key(core::Alg::ES256, "m1");
  TestKey partner = make_key(core::Alg::EdDSA, "p1");
  Authenticator auth{rc, 64};
  void install_keys() {
    auth.set_keys(0, std::make_shared<core::KeySet>(std::move(main.keys)));
    auth.set_keys(1, std::make_shared<core::KeySet>(std::move(partner.keys)));
  }
  const config::Route& route(std::string_view path) { return *rc->routes.match(path, "GET"); }
  std::string main_token(const std::string& extra = "") { return signed_token(header_for(main), payload(extra), main); }
  std::string partner_token() {
    return signed_token(header_for(partner),
                        R"({"iss":"https://partner.test/","aud":"api","sub":"p","exp":)" + std::to_string(kNow + 60) + "}",
                        partner);
  }
};

}  // namespace

TEST_CASE("a valid token passes with its claims as headers; a second use hits the cache") {
  Fixture f;
  const std::string token = f.main_token(R"("realm_access":{"roles":["a","b"]})");
  auto r = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, {});
  REQUIRE_MESSAGE(r.status.ok(), r.status.detail());
  CHECK(r.authenticated);
  CHECK_FALSE(r.cache_hit);
  REQUIRE(r.add_headers.size() == 3);
  CHECK(r.add_headers[0].name == "X-Sub");
  CHECK(r.add_headers[0].value == "alice");
  CHECK(r.add_headers[1].value == "a,b");
  CHECK(r.add_headers[2].name == "X-Payload");
  auto again = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow + 10, {});
  CHECK(again.status.ok());
  CHECK(again.cache_hit);
  CHECK(again.add_headers.size() == 3);
}

TEST_CASE("a cache hit still checks exp, and key changes empty the cache") {
  Fixture f;
  const std::string token = f.main_token();
  REQUIRE(f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, {}).status.ok());
  CHECK(f.auth.cache_size() == 1);
  auto late = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow + 300 + 30, {});
  CHECK(late.cache_hit);
  CHECK(late.status.reason() == core::Reason::expired);
  TestKey rotated = make_key(core::Alg::ES256, "m2");
  f.auth.set_keys(0, std::make_shared<core::KeySet>(std::move(rotated.keys)));
  CHECK(f.auth.cache_size() == 0);
  CHECK(f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, {}).status.reason() == core::Reason::unknown_kid);
}

TEST_CASE("auth modes: none ignores tokens, optional passes without one but not with a bad one") {
  Fixture f;
  CHECK(f.auth.authenticate(f.route("/public"), bearer("garbage"), "", kNow, {}).status.ok());
  CHECK_FALSE(f.auth.authenticate(f.route("/public"), bearer(f.main_token()), "", kNow, {}).authenticated);
  auto anon = f.auth.authenticate(f.route("/maybe"), HeaderList(), "", kNow, {});
  CHECK(anon.status.ok());
  CHECK_FALSE(anon.authenticated);
  CHECK(f.auth.authenticate(f.route("/maybe"), bearer("a.b.c"), "", kNow, {}).status.reason() == core::Reason::malformed);
  CHECK(f.auth.authenticate(f.route("/x"), HeaderList(), "", kNow, {}).status.reason() == core::Reason::missing_token);
}

TEST_CASE("route scopes and claims are enforced, from the cache too") {
  Fixture f;
  const std::string weak = f.main_token(R"("scope":"read","realm_access":{"roles":["boss"]})");
  const std::string strong = f.main_token(R"("scope":"read admin","realm_access":{"roles":["boss"]})");
  const std::string wrong_role = f.main_token(R"("scope":"admin","realm_access":{"roles":["user"]})");
  CHECK(f.auth.authenticate(f.route("/admin"), bearer(weak), "", kNow, {}).status.reason() == core::Reason::insufficient_scope);
  CHECK(f.auth.authenticate(f.route("/admin"), bearer(strong), "", kNow, {}).status.ok());
  CHECK(f.auth.authenticate(f.route("/admin"), bearer(wrong_role), "", kNow, {}).status.reason() == core::Reason::claim_mismatch);
  // weak is now cached from /admin; it still passes the catch-all and still fails /admin.
  CHECK(f.auth.authenticate(f.route("/x"), bearer(weak), "", kNow, {}).status.ok());
  CHECK(f.auth.authenticate(f.route("/admin"), bearer(weak), "", kNow, {}).status.reason() == core::Reason::insufficient_scope);
}

TEST_CASE("the token's iss selects the provider, and only that provider's keys verify it") {
  Fixture f;
  auto p = f.auth.authenticate(f.route("/x"), bearer(f.partner_token()), "", kNow, {});
  REQUIRE_MESSAGE(p.status.ok(), p.status.detail());
  CHECK(p.provider == 1);
  // partner has forward_token: false; the token came in the route's first source (Authorization).
  CHECK(p.strip_sources == 1);
  CHECK(f.auth.config().route_token_sources[f.auth.config().routes.index_of(&f.route("/x"))][0].name == "Authorization");
  CHECK(f.auth.authenticate(f.route("/main-only"), bearer(f.partner_token()), "", kNow, {}).status.reason() ==
        core::Reason::bad_issuer);
  // A token claiming the partner's issuer but signed by main's key.
  const std::string forged = signed_token(header_for(f.main),
                                          R"({"iss":"https://partner.test/","aud":"api","exp":)" + std::to_string(kNow + 60) + "}",
                                          f.main);
  CHECK_FALSE(f.auth.authenticate(f.route("/x"), bearer(forged), "", kNow, {}).status.ok());
  // An unknown issuer.
  const std::string stranger = signed_token(header_for(f.main),
                                            R"({"iss":"https://evil.test/","aud":"api","exp":)" + std::to_string(kNow + 60) + "}",
                                            f.main);
  CHECK(f.auth.authenticate(f.route("/x"), bearer(stranger), "", kNow, {}).status.reason() == core::Reason::bad_issuer);
}

TEST_CASE("a provider without keys answers keys_unavailable") {
  Fixture f;
  f.auth.set_keys(0, nullptr);
  CHECK(f.auth.authenticate(f.route("/x"), bearer(f.main_token()), "", kNow, {}).status.reason() ==
        core::Reason::keys_unavailable);
}

namespace {

// Thumbprints of two client certificates (any bytes stand for a DER here; core's tests check
// the thumbprint of a real certificate).
const std::string kCertA = core::certificate_thumbprint("client certificate A");
const std::string kCertB = core::certificate_thumbprint("client certificate B");

std::string bound_to(const std::string& thumbprint) { return R"("cnf":{"x5t#S256":")" + thumbprint + R"("})"; }

}  // namespace

TEST_CASE("a certificate-bound token passes only on a connection with its certificate") {
  Fixture f;
  REQUIRE(kCertA.size() == core::kThumbprintLength);
  const std::string token = f.main_token(bound_to(kCertA));
  auto ok = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, kCertA);
  REQUIRE_MESSAGE(ok.status.ok(), ok.status.detail());
  CHECK(ok.authenticated);
  CHECK_FALSE(ok.cache_hit);

  auto wrong = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, kCertB);
  CHECK(wrong.cache_hit);
  CHECK(wrong.status.reason() == core::Reason::certificate_binding);
  CHECK_FALSE(wrong.authenticated);
  CHECK(wrong.add_headers.empty());
  auto none = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, {});
  CHECK(none.cache_hit);
  CHECK(none.status.reason() == core::Reason::certificate_binding);
  // 401 invalid_token, and the description says why without a byte of the token or thumbprint.
  CHECK(core::http_error(none.status.reason()).http_status == 401);
  const std::string challenge = core::www_authenticate(none.status);
  CHECK(challenge.find("error=\"invalid_token\"") != std::string::npos);
  CHECK(challenge.find(kCertA) == std::string::npos);
  CHECK(challenge.find(token.substr(token.find('.') + 1, 24)) == std::string::npos);
  // A cached refusal does not stick: the right certificate still passes, from the cache.
  auto again = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, kCertA);
  CHECK(again.status.ok());
  CHECK(again.cache_hit);
}

TEST_CASE("a bound token refused on its first use is still bound when the cache serves it") {
  Fixture f;
  const std::string token = f.main_token(bound_to(kCertA));
  auto first = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, kCertB);
  CHECK_FALSE(first.cache_hit);
  CHECK(first.status.reason() == core::Reason::certificate_binding);
  auto second = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, kCertB);
  CHECK(second.cache_hit);
  CHECK(second.status.reason() == core::Reason::certificate_binding);
  CHECK(f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, kCertA).status.ok());
  // The binding is checked before scopes: a token this client cannot use says that first.
  CHECK(f.auth.authenticate(f.route("/admin"), bearer(token), "", kNow, kCertB).status.reason() ==
        core::Reason::certificate_binding);
  CHECK(f.auth.authenticate(f.route("/admin"), bearer(token), "", kNow, kCertA).status.reason() ==
        core::Reason::insufficient_scope);
}

TEST_CASE("unbound tokens pass with or without a client certificate when binding is not required") {
  Fixture f;
  const std::string token = f.main_token();
  auto without = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, {});
  CHECK(without.status.ok());
  auto with = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, kCertA);
  CHECK(with.status.ok());
  CHECK(with.cache_hit);
  // A token bound by a method jwtgate cannot check (DPoP's jkt) is no bearer token, certificate or not.
  const std::string dpop = f.main_token(R"("cnf":{"jkt":"abc"})");
  CHECK(f.auth.authenticate(f.route("/x"), bearer(dpop), "", kNow, {}).status.reason() == core::Reason::certificate_binding);
  CHECK(f.auth.authenticate(f.route("/x"), bearer(dpop), "", kNow, kCertA).status.reason() ==
        core::Reason::certificate_binding);
}

TEST_CASE("require_certificate_binding refuses unbound tokens, cached or not, and only for its provider") {
  Fixture f(0);  // main requires binding; partner does not
  const std::string unbound = f.main_token();
  auto first = f.auth.authenticate(f.route("/x"), bearer(unbound), "", kNow, kCertA);
  CHECK_FALSE(first.cache_hit);
  CHECK(first.status.reason() == core::Reason::certificate_binding);
  auto cached = f.auth.authenticate(f.route("/x"), bearer(unbound), "", kNow, kCertA);
  CHECK(cached.cache_hit);
  CHECK(cached.status.reason() == core::Reason::certificate_binding);
  CHECK(f.auth.authenticate(f.route("/x"), bearer(unbound), "", kNow, {}).status.reason() ==
        core::Reason::certificate_binding);

  const std::string bound = f.main_token(bound_to(kCertA));
  CHECK(f.auth.authenticate(f.route("/x"), bearer(bound), "", kNow, kCertA).status.ok());
  CHECK(f.auth.authenticate(f.route("/x"), bearer(bound), "", kNow, kCertB).status.reason() ==
        core::Reason::certificate_binding);

  CHECK(f.auth.authenticate(f.route("/x"), bearer(f.partner_token()), "", kNow, {}).status.ok());
}

TEST_CASE("a malformed cnf is an invalid claim and is never cached") {
  Fixture f;
  for (const std::string& extra : {std::string(R"("cnf":"bound")"), std::string(R"("cnf":{"x5t#S256":"short"})"),
                                   std::string(R"("cnf":{"x5t#S256":")") + kCertA + R"(="})"}) {
    CAPTURE(extra);
    const std::string token = f.main_token(extra);
    CHECK(f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, kCertA).status.reason() ==
          core::Reason::invalid_claim);
  }
  CHECK(f.auth.cache_size() == 0);
}

TEST_CASE("revocations apply to every request, cache hits included, and a logout token is no access token") {
  Fixture f(kYaml + "revocation: {file: /nonexistent}\n");
  f.auth.set_revocations(std::make_shared<core::RevocationSet>());  // none revoked yet
  const std::string token = f.main_token(R"("jti":"j-1","sid":"s-1")");
  REQUIRE(f.auth.authenticate(f.route("/x"), bearer(token), "", kNow, {}).status.ok());  // now cached
  auto with = [](const std::string& line) {
    auto e = core::parse_revocation_entry(line);
    REQUIRE(e.ok());
    auto set = std::make_shared<core::RevocationSet>();
    set->base = std::make_shared<const core::RevocationTable>(std::vector<core::RevocationRecord>{*core::revocation_record(*e)}, kNow);
    return set;
  };
  for (const char* line : {R"({"jti":"j-1","exp":1700000300})", R"({"iss":"https://idp.test/","sid":"s-1"})",
                           R"({"iss":"https://idp.test/","sub":"alice","before":1700000001})"}) {
    f.auth.set_revocations(with(line));
    auto r = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow + 1, {});
    CHECK_MESSAGE(r.cache_hit, line);
    CHECK_MESSAGE(r.status.reason() == core::Reason::revoked, line);
    CHECK(core::http_error(r.status.reason()).http_status == 401);
    CHECK(core::http_error(r.status.reason()).error_code == "invalid_token");
  }
  // Issued at the cut-off: after it.
  f.auth.set_revocations(with(R"({"iss":"https://idp.test/","sub":"alice","before":1700000000})"));
  CHECK(f.auth.authenticate(f.route("/x"), bearer(token), "", kNow + 1, {}).status.ok());
  auto deny = with(R"({"jti":"other","exp":1700000300})");
  deny->deny_all = true;
  f.auth.set_revocations(deny);
  auto unavailable = f.auth.authenticate(f.route("/x"), bearer(token), "", kNow + 1, {});
  CHECK(unavailable.status.reason() == core::Reason::revocation_unavailable);
  CHECK(core::http_error(unavailable.status.reason()).http_status == 503);
  // A public route needs no token and is not affected.
  CHECK(f.auth.authenticate(f.route("/public"), bearer(token), "", kNow + 1, {}).status.ok());
  // Revocation configured and no set yet (it is given before the first request): refused.
  f.auth.set_revocations(nullptr);
  CHECK(f.auth.authenticate(f.route("/x"), bearer(token), "", kNow + 1, {}).status.reason() ==
        core::Reason::revocation_unavailable);
  // What a revocation could not name is refused when revocation is on.
  f.auth.set_revocations(with(R"({"jti":"other","exp":1700000300})"));
  for (const char* claims : {R"("jti":777)", R"("sid":["a"])", R"("jti":true)"}) {
    const std::string odd = signed_token(header_for(f.main), payload(claims), f.main);
    CHECK_MESSAGE(f.auth.authenticate(f.route("/x"), bearer(odd), "", kNow, {}).status.reason() == core::Reason::invalid_claim,
                  claims);
  }
  const std::string long_sid = signed_token(header_for(f.main), payload("\"sid\":\"" + std::string(4097, 'x') + "\""), f.main);
  CHECK(f.auth.authenticate(f.route("/x"), bearer(long_sid), "", kNow, {}).status.reason() == core::Reason::invalid_claim);

  const std::string logout = signed_token(
      R"({"alg":"ES256","kid":"m1"})",
      payload(R"("jti":"L","sid":"s-1","events":{"http://schemas.openid.net/event/backchannel-logout":{}})"), f.main);
  auto as_access = f.auth.authenticate(f.route("/x"), bearer(logout), "", kNow, {});
  CHECK(as_access.status.reason() == core::Reason::invalid_claim);
}
