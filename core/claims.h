// The JWT claims set (RFC 7519 §4) of a decoded token: registered-claim checks, scopes, and
// claims at dotted paths into nested objects ("realm_access.roles").
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace jwtgate::core {

struct ClaimPolicy {
  std::string issuer;                    // exact match; empty: not checked
  std::vector<std::string> audiences;    // token aud must name one; empty: not checked
  std::int64_t clock_skew_seconds = 30;  // applied to exp, nbf and iat
  bool require_exp = true;
  std::optional<std::int64_t> max_lifetime_seconds;  // exp minus (iat, else nbf, else now)
  std::vector<std::string> required_claims;          // names or dotted paths that must be present
};

class Claims {
 public:
  explicit Claims(simdjson::dom::object payload) : payload_(payload) {}

  // The value at `path`. A member whose name is the whole remaining path wins (claim names such
  // as "https://example.com/roles" contain dots); otherwise the path descends at each dot.
  std::optional<simdjson::dom::element> find(std::string_view path) const;

  // The scopes granted: "scope" (space-separated string) and "scp" (space-separated string or
  // array of strings), together. invalid_claim when either has the wrong type.
  Status scopes(std::vector<std::string_view>& out) const;

  simdjson::dom::object payload() const noexcept { return payload_; }

 private:
  simdjson::dom::object payload_;
};

// A NumericDate claim (RFC 7519 §2): a JSON number, integer or decimal. nullopt when absent;
// invalid_claim for any other JSON type.
Status read_numeric_date(const Claims& claims, std::string_view name, std::optional<double>& out);

// The validity window alone: now before exp + skew, and not before nbf - skew. Shared by the
// full check and by callers that re-check a cached verdict.
Status check_validity_window(std::optional<double> exp, std::optional<double> nbf, std::int64_t now,
                             std::int64_t skew_seconds);

// exp, nbf, iat, lifetime, iss, aud and required claims, against `now` (seconds since epoch).
Status check_claims(const Claims& claims, const ClaimPolicy& policy, std::int64_t now);

// Every scope in `required` must be granted; insufficient_scope names the first one missing.
Status check_scopes(const Claims& claims, std::span<const std::string> required);

// The claim at `path` must hold one of `accepted`: a string equal to one, or an array with an
// element equal to one (numbers and booleans compare by their JSON text).
Status check_claim_values(const Claims& claims, std::string_view path, std::span<const std::string> accepted);

// A claim rendered for an HTTP header: strings as they are, numbers and booleans as JSON text,
// arrays joined with ",", objects as compact JSON. nullopt for null, and for any value that
// would put a control character (CR, LF, NUL, ...) into the header.
std::optional<std::string> claim_header_value(simdjson::dom::element value);

}  // namespace jwtgate::core
