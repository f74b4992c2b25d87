#include <doctest/doctest.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "core/certificate_binding.h"
#include "core/json_object.h"
#include "core/openssl_ptr.h"

using namespace jwtgate::core;

namespace {

// A self-signed P-256 client certificate. Its thumbprint below was computed outside jwtgate:
//   openssl x509 -outform DER | openssl dgst -sha256 -binary | basenc --base64url   (then no '=')
constexpr const char* kClientCertPem = R"(-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUL+0nDBsz7tx9PCMShUajyWbBT5cwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTand0Z2F0ZSB0ZXN0IGNsaWVudDAgFw0yNjEyMDIwODA0MDBa
GA8yMTI2MTEwODA4MDQwMFowHjEcMBoGA1UEAwwTand0Z2F0ZSB0ZXN0IGNsaWVu
dDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIC5Preoo2+K9bUqxXT/gf1IPZiq
iXtJk5COo0XX7WzgmDB32V5nK81KR1gow55dRvOIQUMqnYahFHNhsaO12bejUzBR
MB0GA1UdDgQWBBSiC8Jjo8nakvvB6HTO7HbJoWs77jAfBgNVHSMEGDAWgBSiC8Jj
o8nakvvB6HTO7HbJoWs77jAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIECfoqLlKy4wcMf21PESnV7YJKrNQ9UbtwMsJ7vIdD8nAiEAiZ0BlYmK8YfO
L1rDrssOynRflbh/XL6Y0cJetZN0F3I=
-----END CERTIFICATE-----
)";
constexpr const char* kClientCertThumbprint = "d0NDtZyOoMM1DNTgthXkJFp1IhlzJhVEw3ujD54NG14";

// The certificate's DER, as a TLS stack hands it over.
std::string der_of(const char* pem) {
  BioPtr bio(BIO_new_mem_buf(pem, -1));
  REQUIRE(bio);
  std::unique_ptr<X509, OpenSslDeleter<X509_free>> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(cert);
  unsigned char* der = nullptr;
  const int length = i2d_X509(cert.get(), &der);
  REQUIRE(length > 0);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

struct Parsed {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  explicit Parsed(const std::string& json) {
    REQUIRE(init_json_parser(parser));
    Status s = parse_json_object(parser, json, false, "claims", obj);
    REQUIRE_MESSAGE(s.ok(), s.detail());
  }
};

Status read(const std::string& json, std::string& thumbprint) {
  Parsed p(json);
  std::string_view view = "stale";
  Status s = read_certificate_binding(p.obj, view);
  thumbprint = std::string(view);
  return s;
}

}  // namespace

