// OIDC Back-Channel Logout 1.0 §2.4 and §2.6: what makes a verified JWT a logout token, and
// what makes any other token not one. The signature is checked by the caller (verifier.h) with
// the provider's keys; these are the claim rules.
#pragma once

#include <cstdint>
#include <string>

#include "core/claims.h"
#include "core/status.h"
#include "core/token.h"

namespace jwtgate::core {

inline constexpr std::string_view kBackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout";

struct LogoutClaims {
  std::string iss, sub, sid, jti;
  std::int64_t iat = 0;
};

// `policy`: the provider's issuer, audiences and clock skew (other members are ignored).
// iss and aud as for ID tokens; iat present, not in the future and at most `max_age_seconds`
// old; exp, when present, not passed; jti present; events holding the back-channel logout event
// as an object; sub or sid (or both); no nonce; typ, when present, logout+jwt.
Status check_logout_token(const Token& token, const ClaimPolicy& policy, std::int64_t max_age_seconds,
                          std::int64_t now, LogoutClaims& out);

// A logout token shares its audience (the client id) with ID tokens, and so may pass a
// provider's audience check: it must never be accepted as an access token.
bool looks_like_logout_token(const Token& token);

}  // namespace jwtgate::core
