// The development IdP's routes and minting, without a socket: what each request is answered
// with, and that the tokens verify against the JWKS it publishes (core's own verifier).
#include <doctest/doctest.h>

#include <string>

#include "core/jwk.h"
#include "core/oidc_discovery.h"
#include "core/signer.h"
#include "core/verifier.h"
#include "proxy/dev/dev_idp.h"

using namespace jwtgate;

namespace {

constexpr std::int64_t kNow = 1'700'000'000;

proxy::DevIdp make_idp(const std::string& issuer = "http://idp:9000", core::Alg alg = core::Alg::ES256) {
  proxy::DevIdpOptions options;
  options.issuer = issuer;
  return proxy::DevIdp(options, alg, core::generate_signing_key(alg).value());
}

proxy::AdminResponse call(const proxy::DevIdp& idp, std::string_view method, std::string_view path,
                          std::string_view query = "", std::string_view body = "", std::string_view content_type = "") {
  return idp.handle(proxy::AdminRequest{method, path, query, content_type, body}, kNow);
}

std::string header(const proxy::AdminResponse& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "<absent>";
}

// A string member of a flat JSON document, or "<absent>".
std::string member(const std::string& json, const std::string& name) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root)) return "<not json>";
  simdjson::dom::element v;
  if (root[name].get(v)) return "<absent>";
  std::string_view s;
  if (!v.get_string().get(s)) return std::string(s);
  return std::string(simdjson::minify(v));
}

// Verifies `token` against the IdP's own JWKS, as a gateway configured for it would.
core::Status verify(const proxy::DevIdp& idp, const std::string& token, core::Token& scratch,
                    const std::string& audience = "dev-api", std::int64_t now = kNow) {
  auto keys = core::parse_jwks(idp.jwks());
  REQUIRE(keys);
  core::VerifyPolicy policy;
  policy.algorithms = core::AlgSet::all();
  policy.claims.issuer = idp.issuer();
  policy.claims.audiences = {audience};
  return core::verify_token(scratch, token, *keys, policy, now);
}

std::string claim(const core::Token& t, const char* name) {
  simdjson::dom::element v;
  if (t.payload()[name].get(v)) return "<absent>";
  std::string_view s;
  if (!v.get_string().get(s)) return std::string(s);
  return std::string(simdjson::minify(v));
}

}  // namespace

TEST_CASE("dev-idp: the discovery document names its issuer exactly and is what jwtgate's discovery accepts") {
  for (const std::string issuer : {"http://idp:9000", "http://idp:9000/", "https://dev.example/realms/dev"}) {
    CAPTURE(issuer);
    const proxy::DevIdp idp = make_idp(issuer);
    // Where jwtgate looks for it (core::discovery_url), relative to the listener.
    const std::string discovery = core::discovery_url(issuer);
    const std::string path = discovery.substr(discovery.find('/', discovery.find("://") + 3));
    const proxy::AdminResponse r = call(idp, "GET", path);
    REQUIRE(r.status == 200);
    CHECK(r.content_type == "application/json");
    CHECK(header(r, "X-Jwtgate-Dev-Idp") == "development only, not for production");
    CHECK(member(r.body, "issuer") == issuer);
    const auto jwks_uri = core::jwks_uri_from_discovery(r.body, issuer, true);
    REQUIRE_MESSAGE(jwks_uri, jwks_uri.status().detail());
    CHECK(jwks_uri->find("//", 8) == std::string::npos);  // no double slash after a trailing-slash issuer
    CHECK(member(r.body, "token_endpoint").find("//", 8) == std::string::npos);
    CHECK(member(r.body, "id_token_signing_alg_values_supported") == "[\"ES256\"]");
    CHECK(member(r.body, "response_types_supported") != "<absent>");
    CHECK(member(r.body, "subject_types_supported") == "[\"public\"]");
    CHECK(member(r.body, "grant_types_supported") == "<absent>");  // /token is not an OAuth grant
    // The advertised endpoints are the ones served.
    const std::string jwks_path = jwks_uri->substr(jwks_uri->find('/', 8));
    const proxy::AdminResponse jwks = call(idp, "GET", jwks_path);
    CHECK(jwks.status == 200);
    const std::string token_url = member(r.body, "token_endpoint");
    CHECK(call(idp, "POST", token_url.substr(token_url.find('/', 8))).status == 200);
  }
  // An issuer with a path serves nothing at the root but /healthz.
  const proxy::DevIdp nested = make_idp("https://dev.example/realms/dev");
  CHECK(call(nested, "GET", "/.well-known/openid-configuration").status == 404);
  CHECK(call(nested, "GET", "/healthz").status == 200);
}

