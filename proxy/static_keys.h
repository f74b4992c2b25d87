// Keys a provider has without fetching anything: its jwks.file and its HMAC secret. (Fetching
// from jwks.uri and OIDC discovery is the JWKS manager's job.)
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "config/env_expand.h"
#include "core/jwk.h"

namespace jwtgate::proxy {

// The provider's file and secret keys combined; nullptr with `error` set when it has neither or
// they cannot be read. `error` may also carry warnings about skipped keys.
std::shared_ptr<const core::KeySet> load_static_keys(const config::Provider& provider, const config::EnvLookup& env,
                                                     std::string& error);

}  // namespace jwtgate::proxy
