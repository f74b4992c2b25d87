// What one exchange (a request and jwtgate's or the upstream's answer) leaves behind: the
// counters it adds to the worker's metrics and its access-log line. Collected while the exchange
// runs, written once at its end, the same for every codec.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/fingerprint.h"
#include "core/status.h"
#include "proxy/admin/log.h"
#include "proxy/admin/worker_metrics.h"

namespace jwtgate::proxy {

struct ExchangeRecord {
  bool active = false;  // begun and not yet written
  std::uint64_t started_ns = 0;
  std::uint64_t upstream_sent_ns = 0;
  std::uint64_t upstream_ns = 0;
  int status = 0;           // what the client got (0: nothing)
  int upstream_status = 0;  // what the upstream answered (0: it did not)
  Outcome outcome = Outcome::invalid;
  core::Reason reason = core::Reason::ok;
  std::optional<core::TokenDigest> token_digest;  // only ever fingerprinted
  std::string sub, jti;
  int grpc_status = -1;  // a gRPC call's status (jwtgate's or the upstream's); -1: none known

  void begin(std::uint64_t now_ns) {
    active = true;
    started_ns = now_ns;
  }
  // Forgets the previous exchange's results (not whether one is active, nor when it started).
  void clear_results();
};

// What the exchange was about, as its access-log line names it.
struct ExchangeSubject {
  Mode mode = Mode::proxy;
  std::string_view method;       // "-" when none was parsed
  std::string_view target_path;  // normalized; empty when the target was refused
  std::string_view url;          // as received, for a refused target (its query is never logged)
  std::string_view route;        // the matched route's prefix, empty for none
  std::string_view client;       // the peer address
  std::optional<std::string_view> upstream;  // the service it was forwarded to
  std::string_view protocol;                 // "h2" for HTTP/2 streams; empty: HTTP/1
};

// Adds the exchange to `metrics` (`counters`: its route's, or the unrouted ones) and, when the
// access log is on and samples it, appends its line to `access_log`.
void write_exchange_record(const ExchangeRecord& record, const ExchangeSubject& subject, WorkerMetrics& metrics,
                           RouteCounters& counters, const config::LogConfig& log, LogBuffer& access_log);

}  // namespace jwtgate::proxy
