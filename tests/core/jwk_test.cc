#include <doctest/doctest.h>

#include <string>

#include "core/base64url.h"
#include "core/jwk.h"
#include "core/signer.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

using namespace jwtgate::core;

namespace {

std::string jwk_of(Alg alg, std::string_view kid = "k") {
  auto key = generate_signing_key(alg);
  REQUIRE(key.ok());
  std::string jwks = jwks_for(*key, alg, kid);
  // {"keys":[ ... ]}
  return jwks.substr(9, jwks.size() - 11);
}

std::string set_of(std::initializer_list<std::string> keys) {
  std::string s = "{\"keys\":[";
  bool first = true;
  for (const auto& k : keys) {
    if (!first) s += ',';
    first = false;
    s += k;
  }
  return s + "]}";
}

// Replaces the string value of "member" in a one-line JSON object.
std::string with_member(std::string json, const std::string& member, const std::string& value) {
  auto pos = json.find("\"" + member + "\":\"");
  REQUIRE(pos != std::string::npos);
  auto start = pos + member.size() + 4;
  auto end = json.find('"', start);
  return json.replace(start, end - start, value);
}

std::string member_value(const std::string& json, const std::string& member) {
  auto start = json.find("\"" + member + "\":\"") + member.size() + 4;
  return json.substr(start, json.find('"', start) - start);
}

std::string skip_reason(const std::string& jwk) {
  auto set = parse_jwks(set_of({jwk, jwk_of(Alg::ES256, "good")}));
  REQUIRE(set.ok());
  REQUIRE(set->keys.size() == 1);
  REQUIRE(set->skipped.size() == 1);
  return set->skipped[0].reason;
}

}  // namespace

TEST_CASE("keys of every supported type parse and fit their algorithms") {
  for (Alg alg : {Alg::RS256, Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA, Alg::HS256, Alg::HS512}) {
    auto set = parse_jwks(set_of({jwk_of(alg)}));
    REQUIRE_MESSAGE(set.ok(), set.status().detail());
    REQUIRE(set->keys.size() == 1);
    CHECK(set->keys[0].fits(alg));
    CHECK(set->keys[0].kid == "k");
  }
}

TEST_CASE("RSA moduli below 2048 bits are refused") {
  EvpPkeyPtr weak(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024)));
  REQUIRE(weak);
  std::string reason = skip_reason(public_jwk_json(weak.get(), "weak", Alg::RS256));
  CHECK(reason.find("1024 bits") != std::string::npos);
}

TEST_CASE("RSA with a leading zero octet in n is accepted as the same key") {
  std::string jwk = jwk_of(Alg::RS256);
  std::string n;
  REQUIRE(base64url_decode(member_value(jwk, "n"), n));
  auto set = parse_jwks(set_of({with_member(jwk, "n", base64url_encode(std::string(1, '\0') + n))}));
  REQUIRE(set.ok());
  CHECK(set->keys[0].bits == 2048);
}

TEST_CASE("RSA exponents that are even or one are refused") {
  std::string jwk = jwk_of(Alg::RS256);
  CHECK(skip_reason(with_member(jwk, "e", base64url_encode("\x01"))).find("exponent") != std::string::npos);
  CHECK(skip_reason(with_member(jwk, "e", base64url_encode("\x01\x00\x00"))).find("exponent") != std::string::npos);
}

TEST_CASE("EC points off the curve are refused") {
  std::string jwk = jwk_of(Alg::ES256);
  std::string y;
  REQUIRE(base64url_decode(member_value(jwk, "y"), y));
  y[31] = static_cast<char>(y[31] ^ 1);
  CHECK(skip_reason(with_member(jwk, "y", base64url_encode(y))).find("not on the curve") != std::string::npos);
}

TEST_CASE("EC coordinates of the wrong length are refused") {
  std::string jwk = jwk_of(Alg::ES256);
  std::string x;
  REQUIRE(base64url_decode(member_value(jwk, "x"), x));
  CHECK(skip_reason(with_member(jwk, "x", base64url_encode(x.substr(1)))).find("exactly 32 bytes") != std::string::npos);
  CHECK(skip_reason(with_member(jwk, "x", base64url_encode(std::string(1, '\0') + x))).find("exactly 32 bytes") != std::string::npos);
}

TEST_CASE("EC curves outside P-256/384/521 and a curve mismatched to alg are refused") {
  std::string jwk = jwk_of(Alg::ES256);
  CHECK(skip_reason(with_member(jwk, "crv", "secp256k1")).find("not supported") != std::string::npos);
  CHECK(skip_reason(with_member(jwk, "alg", "ES384")).find("does not fit") != std::string::npos);
}

TEST_CASE("OKP keys must be Ed25519 with a 32-byte x") {
  std::string jwk = jwk_of(Alg::EdDSA);
  CHECK(skip_reason(with_member(jwk, "crv", "X25519")).find("not supported") != std::string::npos);
  CHECK(skip_reason(with_member(jwk, "x", base64url_encode(std::string(31, 'a')))).find("32 bytes") != std::string::npos);
}

