// Every way a token or request can fail, as a value: a stable machine reason (for metrics,
// logs and tests) plus a human description. Nothing here throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace jwtgate::core {

enum class Reason : std::uint8_t {
  ok = 0,
  missing_token,      // no token was presented
  multiple_tokens,    // more than one token in one request
  token_too_large,
  malformed,          // not a well-formed compact JWS (segments, base64url, JSON)
  unsecured,          // alg "none" in any spelling, or an empty signature
  encrypted,          // a JWE; jwtgate only validates signed tokens
  unsupported_alg,    // an alg jwtgate does not implement
  alg_not_allowed,    // an alg the provider's allowlist does not contain
  crit_unsupported,   // crit names an extension jwtgate does not understand (b64 among them)
  unknown_kid,
  no_matching_key,    // no key of the set fits the token's alg
  bad_signature,
  expired,
  not_yet_valid,
  issued_in_future,
  lifetime_too_long,
  bad_issuer,
  bad_audience,
  missing_claim,
  invalid_claim,      // a registered claim of the wrong JSON type
  insufficient_scope,
  claim_mismatch,     // a required claim value is absent
  keys_unavailable,   // the provider has no usable key set yet
  // The token is bound to a client certificate (cnf.x5t#S256, RFC 8705 §3) that this connection
  // did not present, or the provider requires binding and the token is unbound.
  certificate_binding,
  revoked,                 // a revocation entry names the token, its subject or its session
  revocation_unavailable,  // revocation.on_unavailable: deny, and a revocation source is not in sync
};
// The last Reason, for tables indexed by reason (metrics): keep it the last enumerator.
inline constexpr Reason kLastReason = Reason::revocation_unavailable;

// Stable snake_case name, e.g. "bad_signature". Part of the public interface (metrics, logs).
std::string_view reason_name(Reason r) noexcept;

// `"name" what`, the shape of most member and claim details. Built by appending: GCC 12 at -O3
// reports a false -Wrestrict overlap for "\"" + std::string(name) + "...", which broke users'
// Release builds.
std::string quoted_detail(std::string_view name, std::string_view what);

class Status {
 public:
  Status() = default;
  Status(Reason reason, std::string detail) : reason_(reason), detail_(std::move(detail)) {}

  static Status Ok() { return {}; }

  bool ok() const noexcept { return reason_ == Reason::ok; }
  explicit operator bool() const noexcept { return ok(); }
  Reason reason() const noexcept { return reason_; }
  std::string_view name() const noexcept { return reason_name(reason_); }
  // A sentence for people. Never contains bytes of the token itself.
  const std::string& detail() const noexcept { return detail_; }

 private:
  Reason reason_ = Reason::ok;
  std::string detail_;
};

// A value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}                     // NOLINT: implicit by design
  Result(Status error) : error_(std::move(error)) {}                 // NOLINT: implicit by design

  bool ok() const noexcept { return error_.ok(); }
  explicit operator bool() const noexcept { return ok(); }
  const Status& status() const noexcept { return error_; }
  T& value() & { return value_; }
  const T& value() const& { return value_; }
  T&& value() && { return std::move(value_); }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }
  T& operator*() & { return value_; }
  const T& operator*() const& { return value_; }

 private:
  T value_{};
  Status error_;
};

}  // namespace jwtgate::core
