// Tokens from independent implementations (PyJWT and jwcrypto, from Debian's packages) verify
// in jwtgate for every algorithm, and jwtgate's tokens verify in jwcrypto.
#include <doctest/doctest.h>

#include <ctime>
#include <set>

#include "core/json_object.h"
#include "core/json_writer.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

using namespace jwtgate::core;
using namespace jwtgate::testing;

TEST_CASE("PyJWT and jwcrypto tokens verify for every algorithm") {
  ProcessResult made = run_process({JWTGATE_PYTHON, JWTGATE_INTEROP_SCRIPT, "make"});
  REQUIRE_MESSAGE(made.exit_code == 0, made.err);

  simdjson::dom::parser parser;
  simdjson::dom::object root;
  REQUIRE(parse_json_object(parser, made.out, false, "interop output", root).ok());
  const std::string jwks = simdjson::minify(root["jwks"]);
  auto keys = parse_jwks(jwks);
  REQUIRE_MESSAGE(keys.ok(), keys.status().detail());
  CHECK(keys->keys.size() == static_cast<std::size_t>(kAlgCount));
  CHECK(keys->skipped.empty());
  const std::int64_t now = root["now"].get_int64().value();

  std::set<std::string> verified;
  for (simdjson::dom::element item : as_array(root["tokens"].value())) {
    const std::string lib(item["lib"].get_string().value());
    const std::string alg_text(item["alg"].get_string().value());
    const std::string token(item["token"].get_string().value());
    CAPTURE(lib);
    CAPTURE(alg_text);
    auto alg = alg_from_name(alg_text);
    REQUIRE(alg);
    VerifyPolicy policy = policy_for(*alg);
    policy.claims.required_claims = {"realm_access.roles"};
    Status s = verify(token, *keys, policy, now);
    CHECK_MESSAGE(s.ok(), s.detail());
    if (s.ok()) verified.insert(lib + ":" + alg_text);
  }
  CHECK(verified.size() == 2 * static_cast<std::size_t>(kAlgCount));
}

TEST_CASE("jwtgate's tokens verify in jwcrypto for every algorithm") {
  JsonWriter request;
  request.begin_object();
  request.key("jwks");
  std::string all_keys;
  JsonWriter tokens;
  tokens.begin_array();
  for (int i = 0; i < kAlgCount; ++i) {
    const Alg alg = static_cast<Alg>(i);
    TestKey key = make_key(alg, "jg-" + std::string(alg_name(alg)));
    std::string jwk = key.jwks_json.substr(9, key.jwks_json.size() - 11);
    all_keys += (i ? "," : "") + jwk;
    tokens.begin_object();
    tokens.key("alg"); tokens.string(alg_name(alg));
    tokens.key("token"); tokens.string(signed_token(header_for(key), payload(), key));
    tokens.end_object();
  }
  tokens.end_array();
  request.raw("{\"keys\":[" + all_keys + "]}");
  request.key("tokens");
  request.raw(tokens.take());
  request.end_object();

  ProcessResult checked = run_process({JWTGATE_PYTHON, JWTGATE_INTEROP_SCRIPT, "check"}, request.take());
  REQUIRE_MESSAGE(checked.exit_code == 0, checked.err);
  simdjson::dom::parser parser;
  simdjson::dom::object root;
  REQUIRE(parse_json_object(parser, checked.out, false, "interop output", root).ok());
  int valid = 0;
  for (simdjson::dom::element r : as_array(root["results"].value())) {
    CAPTURE(std::string(r["alg"].get_string().value()));
    CAPTURE(std::string(r["error"].get_string().value()));
    CHECK(r["valid"].get_bool().value());
    valid += r["valid"].get_bool().value() ? 1 : 0;
  }
  CHECK(valid == kAlgCount);
}
