#include "tests/fuzz/fuzz_support.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/openssl_ptr.h"

namespace jwtgate::fuzz {

void fail(const char* file, int line, const char* what) {
  std::fprintf(stderr, "FUZZ PROPERTY FAILED %s:%d: %s\n", file, line, what);
  std::abort();
}

const core::KeySet& key_set() {
  static const core::KeySet keys = [] {
    std::ifstream in(JWTGATE_FUZZ_KEYS);
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = core::parse_jwks(text.str());
    if (!parsed.ok() || !parsed->skipped.empty()) {
      std::fprintf(stderr, "fuzz: cannot use %s: %s\n", JWTGATE_FUZZ_KEYS, parsed.status().detail().c_str());
      std::abort();
    }
    return std::move(parsed.value());
  }();
  return keys;
}

std::optional<std::string> plain_base64url_decode(std::string_view in) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const std::size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

namespace {

const EVP_MD* digest_of(core::Alg alg) {
  switch (core::alg_digest_size(alg)) {
    case 32: return EVP_sha256();
    case 48: return EVP_sha384();
    case 64: return EVP_sha512();
    default: return nullptr;
  }
}

bool key_matches_alg(core::Alg alg, const core::Jwk& key) {
  using core::AlgFamily;
  const EVP_PKEY* pkey = key.public_key.get();
  switch (core::alg_family(alg)) {
    case AlgFamily::hmac: return key.kty == core::KeyType::oct && !pkey && !key.secret.empty();
    case AlgFamily::rsa_pkcs1:
    case AlgFamily::rsa_pss: return pkey && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA;
    case AlgFamily::eddsa: return pkey && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519;
    case AlgFamily::ecdsa: {
      if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) return false;
      char group[64] = {};
      std::size_t len = 0;
      if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &len) != 1) return false;
      const std::string_view want = alg == core::Alg::ES256 ? "prime256v1" : alg == core::Alg::ES384 ? "secp384r1" : "secp521r1";
      return std::string_view(group, len) == want;
    }
  }
  return false;
}

}  // namespace

bool openssl_verifies(core::Alg alg, const core::Jwk& key, std::string_view signing_input, std::string_view signature) {
  if (!key_matches_alg(alg, key)) return false;
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
  const EVP_MD* md = digest_of(alg);
  if (core::alg_family(alg) == core::AlgFamily::hmac) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    const std::string_view secret = key.secret.view();
    if (!HMAC(md, secret.data(), static_cast<int>(secret.size()), data, signing_input.size(), mac, &mac_len)) return false;
    return mac_len == signature.size() && CRYPTO_memcmp(mac, sig, mac_len) == 0;
  }
  std::string der;
  if (core::alg_family(alg) == core::AlgFamily::ecdsa) {
    const std::size_t half = alg == core::Alg::ES256 ? 32 : alg == core::Alg::ES384 ? 48 : 66;
    if (signature.size() != 2 * half) return false;
    core::EcdsaSigPtr es(ECDSA_SIG_new());
    ECDSA_SIG_set0(es.get(), BN_bin2bn(sig, static_cast<int>(half), nullptr),
                   BN_bin2bn(sig + half, static_cast<int>(half), nullptr));
    unsigned char* out = nullptr;
    const int n = i2d_ECDSA_SIG(es.get(), &out);
    if (n <= 0) return false;
    der.assign(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
    OPENSSL_free(out);
    sig = reinterpret_cast<const unsigned char*>(der.data());
    signature = der;
  }
  core::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  bool ok = EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key.public_key.get()) == 1;
  if (ok && core::alg_family(alg) == core::AlgFamily::rsa_pss) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1;
  }
  return ok && EVP_DigestVerify(ctx.get(), sig, signature.size(), data, signing_input.size()) == 1;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace jwtgate::fuzz
