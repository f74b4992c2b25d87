#include "core/signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

namespace jwtgate::core {
namespace {

Status bad(std::string_view why) { return {Reason::bad_signature, std::string(why)}; }

struct Digests {
  std::array<EvpMdPtr, 3> md;  // SHA-256, SHA-384, SHA-512
  Digests() {
    md[0].reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
    md[1].reset(EVP_MD_fetch(nullptr, "SHA384", nullptr));
    md[2].reset(EVP_MD_fetch(nullptr, "SHA512", nullptr));
  }
};

struct CurveOrders {
  // Big-endian group orders, padded to the coordinate size, for the r/s range check.
  std::array<std::string, 3> order;
  CurveOrders() {
    const int nids[3] = {NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1};
    const std::size_t sizes[3] = {32, 48, 66};
    for (int i = 0; i < 3; ++i) {
      EcGroupPtr group(EC_GROUP_new_by_curve_name(nids[i]));
      order[i].assign(sizes[i], '\0');
      if (group) {
        BN_bn2binpad(EC_GROUP_get0_order(group.get()), reinterpret_cast<unsigned char*>(order[i].data()),
                     static_cast<int>(sizes[i]));
      }
    }
  }
};

int curve_index(Alg a) noexcept {
  switch (a) {
    case Alg::ES256: return 0;
    case Alg::ES384: return 1;
    default: return 2;
  }
}

// Each thread reuses one digest context: verification runs on worker threads and the context
// would otherwise be allocated per token.
EVP_MD_CTX* thread_md_ctx() {
  thread_local EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_MD_CTX_reset(ctx.get());
  return ctx.get();
}

// Setting up a verify context costs OpenSSL 3 a context allocation, a provider lookup and the
// padding parameters: for RSA about a third of the verification itself. A context cannot be
// shared between threads, so each thread keeps one per key and algorithm it has verified with.
// The context holds a reference to its key, so a cached key's address cannot be reused by another
// key; the cache is bounded and emptied when full (key sets change rarely).
class VerifyContexts {
 public:
  EVP_PKEY_CTX* get(Alg alg, EVP_PKEY* key) {
    for (const Entry& e : entries_) {
      if (e.key == key && e.alg == alg) return e.ctx.get();
    }
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 || !configure(alg, ctx.get())) return nullptr;
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_.push_back({key, alg, std::move(ctx)});
    return entries_.back().ctx.get();
  }

 private:
  static constexpr std::size_t kMaxEntries = 64;
  struct Entry {
    const EVP_PKEY* key;
    Alg alg;
    EvpPkeyCtxPtr ctx;
  };

  static bool configure(Alg alg, EVP_PKEY_CTX* ctx) {
    const EVP_MD* md = fetched_digest(alg);
    switch (alg_family(alg)) {
      case AlgFamily::rsa_pkcs1:
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, md) == 1;
      case AlgFamily::rsa_pss:
        // RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
               EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1;
      case AlgFamily::ecdsa: return EVP_PKEY_CTX_set_signature_md(ctx, md) == 1;
      default: return false;
    }
  }

  std::vector<Entry> entries_;
};

// 1 <= v <= n-1 for a big-endian v and n of the same length.
bool in_scalar_range(std::string_view v, std::string_view n) {
  bool nonzero = false;
  for (char c : v) nonzero |= c != 0;
  return nonzero && std::memcmp(v.data(), n.data(), v.size()) < 0;
}

Status verify_hmac(Alg alg, const Jwk& key, std::string_view input, std::string_view sig) {
  const std::size_t size = alg_digest_size(alg);
  if (sig.size() != size) return bad("HMAC signature has the wrong length");
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  const auto secret = key.secret.view();
  if (!HMAC(fetched_digest(alg), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len) ||
      mac_len != size) {
    return bad("HMAC could not be computed");
  }
  if (CRYPTO_memcmp(mac, sig.data(), size) != 0) return bad("signature does not match");
  return Status::Ok();
}

// RSA (PKCS#1 v1.5 and PSS) and ECDSA (DER signature): hash, then verify the hash with this
// thread's prepared context for the key.
Status verify_digest(Alg alg, const Jwk& key, std::string_view input, std::string_view sig) {
  thread_local VerifyContexts contexts;
  EVP_PKEY_CTX* pctx = contexts.get(alg, key.public_key.get());
  if (!pctx) return bad("verifier could not be initialised");
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int hash_len = 0;
  if (!hash_bytes(fetched_digest(alg), input, hash, hash_len)) return bad("the signing input could not be hashed");
  if (EVP_PKEY_verify(pctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(), hash, hash_len) != 1) {
    return bad("signature does not match");
  }
  return Status::Ok();
}

