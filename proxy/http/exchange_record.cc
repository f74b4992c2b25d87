#include "proxy/http/exchange_record.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include <uv.h>

namespace jwtgate::proxy {

void ExchangeRecord::clear_results() {
  upstream_sent_ns = 0;
  upstream_ns = 0;
  status = 0;
  upstream_status = 0;
  outcome = Outcome::invalid;
  reason = core::Reason::ok;
  token_digest.reset();
  sub.clear();
  jti.clear();
  grpc_status = -1;
}

void write_exchange_record(const ExchangeRecord& r, const ExchangeSubject& subject, WorkerMetrics& m,
                           RouteCounters& counters, const config::LogConfig& log, LogBuffer& out) {
  counters.requests[static_cast<std::size_t>(subject.mode)][static_cast<std::size_t>(r.outcome)].add();
  if (r.outcome == Outcome::denied || r.outcome == Outcome::unavailable) {
    m.auth_failures[static_cast<std::size_t>(r.reason)].add();
  }
  if (r.upstream_status > 0) {
    m.upstream_responses[static_cast<std::size_t>(std::clamp(r.upstream_status / 100, 1, 5))].add();
  } else if ((r.outcome == Outcome::allowed || r.outcome == Outcome::public_) && (r.status == 502 || r.status == 504)) {
    m.upstream_responses[0].add();
  }

  // A refused gRPC call is an HTTP 200: only grpc-status tells a denial from a success.
  if (r.grpc_status >= 0 && static_cast<std::size_t>(r.grpc_status) < m.grpc_responses.size()) {
    m.grpc_responses[static_cast<std::size_t>(r.grpc_status)].add();
  }

  if (!log.access_log || !log_enabled(config::LogConfig::Level::info)) return;
  if (!out.sampled(log.access_log_sample)) return;
  m.access_log_lines.add();

  // Never the query string: tokens and other secrets travel there.
  std::string path = !subject.target_path.empty()
                         ? std::string(subject.target_path)
                         : std::string(subject.url.substr(0, std::min(subject.url.find('?'), subject.url.size())));
  if (path.size() > 512) path.resize(512);
  char duration[32], upstream_duration[32];
  std::snprintf(duration, sizeof duration, "%.3f", static_cast<double>(uv_hrtime() - r.started_ns) / 1e6);
  std::snprintf(upstream_duration, sizeof upstream_duration, "%.3f", static_cast<double>(r.upstream_ns) / 1e6);
  const std::string status = std::to_string(r.status);
  const std::string upstream_status = std::to_string(r.upstream_status);
  const std::string grpc_status = std::to_string(r.grpc_status);
  std::vector<LogBuffer::Field> fields{
      {"method", subject.method},
      {"path", path},
      {"route", subject.route},
      {"status", status, true},
      {"outcome", outcome_name(r.outcome)},
      {"mode", mode_name(subject.mode)},
      {"duration_ms", duration, true},
      {"client", subject.client},
  };
  if (!subject.protocol.empty()) fields.push_back({"protocol", subject.protocol});
  if (r.grpc_status >= 0) fields.push_back({"grpc_status", grpc_status, true});
  if (r.reason != core::Reason::ok) fields.push_back({"reason", core::reason_name(r.reason)});
  // Which service a forwarded request went to (the URL holds no credentials: see address.h).
  if (subject.upstream) fields.push_back({"upstream", *subject.upstream});
  if (r.upstream_status > 0) {
    fields.push_back({"upstream_status", upstream_status, true});
    fields.push_back({"upstream_ms", upstream_duration, true});
  }
  if (!r.sub.empty()) fields.push_back({"sub", r.sub});
  std::string fingerprint;
  if (!r.jti.empty()) {
    fields.push_back({"jti", r.jti});
  } else if (r.token_digest) {
    fingerprint = core::token_fingerprint(*r.token_digest);
    fields.push_back({"token_sha256", fingerprint});
  }
  out.append(fields);
  if (out.large()) out.flush();
}

}  // namespace jwtgate::proxy
