// The attack catalog: each known way to fool a JWT verifier, each its own test.
#include <doctest/doctest.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/base64url.h"
#include "core/signature.h"
#include "tests/support/tokens.h"

using namespace jwtgate::core;
using namespace jwtgate::testing;

namespace {

std::string b64(std::string_view s) { return base64url_encode(s); }

// P-256 group order n, big-endian.
const std::string kP256Order = [] {
  const unsigned char n[32] = {0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
                               0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17,
                               0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};
  return std::string(reinterpret_cast<const char*>(n), 32);
}();

VerifyPolicy allow_all() {
  VerifyPolicy p = policy_for(Alg::HS256);
  p.algorithms = AlgSet::all();
  return p;
}

std::string public_pem(const EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PUBKEY(bio.get(), const_cast<EVP_PKEY*>(key)));
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string public_der(const EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(const_cast<EVP_PKEY*>(key), &der);
  REQUIRE(len > 0);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace

TEST_CASE("alg none in any spelling is unsecured and never verifies") {
  TestKey key = make_key(Alg::HS256);
  for (const char* none : {"none", "None", "NONE", "nOnE"}) {
    CAPTURE(none);
    const std::string header = std::string(R"({"alg":")") + none + R"("})";
    CHECK(verify(b64(header) + "." + b64(payload()) + ".", key.keys, allow_all()).reason() == Reason::unsecured);
    // Even with a signature attached.
    CHECK(verify(token_with_signature(header, payload(), "sig"), key.keys, allow_all()).reason() == Reason::unsecured);
  }
}

TEST_CASE("a signed alg with an empty signature segment is unsecured") {
  TestKey key = make_key(Alg::HS256);
  CHECK(verify(b64(header_for(key)) + "." + b64(payload()) + ".", key.keys, allow_all()).reason() == Reason::unsecured);
}

TEST_CASE("RS256 to HS256 key confusion: the RSA public key as an HMAC secret never verifies") {
  TestKey rsa = make_key(Alg::RS256, "rsa");
  const EVP_PKEY* pub = rsa.keys.keys[0].public_key.get();
  for (const std::string& secret : {public_pem(pub), public_der(pub), rsa.jwks_json}) {
    SigningKey forged;
    forged.secret = SecretBytes(secret);
    const std::string token = signed_token(R"({"alg":"HS256","kid":"rsa"})", payload(), Alg::HS256, forged);
    // Allowed algorithm, matching kid, and still no key: HS256 only ever uses oct keys.
    CHECK(verify(token, rsa.keys, allow_all()).reason() == Reason::no_matching_key);
    CHECK(verify(token, rsa.keys, policy_for(Alg::RS256)).reason() == Reason::alg_not_allowed);
  }
}

TEST_CASE("psychic signature (CVE-2022-21449): ECDSA r = s = 0 is refused for every curve") {
  for (Alg alg : {Alg::ES256, Alg::ES384, Alg::ES512}) {
    CAPTURE(alg_name(alg));
    TestKey key = make_key(alg);
    const std::string zero(ecdsa_signature_size(alg), '\0');
    Status s = verify(token_with_signature(header_for(key), payload(), zero), key.keys, policy_for(alg));
    CHECK(s.reason() == Reason::bad_signature);
    CHECK(s.detail().find("out of range") != std::string::npos);
  }
}

TEST_CASE("ECDSA r or s equal to or above the group order is refused") {
  TestKey key = make_key(Alg::ES256);
  const std::string good = signed_token(header_for(key), payload(), key);
  std::string sig;
  REQUIRE(base64url_decode(good.substr(good.rfind('.') + 1), sig));
  std::string above = kP256Order;
  above[31] = static_cast<char>(above[31] + 1);
  for (const std::string& bad : {kP256Order + kP256Order, kP256Order + sig.substr(32), sig.substr(0, 32) + kP256Order,
                                 above + sig.substr(32), std::string(64, '\xff')}) {
    Status s = verify(token_with_signature(header_for(key), payload(), bad), key.keys, policy_for(Alg::ES256));
    CHECK(s.reason() == Reason::bad_signature);
    CHECK(s.detail().find("out of range") != std::string::npos);
  }
  // r with s' = n - s is the other valid-looking signature of the same message (malleability);
  // it is mathematically valid ECDSA, so it verifies: jwtgate never uses signatures as identifiers.
  CHECK(verify(good, key.keys, policy_for(Alg::ES256)).ok());
}

TEST_CASE("DER-encoded ECDSA signatures are refused") {
  TestKey key = make_key(Alg::ES256);
  const std::string input = b64(header_for(key)) + "." + b64(payload());
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.signing.private_key.get()) == 1);
  std::size_t len = 0;
  REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  std::string der(len, '\0');
  REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  der.resize(len);
  CHECK(verify(input + "." + b64(der), key.keys, policy_for(Alg::ES256)).reason() == Reason::bad_signature);
}

TEST_CASE("signatures of the wrong length are refused for every family") {
  struct Case { Alg alg; int delta; };
  for (Case c : {Case{Alg::ES256, -1}, Case{Alg::ES256, 1}, Case{Alg::ES512, -2}, Case{Alg::RS256, -1},
                 Case{Alg::RS256, 1}, Case{Alg::PS256, 1}, Case{Alg::EdDSA, -1}, Case{Alg::EdDSA, 1},
                 Case{Alg::HS256, -16}, Case{Alg::HS256, 1}}) {
    CAPTURE(alg_name(c.alg));
    CAPTURE(c.delta);
    TestKey key = make_key(c.alg);
    const std::string good = signed_token(header_for(key), payload(), key);
    std::string sig;
    REQUIRE(base64url_decode(good.substr(good.rfind('.') + 1), sig));
    // RSA: a leading zero byte would be the same integer; it is still refused.
    sig = c.delta > 0 ? std::string(static_cast<std::size_t>(c.delta), '\0') + sig : sig.substr(0, sig.size() + c.delta);
    CHECK(verify(good.substr(0, good.rfind('.') + 1) + b64(sig), key.keys, policy_for(c.alg)).reason() ==
          Reason::bad_signature);
  }
}

TEST_CASE("malformed base64url in any segment is refused") {
  TestKey key = make_key(Alg::HS256);
  const std::string good = signed_token(header_for(key), payload(), key);
  const auto d1 = good.find('.'), d2 = good.rfind('.');
  const std::string h = good.substr(0, d1), p = good.substr(d1 + 1, d2 - d1 - 1), s = good.substr(d2 + 1);
  for (const std::string& bad : {h + "=." + p + "." + s, h + "." + p + "=." + s, h + "." + p + "." + s + "=",
                                 h + "+." + p + "." + s, h + "." + p + "." + s.substr(0, s.size() - 1) + "/",
                                 h + " ." + p + "." + s, h + "." + p + "\n." + s}) {
    CHECK(verify(bad, key.keys, policy_for(Alg::HS256)).reason() == Reason::malformed);
  }
  // Non-canonical trailing bits: HS256's 32-byte signature ends in a character whose low two
  // bits are unused; setting them changes nothing after a lax decode, and must be refused.
  std::string noncanonical = s;
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  noncanonical.back() = alphabet[alphabet.find(s.back()) | 1];
  CHECK(verify(h + "." + p + "." + noncanonical, key.keys, policy_for(Alg::HS256)).reason() == Reason::malformed);
}

TEST_CASE("duplicate header members are refused, escaped spellings included") {
  TestKey key = make_key(Alg::HS256);
  for (const char* header : {R"({"alg":"HS256","alg":"none"})", R"({"alg":"none","alg":"HS256"})",
                             R"({"alg":"HS256","\u0061lg":"none"})", R"({"alg":"HS256","kid":"k1","kid":"k2"})"}) {
    CAPTURE(header);
    CHECK(verify(signed_token(header, payload(), key), key.keys, allow_all()).reason() == Reason::malformed);
  }
}

TEST_CASE("duplicate payload claims are refused, escaped spellings included") {
  TestKey key = make_key(Alg::HS256);
  const std::string p = payload(R"("\u0065xp":9999999999)");
  CHECK(verify(signed_token(header_for(key), p, key), key.keys, policy_for(Alg::HS256)).reason() == Reason::malformed);
}

TEST_CASE("crit with any parameter, and b64, are refused") {
  TestKey key = make_key(Alg::HS256);
  for (const char* header : {R"({"alg":"HS256","kid":"k1","crit":["exp"],"exp":1})",
                             R"({"alg":"HS256","kid":"k1","b64":false,"crit":["b64"]})",
                             R"({"alg":"HS256","kid":"k1","b64":false})", R"({"alg":"HS256","kid":"k1","crit":[]})"}) {
    CAPTURE(header);
    CHECK(verify(signed_token(header, payload(), key), key.keys, policy_for(Alg::HS256)).reason() ==
          Reason::crit_unsupported);
  }
}

TEST_CASE("embedded jwk, jku, x5u and x5c are never used to find a key") {
  TestKey trusted = make_key(Alg::RS256, "k1");
  TestKey attacker = make_key(Alg::RS256, "k1");
  std::string attacker_jwk = attacker.jwks_json.substr(9, attacker.jwks_json.size() - 11);
  const std::string headers[] = {
      R"({"alg":"RS256","jwk":)" + attacker_jwk + "}",
      R"({"alg":"RS256","kid":"k1","jwk":)" + attacker_jwk + "}",
      R"({"alg":"RS256","kid":"k1","jku":"http://127.0.0.1:1/jwks.json"})",
      R"({"alg":"RS256","kid":"k1","x5u":"http://127.0.0.1:1/cert.pem"})",
      R"({"alg":"RS256","kid":"k1","x5c":["MIIB"]})",
  };
  for (const auto& header : headers) {
    CAPTURE(header);
    CHECK(verify(signed_token(header, payload(), attacker), trusted.keys, policy_for(Alg::RS256)).reason() ==
          Reason::bad_signature);
  }
}

TEST_CASE("kid is only compared: path traversal and injection find no key") {
  TestKey key = make_key(Alg::HS256, "k1");
  for (const char* kid : {"../../../../dev/null", "/dev/null", "k1/../k1", "k1' OR '1'='1", "k1\\u0000", "K1", ""}) {
    CAPTURE(kid);
    std::string header = std::string(R"({"alg":"HS256","kid":")") + kid + "\"}";
    CHECK(verify(signed_token(header, payload(), key), key.keys, policy_for(Alg::HS256)).reason() == Reason::unknown_kid);
  }
}

TEST_CASE("short RSA and HMAC keys never make it into a key set") {
  EvpPkeyPtr weak(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024)));
  REQUIRE(weak);
  CHECK_FALSE(parse_jwks("{\"keys\":[" + public_jwk_json(weak.get(), "w", Alg::RS256) + "]}").ok());
  CHECK_FALSE(parse_jwks(R"({"keys":[{"kty":"oct","k":")" + b64("short-secret") + "\"}]}").ok());
  CHECK_FALSE(jwk_from_hmac_secret("short-secret", "k").ok());
}