TEST_CASE("HMAC secrets shorter than the hash output are refused") {
  std::string short_key = R"({"kty":"oct","k":")" + base64url_encode(std::string(31, 'k')) + R"("})";
  CHECK(skip_reason(short_key).find("31 bytes") != std::string::npos);
  std::string hs512_32 = R"({"kty":"oct","alg":"HS512","k":")" + base64url_encode(std::string(32, 'k')) + R"("})";
  CHECK(skip_reason(hs512_32).find("shorter than the HS512") != std::string::npos);
  // A 32-byte key without alg is usable for HS256 only.
  auto set = parse_jwks(set_of({R"({"kty":"oct","k":")" + base64url_encode(std::string(32, 'k')) + R"("})"}));
  REQUIRE(set.ok());
  CHECK(set->keys[0].fits(Alg::HS256));
  CHECK_FALSE(set->keys[0].fits(Alg::HS384));
}

TEST_CASE("an HMAC secret can never be a public key's bytes") {
  auto rsa = generate_signing_key(Alg::RS256);
  REQUIRE(rsa.ok());
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PUBKEY(bio.get(), rsa->private_key.get()));
  char* data = nullptr;
  const long pem_len = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, static_cast<std::size_t>(pem_len));
  unsigned char* der = nullptr;
  int der_len = i2d_PUBKEY(rsa->private_key.get(), &der);
  REQUIRE(der_len > 0);
  std::string der_bytes(reinterpret_cast<char*>(der), static_cast<std::size_t>(der_len));
  OPENSSL_free(der);

  CHECK(looks_like_public_key(pem));
  CHECK(looks_like_public_key(der_bytes));
  CHECK_FALSE(looks_like_public_key(std::string(64, 's')));
  CHECK_FALSE(jwk_from_hmac_secret(pem, "k").ok());
  CHECK_FALSE(jwk_from_hmac_secret(der_bytes, "k").ok());
  std::string as_jwk = R"({"kty":"oct","k":")" + base64url_encode(pem) + R"("})";
  CHECK(skip_reason(as_jwk).find("public key") != std::string::npos);
  CHECK(jwk_from_hmac_secret(std::string(32, 's'), "k").ok());
}

TEST_CASE("use, key_ops and alg decide whether a key may verify") {
  std::string jwk = jwk_of(Alg::ES256);
  CHECK(skip_reason(with_member(jwk, "use", "enc")).find("\"use\"") != std::string::npos);
  std::string ops_sign = jwk.substr(0, jwk.size() - 1) + R"(,"key_ops":["sign"]})";
  CHECK(skip_reason(ops_sign).find("key_ops") != std::string::npos);
  std::string ops_verify = jwk.substr(0, jwk.size() - 1) + R"(,"key_ops":["verify"]})";
  CHECK(parse_jwks(set_of({ops_verify})).ok());
  CHECK(skip_reason(with_member(jwk, "alg", "RSA-OAEP")).find("not a supported signature") != std::string::npos);
  CHECK(skip_reason(with_member(jwk, "alg", "none")).find("not a supported signature") != std::string::npos);
  CHECK(skip_reason(with_member(jwk, "alg", "RS256")).find("does not fit") != std::string::npos);
}

TEST_CASE("a published key with private parts is refused") {
  std::string jwk = jwk_of(Alg::ES256);
  std::string with_d = jwk.substr(0, jwk.size() - 1) + R"(,"d":"AAAA"})";
  CHECK(skip_reason(with_d).find("private key material") != std::string::npos);
}

TEST_CASE("one bad key does not spoil the set; a set of only bad keys is an error") {
  auto set = parse_jwks(set_of({R"({"kty":"XYZ"})", "42", jwk_of(Alg::ES256, "a"), jwk_of(Alg::EdDSA, "b")}));
  REQUIRE(set.ok());
  CHECK(set->keys.size() == 2);
  CHECK(set->skipped.size() == 2);
  CHECK(set->skipped[0].index == 0);
  CHECK(set->skipped[1].index == 1);

  auto none = parse_jwks(set_of({R"({"kty":"XYZ","kid":"x1"})"}));
  CHECK_FALSE(none.ok());
  CHECK(none.status().detail().find("x1") != std::string::npos);
  CHECK_FALSE(parse_jwks(R"({"keys":[]})").ok());
  CHECK_FALSE(parse_jwks(R"({"keys":{}})").ok());
  CHECK_FALSE(parse_jwks("not json").ok());
  CHECK_FALSE(parse_jwks(R"({"other":1})").ok());
}

TEST_CASE("a single JWK object is accepted as a set of one") {
  auto set = parse_jwks(jwk_of(Alg::ES256, "solo"));
  REQUIRE(set.ok());
  CHECK(set->keys[0].kid == "solo");
}

TEST_CASE("the number of keys in one set is bounded") {
  std::string oct = R"({"kty":"oct","k":")" + base64url_encode(std::string(32, 'k')) + R"("})";
  std::string keys = "{\"keys\":[";
  for (std::size_t i = 0; i < kMaxKeysPerSet + 3; ++i) keys += (i ? "," : "") + oct;
  auto set = parse_jwks(keys + "]}");
  REQUIRE(set.ok());
  CHECK(set->keys.size() == kMaxKeysPerSet);
  CHECK(set->skipped.size() == 3);
}
