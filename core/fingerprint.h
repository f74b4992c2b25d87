// A short, stable, non-reversible name for a token, for logs: the first 8 bytes of its SHA-256
// as 16 hex digits. It lets operators correlate requests made with one token without the token
// (or anything that would let someone replay it) ever being written down.
#pragma once

#include <string>
#include <string_view>

namespace jwtgate::core {

std::string token_fingerprint(std::string_view token);

}  // namespace jwtgate::core
