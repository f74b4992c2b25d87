// Building tokens for tests, including deliberately broken ones: any header, any payload, any
// signature bytes. Real keys, generated per test run.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/alg.h"
#include "core/jwk.h"
#include "core/signer.h"
#include "core/verifier.h"

namespace jwtgate::testing {

// A key pair for `alg` plus the parsed public KeySet holding it under `kid`.
struct TestKey {
  core::Alg alg;
  std::string kid;
  core::SigningKey signing;
  std::string jwks_json;
  core::KeySet keys;
};
TestKey make_key(core::Alg alg, std::string kid = "k1");

// base64url(header) "." base64url(payload) "." base64url(signature over the first two).
std::string signed_token(std::string_view header_json, std::string_view payload_json, const TestKey& key);
std::string signed_token(std::string_view header_json, std::string_view payload_json, core::Alg alg,
                         const core::SigningKey& signing);
// Same, with the given signature bytes instead of a real one.
std::string token_with_signature(std::string_view header_json, std::string_view payload_json, std::string_view sig);

// A standard header for the key: {"alg":..,"typ":"JWT","kid":..}
std::string header_for(const TestKey& key);

constexpr std::int64_t kNow = 1'700'000'000;
// {"iss":"https://idp.test/","aud":"api","sub":"alice","iat":kNow,"exp":kNow+300} plus `extra`
// members (a JSON fragment such as "\"scope\":\"a b\"").
std::string payload(std::string_view extra = "");
// The same claims valid now, for tests against the running proxy: iat = now,
// exp = now + exp_offset, iss = `issuer`.
std::string payload_now(std::string_view extra = "", std::int64_t exp_offset = 300,
                        std::string_view issuer = "https://idp.test/");

core::VerifyPolicy policy_for(core::Alg alg);

// verify_token with a fresh scratch Token, at kNow.
core::Status verify(std::string_view token, const core::KeySet& keys, const core::VerifyPolicy& policy,
                    std::int64_t now = kNow);

}  // namespace jwtgate::testing
