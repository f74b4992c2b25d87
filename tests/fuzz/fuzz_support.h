// What the fuzz targets share: a failure that libFuzzer reports as a crash, the fixed key set
// (keys/verify.jwks.json, see make_token_seeds.py), and checks written independently of the code
// under test, so a property compares two implementations rather than one with itself.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/alg.h"
#include "core/jwk.h"

namespace jwtgate::fuzz {

// Prints what failed and aborts: libFuzzer saves the input as crash-*.
[[noreturn]] void fail(const char* file, int line, const char* what);

#define FUZZ_CHECK(cond) \
  do { if (!(cond)) ::jwtgate::fuzz::fail(__FILE__, __LINE__, #cond); } while (0)

// The key set every token target verifies against, parsed once.
const core::KeySet& key_set();

// Base64url without padding, decoded by a plain table (non-canonical trailing bits accepted):
// nullopt on a character outside the alphabet or an impossible length.
std::optional<std::string> plain_base64url_decode(std::string_view in);

// Whether `signature` is a valid JWS signature of `signing_input` under `alg` by `key`, checked
// with OpenSSL directly (HMAC, EVP_DigestVerify, DER re-encoding of r||s), with the key type and
// curve the alg demands and nothing else of jwtgate's rules.
bool openssl_verifies(core::Alg alg, const core::Jwk& key, std::string_view signing_input, std::string_view signature);

// ASCII lower case.
std::string ascii_lower(std::string_view s);

}  // namespace jwtgate::fuzz
