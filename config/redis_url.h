// Redis URLs (redis://, rediss://), shared by revocation.redis.url and `jwtgate revoke --redis`.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"

namespace jwtgate::config {

// redis://[user@]host[:port][/db] and rediss://... (TLS). A password in the URL is refused
// (it would end up in process listings, shell history and logs): give it by file or environment.
// On failure returns false with `error` saying why, without repeating the URL.
bool parse_redis_url(std::string_view text, RedisUrl& out, std::string& error);

}  // namespace jwtgate::config