TEST_CASE("certificate_thumbprint is base64url(SHA-256(DER)) without padding") {
  const std::string thumbprint = certificate_thumbprint(der_of(kClientCertPem));
  CHECK(thumbprint == kClientCertThumbprint);
  CHECK(thumbprint.size() == kThumbprintLength);
  // SHA-256("abc") from FIPS 180-2, in base64url.
  CHECK(certificate_thumbprint("abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
}

TEST_CASE("cnf.x5t#S256 is read from a payload; tokens without it are unbound") {
  std::string t;
  CHECK(read(R"({"sub":"a"})", t).ok());
  CHECK(t.empty());
  // An empty cnf confirms nothing: the token is a bearer token.
  CHECK(read(R"({"cnf":{}})", t).ok());
  CHECK(t.empty());
  REQUIRE(read(std::string(R"({"cnf":{"x5t#S256":")") + kClientCertThumbprint + R"("}})", t).ok());
  CHECK(t == kClientCertThumbprint);
  // Escapes are undone by the JSON parser: "\u0064" is "d".
  REQUIRE(read(R"({"cnf":{"x5t#S256":"\u0064)" + std::string(kClientCertThumbprint + 1) + R"("}})", t).ok());
  CHECK(t == kClientCertThumbprint);
}

TEST_CASE("a cnf naming a confirmation method jwtgate cannot check refuses the token") {
  // RFC 9449 jkt (DPoP), RFC 7800 jwk / kid / jku, a case variant of x5t#S256: each binds the
  // token to a proof jwtgate does not verify, so it must never pass as a bearer token.
  for (const std::string& cnf :
       {std::string(R"({"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})"), std::string(R"({"jwk":{"kty":"EC"}})"),
        std::string(R"({"kid":"k1"})"), std::string(R"({"jku":"https://example.com/k"})"), std::string(R"({"X5T#S256":")") + kClientCertThumbprint + "\"}",
        std::string(R"({"x5t#S256":")") + kClientCertThumbprint + R"(","jkt":"abc"})"}) {
    CAPTURE(cnf);
    std::string t;
    Status s = read(R"({"cnf":)" + cnf + "}", t);
    CHECK(s.reason() == Reason::certificate_binding);
    CHECK(s.detail().find("confirmation method") != std::string::npos);
  }
}

TEST_CASE("a malformed cnf or x5t#S256 is an invalid claim") {
  const std::string good = kClientCertThumbprint;
  for (const std::string& json : {
           std::string(R"({"cnf":"x"})"),
           std::string(R"({"cnf":null})"),
           std::string(R"({"cnf":[{"x5t#S256":")" + good + R"("}]})"),
           std::string(R"({"cnf":{"x5t#S256":null}})"),
           std::string(R"({"cnf":{"x5t#S256":42}})"),
           std::string(R"({"cnf":{"x5t#S256":[")" + good + R"("]}})"),
           std::string(R"({"cnf":{"x5t#S256":""}})"),
           std::string(R"({"cnf":{"x5t#S256":")" + good + R"(="}})"),               // padded
           std::string(R"({"cnf":{"x5t#S256":")" + good.substr(0, 42) + R"("}})"),  // short
           std::string(R"({"cnf":{"x5t#S256":")" + good + R"(A"}})"),               // long
           std::string(R"({"cnf":{"x5t#S256":")" + good.substr(0, 42) + R"(+"}})"), // base64, not base64url
           // Same bytes, non-zero trailing bits: a second spelling would defeat comparing text.
           std::string(R"({"cnf":{"x5t#S256":"ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa1"}})"),
           // A SHA-1 thumbprint (x5t) is not a SHA-256 one.
           std::string(R"({"cnf":{"x5t#S256":"qUqP5cyxm6YcTAhz05Hph5gvu9M"}})"),
       }) {
    CAPTURE(json);
    std::string t = "unchanged";
    Status s = read(json, t);
    CHECK(s.reason() == Reason::invalid_claim);
    CHECK(t.empty());
    // The description never echoes the token's bytes.
    CHECK(s.detail().find(good.substr(0, 20)) == std::string::npos);
  }
}

TEST_CASE("binding verdicts: a bound token needs its certificate; a required binding needs a bound token") {
  const std::string bound = kClientCertThumbprint;
  const std::string other = certificate_thumbprint("another certificate");
  CHECK(check_certificate_binding("", "", false).ok());
  CHECK(check_certificate_binding("", bound, false).ok());
  CHECK(check_certificate_binding(bound, bound, false).ok());
  CHECK(check_certificate_binding(bound, bound, true).ok());
  CHECK(check_certificate_binding(bound, "", false).reason() == Reason::certificate_binding);
  CHECK(check_certificate_binding(bound, other, false).reason() == Reason::certificate_binding);
  CHECK(check_certificate_binding(bound, bound.substr(0, 42), false).reason() == Reason::certificate_binding);
  CHECK(check_certificate_binding(bound, bound + "A", false).reason() == Reason::certificate_binding);
  // Differs only in the last character: the whole value is compared.
  std::string last = bound;
  last.back() = last.back() == 'A' ? 'B' : 'A';
  CHECK(check_certificate_binding(bound, last, false).reason() == Reason::certificate_binding);
  CHECK(check_certificate_binding("", "", true).reason() == Reason::certificate_binding);
  CHECK(check_certificate_binding("", bound, true).reason() == Reason::certificate_binding);
  const Status refused = check_certificate_binding(bound, other, false);
  CHECK(refused.detail().find(bound) == std::string::npos);
  CHECK(refused.detail().find(other) == std::string::npos);
}
