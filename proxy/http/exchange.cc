#include "proxy/http/exchange.h"

#include <algorithm>

#include <uv.h>

#include "proxy/http/forward_auth.h"
#include "proxy/http/upstream_request.h"

namespace jwtgate::proxy {
namespace {

Answer plain(int code, std::string_view error, std::string description, std::string allow_methods = {}) {
  Answer a;
  a.kind = Answer::Kind::plain;
  a.code = code;
  a.error = error;
  a.description = std::move(description);
  a.allow_methods = std::move(allow_methods);
  return a;
}

Answer allow(AuthResult auth) {
  Answer a;
  a.kind = Answer::Kind::allow;
  a.auth = std::move(auth);
  return a;
}

bool peer_trusted(const RuntimeConfig& rc, const std::optional<config::IpAddress>* peer) {
  if (!peer || !*peer) return false;
  const auto& trusted = rc.config.forward_auth->trusted_proxies;
  return std::any_of(trusted.begin(), trusted.end(), [&](const config::IpNetwork& n) { return n.contains(**peer); });
}

}  // namespace

void Exchange::reset() {
  method_.clear();
  target_ = RequestTarget{};
  route_ = nullptr;
  also_route_ = nullptr;
  waited_for_keys_ = false;
  awaited_provider_ = -1;
}

std::optional<Answer> Exchange::take_checked_request(const RuntimeConfig& rc, bool trusted, const HeaderList& headers,
                                                     bool& preflight, ExchangeRecord& record) {
  const config::ForwardAuth& fa = *rc.config.forward_auth;
  CheckedRequest checked;
  std::string why;
  if (const int code = find_checked_request(fa, trusted, method_, target_, headers, checked, why); code != 0) {
    if (code == 404) record.outcome = Outcome::no_route;
    return plain(code, code == 404 ? "not_found" : code == 501 ? "not_implemented" : "invalid_request", std::move(why));
  }
  if (const std::string_view h = override_header_present(headers); !h.empty() && !rc.config.forward_override_headers) {
    return plain(400, "invalid_request",
                 "the request carries " + std::string(h) +
                     " (in some spelling), which makes frameworks run another method or path than the one judged; a "
                     "gateway would pass it on (set forward_override_headers if the service ignores it)");
  }
  if (const std::string_view h = identity_header_respelled(rc.injected_headers, headers); !h.empty()) {
    return plain(400, "invalid_request",
                 "the request carries another spelling of " + std::string(h) +
                     ", which jwtgate sets from the token; a gateway would pass that spelling on beside jwtgate's value");
  }
  preflight = is_allowed_preflight(fa, trusted, checked, headers);
  method_ = std::move(checked.method);
  target_ = std::move(checked.target);
  return std::nullopt;
}

std::optional<Answer> Exchange::route(const RuntimeConfig& rc, Request request, HeaderList& headers, ExchangeRecord& record) {
  mode_ = request.mode;
  method_ = request.method;
  bool preflight = false;
  if (request.mode == Mode::forward_auth) {
    if (auto answer = take_checked_request(rc, peer_trusted(rc, request.peer), headers, preflight, record)) return answer;
  }
  std::string allow_methods;
  route_ = rc.routes.match(target_.match_path, method_, &allow_methods);
  if (preflight) {
    // Browsers send preflights without credentials; whether the actual request may pass is
    // decided when it comes. Only a path no route covers is refused here, read both ways when
    // case is folded (see below).
    std::string exact_allow;
    const bool covered = (route_ || !allow_methods.empty()) &&
                         (rc.routes.case_sensitive() || rc.routes.match_exact(target_.match_path, method_, &exact_allow) ||
                          !exact_allow.empty());
    if (covered) {
      record.outcome = Outcome::public_;
      return allow(AuthResult{});
    }
  }
  if (route_ && !rc.routes.case_sensitive()) {
    // Case folding may only make a rule stricter: where exact matching finds another route, the
    // request must pass that one too, and where it finds none (404) or excludes the method (405),
    // that is the answer, since a case-sensitive upstream serves the path as exact matching reads it.
    const config::Route* exact = rc.routes.match_exact(target_.match_path, method_, &allow_methods);
    if (!exact) route_ = nullptr;
    else if (exact != route_) also_route_ = exact;
  }
  if (!route_) {
    record.outcome = Outcome::no_route;
    // The path's route exists but excludes the method: never a shorter, weaker route instead.
    if (!allow_methods.empty()) return plain(405, "method_not_allowed", "this route does not accept the method", allow_methods);
    return plain(404, "not_found", "no route covers this path");
  }
  // Headers jwtgate sets from a token, and the override headers, are never passed on from a
  // client, on any route, in any spelling a CGI-style upstream reads as the same name. (A
  // forward-auth check forwards nothing, so nothing needs removing.)
  if (request.mode == Mode::proxy) remove_client_set_headers(headers, rc.removed_headers);
  return std::nullopt;
}

ExchangeDecision Exchange::authorise(const Generation& gen, const HeaderList& headers, std::int64_t now,
                                     std::string_view client_cert_thumbprint, WorkerMetrics& metrics,
                                     ExchangeRecord& record, KeyWaiter* waiter) {
  ExchangeDecision d;
  const RuntimeConfig& rc = *gen.runtime;
  const std::uint64_t t0 = uv_hrtime();
  auto counted = [&](AuthResult a) {
    if (a.token_present) {
      (a.cache_hit ? metrics.cache_hits : metrics.cache_misses).add();
      record.token_digest = a.digest;
    }
    return a;
  };
  AuthResult auth =
      counted(gen.authenticator->authenticate(*route_, headers, target_.query, now, client_cert_thumbprint));
  AuthResult folded;  // the case-folded reading's verdict, when exact matching found another route
  if (also_route_ && auth.status.ok()) {
    // Matched without case, the path has another exact-case route: both readings must pass. The
    // request goes to the exact route's service, so the identity forwarded (and the token sources
    // stripped) are that route's: the folded route only adds a rule. Its identity may come from a
    // provider the served route does not trust, and forwarding it would let a token of one IdP
    // speak for a subject to a service that accepts only another's.
    folded = std::move(auth);
    auth = counted(gen.authenticator->authenticate(*also_route_, headers, target_.query, now, client_cert_thumbprint));
  }
  if (auth.token_present || folded.token_present) {
    metrics.verify_seconds.observe(static_cast<double>(uv_hrtime() - t0) / 1e9);
  }
  if (!auth.status.ok()) {
    // An unknown kid may be a key the IdP has just added: wait (bounded) for one refresh.
    if (auth.status.reason() == core::Reason::unknown_kid && !waited_for_keys_ && auth.provider >= 0 && waiter &&
        waiter->await_keys(static_cast<std::size_t>(auth.provider))) {
      waited_for_keys_ = true;
      awaited_provider_ = auth.provider;
      d.kind = ExchangeDecision::Kind::await_keys;
      d.provider = auth.provider;
      return d;
    }
    record.outcome = auth.status.reason() == core::Reason::keys_unavailable ||
                             auth.status.reason() == core::Reason::revocation_unavailable
                         ? Outcome::unavailable
                         : Outcome::denied;
    record.reason = auth.status.reason();
    d.kind = ExchangeDecision::Kind::answer;
    d.answer.kind = Answer::Kind::token_refused;
    d.answer.status = std::move(auth.status);
    return d;
  }
  // The log names the verified token even when the served route is public and forwards none.
  AuthResult& named = auth.authenticated ? auth : folded;
  record.outcome = named.authenticated ? Outcome::allowed : Outcome::public_;
  record.sub = std::move(named.sub);
  record.jti = std::move(named.jti);
  if (mode_ == Mode::forward_auth) {
    // The verdict is the answer: nothing is forwarded.
    d.kind = ExchangeDecision::Kind::answer;
    d.answer = allow(std::move(auth));
    return d;
  }
  d.kind = ExchangeDecision::Kind::forward;
  // The upstream is that of the route exact-case matching picked, from the one lookup that
  // authorized the request: case folding only adds rules a request must pass, it never sends a
  // path to a service whose prefix does not cover it as written (what routes_case_sensitive: true
  // would do), and the request has passed that route too.
  d.auth_route = also_route_ ? also_route_ : route_;
  d.upstream_index = rc.route_upstream[rc.routes.index_of(d.auth_route)];
  if (also_route_) {
    d.folded_route = route_;
    d.folded_strip_sources = folded.strip_sources;
  }
  d.auth = std::move(auth);
  return d;
}

}  // namespace jwtgate::proxy
