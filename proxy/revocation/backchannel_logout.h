// POST /backchannel-logout (OIDC Back-Channel Logout 1.0 §2.5-2.8) on the admin listener: the
// IdP posts a logout_token; once it validates with its provider's keys, the session (sid) or
// every token of the subject issued until now is revoked, here at once and through Redis on
// every sidecar. The logout token's own jti is revoked too, until it could no longer be
// accepted: a replay, here or at another sidecar, finds it and is refused.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/jwk.h"
#include "proxy/admin/admin_server.h"
#include "proxy/revocation/revocation_store.h"
#include "proxy/runtime_config.h"

namespace jwtgate::proxy {

struct LogoutCounters {
  std::uint64_t ok = 0, invalid = 0, replayed = 0, failed = 0;
};

// Logouts applied here but not yet shared through Redis, by issuer and logout token jti: the
// IdP's retry shares the same revocation (the same cut-off, not a new one) instead of being taken
// for a replay, and a repeated POST while Redis is away costs nothing more.
struct UnsharedLogouts {
  struct Pending {
    core::RevocationEntry cut, marker;
  };
  std::unordered_map<std::string, Pending> by_token;
};
inline constexpr std::size_t kMaxUnsharedLogouts = 10000;

struct LogoutState {
  LogoutCounters counters;
  UnsharedLogouts unshared;
};

// `keys`: each provider's current key set, in `runtime`'s provider order (nullptr: not loaded).
AdminResponse handle_backchannel_logout(const AdminRequest& request, const RuntimeConfig& runtime,
                                        const std::vector<std::shared_ptr<const core::KeySet>>& keys,
                                        RevocationStore& store, std::int64_t now, LogoutState& state);

// The value of the one `name` parameter of an application/x-www-form-urlencoded body,
// percent-decoded; nullopt when absent, repeated, or badly encoded.
std::optional<std::string> form_parameter(std::string_view body, std::string_view name);

}  // namespace jwtgate::proxy
