// The /metrics page: every worker's counters summed, the key manager's per-provider state, and
// process-wide figures, in the Prometheus text format. Runs on the control thread at scrape time.
#pragma once

#include <cstdint>
#include <string>

#include "proxy/keys/key_manager.h"
#include "proxy/server.h"

namespace jwtgate::proxy {

struct ProcessCounters {
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_rejected = 0;
  std::int64_t started_at = 0;  // wall clock, seconds
};

std::string render_metrics(const Server& server, const KeyManager& keys, const ProcessCounters& process);

}  // namespace jwtgate::proxy