Status verify_ecdsa(Alg alg, const Jwk& key, std::string_view input, std::string_view sig) {
  static const CurveOrders orders;
  const std::size_t half = ecdsa_signature_size(alg) / 2;
  if (sig.size() != 2 * half) return bad("ECDSA signature is not raw r||s of the curve's length");
  const std::string_view r = sig.substr(0, half), s = sig.substr(half);
  const std::string& n = orders.order[static_cast<std::size_t>(curve_index(alg))];
  if (!in_scalar_range(r, n) || !in_scalar_range(s, n)) return bad("ECDSA r or s is out of range");
  EcdsaSigPtr ecdsa(ECDSA_SIG_new());
  BIGNUM* br = BN_bin2bn(reinterpret_cast<const unsigned char*>(r.data()), static_cast<int>(half), nullptr);
  BIGNUM* bs = BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(half), nullptr);
  if (!ecdsa || !br || !bs || ECDSA_SIG_set0(ecdsa.get(), br, bs) != 1) {
    BN_free(br);
    BN_free(bs);
    return bad("ECDSA signature could not be decoded");
  }
  unsigned char der[160];  // P-521: 2 * (2 + 1 + 66) + 3
  unsigned char* p = der;
  const int der_len = i2d_ECDSA_SIG(ecdsa.get(), &p);
  if (der_len <= 0 || static_cast<std::size_t>(der_len) > sizeof der) return bad("ECDSA signature could not be encoded");
  return verify_digest(alg, key, input, std::string_view(reinterpret_cast<char*>(der), static_cast<std::size_t>(der_len)));
}

Status verify_eddsa(const Jwk& key, std::string_view input, std::string_view sig) {
  if (sig.size() != 64) return bad("Ed25519 signature must be 64 bytes");
  EVP_MD_CTX* ctx = thread_md_ctx();
  if (EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key.public_key.get()) != 1) {
    return bad("verifier could not be initialised");
  }
  if (EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return bad("signature does not match");
  }
  return Status::Ok();
}

}  // namespace

const EVP_MD* fetched_digest(Alg alg) noexcept {
  static const Digests digests;
  switch (alg_digest_size(alg)) {
    case 32: return digests.md[0].get();
    case 48: return digests.md[1].get();
    case 64: return digests.md[2].get();
    default: return nullptr;
  }
}

bool hash_bytes(const EVP_MD* md, std::string_view input, unsigned char* out, unsigned int& out_len) {
  // One context per digest (re-initialising a context with the digest it had keeps its provider
  // state, where a reset would free and reallocate it).
  thread_local std::array<std::pair<const EVP_MD*, EvpMdCtxPtr>, 3> contexts;
  EVP_MD_CTX* ctx = nullptr;
  for (auto& [digest, c] : contexts) {
    if (!c) {
      digest = md;
      c.reset(EVP_MD_CTX_new());
    }
    if (digest == md) {
      ctx = c.get();
      break;
    }
  }
  if (!ctx) ctx = thread_md_ctx();  // a fourth digest: none is fetched today
  return md && ctx && EVP_DigestInit_ex2(ctx, md, nullptr) == 1 && EVP_DigestUpdate(ctx, input.data(), input.size()) == 1 &&
         EVP_DigestFinal_ex(ctx, out, &out_len) == 1;
}

std::size_t ecdsa_signature_size(Alg alg) noexcept {
  switch (alg) {
    case Alg::ES256: return 64;
    case Alg::ES384: return 96;
    case Alg::ES512: return 132;
    default: return 0;
  }
}

Status verify_signature(Alg alg, const Jwk& key, std::string_view input, std::string_view sig) {
  if (!key.fits(alg)) return bad("key does not fit the algorithm");
  switch (alg_family(alg)) {
    case AlgFamily::hmac: return verify_hmac(alg, key, input, sig);
    case AlgFamily::rsa_pkcs1:
    case AlgFamily::rsa_pss:
      if (sig.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key.public_key.get()))) {
        return bad("RSA signature is not the modulus length");
      }
      return verify_digest(alg, key, input, sig);
    case AlgFamily::ecdsa: return verify_ecdsa(alg, key, input, sig);
    case AlgFamily::eddsa: return verify_eddsa(key, input, sig);
  }
  return bad("unknown algorithm family");
}

}  // namespace jwtgate::core
