// Token decode + signature verification against a fixed key set of every key type
// (keys/verify.jwks.json). Properties, beyond "no crash":
//  - a Token reused across inputs (as a worker reuses one) decodes exactly as a fresh one;
//  - a decoded token's parts are the input's own segments (signing input = first two segments,
//    header/payload/signature = their base64url decodings), and its alg is never "none";
//  - whatever verifies is, by OpenSSL directly, signed by a key of the set whose type and curve
//    the header's alg demands (so alg none/confusion never verifies), with the kid the header
//    names, and only with an alg the allowlist contains;
//  - claim values rendered for headers never carry control bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/claims.h"
#include "core/token.h"
#include "core/verifier.h"
#include "tests/fuzz/fuzz_support.h"

using namespace jwtgate;
using jwtgate::core::Alg;

namespace {

constexpr std::int64_t kNow = 1'700'000'100;  // within the seed tokens' validity

core::VerifyPolicy make_policy() {
  core::VerifyPolicy p;
  p.algorithms = core::AlgSet::all();
  p.claims.issuer = "https://idp.test/";
  p.claims.audiences = {"api"};
  p.claims.max_lifetime_seconds = 3600;
  p.claims.required_claims = {"sub", "realm_access.roles"};
  return p;
}

void check_parts(const core::Token& t, std::string_view in) {
  const std::size_t first = in.find('.');
  const std::size_t second = in.find('.', first + 1);
  FUZZ_CHECK(first != std::string_view::npos && second != std::string_view::npos);
  FUZZ_CHECK(in.find('.', second + 1) == std::string_view::npos);
  FUZZ_CHECK(t.signing_input() == in.substr(0, second));
  const auto header = fuzz::plain_base64url_decode(in.substr(0, first));
  const auto payload = fuzz::plain_base64url_decode(in.substr(first + 1, second - first - 1));
  const auto signature = fuzz::plain_base64url_decode(in.substr(second + 1));
  FUZZ_CHECK(header && *header == t.header_json());
  FUZZ_CHECK(payload && *payload == t.payload_json());
  FUZZ_CHECK(signature && *signature == t.signature());
  FUZZ_CHECK(!core::is_none_alg(core::alg_name(t.header().alg)));
  FUZZ_CHECK(!t.signature().empty());
}

void check_signed(const core::Token& t) {
  const core::KeySet& keys = fuzz::key_set();
  const Alg alg = t.header().alg;
  core::AlgSet only;
  only.add(alg);
  core::AlgSet others;
  for (int a = 0; a < core::kAlgCount; ++a) {
    if (static_cast<Alg>(a) != alg) others.add(static_cast<Alg>(a));
  }
  FUZZ_CHECK(!core::verify_token_signature(t, keys, others).ok());
  FUZZ_CHECK(!core::verify_token_signature(t, keys, core::AlgSet()).ok());
  const core::Status s = core::verify_token_signature(t, keys, only);
  FUZZ_CHECK(s.ok() == core::verify_token_signature(t, keys, core::AlgSet::all()).ok());
  if (!s.ok()) return;
  bool signed_by_a_key = false;
  for (const core::Jwk& key : keys.keys) {
    if (t.header().has_kid && (!key.has_kid || key.kid != t.header().kid)) continue;
    if (fuzz::openssl_verifies(alg, key, t.signing_input(), t.signature())) signed_by_a_key = true;
  }
  FUZZ_CHECK(signed_by_a_key);
}

// Claims code on a decoded (unverified) payload: the proxy only runs it after the signature, but
// a signed token can hold any JSON, so all of it must hold up.
void exercise_claims(const core::Token& t) {
  const core::Claims claims(t.payload());
  (void)core::check_claims(claims, make_policy().claims, kNow);
  std::vector<std::string_view> scopes;
  (void)claims.scopes(scopes);
  static const std::vector<std::string> required = {"read", "admin"};
  (void)core::check_scopes(claims, required);
  (void)core::check_claim_values(claims, "realm_access.roles", required);
  for (auto [name, value] : t.payload()) {
    (void)claims.find(name);
    if (auto rendered = core::claim_header_value(value)) {
      for (char c : *rendered) {
        const auto u = static_cast<unsigned char>(c);
        FUZZ_CHECK(u >= 0x20 && u != 0x7f);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  static core::Token reused;  // carries buffers from every earlier input
  core::Token fresh;
  const core::Status a = reused.decode(in);
  const core::Status b = fresh.decode(in);
  FUZZ_CHECK(a.reason() == b.reason() && a.detail() == b.detail());
  core::Token unverified;
  const core::Status u = unverified.decode_unverified(in);
  if (b.ok()) {
    FUZZ_CHECK(u.ok());
    FUZZ_CHECK(reused.header_json() == fresh.header_json() && reused.payload_json() == fresh.payload_json() &&
               reused.signature() == fresh.signature() && reused.signing_input() == fresh.signing_input());
    check_parts(fresh, in);
    check_signed(fresh);
    exercise_claims(fresh);
  }
  if (b.reason() == core::Reason::unsecured) FUZZ_CHECK(!core::verify_token(reused, in, fuzz::key_set(), make_policy(), kNow).ok());
  const core::Status full = core::verify_token(reused, in, fuzz::key_set(), make_policy(), kNow);
  if (full.ok()) {
    FUZZ_CHECK(b.ok() && core::verify_token_signature(fresh, fuzz::key_set(), core::AlgSet::all()).ok());
    FUZZ_CHECK(core::check_claims(core::Claims(fresh.payload()), make_policy().claims, kNow).ok());
  }
  return 0;
}
