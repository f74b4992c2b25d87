#include <doctest/doctest.h>

#include "core/alg.h"

using namespace jwtgate::core;

TEST_CASE("algorithm names are exact and case-sensitive") {
  CHECK(alg_from_name("RS256") == Alg::RS256);
  CHECK(alg_from_name("EdDSA") == Alg::EdDSA);
  CHECK_FALSE(alg_from_name("rs256"));
  CHECK_FALSE(alg_from_name("RS256 "));
  CHECK_FALSE(alg_from_name("none"));
  CHECK_FALSE(alg_from_name("ES256K"));
  for (int i = 0; i < kAlgCount; ++i) {
    Alg a = static_cast<Alg>(i);
    CHECK(alg_from_name(alg_name(a)) == a);
  }
}

TEST_CASE("none is recognised in every letter case") {
  for (const char* s : {"none", "None", "NONE", "nOnE", "noNe"}) CHECK(is_none_alg(s));
  for (const char* s : {"non", "nonee", "n0ne", ""}) CHECK_FALSE(is_none_alg(s));
}

TEST_CASE("each algorithm is bound to one key type and, for curves, one curve") {
  CHECK(alg_key_type(Alg::HS256) == KeyType::oct);
  CHECK(alg_key_type(Alg::PS512) == KeyType::rsa);
  CHECK(alg_curve(Alg::ES256) == Curve::p256);
  CHECK(alg_curve(Alg::ES384) == Curve::p384);
  CHECK(alg_curve(Alg::ES512) == Curve::p521);
  CHECK(alg_curve(Alg::EdDSA) == Curve::ed25519);
}

TEST_CASE("AlgSet holds exactly what was added") {
  AlgSet s;
  CHECK(s.empty());
  s.add(Alg::ES256);
  CHECK(s.contains(Alg::ES256));
  CHECK_FALSE(s.contains(Alg::HS256));
  for (int i = 0; i < kAlgCount; ++i) CHECK(AlgSet::all().contains(static_cast<Alg>(i)));
}
