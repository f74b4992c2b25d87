#include "proxy/verified_token_cache.h"

namespace jwtgate::proxy {

const VerifiedToken* VerifiedTokenCache::find(std::string_view token) {
  auto it = index_.find(token);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->second;
}

void VerifiedTokenCache::insert(std::string_view token, VerifiedToken entry) {
  if (capacity_ == 0) return;
  if (auto it = index_.find(token); it != index_.end()) {
    it->second->second = std::move(entry);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  if (index_.size() >= capacity_) {
    index_.erase(std::string_view(lru_.back().first));
    lru_.pop_back();
  }
  lru_.emplace_front(std::string(token), std::move(entry));
  index_.emplace(std::string_view(lru_.front().first), lru_.begin());
}

void VerifiedTokenCache::drop_provider(std::size_t provider) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->second.provider == provider) {
      index_.erase(std::string_view(it->first));
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace jwtgate::proxy