TEST_CASE("alg and key must match in type, curve and declared alg") {
  TestKey p256 = make_key(Alg::ES256, "k1");
  TestKey p384 = make_key(Alg::ES384, "k1");
  TestKey ed = make_key(Alg::EdDSA, "k1");
  TestKey rsa = make_key(Alg::RS256, "k1");   // its JWK declares "alg":"RS256"
  TestKey hs512 = make_key(Alg::HS512, "k1");  // declares HS512

  // ES384 signature presented as ES384 against a P-256 key set.
  CHECK(verify(signed_token(R"({"alg":"ES384","kid":"k1"})", payload(), p384), p256.keys, allow_all()).reason() ==
        Reason::no_matching_key);
  // EdDSA against an EC key with the same kid.
  CHECK(verify(signed_token(R"({"alg":"EdDSA","kid":"k1"})", payload(), ed), p256.keys, allow_all()).reason() ==
        Reason::no_matching_key);
  // PS256 against an RSA key declared RS256 (same key type, different alg).
  SigningKey same_rsa;
  same_rsa.private_key.reset(EVP_PKEY_dup(rsa.signing.private_key.get()));
  CHECK(verify(signed_token(R"({"alg":"PS256","kid":"k1"})", payload(), Alg::PS256, same_rsa), rsa.keys, allow_all())
            .reason() == Reason::no_matching_key);
  // HS256 against an oct key declared HS512.
  CHECK(verify(signed_token(R"({"alg":"HS256","kid":"k1"})", payload(), Alg::HS256, hs512.signing), hs512.keys,
               allow_all())
            .reason() == Reason::no_matching_key);
}

