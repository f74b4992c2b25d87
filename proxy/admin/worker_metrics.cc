#include "proxy/admin/worker_metrics.h"

namespace jwtgate::proxy {

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::allowed: return "allowed";
    case Outcome::public_: return "public";
    case Outcome::denied: return "denied";
    case Outcome::unavailable: return "unavailable";
    case Outcome::no_route: return "no_route";
    case Outcome::invalid: return "invalid";
    case Outcome::count: break;
  }
  return "unknown";
}

std::string_view mode_name(Mode m) { return m == Mode::forward_auth ? "forward_auth" : "proxy"; }

WorkerMetrics::WorkerMetrics() : verify_seconds(kLatencyBuckets), upstream_seconds(kLatencyBuckets) {
  unrouted = route("");
}

RouteCounters* WorkerMetrics::route(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(routes_mutex_);
  auto& slot = routes_[prefix];
  if (!slot) slot = std::make_unique<RouteCounters>();
  return slot.get();
}

std::string_view tls_handshake_result_name(TlsHandshakeResult r) {
  switch (r) {
    case TlsHandshakeResult::success: return "success";
    case TlsHandshakeResult::failure: return "failure";
    case TlsHandshakeResult::timeout: return "timeout";
    case TlsHandshakeResult::count: break;
  }
  return "unknown";
}

void WorkerMetrics::tls_handshake(TlsHandshakeResult result, const char* version) {
  std::size_t v = std::size(kTlsVersionLabels) - 1;
  if (version) {
    for (std::size_t i = 0; i + 1 < std::size(kTlsVersionLabels); ++i) {
      if (kTlsVersionLabels[i] == version) v = i;
    }
  }
  tls_handshakes[static_cast<std::size_t>(result)][v].add();
}

}  // namespace jwtgate::proxy
