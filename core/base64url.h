// Strict base64url (RFC 4648 §5) as JOSE uses it (RFC 7515 §2): no padding, no whitespace, no
// characters outside the URL-safe alphabet, and the unused trailing bits must be zero so each
// byte string has exactly one accepted encoding.
#pragma once

#include <string>
#include <string_view>

namespace jwtgate::core {

// Decodes into `out` (replacing its contents). Returns false on any deviation from the strict
// form; `out` is then unspecified. `extra_capacity` reserves slack after the data (simdjson
// parses without copying when the buffer has SIMDJSON_PADDING spare bytes).
bool base64url_decode(std::string_view in, std::string& out, std::size_t extra_capacity = 0);

std::string base64url_encode(std::string_view bytes);

// Length of the decoded data for a valid input length, or npos for an impossible one.
std::size_t base64url_decoded_size(std::size_t encoded_length) noexcept;

}  // namespace jwtgate::core