TEST_CASE("dev-idp: the JWKS holds the public key only and may be cached briefly") {
  for (core::Alg alg : {core::Alg::ES256, core::Alg::RS256, core::Alg::PS384, core::Alg::EdDSA}) {
    CAPTURE(core::alg_name(alg));
    const proxy::DevIdp idp = make_idp("http://idp:9000", alg);
    const proxy::AdminResponse r = call(idp, "GET", "/.well-known/jwks.json");
    REQUIRE(r.status == 200);
    CHECK(header(r, "Cache-Control") == "public, max-age=60");
    CHECK(header(r, "X-Jwtgate-Dev-Idp") != "<absent>");
    CHECK(r.body.find("\"kid\":\"dev-idp-1\"") != std::string::npos);
    CHECK(r.body.find("\"d\"") == std::string::npos);  // no private part
    CHECK(core::parse_jwks(r.body));
    // A token it mints verifies against that JWKS.
    const proxy::AdminResponse t = call(idp, "POST", "/token", "format=raw");
    REQUIRE(t.status == 200);
    core::Token scratch;
    CHECK(verify(idp, t.body.substr(0, t.body.size() - 1), scratch).ok());
  }
}

TEST_CASE("dev-idp: POST /token mints the defaults, and the body's claims override and add") {
  const proxy::DevIdp idp = make_idp();
  const proxy::AdminResponse r = call(idp, "POST", "/token", "", "", "");
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "application/json");
  CHECK(header(r, "Pragma") == "no-cache");
  CHECK(member(r.body, "token_type") == "Bearer");
  CHECK(member(r.body, "expires_in") == "900");
  core::Token t;
  REQUIRE(verify(idp, member(r.body, "access_token"), t).ok());
  CHECK(claim(t, "iss") == "http://idp:9000");
  CHECK(claim(t, "aud") == "dev-api");
  CHECK(claim(t, "sub") == "dev-user");
  CHECK(claim(t, "iat") == std::to_string(kNow));
  CHECK(claim(t, "exp") == std::to_string(kNow + 900));
  const std::string jti = claim(t, "jti");
  CHECK(jti.size() >= 16);

  const proxy::AdminResponse custom =
      call(idp, "POST", "/token", "ttl=1h",
           R"({"sub":"alice","scope":"read write","realm_access":{"roles":["admin"]},"aud":["dev-api","other"]})",
           "application/json");
  REQUIRE(custom.status == 200);
  CHECK(member(custom.body, "expires_in") == "3600");
  core::Token c;
  REQUIRE(verify(idp, member(custom.body, "access_token"), c, "other").ok());
  CHECK(claim(c, "sub") == "alice");
  CHECK(claim(c, "scope") == "read write");
  CHECK(claim(c, "realm_access") == R"({"roles":["admin"]})");
  CHECK(claim(c, "exp") == std::to_string(kNow + 3600));
  CHECK(claim(c, "jti") != jti);

  // An expired token, for testing what an app does with one: exp is the caller's.
  const proxy::AdminResponse expired = call(idp, "POST", "/token", "", R"({"exp":1000})");
  REQUIRE(expired.status == 200);
  CHECK(member(expired.body, "expires_in") == "0");
  // The most negative exp JSON can carry: expires_in was exp - now, a signed overflow.
  const proxy::AdminResponse far_past = call(idp, "POST", "/token", "", R"({"exp":-9223372036854775808})");
  REQUIRE(far_past.status == 200);
  CHECK(member(far_past.body, "expires_in") == "0");
  core::Token e;
  CHECK(verify(idp, member(expired.body, "access_token"), e).reason() == core::Reason::expired);

  // null drops a claim, a default included.
  const proxy::AdminResponse no_exp = call(idp, "POST", "/token", "", R"({"exp":null,"aud":null})");
  REQUIRE(no_exp.status == 200);
  CHECK(member(no_exp.body, "expires_in") == "<absent>");
  const std::string payload_segment = member(no_exp.body, "access_token");
  core::Token n;
  CHECK(n.decode(payload_segment).ok());
  CHECK(claim(n, "exp") == "<absent>");
  CHECK(claim(n, "aud") == "<absent>");
  CHECK(claim(n, "sub") == "dev-user");

  // curl -d sends a form content type; the JSON body is still what counts.
  CHECK(call(idp, "POST", "/token", "", R"({"sub":"bob"})", "application/x-www-form-urlencoded").status == 200);
}

