#include "proxy/static_keys.h"

#include <fstream>
#include <iterator>

namespace jwtgate::proxy {

std::shared_ptr<const core::KeySet> load_static_keys(const config::Provider& provider, const config::EnvLookup& env,
                                                     std::string& error) {
  auto set = std::make_shared<core::KeySet>();
  if (!provider.jwks.file.empty()) {
    std::ifstream in(provider.jwks.file, std::ios::binary);
    if (!in) {
      error = "cannot read " + provider.jwks.file;
    } else {
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto parsed = core::parse_jwks(text);
      if (!parsed) {
        error = provider.jwks.file + ": " + parsed.status().detail();
      } else {
        *set = std::move(parsed.value());
      }
    }
  }
  std::string secret;
  bool has_secret = false;
  if (!provider.hmac_secret_file.empty()) {
    std::ifstream in(provider.hmac_secret_file, std::ios::binary);
    secret.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    has_secret = static_cast<bool>(in) || !secret.empty();
  } else if (!provider.hmac_secret_env.empty()) {
    if (auto v = env(provider.hmac_secret_env)) {
      secret = *v;
      has_secret = true;
    }
  }
  if (has_secret) {
    auto key = core::jwk_from_hmac_secret(secret, provider.hmac_secret_kid);
    if (key) set->keys.push_back(std::move(key.value()));
    else error = "HMAC secret: " + key.status().detail();
  }
  if (set->keys.empty()) return nullptr;
  return set;
}

}  // namespace jwtgate::proxy
