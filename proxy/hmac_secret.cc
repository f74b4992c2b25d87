#include "proxy/hmac_secret.h"

#include <fstream>
#include <iterator>

namespace jwtgate::proxy {

std::optional<core::SecretBytes> read_hmac_secret(const config::Provider& provider, const config::EnvLookup& env,
                                                  std::string& error) {
  std::string secret;
  if (!provider.hmac_secret_file.empty()) {
    std::ifstream in(provider.hmac_secret_file, std::ios::binary);
    if (!in) {
      error = "cannot read hmac_secret_file " + provider.hmac_secret_file;
      return std::nullopt;
    }
    secret.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    // Editors and `echo` add a line end that is not part of the secret.
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  } else if (!provider.hmac_secret_env.empty()) {
    auto v = env(provider.hmac_secret_env);
    if (!v) {
      error = "the environment variable " + provider.hmac_secret_env + " is not set";
      return std::nullopt;
    }
    secret = *v;
  } else {
    return std::nullopt;
  }
  core::SecretBytes out(secret);
  std::fill(secret.begin(), secret.end(), '\0');
  return out;
}

}  // namespace jwtgate::proxy
