#include "core/verifier.h"

#include "core/signature.h"

namespace jwtgate::core {

Status verify_token_signature(const Token& token, const KeySet& keys, const AlgSet& allowed) {
  const JoseHeader& h = token.header();
  if (!allowed.contains(h.alg)) {
    return {Reason::alg_not_allowed, "algorithm " + std::string(alg_name(h.alg)) + " is not allowed"};
  }
  std::size_t tried = 0;
  bool kid_known = false;
  Status last_failure;
  for (const Jwk& key : keys.keys) {
    if (h.has_kid) {
      // kid is only ever compared, never used as a path, URL or query.
      if (!key.has_kid || key.kid != h.kid) continue;
      kid_known = true;
    }
    if (!key.fits(h.alg)) continue;
    if (!h.has_kid && tried == kMaxKeysTriedWithoutKid) break;
    ++tried;
    last_failure = verify_signature(h.alg, key, token.signing_input(), token.signature());
    if (last_failure.ok()) return last_failure;
  }
  if (h.has_kid && !kid_known) return {Reason::unknown_kid, "no key with the token's kid"};
  if (tried == 0) {
    return {Reason::no_matching_key, "no key fits algorithm " + std::string(alg_name(h.alg))};
  }
  return last_failure;
}

Status verify_token(Token& scratch, std::string_view compact, const KeySet& keys, const VerifyPolicy& policy,
                    std::int64_t now_seconds) {
  if (Status s = scratch.decode(compact, policy.max_token_bytes); !s) return s;
  if (Status s = verify_token_signature(scratch, keys, policy.algorithms); !s) return s;
  return check_claims(Claims(scratch.payload()), policy.claims, now_seconds);
}

}  // namespace jwtgate::core
