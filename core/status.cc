#include "core/status.h"

namespace jwtgate::core {

std::string quoted_detail(std::string_view name, std::string_view what) {
  std::string detail;
  detail.reserve(name.size() + what.size() + 3);
  detail += '"';
  detail.append(name);
  detail += "\" ";
  detail.append(what);
  return detail;
}

std::string_view reason_name(Reason r) noexcept {
  switch (r) {
    case Reason::ok: return "ok";
    case Reason::missing_token: return "missing_token";
    case Reason::multiple_tokens: return "multiple_tokens";
    case Reason::token_too_large: return "token_too_large";
    case Reason::malformed: return "malformed";
    case Reason::unsecured: return "unsecured";
    case Reason::encrypted: return "encrypted";
    case Reason::unsupported_alg: return "unsupported_alg";
    case Reason::alg_not_allowed: return "alg_not_allowed";
    case Reason::crit_unsupported: return "crit_unsupported";
    case Reason::unknown_kid: return "unknown_kid";
    case Reason::no_matching_key: return "no_matching_key";
    case Reason::bad_signature: return "bad_signature";
    case Reason::expired: return "expired";
    case Reason::not_yet_valid: return "not_yet_valid";
    case Reason::issued_in_future: return "issued_in_future";
    case Reason::lifetime_too_long: return "lifetime_too_long";
    case Reason::bad_issuer: return "bad_issuer";
    case Reason::bad_audience: return "bad_audience";
    case Reason::missing_claim: return "missing_claim";
    case Reason::invalid_claim: return "invalid_claim";
    case Reason::insufficient_scope: return "insufficient_scope";
    case Reason::claim_mismatch: return "claim_mismatch";
    case Reason::keys_unavailable: return "keys_unavailable";
    case Reason::certificate_binding: return "certificate_binding";
    case Reason::revoked: return "revoked";
    case Reason::revocation_unavailable: return "revocation_unavailable";
  }
  return "unknown";
}

}  // namespace jwtgate::core
