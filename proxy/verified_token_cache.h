// Per-worker cache of tokens that passed signature and claims checks, so a token seen again is
// not verified again. Bounded (least recently used entries leave first); entries of a provider
// are dropped when its key set changes; a hit still checks exp and nbf against the clock.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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
};

class VerifiedTokenCache {
 public:
  explicit VerifiedTokenCache(std::size_t capacity) : capacity_(capacity) {}

  const VerifiedToken* find(std::string_view token);
  void insert(std::string_view token, VerifiedToken entry);
  void drop_provider(std::size_t provider);
  std::size_t size() const { return index_.size(); }

 private:
  using Entry = std::pair<std::string, VerifiedToken>;
  std::size_t capacity_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // keys view into lru_
};

}  // namespace jwtgate::proxy
