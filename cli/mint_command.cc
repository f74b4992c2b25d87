#include <ctime>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "config/duration.h"
#include "core/json_object.h"
#include "core/json_writer.h"
#include "core/signer.h"

namespace jwtgate::cli {
namespace {

// The claims object with iat and exp added unless the given claims already hold them.
bool build_payload(const std::string& claims_json, std::int64_t now, std::int64_t ttl, std::string& payload,
                   std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::object claims;
  core::Status s = core::parse_json_object(parser, claims_json, false, "--claims", claims);
  if (!s) { error = s.detail(); return false; }
  core::JsonWriter w;
  w.begin_object();
  simdjson::dom::element ignored;
  if (claims.at_key("iat").get(ignored)) { w.key("iat"); w.number(now); }
  if (claims.at_key("exp").get(ignored)) { w.key("exp"); w.number(now + ttl); }
  for (auto field : claims) {
    w.key(field.key);
    w.raw(simdjson::minify(field.value));
  }
  w.end_object();
  payload = w.take();
  return true;
}

}  // namespace

int mint_command(int argc, char** argv) {
  Args args(argc, argv, 2, {"key", "alg", "kid", "claims", "ttl"});
  auto alg = core::alg_from_name(args.get("alg"));
  auto ttl = config::parse_duration(args.get("ttl", "15m"));
  if (!args.ok() || !alg || !args.has("key") || !ttl || !args.positional().empty()) {
    std::cerr << "usage: jwtgate mint --key FILE --alg ALG [--kid K] [--claims JSON|@FILE] [--ttl 15m]\n"
                 "  signs a token for local development; iat and exp (now + ttl) are added unless given\n";
    if (!args.ok()) std::cerr << "error: " << args.error() << "\n";
    else if (!alg) std::cerr << "error: --alg must name a supported algorithm\n";
    else if (!args.has("key")) std::cerr << "error: --key FILE is required\n";
    else if (!ttl) std::cerr << "error: --ttl takes a duration such as 15m\n";
    return kExitUsage;
  }
  std::string key_text, claims_json = args.get("claims", "{}"), error, payload;
  if (!read_file(args.get("key"), key_text, error)) {
    std::cerr << "error: " << error << "\n";
    return kExitUsage;
  }
  if (!claims_json.empty() && claims_json[0] == '@' && !read_file(claims_json.substr(1), claims_json, error)) {
    std::cerr << "error: " << error << "\n";
    return kExitUsage;
  }
  core::Result<core::SigningKey> key = core::load_signing_key(key_text);
  if (!key) {
    std::cerr << "error: " << args.get("key") << ": " << key.status().detail() << "\n";
    return kExitUsage;
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  const auto ttl_seconds = std::chrono::duration_cast<std::chrono::seconds>(*ttl).count();
  if (!build_payload(claims_json, now, ttl_seconds, payload, error)) {
    std::cerr << "error: " << error << "\n";
    return kExitUsage;
  }
  core::Result<std::string> token = core::mint_token(*alg, *key, args.get("kid"), payload);
  if (!token) {
    std::cerr << "error: " << token.status().detail() << "\n";
    return kExitUsage;
  }
  std::cout << *token << "\n";
  return kExitOk;
}

}  // namespace jwtgate::cli
