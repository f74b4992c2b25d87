#include "proxy/admin/metrics_report.h"

#include <ctime>
#include <map>
#include <tuple>

#include "proxy/admin/log.h"
#include "proxy/admin/metrics.h"

namespace jwtgate::proxy {
namespace {

constexpr std::string_view kUpstreamClasses[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

}  // namespace

std::string render_metrics(const Server& server, const KeyManager& keys, const ProcessCounters& process,
                           const TlsStatus* tls, const RevocationReport* revocation) {
  const auto& workers = server.workers();
  // Sums over workers, keyed by label values, so each family is written in one run.
  std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> requests;
  std::array<std::uint64_t, kReasonCount> failures{};
  std::array<std::uint64_t, 6> upstream{};
  std::uint64_t hits = 0, misses = 0, connections_total = 0, access_lines = 0;
  std::array<std::uint64_t, 17> grpc{};
  std::int64_t active = 0;
  Histogram::Snapshot verify, upstream_latency;
  std::array<std::array<std::uint64_t, std::size(kTlsVersionLabels)>, static_cast<std::size_t>(TlsHandshakeResult::count)>
      handshakes{};
  for (const auto& w : workers) {
    const WorkerMetrics& m = w->worker_metrics();
    for (std::size_t r = 0; r < handshakes.size(); ++r) {
      for (std::size_t v = 0; v < handshakes[r].size(); ++v) handshakes[r][v] += m.tls_handshakes[r][v].value();
    }
    m.for_each_route([&](const std::string& prefix, const RouteCounters& c) {
      for (std::size_t mode = 0; mode < c.requests.size(); ++mode) {
        // Series only for the listeners that run: a proxy-only process shows none with
        // mode="forward_auth".
        if (static_cast<Mode>(mode) == Mode::proxy ? server.port() == 0 : server.check_port() == 0) continue;
        for (std::size_t o = 0; o < c.requests[mode].size(); ++o) {
          requests[{prefix, std::string(outcome_name(static_cast<Outcome>(o))), std::string(mode_name(static_cast<Mode>(mode)))}] +=
              c.requests[mode][o].value();
        }
      }
    });
    for (std::size_t r = 0; r < kReasonCount; ++r) failures[r] += m.auth_failures[r].value();
    for (std::size_t k = 0; k < upstream.size(); ++k) upstream[k] += m.upstream_responses[k].value();
    hits += m.cache_hits.value();
    misses += m.cache_misses.value();
    connections_total += m.connections_total.value();
    active += m.connections_active.value();
    access_lines += m.access_log_lines.value();
    for (std::size_t g = 0; g < grpc.size(); ++g) grpc[g] += m.grpc_responses[g].value();
    verify.merge(m.verify_seconds.snapshot());
    upstream_latency.merge(m.upstream_seconds.snapshot());
  }

  MetricsWriter out;
  out.gauge("jwtgate_build_info", "Build information; the value is always 1.", {{"version", JWTGATE_VERSION}}, 1);
  out.gauge("jwtgate_start_time_seconds", "When the process started, in seconds since the Unix epoch.", {},
            static_cast<double>(process.started_at));
  for (const auto& [labels, value] : requests) {
    out.counter("jwtgate_requests_total",
                "Requests by route prefix (empty: no route matched), outcome (allowed, public, denied, "
                "unavailable, no_route, invalid) and mode (proxy, or forward_auth for a gateway's checks).",
                {{"route", std::get<0>(labels)}, {"outcome", std::get<1>(labels)}, {"mode", std::get<2>(labels)}}, value);
  }
  for (std::size_t r = 1; r < kReasonCount; ++r) {
    out.counter("jwtgate_auth_failures_total", "Requests refused for their token (or for missing keys), by reason.",
                {{"reason", std::string(core::reason_name(static_cast<core::Reason>(r)))}}, failures[r]);
  }
  out.histogram("jwtgate_token_verification_seconds",
                "Time to authenticate a request that carried a token, cache hits included.", {}, verify);
  out.counter("jwtgate_token_cache_hits_total", "Tokens found in the verified-token cache.", {}, hits);
  out.counter("jwtgate_token_cache_misses_total", "Tokens verified from scratch (or refused).", {}, misses);
  out.histogram("jwtgate_upstream_response_seconds", "Time from sending a request upstream to its response head.", {},
                upstream_latency);
  for (std::size_t k = 0; k < upstream.size(); ++k) {
    out.counter("jwtgate_upstream_responses_total",
                "Upstream responses by status class; none: no response (502 or 504 from jwtgate).",
                {{"class", std::string(kUpstreamClasses[k])}}, upstream[k]);
  }
  out.gauge("jwtgate_connections_active", "Client connections open now.", {}, static_cast<double>(active));
  out.counter("jwtgate_connections_total", "Client connections accepted.", {}, connections_total);
  if (tls) {
    for (std::size_t r = 0; r < handshakes.size(); ++r) {
      for (std::size_t v = 0; v < handshakes[r].size(); ++v) {
        // A failed or timed-out handshake agreed on no version; a successful one always did.
        const bool agreed = v + 1 < handshakes[r].size();
        if (agreed != (static_cast<TlsHandshakeResult>(r) == TlsHandshakeResult::success)) continue;
        out.counter("jwtgate_tls_handshakes_total",
                    "TLS handshakes on the proxy listener by result (success, failure, timeout) and version.",
                    {{"result", std::string(tls_handshake_result_name(static_cast<TlsHandshakeResult>(r)))},
                     {"version", std::string(kTlsVersionLabels[v])}},
                    handshakes[r][v]);
      }
    }
    out.gauge("jwtgate_tls_certificate_expiry_timestamp_seconds",
              "When the proxy listener's certificate expires, in seconds since the Unix epoch.", {{"listener", "proxy"}},
              static_cast<double>(tls->not_after));
    out.counter("jwtgate_tls_certificate_reloads_total", "Reloads of the proxy listener's certificate by result.",
                {{"result", "success"}}, tls->reloads_ok);
    out.counter("jwtgate_tls_certificate_reloads_total", "Reloads of the proxy listener's certificate by result.",
                {{"result", "failure"}}, tls->reloads_failed);
  }

  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto& s = keys.provider(i).stats();
    const std::string& name = keys.provider(i).name();
    out.counter("jwtgate_jwks_fetches_total", "Key set fetches (or file reads) by provider and result.",
                {{"provider", name}, {"result", "success"}}, s.fetches - s.fetch_failures);
    out.counter("jwtgate_jwks_fetches_total", "", {{"provider", name}, {"result", "failure"}}, s.fetch_failures);
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    out.counter("jwtgate_jwks_unknown_kid_refreshes_total", "Refreshes started for a token with an unknown kid.",
                {{"provider", keys.provider(i).name()}}, keys.provider(i).stats().unknown_kid_refreshes);
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    out.gauge("jwtgate_jwks_keys", "Keys in the provider's current set (0: not ready).",
              {{"provider", keys.provider(i).name()}}, static_cast<double>(keys.provider(i).key_count()));
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    out.gauge("jwtgate_provider_ready", "1 when the provider has usable keys.", {{"provider", keys.provider(i).name()}},
              keys.provider(i).ready() ? 1 : 0);
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::int64_t last = keys.provider(i).last_success();
    if (last == 0) continue;  // never succeeded: no age to report
    out.gauge("jwtgate_jwks_last_success_age_seconds", "Seconds since the provider's keys were last fetched or read.",
              {{"provider", keys.provider(i).name()}}, static_cast<double>(now - last));
  }
  out.counter("jwtgate_config_reloads_total", "Configuration reloads by result.", {{"result", "success"}},
              process.reloads_ok);
  out.counter("jwtgate_config_reloads_total", "", {{"result", "rejected"}}, process.reloads_rejected);
  for (std::size_t g = 0; g < grpc.size(); ++g) {
    // Only statuses seen: seventeen zero series per process would say nothing.
    if (grpc[g] == 0) continue;
    out.counter("jwtgate_grpc_responses_total",
                "gRPC calls by the grpc-status the client got (jwtgate's refusals included; HTTP/2 only).",
                {{"grpc_status", std::to_string(g)}}, grpc[g]);
  }
  if (revocation) {
    const RevocationStatus& r = revocation->status;
    for (std::size_t k = 0; k < core::kRevocationKinds; ++k) {
      out.gauge("jwtgate_revocation_entries", "Revocations in force, by kind.",
                {{"kind", std::string(core::revocation_kind_name(static_cast<core::RevocationKind>(k)))}},
                static_cast<double>(r.entries[k]));
    }
    out.gauge("jwtgate_revocation_available", "1 when every revocation source is in sync (Redis connected and loaded, the file read).",
              {}, r.available ? 1 : 0);
    out.gauge("jwtgate_revocation_table_bytes", "Memory held by the revocation tables.", {}, static_cast<double>(r.table_bytes));
    auto source = [&](const char* name, bool has, std::int64_t last, std::uint64_t failures) {
      if (!has) return;
      if (last > 0) {
        out.gauge("jwtgate_revocation_sync_age_seconds", "Seconds since the source's last full successful sync.",
                  {{"source", name}}, static_cast<double>(now - last));
      }
      out.counter("jwtgate_revocation_sync_failures_total", "Failed syncs of a revocation source (reads, connections, loads).",
                  {{"source", name}}, failures);
    };
    source("file", r.has_file, r.file_last_sync, r.file_failures);
    source("redis", r.has_redis, r.redis_last_sync, r.redis_failures);
    if (revocation->logout) {
      const LogoutCounters& c = revocation->logouts;
      const char* help = "Back-channel logout requests by result.";
      out.counter("jwtgate_backchannel_logouts_total", help, {{"result", "ok"}}, c.ok);
      out.counter("jwtgate_backchannel_logouts_total", "", {{"result", "invalid"}}, c.invalid);
      out.counter("jwtgate_backchannel_logouts_total", "", {{"result", "replayed"}}, c.replayed);
      out.counter("jwtgate_backchannel_logouts_total", "", {{"result", "unshared"}}, c.failed);
    }
  }
  out.counter("jwtgate_access_log_lines_total", "Access-log lines written (after sampling).", {}, access_lines);
  out.counter("jwtgate_log_lines_dropped_total", "Log lines dropped because stdout could not keep up.", {},
              log_lines_dropped());
  return out.take();
}

}  // namespace jwtgate::proxy
