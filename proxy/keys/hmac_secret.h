// A provider's HMAC secret (hmac_secret_file or hmac_secret_env), read at start and at each reload
// (regular file, bounded, refused when others may write it: config/secret_file.h). The bytes
// are kept wiped-on-free and never logged.
#pragma once

#include <optional>
#include <string>

#include "config/config.h"
#include "config/env_expand.h"
#include "core/secret_bytes.h"

namespace jwtgate::proxy {

// nullopt when the provider has no secret configured, or (with `error` set) when it cannot be read.
std::optional<core::SecretBytes> read_hmac_secret(const config::Provider& provider, const config::EnvLookup& env,
                                                  std::string& error);

}  // namespace jwtgate::proxy
