// What `jwtgate` does with no arguments until the proxy lands: the whole token flow on one
// machine, in memory, so a new user sees keys, a token and a verdict without writing anything.
#include <ctime>
#include <iostream>

#include "cli/commands.h"
#include "core/jwk.h"
#include "core/signer.h"
#include "core/verifier.h"

namespace jwtgate::cli {

int demo_command(int, char**) {
  const core::Alg alg = core::Alg::ES256;
  core::Result<core::SigningKey> key = core::generate_signing_key(alg);
  if (!key) {
    std::cerr << "error: " << key.status().detail() << "\n";
    return kExitInvalid;
  }
  const std::string jwks = core::jwks_for(*key, alg, "demo-key");
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  const std::string payload = "{\"iss\":\"https://demo.jwtgate.local/\",\"aud\":\"demo-api\",\"sub\":\"alice\","
                              "\"scope\":\"read write\",\"iat\":" + std::to_string(now) +
                              ",\"exp\":" + std::to_string(now + 900) + "}";
  core::Result<std::string> token = core::mint_token(alg, *key, "demo-key", payload);
  core::Result<core::KeySet> keys = core::parse_jwks(jwks);
  if (!token || !keys) {
    std::cerr << "error: demo key set-up failed\n";
    return kExitInvalid;
  }
  core::VerifyPolicy policy;
  policy.algorithms.add(alg);
  policy.claims.issuer = "https://demo.jwtgate.local/";
  policy.claims.audiences = {"demo-api"};
  core::Token scratch;
  core::Status ok = core::verify_token(scratch, *token, *keys, policy, now);
  std::string tampered = *token;
  tampered[tampered.size() - 2] = tampered[tampered.size() - 2] == 'A' ? 'B' : 'A';
  core::Status bad = core::verify_token(scratch, tampered, *keys, policy, now);

  std::cout << "jwtgate " << "demo: an ephemeral ES256 key, its JWKS, a token and two verdicts\n\n"
            << "JWKS:\n  " << jwks << "\n\n"
            << "token (15 minutes):\n  " << *token << "\n\n"
            << "verdict on the token:          " << (ok ? "valid" : std::string(ok.name()) + ": " + ok.detail()) << "\n"
            << "verdict on a tampered copy:    " << bad.name() << ": " << bad.detail() << "\n\n"
            << "Try the CLI:\n"
            << "  jwtgate keygen --alg ES256 --kid k1 --out dev\n"
            << "  jwtgate mint --key dev.pem --alg ES256 --kid k1 --claims '{\"sub\":\"alice\"}' --ttl 15m > token\n"
            << "  jwtgate verify --jwks dev.jwks.json --alg ES256 - < token\n";
  return ok ? kExitOk : kExitInvalid;
}

}  // namespace jwtgate::cli
