// OpenID Connect Discovery 1.0: where a provider's configuration document lives and what jwtgate
// takes from it (jwks_uri), with the issuer check of §4.3 that stops one provider's document
// from speaking for another.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace jwtgate::core {

// {issuer}/.well-known/openid-configuration, a trailing "/" of the issuer removed first (§4).
std::string discovery_url(std::string_view issuer);

// The document's jwks_uri, once its "issuer" equals `expected_issuer` exactly (no normalisation:
// §4.3) and jwks_uri is an absolute https URL (or http when `allow_http`, for loopback issuers).
Result<std::string> jwks_uri_from_discovery(std::string_view document, std::string_view expected_issuer,
                                            bool allow_http);

}  // namespace jwtgate::core
