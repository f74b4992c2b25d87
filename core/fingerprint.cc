#include "core/fingerprint.h"

#include <openssl/evp.h>

#include <algorithm>

#include "core/signature.h"

namespace jwtgate::core {

std::optional<TokenDigest> token_digest(std::string_view token) {
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // HS256's digest is SHA-256, fetched once: implicit fetches (EVP_sha256) cost OpenSSL 3 a lock
  // and a lookup per call, and this runs for every request with a token.
  if (!hash_bytes(fetched_digest(Alg::HS256), token, hash, length) || length != TokenDigest().size()) return std::nullopt;
  TokenDigest out;
  std::copy(hash, hash + length, out.begin());
  return out;
}

std::string token_fingerprint(const TokenDigest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (std::size_t i = 0; i < 8; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace jwtgate::core
