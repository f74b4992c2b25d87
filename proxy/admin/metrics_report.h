// The /metrics page: every worker's counters summed, the key manager's per-provider state, and
// process-wide figures, in the Prometheus text format. Runs on the control thread at scrape time.
#pragma once

#include <cstdint>
#include <string>

#include "proxy/keys/key_manager.h"
#include "proxy/revocation/backchannel_logout.h"
#include "proxy/revocation/revocation_store.h"
#include "proxy/server.h"

namespace jwtgate::proxy {

struct ProcessCounters {
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_rejected = 0;
  std::int64_t started_at = 0;  // wall clock, seconds
};

// The proxy listener's certificate, when it speaks TLS.
struct TlsStatus {
  std::int64_t not_after = 0;  // the leaf's, seconds since the epoch
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_failed = 0;
};

// When revocation is configured.
struct RevocationReport {
  RevocationStatus status;
  bool logout = false;  // backchannel_logout is on
  LogoutCounters logouts;
};

// `tls`: nullptr when the proxy listener is plain TCP (no TLS series are written then);
// `revocation`: nullptr when no revocation section is configured.
std::string render_metrics(const Server& server, const KeyManager& keys, const ProcessCounters& process,
                           const TlsStatus* tls = nullptr, const RevocationReport* revocation = nullptr);

}  // namespace jwtgate::proxy
