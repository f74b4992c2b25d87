// The examples published in RFC 7515 Appendix A and RFC 8037 Appendix A, verified as given.
#include <doctest/doctest.h>

#include "core/base64url.h"
#include "core/signature.h"
#include "core/verifier.h"

using namespace jwtgate::core;

namespace {

// All RFC 7515 claims examples: {"iss":"joe","exp":1300819380,"http://example.com/is_root":true}
constexpr std::int64_t kRfcNow = 1300819370;

VerifyPolicy rfc_policy(Alg alg) {
  VerifyPolicy p;
  p.algorithms.add(alg);
  p.claims.issuer = "joe";
  p.claims.clock_skew_seconds = 0;
  return p;
}

KeySet keys(const std::string& jwks) {
  auto set = parse_jwks(jwks);
  REQUIRE_MESSAGE(set.ok(), set.status().detail());
  return std::move(set.value());
}

Status verify_at(const std::string& token, const KeySet& set, Alg alg, std::int64_t now = kRfcNow) {
  Token scratch;
  return verify_token(scratch, token, set, rfc_policy(alg), now);
}

const std::string kRsaJwk =
    R"({"kty":"RSA","e":"AQAB","n":")"
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"
    "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"
    "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"}";

const std::string kClaims =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

}  // namespace

TEST_CASE("RFC 7515 A.1: HMAC SHA-256") {
  KeySet set = keys(R"({"keys":[{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}]})");
  const std::string token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." + kClaims + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  Status s = verify_at(token, set, Alg::HS256);
  CHECK_MESSAGE(s.ok(), s.detail());
  // The example's exp is 1300819380: a second later it is expired.
  CHECK(verify_at(token, set, Alg::HS256, 1300819380).reason() == Reason::expired);
}

TEST_CASE("RFC 7515 A.2: RSASSA-PKCS1-v1_5 SHA-256") {
  KeySet set = keys("{\"keys\":[" + kRsaJwk + "]}");
  const std::string token =
      "eyJhbGciOiJSUzI1NiJ9." + kClaims +
      ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
      "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4"
      "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"
      "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv"
      "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB"
      "p0igcN_IoypGlUPQGe77Rw";
  Status s = verify_at(token, set, Alg::RS256);
  CHECK_MESSAGE(s.ok(), s.detail());
}

TEST_CASE("RFC 7515 A.3: ECDSA P-256 SHA-256") {
  KeySet set = keys(R"({"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})");
  const std::string token = "eyJhbGciOiJFUzI1NiJ9." + kClaims +
                            ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
  Status s = verify_at(token, set, Alg::ES256);
  CHECK_MESSAGE(s.ok(), s.detail());
}

TEST_CASE("RFC 7515 A.4: ECDSA P-521 SHA-512 (payload is not a claims set, so the signature is checked alone)") {
  KeySet set = keys(R"({"keys":[{"kty":"EC","crv":"P-521",)"
                    R"("x":"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk",)"
                    R"("y":"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2"}]})");
  std::string sig;
  REQUIRE(base64url_decode("AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZq"
                           "wqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8Kp"
                           "EHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn",
                           sig));
  CHECK(verify_signature(Alg::ES512, set.keys[0], "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA", sig).ok());
  CHECK_FALSE(verify_signature(Alg::ES512, set.keys[0], "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZB", sig).ok());
  // As a token it is refused because the payload is not a JSON object.
  Token t;
  CHECK(t.decode("eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.AAAA").reason() == Reason::malformed);
}

TEST_CASE("RFC 7515 A.5: the unsecured JWS example is refused as unsecured") {
  KeySet set = keys("{\"keys\":[" + kRsaJwk + "]}");
  Status s = verify_at("eyJhbGciOiJub25lIn0." + kClaims + ".", set, Alg::RS256);
  CHECK(s.reason() == Reason::unsecured);
}

TEST_CASE("RFC 8037 A.4: Ed25519 (payload is not a claims set, so the signature is checked alone)") {
  KeySet set = keys(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})");
  std::string sig;
  REQUIRE(base64url_decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg", sig));
  const std::string input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
  CHECK(verify_signature(Alg::EdDSA, set.keys[0], input, sig).ok());
  sig[0] ^= 1;
  CHECK_FALSE(verify_signature(Alg::EdDSA, set.keys[0], input, sig).ok());
}
