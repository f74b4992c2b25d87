#include <charconv>
#include <ctime>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/json_text.h"
#include "config/duration.h"
#include "core/json_writer.h"
#include "core/jwk.h"
#include "core/verifier.h"

namespace jwtgate::cli {
namespace {

constexpr const char* kUsage =
    "usage: jwtgate verify --jwks FILE [--issuer I] [--audience A]... [--alg ALG[,ALG]...]\n"
    "                      [--clock-skew 30s] [--max-lifetime D] [--require-claim C]... [--no-exp] TOKEN\n"
    "  TOKEN '-' reads standard input. Exit 0 only when the token is valid.\n";

int usage(const std::string& error) {
  std::cerr << kUsage;
  if (!error.empty()) std::cerr << "error: " << error << "\n";
  return kExitUsage;
}

}  // namespace

int verify_command(int argc, char** argv) {
  Args args(argc, argv, 2, {"jwks", "issuer", "audience", "alg", "clock-skew", "max-lifetime", "require-claim", "now"},
            {"no-exp"});
  if (!args.ok()) return usage(args.error());
  if (args.positional().size() != 1) return usage("exactly one TOKEN is needed");
  if (!args.has("jwks")) return usage("--jwks FILE is required");

  core::VerifyPolicy policy;
  policy.claims.issuer = args.get("issuer");
  policy.claims.audiences = args.all("audience");
  policy.claims.required_claims = args.all("require-claim");
  policy.claims.require_exp = !args.has("no-exp");
  if (args.has("alg")) {
    for (const auto& name : args.all("alg")) {
      auto alg = core::alg_from_name(name);
      if (!alg) return usage("unknown algorithm '" + name + "'");
      policy.algorithms.add(*alg);
    }
  } else {
    // Every implemented algorithm: safe because each is bound to its key type, and the output
    // names the algorithm the token used.
    policy.algorithms = core::AlgSet::all();
  }
  if (args.has("clock-skew")) {
    auto d = config::parse_duration(args.get("clock-skew"));
    if (!d) return usage("--clock-skew takes a duration such as 30s");
    policy.claims.clock_skew_seconds = std::chrono::duration_cast<std::chrono::seconds>(*d).count();
  }
  if (args.has("max-lifetime")) {
    auto d = config::parse_duration(args.get("max-lifetime"));
    if (!d) return usage("--max-lifetime takes a duration such as 1h");
    policy.claims.max_lifetime_seconds = std::chrono::duration_cast<std::chrono::seconds>(*d).count();
  }
  std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  if (args.has("now")) {  // for reproducing a past verdict
    const std::string text = args.get("now");
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), now);
    if (ec != std::errc() || end != text.data() + text.size()) return usage("--now takes seconds since the epoch");
  }

  std::string jwks_text, error, token;
  if (!read_file(args.get("jwks"), jwks_text, error)) return usage(error);
  core::Result<core::KeySet> keys = core::parse_jwks(jwks_text);
  if (!keys) return usage(args.get("jwks") + ": " + keys.status().detail());
  for (const auto& skipped : keys->skipped) {
    std::cerr << "warning: JWKS key " << skipped.index << (skipped.kid.empty() ? "" : " (kid \"" + skipped.kid + "\")")
              << " skipped: " << skipped.reason << "\n";
  }
  if (!read_token_argument(args.positional()[0], token, error)) return usage(error);

  core::Token decoded;
  core::Status s = core::verify_token(decoded, token, *keys, policy, now);
  // Show what can be shown even for a rejected token, so people can see why.
  core::Token shown;
  const bool decodable = shown.decode_unverified(token, std::max<std::size_t>(policy.max_token_bytes, 1 << 20)).ok();

  core::JsonWriter w;
  w.begin_object();
  w.key("valid"); w.boolean(s.ok());
  w.key("header"); w.raw(decodable ? compact_json(shown.header_json()) : "null");
  w.key("payload"); w.raw(decodable ? compact_json(shown.payload_json()) : "null");
  w.key("error");
  if (s.ok()) {
    w.null();
  } else {
    w.begin_object();
    w.key("reason"); w.string(s.name());
    w.key("description"); w.string(s.detail());
    w.end_object();
  }
  w.end_object();
  std::cout << w.take() << "\n";
  return s.ok() ? kExitOk : kExitInvalid;
}

}  // namespace jwtgate::cli