TEST_CASE("dev-idp: ?format=raw answers the bare token and a newline as text") {
  const proxy::DevIdp idp = make_idp();
  const proxy::AdminResponse r = call(idp, "POST", "/token", "format=raw&ttl=2m", R"({"sub":"carol"})");
  REQUIRE(r.status == 200);
  CHECK(r.content_type.rfind("text/plain", 0) == 0);
  REQUIRE(r.body.size() > 1);
  CHECK(r.body.back() == '\n');
  CHECK(r.body.find('\n') == r.body.size() - 1);
  core::Token t;
  REQUIRE(verify(idp, r.body.substr(0, r.body.size() - 1), t).ok());
  CHECK(claim(t, "sub") == "carol");
  CHECK(claim(t, "exp") == std::to_string(kNow + 120));
}

TEST_CASE("dev-idp: bad token requests are 400 invalid_request in RFC 6749's shape") {
  const proxy::DevIdp idp = make_idp();
  struct Case {
    const char* query;
    std::string body;
    const char* says;
  };
  const Case cases[] = {
      {"", "not json", "JSON object"},
      {"", "[1,2]", "JSON object"},
      {"", "\"alice\"", "JSON object"},
      {"", R"({"sub":"a","sub":"b"})", "JSON object"},
      {"", "{\"pad\":\"" + std::string(40 * 1024, 'x') + "\"}", "larger than 32 KiB"},
      {"ttl=25h", "{}", "ttl"},
      {"ttl=0s", "{}", "ttl"},
      {"ttl=soon", "{}", "ttl"},
      {"format=yaml", "{}", "format"},
      {"admin=1", "{}", "unknown query parameter"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.query);
    CAPTURE(c.body.substr(0, 40));
    const proxy::AdminResponse r = call(idp, "POST", "/token", c.query, c.body, "application/json");
    CHECK(r.status == 400);
    CHECK(r.content_type == "application/json");
    CHECK(member(r.body, "error") == "invalid_request");
    CHECK(member(r.body, "error_description").find(c.says) != std::string::npos);
    CHECK(header(r, "X-Jwtgate-Dev-Idp") != "<absent>");
  }
}

TEST_CASE("dev-idp: wrong methods are 405 with Allow, unknown paths 404, all marked development-only") {
  const proxy::DevIdp idp = make_idp();
  const proxy::AdminResponse get_token = call(idp, "GET", "/token");
  CHECK(get_token.status == 405);
  CHECK(header(get_token, "Allow") == "POST");
  const proxy::AdminResponse post_jwks = call(idp, "POST", "/.well-known/jwks.json");
  CHECK(post_jwks.status == 405);
  CHECK(header(post_jwks, "Allow") == "GET, HEAD");
  CHECK(call(idp, "DELETE", "/.well-known/openid-configuration").status == 405);
  CHECK(call(idp, "HEAD", "/.well-known/openid-configuration").status == 200);
  const proxy::AdminResponse missing = call(idp, "GET", "/authorize");
  CHECK(missing.status == 404);
  CHECK(header(missing, "X-Jwtgate-Dev-Idp") == "development only, not for production");
}

TEST_CASE("dev-idp: issuers are http(s) URLs without query, fragment or credentials; HMAC is refused") {
  std::string error;
  CHECK(proxy::check_dev_idp_issuer("http://idp:9000", error));
  CHECK(proxy::check_dev_idp_issuer("https://dev.example/realms/dev/", error));
  for (const char* bad : {"idp:9000", "ftp://idp/", "http://idp:9000/?x=1", "http://idp:9000/#f", "http://u:p@idp/",
                          "http://", "http://idp /x", ""}) {
    CAPTURE(bad);
    error.clear();
    CHECK_FALSE(proxy::check_dev_idp_issuer(bad, error));
    CHECK_FALSE(error.empty());
  }
  CHECK_FALSE(proxy::dev_idp_alg_supported(core::Alg::HS256));
  CHECK_FALSE(proxy::dev_idp_alg_supported(core::Alg::HS512));
  CHECK(proxy::dev_idp_alg_supported(core::Alg::EdDSA));
  CHECK(proxy::dev_idp_alg_supported(core::Alg::PS256));
}
