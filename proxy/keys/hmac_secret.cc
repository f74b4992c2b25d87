#include "proxy/keys/hmac_secret.h"

#include <algorithm>

#include "config/secret_file.h"
#include "proxy/admin/log.h"

namespace jwtgate::proxy {

std::optional<core::SecretBytes> read_hmac_secret(const config::Provider& provider, const config::EnvLookup& env,
                                                  std::string& error) {
  if (!provider.hmac_secret_file.empty()) {
    config::SecretFile file = config::read_secret_file(provider.hmac_secret_file);
    if (!file.error.empty()) {
      error = "hmac_secret_file: " + file.error;
      return std::nullopt;
    }
    // Logged at every start and reload (a secret provider is rebuilt on each), so a loose mode
    // is not a one-time message lost in a long log.
    if (!file.warning.empty()) {
      log_event("warn", "hmac_secret_file permissions are too open", {{"provider", provider.name}, {"warning", file.warning}});
    }
    return std::move(file.secret);
  }
  if (!provider.hmac_secret_env.empty()) {
    auto v = env(provider.hmac_secret_env);
    if (!v) {
      error = "the environment variable " + provider.hmac_secret_env + " is not set";
      return std::nullopt;
    }
    core::SecretBytes out(*v);
    std::fill(v->begin(), v->end(), '\0');
    return out;
  }
  return std::nullopt;
}

}  // namespace jwtgate::proxy
