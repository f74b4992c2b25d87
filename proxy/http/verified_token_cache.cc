#include "proxy/http/verified_token_cache.h"

namespace jwtgate::proxy {

const VerifiedToken* VerifiedTokenCache::find(const core::TokenDigest& token) {
  auto it = index_.find(token);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->second;
}

const VerifiedToken* VerifiedTokenCache::insert(const core::TokenDigest& token, VerifiedToken&& entry) {
  if (capacity_ == 0) return nullptr;
  if (auto it = index_.find(token); it != index_.end()) {
    it->second->second = std::move(entry);
    lru_.splice(lru_.begin(), lru_, it->second);
    return &it->second->second;
  }
  if (index_.size() >= capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  lru_.emplace_front(token, std::move(entry));
  index_.emplace(token, lru_.begin());
  return &lru_.front().second;
}

void VerifiedTokenCache::drop_provider(std::size_t provider) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->second.provider == provider) {
      index_.erase(it->first);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace jwtgate::proxy
