// JSON Web Keys (RFC 7517) usable for verifying JWS signatures, and key sets.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/alg.h"
#include "core/openssl_ptr.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace jwtgate::core {

inline constexpr std::size_t kMinRsaBits = 2048;
inline constexpr std::size_t kMaxRsaBits = 16384;
inline constexpr std::size_t kMinHmacSecretBytes = 32;   // HS256's hash size, RFC 7518 §3.2
inline constexpr std::size_t kMaxKeysPerSet = 128;       // bounds the work one JWKS can cause
inline constexpr std::size_t kMaxKidBytes = 256;

struct Jwk {
  std::string kid;           // empty when the key has none
  bool has_kid = false;
  KeyType kty = KeyType::oct;
  Curve crv = Curve::none;
  std::optional<Alg> alg;    // the key's own "alg", when it names one
  EvpPkeyPtr public_key;     // RSA, EC, OKP
  SecretBytes secret;        // oct
  std::size_t bits = 0;      // RSA modulus, curve or secret size

  // Whether this key may verify a token signed with `a`: key type and curve, the key's own
  // "alg", and for HMAC a secret at least as long as the hash output.
  bool fits(Alg a) const noexcept;
};

struct SkippedKey {
  std::size_t index;  // position in the "keys" array
  std::string kid;
  std::string reason;
};

struct KeySet {
  std::vector<Jwk> keys;
  std::vector<SkippedKey> skipped;
};

// One JWK object. Keys that are not for verification (use "enc", key_ops without "verify",
// private parts present) and weak keys are refused with a reason.
Result<Jwk> parse_jwk(simdjson::dom::object obj);

// A JWKS document ({"keys":[...]}; a single JWK object is accepted as a set of one). Keys that
// cannot be used are skipped and listed with their reason; a set with no usable key is an error.
Result<KeySet> parse_jwks(std::string_view json);

// An HMAC secret given as raw bytes (hmac_secret_file, hmac_secret_env). Refuses short secrets
// and anything that looks like a public key, which is what a key-confusion attack would use.
Result<Jwk> jwk_from_hmac_secret(std::string_view secret, std::string kid);

// True when `bytes` is (or contains) a public key encoding: PEM, DER SubjectPublicKeyInfo, or
// an OpenSSH public key line.
bool looks_like_public_key(std::string_view bytes);

// The curve of an EC or Ed25519 key held by OpenSSL; Curve::none for anything else.
Curve curve_of(const EVP_PKEY* key);

// The public JWK JSON for an asymmetric key (for keygen and tests).
std::string public_jwk_json(const EVP_PKEY* key, std::string_view kid, std::optional<Alg> alg);

}  // namespace jwtgate::core
