// JWS signature verification for one algorithm and one key (RFC 7518 §3, RFC 8037 §3.1).
// Strict about encodings: RSA signatures are exactly the modulus length, ECDSA signatures are
// the raw r||s of exactly twice the coordinate length with r and s in [1, n-1] (so DER and the
// all-zero "psychic signature" are refused before OpenSSL sees them), Ed25519 exactly 64 bytes.
#pragma once

#include <string_view>

#include "core/alg.h"
#include "core/jwk.h"
#include "core/status.h"

namespace jwtgate::core {

// The caller has already checked key.fits(alg). Returns ok or bad_signature.
Status verify_signature(Alg alg, const Jwk& key, std::string_view signing_input, std::string_view signature);

// Length in bytes of a raw ECDSA signature for an ES* alg (64, 96, 132).
std::size_t ecdsa_signature_size(Alg alg) noexcept;

// The digest for an alg, fetched once per process (implicit fetches per call are slow in
// OpenSSL 3). nullptr for EdDSA.
const EVP_MD* fetched_digest(Alg alg) noexcept;

// `input` hashed with `md` (one of fetched_digest's) into `out` (EVP_MAX_MD_SIZE bytes), with a
// digest context per thread and digest that stays set up between calls: this runs per token.
bool hash_bytes(const EVP_MD* md, std::string_view input, unsigned char* out, unsigned int& out_len);

}  // namespace jwtgate::core
