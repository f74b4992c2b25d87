#include "core/fingerprint.h"

#include <openssl/evp.h>

#include "core/openssl_ptr.h"

namespace jwtgate::core {

std::optional<TokenDigest> token_digest(std::string_view token) {
  // Fetched once and hashed with a context per thread: implicit fetches (EVP_sha256) cost
  // OpenSSL 3 a lock and a lookup per call, and this runs for every request with a token.
  static const EvpMdPtr sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  thread_local const EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  TokenDigest out{};
  unsigned int length = 0;
  if (!sha256 || !ctx || EVP_DigestInit_ex2(ctx.get(), sha256.get(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), token.data(), token.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &length) != 1 || length != out.size()) {
    return std::nullopt;
  }
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
