// The JWS algorithms jwtgate implements (RFC 7518 §3, RFC 8037) and what each one demands of a
// key. "none" is deliberately not an Alg: there is no value that could represent it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace jwtgate::core {

enum class Alg : std::uint8_t {
  HS256, HS384, HS512,
  RS256, RS384, RS512,
  PS256, PS384, PS512,
  ES256, ES384, ES512,
  EdDSA,
};
inline constexpr int kAlgCount = 13;

enum class AlgFamily : std::uint8_t { hmac, rsa_pkcs1, rsa_pss, ecdsa, eddsa };
enum class KeyType : std::uint8_t { rsa, ec, okp, oct };
enum class Curve : std::uint8_t { none, p256, p384, p521, ed25519 };

// Exact, case-sensitive JOSE name ("RS256"); nullopt for anything else, "none" included.
std::optional<Alg> alg_from_name(std::string_view name) noexcept;
std::string_view alg_name(Alg a) noexcept;
// True for "none" in any letter case: such a token is unsecured and reported as such.
bool is_none_alg(std::string_view name) noexcept;

AlgFamily alg_family(Alg a) noexcept;
KeyType alg_key_type(Alg a) noexcept;
Curve alg_curve(Alg a) noexcept;            // the one curve an ES*/EdDSA alg works with
std::string_view alg_digest_name(Alg a) noexcept;  // "SHA256"...; empty for EdDSA
std::size_t alg_digest_size(Alg a) noexcept;       // bytes; 0 for EdDSA

std::string_view key_type_name(KeyType t) noexcept;  // JWK "kty" value
std::string_view curve_name(Curve c) noexcept;       // JWK "crv" value

// A small set of algorithms: the per-provider allowlist.
class AlgSet {
 public:
  constexpr AlgSet() = default;
  static constexpr AlgSet all() { AlgSet s; s.bits_ = (1u << kAlgCount) - 1; return s; }
  constexpr void add(Alg a) { bits_ |= bit(a); }
  constexpr bool contains(Alg a) const { return (bits_ & bit(a)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr bool operator==(const AlgSet&) const = default;

 private:
  static constexpr std::uint32_t bit(Alg a) { return 1u << static_cast<unsigned>(a); }
  std::uint32_t bits_ = 0;
};

}  // namespace jwtgate::core
