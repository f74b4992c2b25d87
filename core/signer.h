// Signing and key generation, for the CLI's keygen/mint (local development) and for tests.
// The proxy never signs.
#pragma once

#include <string>
#include <string_view>

#include "core/alg.h"
#include "core/openssl_ptr.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace jwtgate::core {

struct SigningKey {
  EvpPkeyPtr private_key;  // RSA, EC, Ed25519
  SecretBytes secret;      // HMAC
};

// A fresh key for `alg`: RSA 2048 for RS*/PS*, the alg's curve for ES*/EdDSA, and a random
// secret as long as the hash output for HS*.
Result<SigningKey> generate_signing_key(Alg alg);

// Reads a PEM private key, or a JWK / JWKS holding one oct key (the HMAC secret).
Result<SigningKey> load_signing_key(std::string_view text);

std::string private_key_pem(const SigningKey& key);
// The JWKS users publish: the public key (or, for HMAC, the oct key: keep it secret).
std::string jwks_for(const SigningKey& key, Alg alg, std::string_view kid);

// The JOSE signature bytes (raw r||s for ECDSA) over `signing_input`.
Result<std::string> sign(Alg alg, const SigningKey& key, std::string_view signing_input);

// A compact JWS with header {"alg","typ":"JWT"[,"kid"]} and `payload_json` as the payload.
Result<std::string> mint_token(Alg alg, const SigningKey& key, std::string_view kid, std::string_view payload_json);

}  // namespace jwtgate::core
