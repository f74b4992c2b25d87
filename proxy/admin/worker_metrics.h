// One worker's counters. Only that worker writes them (single-writer counters, no locked
// instructions on the request path); a scrape on the control thread reads every worker's and
// sums them. Per-route counters are kept by route prefix so they survive a reload.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/status.h"
#include "proxy/admin/metrics.h"

namespace jwtgate::proxy {

// How a request ended, as the `outcome` label says it.
enum class Outcome : std::uint8_t {
  allowed,      // a verified token, forwarded
  public_,      // forwarded without a token (auth: none, or optional without one)
  denied,       // refused for its token (401, 403, 400 invalid_request)
  unavailable,  // 503: the provider has no keys
  no_route,     // 404
  invalid,      // malformed HTTP, bad path, head too large or too slow
  count
};
std::string_view outcome_name(Outcome o);

// Which listener a request came in on, as the `mode` label says it: proxied, or a gateway's
// forward-auth check.
enum class Mode : std::uint8_t { proxy, forward_auth, count };
std::string_view mode_name(Mode m);

// How a TLS handshake on the proxy listener ended, and on which version.
enum class TlsHandshakeResult : std::uint8_t { success, failure, timeout, count };
std::string_view tls_handshake_result_name(TlsHandshakeResult r);
inline constexpr std::string_view kTlsVersionLabels[] = {"TLSv1.2", "TLSv1.3", "none"};

inline constexpr std::size_t kReasonCount = static_cast<std::size_t>(core::kLastReason) + 1;

struct RouteCounters {
  std::array<std::array<Counter, static_cast<std::size_t>(Outcome::count)>, static_cast<std::size_t>(Mode::count)>
      requests;
};

class WorkerMetrics {
 public:
  WorkerMetrics();

  // The counters of the route with this prefix ("" for requests no route matched); created on
  // first use. Takes a lock: call when a configuration is installed, never per request.
  RouteCounters* route(const std::string& prefix);
  // Calls `f(prefix, counters)` for every route under the same lock.
  template <class F>
  void for_each_route(F&& f) const {
    std::lock_guard<std::mutex> lock(routes_mutex_);
    for (const auto& [prefix, counters] : routes_) f(prefix, *counters);
  }

  std::array<Counter, kReasonCount> auth_failures;
  Histogram verify_seconds;
  Counter cache_hits;
  Counter cache_misses;
  Histogram upstream_seconds;
  std::array<Counter, 6> upstream_responses;  // by status class 1xx..5xx; [0]: no response (502/504)
  Counter connections_total;
  Gauge connections_active;
  Counter access_log_lines;
  std::array<Counter, 17> grpc_responses;  // by grpc-status, 0 (OK) to 16 (UNAUTHENTICATED)
  // By result, then kTlsVersionLabels.
  std::array<std::array<Counter, std::size(kTlsVersionLabels)>, static_cast<std::size_t>(TlsHandshakeResult::count)>
      tls_handshakes;
  // `version`: SSL_get_version's text, or nullptr when no version was agreed.
  void tls_handshake(TlsHandshakeResult result, const char* version);
  RouteCounters* unrouted;  // requests no route matched

 private:
  mutable std::mutex routes_mutex_;
  std::map<std::string, std::unique_ptr<RouteCounters>> routes_;
};

}  // namespace jwtgate::proxy