TEST_CASE("an algorithm outside the allowlist is refused before any key is used") {
  TestKey key = make_key(Alg::ES256);
  VerifyPolicy p = policy_for(Alg::RS256);
  CHECK(verify(signed_token(header_for(key), payload(), key), key.keys, p).reason() == Reason::alg_not_allowed);
  VerifyPolicy empty = policy_for(Alg::ES256);
  empty.algorithms = AlgSet();
  CHECK(verify(signed_token(header_for(key), payload(), key), key.keys, empty).reason() == Reason::alg_not_allowed);
}

TEST_CASE("unknown algorithms are refused as unsupported") {
  TestKey key = make_key(Alg::HS256);
  for (const char* alg : {"HS1", "hs256", "RS256 ", "ES256K", "Ed25519", "RSA-OAEP"}) {
    CAPTURE(alg);
    std::string header = std::string(R"({"alg":")") + alg + R"(","kid":"k1"})";
    CHECK(verify(token_with_signature(header, payload(), "x"), key.keys, allow_all()).reason() == Reason::unsupported_alg);
  }
}

TEST_CASE("JWE tokens are refused as encrypted") {
  TestKey key = make_key(Alg::HS256);
  CHECK(verify("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", key.keys, allow_all()).reason() ==
        Reason::encrypted);
  const std::string enc_header = R"({"alg":"HS256","enc":"A256GCM","kid":"k1"})";
  CHECK(verify(signed_token(enc_header, payload(), key), key.keys, allow_all()).reason() == Reason::encrypted);
}

TEST_CASE("the size limit is checked before any decoding") {
  TestKey key = make_key(Alg::HS256);
  VerifyPolicy p = policy_for(Alg::HS256);
  p.max_token_bytes = 100;
  CHECK(verify(std::string(101, '!'), key.keys, p).reason() == Reason::token_too_large);
  CHECK(verify(signed_token(header_for(key), payload(), key), key.keys, p).reason() == Reason::token_too_large);
}

TEST_CASE("only exactly three segments make a JWS") {
  TestKey key = make_key(Alg::HS256);
  for (const char* bad : {"", "abc", "a.b", "a.b.c.d", "a.b.c.d.e.f", "..", ".e30.sig"}) {
    CAPTURE(bad);
    CHECK(verify(bad, key.keys, allow_all()).reason() == Reason::malformed);
  }
}

TEST_CASE("header and payload must be JSON objects with the right member types") {
  TestKey key = make_key(Alg::HS256);
  const VerifyPolicy p = policy_for(Alg::HS256);
  CHECK(verify(signed_token(R"(["HS256"])", payload(), key), key.keys, p).reason() == Reason::malformed);
  CHECK(verify(signed_token(R"({"typ":"JWT"})", payload(), key), key.keys, p).reason() == Reason::malformed);
  CHECK(verify(signed_token(R"({"alg":256})", payload(), key), key.keys, p).reason() == Reason::malformed);
  CHECK(verify(signed_token(R"({"alg":"HS256","kid":1})", payload(), key), key.keys, p).reason() == Reason::malformed);
  CHECK(verify(signed_token(header_for(key), "[1,2]", key), key.keys, p).reason() == Reason::malformed);
  CHECK(verify(signed_token(header_for(key), "not json", key), key.keys, p).reason() == Reason::malformed);
  std::string deep = "{\"a\":";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  CHECK(verify(signed_token(header_for(key), deep + "}", key), key.keys, p).reason() == Reason::malformed);
}

TEST_CASE("registered claims of the wrong JSON type are refused after the signature checks out") {
  TestKey key = make_key(Alg::HS256);
  const VerifyPolicy p = policy_for(Alg::HS256);
  auto claims = [&](const std::string& body) { return verify(signed_token(header_for(key), body, key), key.keys, p); };
  CHECK(claims(R"({"iss":"https://idp.test/","aud":"api","exp":"9999999999"})").reason() == Reason::invalid_claim);
  CHECK(claims(R"({"iss":"https://idp.test/","aud":"api","exp":true})").reason() == Reason::invalid_claim);
  CHECK(claims(R"({"iss":"https://idp.test/","aud":"api","exp":null})").reason() == Reason::invalid_claim);
  CHECK(claims(R"({"iss":["https://idp.test/"],"aud":"api","exp":1700000100})").reason() == Reason::invalid_claim);
  CHECK(claims(R"({"iss":"https://idp.test/","aud":42,"exp":1700000100})").reason() == Reason::invalid_claim);
  CHECK(claims(R"({"iss":"https://idp.test/","aud":["api",42],"exp":1700000100})").reason() == Reason::invalid_claim);
}

TEST_CASE("a forged token's claims are never looked at: bad signature wins over expired") {
  TestKey key = make_key(Alg::HS256);
  TestKey other = make_key(Alg::HS256);
  const std::string expired = R"({"iss":"https://idp.test/","aud":"api","exp":1})";
  CHECK(verify(signed_token(header_for(key), expired, other), key.keys, policy_for(Alg::HS256)).reason() ==
        Reason::bad_signature);
}

TEST_CASE("random single-byte mutations of a valid token never verify") {
  // Bounded: a few thousand mutations per algorithm; every one must be rejected, and under the
  // sanitizer build none may touch memory it should not.
  for (Alg alg : {Alg::HS256, Alg::ES256, Alg::EdDSA}) {
    CAPTURE(alg_name(alg));
    TestKey key = make_key(alg);
    const std::string good = signed_token(header_for(key), payload(), key);
    REQUIRE(verify(good, key.keys, policy_for(alg)).ok());
    Token scratch;
    std::uint32_t state = 12345;
    auto next = [&state] { state = state * 1664525u + 1013904223u; return state >> 8; };
    int accepted = 0;
    const int rounds = alg == Alg::HS256 ? 4000 : 1500;
    for (int i = 0; i < rounds; ++i) {
      std::string bad = good;
      // Mostly characters of the base64url alphabet, so the mutation reaches the signature check.
      static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
      const std::uint32_t pick = next();
      bad[next() % bad.size()] = pick % 4 ? alphabet[pick % alphabet.size()] : static_cast<char>(pick & 0xff);
      if (bad == good) continue;
      if (verify_token(scratch, bad, key.keys, policy_for(alg), kNow).ok()) ++accepted;
    }
    CHECK(accepted == 0);
  }
}
