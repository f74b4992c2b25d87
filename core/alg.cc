#include "core/alg.h"

#include <array>

namespace jwtgate::core {
namespace {

struct AlgInfo {
  std::string_view name;
  AlgFamily family;
  KeyType key_type;
  Curve curve;
  std::string_view digest;
  std::size_t digest_size;
};

constexpr std::array<AlgInfo, kAlgCount> kAlgs{{
    {"HS256", AlgFamily::hmac, KeyType::oct, Curve::none, "SHA256", 32},
    {"HS384", AlgFamily::hmac, KeyType::oct, Curve::none, "SHA384", 48},
    {"HS512", AlgFamily::hmac, KeyType::oct, Curve::none, "SHA512", 64},
    {"RS256", AlgFamily::rsa_pkcs1, KeyType::rsa, Curve::none, "SHA256", 32},
    {"RS384", AlgFamily::rsa_pkcs1, KeyType::rsa, Curve::none, "SHA384", 48},
    {"RS512", AlgFamily::rsa_pkcs1, KeyType::rsa, Curve::none, "SHA512", 64},
    {"PS256", AlgFamily::rsa_pss, KeyType::rsa, Curve::none, "SHA256", 32},
    {"PS384", AlgFamily::rsa_pss, KeyType::rsa, Curve::none, "SHA384", 48},
    {"PS512", AlgFamily::rsa_pss, KeyType::rsa, Curve::none, "SHA512", 64},
    {"ES256", AlgFamily::ecdsa, KeyType::ec, Curve::p256, "SHA256", 32},
    {"ES384", AlgFamily::ecdsa, KeyType::ec, Curve::p384, "SHA384", 48},
    {"ES512", AlgFamily::ecdsa, KeyType::ec, Curve::p521, "SHA512", 64},
    {"EdDSA", AlgFamily::eddsa, KeyType::okp, Curve::ed25519, "", 0},
}};

const AlgInfo& info(Alg a) noexcept { return kAlgs[static_cast<std::size_t>(a)]; }

}  // namespace

std::optional<Alg> alg_from_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kAlgs.size(); ++i) {
    if (kAlgs[i].name == name) return static_cast<Alg>(i);
  }
  return std::nullopt;
}

bool is_none_alg(std::string_view name) noexcept {
  if (name.size() != 4) return false;
  constexpr std::string_view none = "none";
  for (std::size_t i = 0; i < 4; ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != none[i]) return false;
  }
  return true;
}

std::string_view alg_name(Alg a) noexcept { return info(a).name; }
AlgFamily alg_family(Alg a) noexcept { return info(a).family; }
KeyType alg_key_type(Alg a) noexcept { return info(a).key_type; }
Curve alg_curve(Alg a) noexcept { return info(a).curve; }
std::string_view alg_digest_name(Alg a) noexcept { return info(a).digest; }
std::size_t alg_digest_size(Alg a) noexcept { return info(a).digest_size; }

std::string_view key_type_name(KeyType t) noexcept {
  switch (t) {
    case KeyType::rsa: return "RSA";
    case KeyType::ec: return "EC";
    case KeyType::okp: return "OKP";
    case KeyType::oct: return "oct";
  }
  return "";
}

std::string_view curve_name(Curve c) noexcept {
  switch (c) {
    case Curve::none: return "";
    case Curve::p256: return "P-256";
    case Curve::p384: return "P-384";
    case Curve::p521: return "P-521";
    case Curve::ed25519: return "Ed25519";
  }
  return "";
}

}  // namespace jwtgate::core
