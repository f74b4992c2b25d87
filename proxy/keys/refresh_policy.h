// When to fetch a provider's keys next: periodic refreshes (refresh_interval, or the response's
// Cache-Control max-age kept within [min_refresh_interval, refresh_interval]) and exponential
// backoff after failures. Jitter spreads many proxies' fetches so an IdP is not hit in lockstep.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "config/config.h"

namespace jwtgate::proxy {

// The max-age of a Cache-Control value; 0 for no-cache/no-store/must-revalidate-with-max-age=0;
// nullopt when it says nothing usable.
std::optional<std::chrono::seconds> cache_control_max_age(std::string_view header);

// Delay until the next periodic refresh after a good fetch. `jitter` in [0,1) shortens the delay
// by up to 10%, never lengthens it (max-age is a promise about freshness).
std::chrono::milliseconds refresh_delay(std::optional<std::chrono::seconds> max_age, const config::JwksConfig& jwks,
                                        double jitter);

// Delay before retrying after the `failures`-th consecutive failure (1, 2, ...): 1s doubling,
// capped at min(refresh_interval, 1 min), shortened by up to 20% with `jitter`.
std::chrono::milliseconds retry_delay(unsigned failures, const config::JwksConfig& jwks, double jitter);

}  // namespace jwtgate::proxy
