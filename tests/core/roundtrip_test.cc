#include <doctest/doctest.h>

#include "tests/support/tokens.h"

using namespace jwtgate::core;
using namespace jwtgate::testing;

TEST_CASE("every algorithm round-trips with a freshly generated key") {
  for (int i = 0; i < kAlgCount; ++i) {
    const Alg alg = static_cast<Alg>(i);
    CAPTURE(alg_name(alg));
    TestKey key = make_key(alg);
    const std::string token = signed_token(header_for(key), payload(), key);
    Status s = verify(token, key.keys, policy_for(alg));
    CHECK_MESSAGE(s.ok(), s.detail());

    // One flipped bit anywhere in the signing input breaks the signature.
    std::string tampered = token;
    tampered[tampered.find('.') + 5] ^= 0x01;
    Status t = verify(tampered, key.keys, policy_for(alg));
    CHECK_FALSE(t.ok());
  }
}

TEST_CASE("a token signed by another key of the same type is a bad signature") {
  for (Alg alg : {Alg::HS256, Alg::RS256, Alg::PS256, Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA}) {
    CAPTURE(alg_name(alg));
    TestKey trusted = make_key(alg, "k1");
    TestKey other = make_key(alg, "k1");
    Status s = verify(signed_token(header_for(other), payload(), other), trusted.keys, policy_for(alg));
    CHECK(s.reason() == Reason::bad_signature);
  }
}

TEST_CASE("keys are selected by kid, and without a kid by fit") {
  TestKey a = make_key(Alg::ES256, "a");
  TestKey b = make_key(Alg::ES256, "b");
  TestKey rsa = make_key(Alg::RS256, "r");
  KeySet both;
  for (TestKey* k : {&a, &b, &rsa}) both.keys.push_back(std::move(k->keys.keys[0]));

  CHECK(verify(signed_token(header_for(b), payload(), b), both, policy_for(Alg::ES256)).ok());
  // No kid: the keys that fit ES256 are tried; b is the second.
  CHECK(verify(signed_token(R"({"alg":"ES256"})", payload(), b), both, policy_for(Alg::ES256)).ok());
  // kid of a, signature of b.
  Status wrong = verify(signed_token(R"({"alg":"ES256","kid":"a"})", payload(), b), both, policy_for(Alg::ES256));
  CHECK(wrong.reason() == Reason::bad_signature);
  Status unknown = verify(signed_token(R"({"alg":"ES256","kid":"zzz"})", payload(), b), both, policy_for(Alg::ES256));
  CHECK(unknown.reason() == Reason::unknown_kid);
}

TEST_CASE("without a kid, only a bounded number of keys is tried") {
  TestKey signer = make_key(Alg::HS256, "s");
  KeySet many;
  for (std::size_t i = 0; i < kMaxKeysTriedWithoutKid; ++i) {
    many.keys.push_back(std::move(make_key(Alg::HS256, "d" + std::to_string(i)).keys.keys[0]));
  }
  many.keys.push_back(std::move(signer.keys.keys[0]));  // would match, but is beyond the bound
  Status s = verify(signed_token(R"({"alg":"HS256"})", payload(), signer), many, policy_for(Alg::HS256));
  CHECK(s.reason() == Reason::bad_signature);
}

TEST_CASE("the verified claims stay readable in the scratch token") {
  TestKey key = make_key(Alg::EdDSA);
  Token scratch;
  REQUIRE(verify_token(scratch, signed_token(header_for(key), payload(R"("scope":"a b")"), key), key.keys,
                       policy_for(Alg::EdDSA), kNow)
              .ok());
  Claims claims(scratch.payload());
  CHECK(claim_header_value(*claims.find("sub")) == "alice");
  CHECK(scratch.header().kid == "k1");
}
