#include "tests/support/tokens.h"

#include <ctime>

#include <doctest/doctest.h>

#include "core/base64url.h"

namespace jwtgate::testing {

TestKey make_key(core::Alg alg, std::string kid) {
  TestKey k{alg, kid, {}, {}, {}};
  auto signing = core::generate_signing_key(alg);
  REQUIRE(signing.ok());
  k.signing = std::move(signing.value());
  k.jwks_json = core::jwks_for(k.signing, alg, kid);
  auto keys = core::parse_jwks(k.jwks_json);
  REQUIRE_MESSAGE(keys.ok(), keys.status().detail());
  k.keys = std::move(keys.value());
  return k;
}

std::string token_with_signature(std::string_view header_json, std::string_view payload_json, std::string_view sig) {
  return core::base64url_encode(header_json) + "." + core::base64url_encode(payload_json) + "." +
         core::base64url_encode(sig);
}

std::string signed_token(std::string_view header_json, std::string_view payload_json, core::Alg alg,
                         const core::SigningKey& signing) {
  std::string input = core::base64url_encode(header_json) + "." + core::base64url_encode(payload_json);
  auto sig = core::sign(alg, signing, input);
  REQUIRE_MESSAGE(sig.ok(), sig.status().detail());
  return input + "." + core::base64url_encode(*sig);
}

std::string signed_token(std::string_view header_json, std::string_view payload_json, const TestKey& key) {
  return signed_token(header_json, payload_json, key.alg, key.signing);
}

std::string header_for(const TestKey& key) {
  return "{\"alg\":\"" + std::string(core::alg_name(key.alg)) + "\",\"typ\":\"JWT\",\"kid\":\"" + key.kid + "\"}";
}

namespace {
std::string claims_at(std::int64_t iat, std::int64_t exp, std::string_view issuer, std::string_view extra) {
  std::string p = "{\"iss\":\"" + std::string(issuer) + "\",\"aud\":\"api\",\"sub\":\"alice\",\"iat\":" +
                  std::to_string(iat) + ",\"exp\":" + std::to_string(exp);
  if (!extra.empty()) {
    p += ',';
    p += extra;
  }
  return p + "}";
}
}  // namespace

std::string payload(std::string_view extra) { return claims_at(kNow, kNow + 300, "https://idp.test/", extra); }

std::string payload_now(std::string_view extra, std::int64_t exp_offset, std::string_view issuer) {
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  return claims_at(now, now + exp_offset, issuer, extra);
}

core::VerifyPolicy policy_for(core::Alg alg) {
  core::VerifyPolicy p;
  p.algorithms.add(alg);
  p.claims.issuer = "https://idp.test/";
  p.claims.audiences = {"api"};
  return p;
}

core::Status verify(std::string_view token, const core::KeySet& keys, const core::VerifyPolicy& policy,
                    std::int64_t now) {
  core::Token scratch;
  return core::verify_token(scratch, token, keys, policy, now);
}

}  // namespace jwtgate::testing
