// The verdict on one token for one provider: algorithm allowlist, key selection, signature,
// then claims. The order matters: nothing in the payload is trusted before the signature is.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/alg.h"
#include "core/claims.h"
#include "core/jwk.h"
#include "core/status.h"
#include "core/token.h"

namespace jwtgate::core {

// Without a kid, at most this many keys that fit the alg are tried, so a key set with many keys
// cannot multiply the cost of a forged token.
inline constexpr std::size_t kMaxKeysTriedWithoutKid = 4;

struct VerifyPolicy {
  AlgSet algorithms;  // explicit allowlist; empty allows nothing
  ClaimPolicy claims;
  std::size_t max_token_bytes = kDefaultMaxTokenBytes;
};

// Picks the key(s) by kid, else by fit, and checks the signature of an already decoded token.
Status verify_token_signature(const Token& token, const KeySet& keys, const AlgSet& allowed);

// decode + allowlist + signature + claims. `scratch` is reused across calls; afterwards its
// payload holds the verified claims (when the result is ok).
Status verify_token(Token& scratch, std::string_view compact, const KeySet& keys, const VerifyPolicy& policy,
                    std::int64_t now_seconds);

}  // namespace jwtgate::core
