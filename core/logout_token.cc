#include "core/logout_token.h"

#include <cmath>
#include <strings.h>

namespace jwtgate::core {
namespace {

bool logout_typ(std::string_view typ) {
  auto is = [&](std::string_view want) { return typ.size() == want.size() && strncasecmp(typ.data(), want.data(), want.size()) == 0; };
  return is("logout+jwt") || is("application/logout+jwt");
}

Status invalid(std::string detail) { return {Reason::invalid_claim, std::move(detail)}; }

std::optional<std::string_view> string_claim(const Claims& claims, std::string_view name, Status& error) {
  simdjson::dom::element e;
  if (claims.payload().at_key(name).get(e)) return std::nullopt;
  std::string_view v;
  if (e.get_string().get(v) || v.empty()) {
    error = invalid(quoted_detail(name, "must be a non-empty string"));
    return std::nullopt;
  }
  return v;
}

}  // namespace

bool looks_like_logout_token(const Token& token) {
  if (!token.header().typ.empty() && logout_typ(token.header().typ)) return true;
  simdjson::dom::element events, e;
  if (token.payload().at_key("events").get(events)) return false;
  return events.is_object() && !events.at_key(kBackchannelLogoutEvent).get(e);
}

Status check_logout_token(const Token& token, const ClaimPolicy& policy, std::int64_t max_age_seconds,
                          std::int64_t now, LogoutClaims& out) {
  if (!token.header().typ.empty() && !logout_typ(token.header().typ)) {
    return invalid("the JOSE header's typ is not logout+jwt");
  }
  ClaimPolicy p;
  p.issuer = policy.issuer;
  p.audiences = policy.audiences;
  p.clock_skew_seconds = policy.clock_skew_seconds;
  p.require_exp = false;
  p.required_claims = {"iat", "jti", "events"};
  const Claims claims(token.payload());
  if (Status s = check_claims(claims, p, now); !s) return s;
  if (p.issuer.empty() || p.audiences.empty()) return invalid("the provider has no issuer or audiences to check the token against");

  std::optional<double> iat;
  if (Status s = read_numeric_date(claims, "iat", iat); !s) return s;
  if (!iat || !std::isfinite(*iat)) return {Reason::missing_claim, "token has no \"iat\" claim"};
  if (*iat + static_cast<double>(max_age_seconds + policy.clock_skew_seconds) < static_cast<double>(now)) {
    return {Reason::expired, "the logout token was issued too long ago (iat)"};
  }
  simdjson::dom::element e;
  if (!token.payload().at_key("nonce").get(e)) return invalid("a logout token must not contain \"nonce\"");
  simdjson::dom::element events, event;
  if (token.payload().at_key("events").get(events) || !events.is_object()) return invalid("\"events\" must be a JSON object");
  if (events.at_key(kBackchannelLogoutEvent).get(event)) {
    return invalid("\"events\" does not hold the back-channel logout event");
  }
  if (!event.is_object()) return invalid("the back-channel logout event's value must be a JSON object");

  Status error;
  const auto jti = string_claim(claims, "jti", error);
  if (!error.ok()) return error;
  if (!jti) return {Reason::missing_claim, "token has no \"jti\" claim"};
  const auto sub = string_claim(claims, "sub", error);
  if (!error.ok()) return error;
  const auto sid = string_claim(claims, "sid", error);
  if (!error.ok()) return error;
  if (!sub && !sid) return {Reason::missing_claim, "a logout token names \"sub\", \"sid\" or both"};

  out.iss = policy.issuer;
  out.jti = std::string(*jti);
  out.sub = sub ? std::string(*sub) : std::string();
  out.sid = sid ? std::string(*sid) : std::string();
  out.iat = static_cast<std::int64_t>(std::ceil(*iat));  // rounded up: the replay window must cover it
  return Status::Ok();
}

}  // namespace jwtgate::core
