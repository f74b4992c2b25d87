// The development default: an ephemeral ES256 key, a printed token, and the proxy in front of
// the built-in echo upstream (or a given one). Both `jwtgate [--listen A] [--upstream URL]` and
// `jwtgate --config FILE` with a `development:` file run it.
#pragma once

#include <string>

#include "config/config.h"

namespace jwtgate::cli {

// Runs until SIGTERM/SIGINT; returns the process exit code. `origin` completes the banner's
// first line ("jwtgate development default (ORIGIN)").
int run_development_default(const config::Development& dev, const std::string& origin);

}  // namespace jwtgate::cli
