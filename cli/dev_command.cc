// `jwtgate` with no config: the whole flow on one machine. An ephemeral ES256 key signs a
// ready-to-use token; the proxy listens on 127.0.0.1:8080 in front of a built-in echo upstream
// (or --upstream URL) that also serves the key's JWKS, so every request shows what jwtgate
// forwarded.
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/development_default.h"
#include "config/address.h"

namespace jwtgate::cli {

int dev_command(int argc, char** argv) {
  Args args(argc, argv, 1, {"listen", "upstream"});
  config::Development dev;
  std::string error;
  if (!args.ok() || !args.positional().empty() ||
      !config::parse_listen_address(args.get("listen", "127.0.0.1:8080"), dev.listen, error)) {
    std::cerr << "usage: jwtgate [--listen 127.0.0.1:8080] [--upstream http://HOST:PORT]\n"
                 "  runs the development default: an ephemeral key, a printed token, and the proxy\n"
                 "  in front of a built-in echo upstream (or --upstream)\n";
    if (!args.ok()) std::cerr << "error: " << args.error() << "\n";
    else if (!error.empty()) std::cerr << "error: --listen: " << error << "\n";
    return kExitUsage;
  }
  if (args.has("upstream")) {
    config::UpstreamUrl url;
    if (!config::parse_upstream_url(args.get("upstream"), url, error)) {
      std::cerr << "error: --upstream: " << error << "\n";
      return kExitUsage;
    }
    dev.upstream = url;
  }
  return run_development_default(dev, "no --config given");
}

}  // namespace jwtgate::cli
