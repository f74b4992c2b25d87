// The effective configuration as JSON, for the admin endpoint /config: what jwtgate actually
// runs with (defaults filled in), safe to show to anyone who can reach the admin port.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"

namespace jwtgate::config {

// The effective configuration (defaults filled in) as pretty, stable JSON for the admin
// endpoint /config, with every secret redacted.
//
// Shape: keys are the YAML keys, in the order config.h declares them, and every key is always
// present so consumers never have to guess whether a missing key means "default" or "unset".
// null means "not set" (no issuer check, no lifetime limit, every method, every provider...).
// Durations are strings such as "30s" or "1h30m", sizes are byte counts. Mappings in the YAML
// (claims_to_headers, route require_claims) become arrays of objects, so a Config built in code
// can never produce duplicate JSON member names.
//
// Redaction: HMAC secret bytes are never in a Config, so they cannot appear; the secret's file
// path and variable name are shown, with "hmac_secret": "[redacted]" when one is configured.
// URLs (upstream, issuer, jwks.uri) lose their userinfo, every query value and their fragment;
// a URL whose authority cannot be parsed unambiguously is redacted whole after the scheme,
// because a credential could be hiding in it.
std::string effective_config_json(const Config& config);

// "250ms", "30s", "5m", "1h30m", "0s": the largest units first, zero parts left out. Combined
// units are for reading only; the config parser takes a single unit.
std::string format_duration(Duration d);

// The redaction effective_config_json applies to URLs, exposed for tests and for log lines that
// mention a configured URL.
std::string redact_url(std::string_view url);

}  // namespace jwtgate::config
