#include <iostream>
#include <string_view>

#include "cli/commands.h"

namespace {

constexpr const char* kHelp =
    "jwtgate: a JWT-validating reverse proxy\n"
    "\n"
    "usage:\n"
    "  jwtgate [--listen A] [--upstream URL]   development default: ephemeral key, printed token,\n"
    "                               proxy on 127.0.0.1:8080 in front of a built-in echo upstream\n"
    "  jwtgate --config FILE        validate FILE and run the proxy with it\n"
    "                               (a FILE holding only development: runs the development default)\n"
    "  jwtgate check-config --config FILE   validate FILE; exit 0 valid, 2 invalid\n"
    "  jwtgate health [--url http://127.0.0.1:9901/readyz] [--timeout 2s]\n"
    "                               one GET (a container or exec probe): exit 0 on 2xx, 1 otherwise\n"
    "  jwtgate echo [--listen 127.0.0.1:3000] [--name NAME]\n"
    "                               a stand-in service answering with what it received, as JSON\n"
    "  jwtgate decode TOKEN         print header and payload, UNVERIFIED\n"
    "  jwtgate verify --jwks FILE [--issuer I] [--audience A] [--alg ALG] TOKEN\n"
    "  jwtgate keygen --alg ALG [--kid K] [--out PREFIX]\n"
    "  jwtgate mint --key FILE --alg ALG [--kid K] --claims JSON --ttl 15m\n"
    "  jwtgate dev-idp [--listen 127.0.0.1:9000] [--issuer URL] [--key FILE --alg ALG] [--kid K]\n"
    "                  [--audience A] [--ttl 15m]   DEVELOPMENT OpenID provider: discovery, JWKS and\n"
    "                               POST /token minting any claims for anyone (never in production)\n"
    "  jwtgate revoke (--redis URL | --file PATH) (--jti J --exp T | --iss I --sub S [--before T]\n"
    "                 | --iss I --sid X) [--ttl 24h]   cut off a token, a subject or a session now\n"
    "  jwtgate help | --help | --version\n"
    "\n"
    "TOKEN '-' reads the token from standard input, keeping it out of shell history.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace jwtgate::cli;
  if (argc < 2 || std::string_view(argv[1]).rfind("--listen", 0) == 0 || std::string_view(argv[1]).rfind("--upstream", 0) == 0) {
    return dev_command(argc, argv);
  }
  const std::string_view cmd = argv[1];
  if (cmd == "decode") return decode_command(argc, argv);
  if (cmd == "verify") return verify_command(argc, argv);
  if (cmd == "keygen") return keygen_command(argc, argv);
  if (cmd == "mint") return mint_command(argc, argv);
  if (cmd == "dev-idp") return dev_idp_command(argc, argv);
  if (cmd == "check-config") return check_config_command(argc, argv);
  if (cmd == "health") return health_command(argc, argv);
  if (cmd == "echo") return echo_command(argc, argv);
  if (cmd == "revoke") return revoke_command(argc, argv);
  if (cmd == "--config" || cmd.rfind("--config=", 0) == 0) return serve_command(argc, argv);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::cout << kHelp;
    return kExitOk;
  }
  if (cmd == "--version") {
    std::cout << "jwtgate " << JWTGATE_VERSION << "\n";
    return kExitOk;
  }
  std::cerr << "jwtgate: unknown command '" << cmd << "'\n\n" << kHelp;
  return kExitUsage;
}
