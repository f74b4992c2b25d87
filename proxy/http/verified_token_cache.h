// Per-worker cache of tokens that passed signature and claims checks, so a token seen again is
// not verified again. Keyed by the token's SHA-256, not the token: 32 bytes an entry instead of
// the whole token. Bounded (least recently used entries leave first); entries of a provider
// are dropped when its key set changes; a hit still checks exp and nbf against the clock.
#pragma once

#include <cstdint>
#include <cstring>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/fingerprint.h"
#include "core/revocation.h"

namespace jwtgate::proxy {

struct VerifiedToken {
  std::size_t provider = 0;
  std::optional<double> exp, nbf;
  std::vector<std::string> scopes;
  // Per route requirement path (in RuntimeConfig::requirement_paths order): the claim's values
  // as text, array elements flattened.
  std::vector<std::vector<std::string>> requirement_values;
  // Per provider claims_to_headers entry: the rendered value, or nullopt when not sendable.
  std::vector<std::optional<std::string>> claim_headers;
  std::string payload_header;  // base64url payload, when the provider forwards it
  std::string sub, jti;        // for the access log (strings only; truncated)
  // The token's cnf.x5t#S256 (RFC 8705), empty when unbound: the binding travels with the token,
  // so each request, cache hits included, is checked against its own connection's certificate.
  std::string x5t_s256;
  // Its jti, iss+sub and iss+sid digested, for the revocation check every request makes.
  core::RevocationSubject revocation;
};

class VerifiedTokenCache {
 public:
  explicit VerifiedTokenCache(std::size_t capacity) : capacity_(capacity) {}

  const VerifiedToken* find(const core::TokenDigest& token);
  // Stores `entry` (moved from) and returns the stored entry; nullptr, `entry` untouched, when
  // the capacity is 0.
  const VerifiedToken* insert(const core::TokenDigest& token, VerifiedToken&& entry);
  void drop_provider(std::size_t provider);
  std::size_t size() const { return index_.size(); }

 private:
  // The digest is already uniformly distributed: its first bytes are the hash.
  struct DigestHash {
    std::size_t operator()(const core::TokenDigest& d) const noexcept {
      std::size_t h;
      std::memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };
  using Entry = std::pair<core::TokenDigest, VerifiedToken>;
  std::size_t capacity_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<core::TokenDigest, std::list<Entry>::iterator, DigestHash> index_;
};

}  // namespace jwtgate::proxy
