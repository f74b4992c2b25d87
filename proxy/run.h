// Running the proxy in this process until SIGTERM/SIGINT: keys loaded, workers started, a
// graceful drain on the way out.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "core/jwk.h"

namespace jwtgate::proxy {

// The drain deadline is the configuration's limits.drain_timeout, read when the signal comes,
// so a reload that changes it applies.
struct RunOptions {
  // Keys to use instead of the providers' static sources (the embedded development default).
  std::function<std::shared_ptr<const core::KeySet>(std::size_t provider)> key_override;
  // Called once the proxy listens, with the actual port.
  std::function<void(std::uint16_t port)> on_listening;
  // The file the configuration came from: SIGHUP loads it again. Empty: SIGHUP is ignored.
  std::string config_path;
};

// Returns the process exit code: 0 after a drain (also one that reached its deadline and closed
// what was still in flight: that is still an orderly stop), 1 when it could not start.
int run_proxy(config::Config config, const RunOptions& options);

}  // namespace jwtgate::proxy
