// JWK / JWKS parsing. Properties, beyond "no crash":
//  - every accepted key is what its kty allows: RSA keys hold an RSA key of 2048..16384 bits, EC
//    keys an EC key on the curve named, OKP keys Ed25519, oct keys a secret of at least 32 bytes
//    and no public key; a key fits only algorithms of its type and curve (and its own "alg");
//  - the set is bounded (keys plus skipped never exceed the limit, kids are bounded);
//  - parsing is deterministic: the same text gives the same keys (same OpenSSL keys), the same
//    skipped entries with the same reasons;
//  - an asymmetric key written back as a JWK (public_jwk_json) parses to the same key.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/jwk.h"
#include "tests/fuzz/fuzz_support.h"

using namespace jwtgate;

namespace {

void check_key(const core::Jwk& k) {
  using core::KeyType;
  const EVP_PKEY* pkey = k.public_key.get();
  FUZZ_CHECK(k.kid.size() <= core::kMaxKidBytes);
  FUZZ_CHECK(k.has_kid || k.kid.empty());
  switch (k.kty) {
    case KeyType::rsa:
      FUZZ_CHECK(pkey && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA && k.crv == core::Curve::none);
      FUZZ_CHECK(static_cast<std::size_t>(EVP_PKEY_get_bits(pkey)) >= core::kMinRsaBits);
      FUZZ_CHECK(static_cast<std::size_t>(EVP_PKEY_get_bits(pkey)) <= core::kMaxRsaBits);
      break;
    case KeyType::ec:
      FUZZ_CHECK(pkey && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC);
      FUZZ_CHECK(k.crv == core::Curve::p256 || k.crv == core::Curve::p384 || k.crv == core::Curve::p521);
      FUZZ_CHECK(core::curve_of(pkey) == k.crv);
      break;
    case KeyType::okp:
      FUZZ_CHECK(pkey && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 && k.crv == core::Curve::ed25519);
      break;
    case KeyType::oct:
      FUZZ_CHECK(!pkey && k.secret.size() >= core::kMinHmacSecretBytes);
      break;
  }
  bool fits_any = false;
  for (int i = 0; i < core::kAlgCount; ++i) {
    const auto a = static_cast<core::Alg>(i);
    if (!k.fits(a)) continue;
    fits_any = true;
    FUZZ_CHECK(core::alg_key_type(a) == k.kty);
    if (k.kty == KeyType::ec || k.kty == KeyType::okp) FUZZ_CHECK(core::alg_curve(a) == k.crv);
    if (k.alg) FUZZ_CHECK(*k.alg == a);
    if (k.kty == KeyType::oct) FUZZ_CHECK(k.secret.size() >= core::alg_digest_size(a));
  }
  // A key that can verify nothing would be accepted for no reason; jwtgate skips those.
  FUZZ_CHECK(fits_any);
}

void check_same(const core::KeySet& a, const core::KeySet& b) {
  FUZZ_CHECK(a.keys.size() == b.keys.size() && a.skipped.size() == b.skipped.size());
  for (std::size_t i = 0; i < a.keys.size(); ++i) {
    const core::Jwk &x = a.keys[i], &y = b.keys[i];
    FUZZ_CHECK(x.kid == y.kid && x.has_kid == y.has_kid && x.kty == y.kty && x.crv == y.crv && x.alg == y.alg &&
               x.bits == y.bits && x.secret.view() == y.secret.view());
    FUZZ_CHECK(!x.public_key == !y.public_key);
    if (x.public_key) FUZZ_CHECK(EVP_PKEY_eq(x.public_key.get(), y.public_key.get()) == 1);
  }
  for (std::size_t i = 0; i < a.skipped.size(); ++i) {
    FUZZ_CHECK(a.skipped[i].index == b.skipped[i].index && a.skipped[i].kid == b.skipped[i].kid &&
               a.skipped[i].reason == b.skipped[i].reason);
    FUZZ_CHECK(!a.skipped[i].reason.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto first = core::parse_jwks(in);
  auto second = core::parse_jwks(in);
  FUZZ_CHECK(first.ok() == second.ok());
  if (!first.ok()) {
    FUZZ_CHECK(first.status().reason() == second.status().reason() &&
               first.status().detail() == second.status().detail());
    FUZZ_CHECK(!first.status().detail().empty());
    return 0;
  }
  const core::KeySet& set = first.value();
  FUZZ_CHECK(!set.keys.empty());
  FUZZ_CHECK(set.keys.size() <= core::kMaxKeysPerSet);
  check_same(set, second.value());
  for (const core::Jwk& k : set.keys) {
    check_key(k);
    if (!k.public_key) continue;
    const std::string written = core::public_jwk_json(k.public_key.get(), k.kid, k.alg);
    auto reparsed = core::parse_jwks(written);
    FUZZ_CHECK(reparsed.ok() && reparsed->keys.size() == 1);
    const core::Jwk& r = reparsed->keys[0];
    FUZZ_CHECK(EVP_PKEY_eq(r.public_key.get(), k.public_key.get()) == 1);
    FUZZ_CHECK(r.kty == k.kty && r.crv == k.crv && r.alg == k.alg && r.kid == k.kid);
  }
  return 0;
}
