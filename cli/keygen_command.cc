#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/key_files.h"
#include "core/signer.h"

namespace jwtgate::cli {

int keygen_command(int argc, char** argv) {
  Args args(argc, argv, 2, {"alg", "kid", "out"}, {"force"});
  auto alg = core::alg_from_name(args.get("alg"));
  if (!args.ok() || !alg || !args.positional().empty()) {
    std::cerr << "usage: jwtgate keygen --alg ALG [--kid K] [--out PREFIX] [--force]\n"
                 "  writes PREFIX.pem (private key, mode 0600; for HS* a JWK holding the secret)\n"
                 "  and PREFIX.jwks.json (the JWKS to publish; for HS* it holds the secret: keep it private)\n"
                 "  ALG: HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA\n";
    if (!args.ok()) std::cerr << "error: " << args.error() << "\n";
    else if (!alg) std::cerr << "error: --alg must name a supported algorithm\n";
    return kExitUsage;
  }
  const std::string kid = args.get("kid");
  const std::string prefix = args.get("out", "jwtgate-key");
  const bool force = args.has("force");
  core::Result<core::SigningKey> key = core::generate_signing_key(*alg);
  if (!key) {
    std::cerr << "error: " << key.status().detail() << "\n";
    return kExitInvalid;
  }
  const std::string jwks = core::jwks_for(*key, *alg, kid) + "\n";
  const bool hmac = core::alg_family(*alg) == core::AlgFamily::hmac;
  const std::string private_text = hmac ? jwks : core::private_key_pem(*key);
  std::string error;
  if (!write_new_file(prefix + ".pem", private_text, 0600, force, error) ||
      !write_new_file(prefix + ".jwks.json", jwks, hmac ? 0600 : 0644, force, error)) {
    std::cerr << "error: " << error << "\n";
    return kExitUsage;
  }
  std::cout << "wrote " << prefix << ".pem (private, 0600) and " << prefix << ".jwks.json\n";
  return kExitOk;
}

}  // namespace jwtgate::cli
