// A token's SHA-256, computed once per request: the verified-token cache's key (a 32-byte key
// instead of the whole token, and finding a different token with the same key would take a
// SHA-256 second preimage) and the source of the token's fingerprint for logs: the first 8 bytes
// as 16 hex digits. The fingerprint lets operators correlate requests made with one token
// without the token (or anything that would let someone replay it) ever being written down.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace jwtgate::core {

using TokenDigest = std::array<unsigned char, 32>;

// nullopt only when libcrypto fails; callers then skip the cache and log no fingerprint.
std::optional<TokenDigest> token_digest(std::string_view token);
std::string token_fingerprint(const TokenDigest& digest);
inline std::string token_fingerprint(std::string_view token) {
  const auto digest = token_digest(token);
  return digest ? token_fingerprint(*digest) : std::string();
}

}  // namespace jwtgate::core
