#include "proxy/revocation/backchannel_logout.h"

#include <strings.h>

#include <algorithm>

#include "core/logout_token.h"
#include "core/rfc6750.h"
#include "core/token.h"
#include "core/verifier.h"
#include "proxy/admin/log.h"

namespace jwtgate::proxy {
namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> form_decode(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '+') {
      out.push_back(' ');
    } else if (v[i] == '%') {
      if (i + 2 >= v.size()) return std::nullopt;
      const int hi = hex(v[i + 1]), lo = hex(v[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(v[i]);
    }
  }
  return out;
}

AdminResponse answer(int status, std::string_view error, std::string_view description) {
  AdminResponse r;
  r.status = status;
  r.headers.push_back({"Cache-Control", "no-store"});
  if (!error.empty()) {
    r.content_type = "application/json";
    r.body = core::error_json(error, description);
  } else {
    r.body.clear();
  }
  return r;
}

bool form_content_type(std::string_view ct) {
  const std::string_view want = "application/x-www-form-urlencoded";
  if (ct.size() < want.size() || strncasecmp(ct.data(), want.data(), want.size()) != 0) return false;
  ct.remove_prefix(want.size());
  while (!ct.empty() && (ct.front() == ' ' || ct.front() == '\t')) ct.remove_prefix(1);
  return ct.empty() || ct.front() == ';';
}

}  // namespace

std::optional<std::string> form_parameter(std::string_view body, std::string_view name) {
  std::optional<std::string> found;
  while (!body.empty()) {
    const auto amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    const auto eq = pair.find('=');
    auto key = form_decode(pair.substr(0, eq));
    if (!key || *key != name) continue;
    if (found) return std::nullopt;  // repeated: which one would the IdP mean?
    auto value = form_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value) return std::nullopt;
    found = std::move(*value);
  }
  return found;
}

AdminResponse handle_backchannel_logout(const AdminRequest& request, const RuntimeConfig& runtime,
                                        const std::vector<std::shared_ptr<const core::KeySet>>& keys,
                                        RevocationStore& store, std::int64_t now, LogoutState& state) {
  LogoutCounters& counters = state.counters;
  if (request.method != "POST") {
    AdminResponse r = answer(405, "invalid_request", "use POST");
    r.headers.push_back({"Allow", "POST"});
    return r;
  }
  auto refuse = [&](std::string_view why) {
    ++counters.invalid;
    log_event("warn", "back-channel logout refused", {{"error", std::string(why)}});
    return answer(400, "invalid_request", why);
  };
  if (!form_content_type(request.content_type)) return refuse("the body must be application/x-www-form-urlencoded");
  const auto token_text = form_parameter(request.body, "logout_token");
  if (!token_text || token_text->empty()) return refuse("the body must hold exactly one logout_token");

  const config::BackchannelLogout& cfg = *runtime.config.revocation->backchannel_logout;
  core::Token token;
  if (core::Status s = token.decode(*token_text, runtime.config.limits.max_token_bytes); !s) return refuse(s.detail());
  std::string_view iss;
  simdjson::dom::element e;
  if (token.payload().at_key("iss").get(e) || e.get_string().get(iss)) return refuse("the logout token has no iss");
  const ProviderRuntime* provider = nullptr;
  std::size_t index = 0;
  for (std::size_t i = 0; i < runtime.providers.size(); ++i) {
    const config::Provider& p = runtime.providers[i].config;
    const bool allowed = cfg.providers.empty() ? !p.issuer.empty() && !p.audiences.empty()
                                               : std::find(cfg.providers.begin(), cfg.providers.end(), p.name) != cfg.providers.end();
    if (allowed && p.issuer == iss) {
      provider = &runtime.providers[i];
      index = i;
      break;
    }
  }
  if (!provider) return refuse("the logout token's issuer is not one this endpoint accepts");
  if (index >= keys.size() || !keys[index]) return refuse("the provider's keys are not loaded yet");
  if (core::Status s = core::verify_token_signature(token, *keys[index], provider->policy.algorithms); !s) {
    return refuse(s.detail());
  }
  core::LogoutClaims claims;
  const auto max_age = std::chrono::duration_cast<std::chrono::seconds>(cfg.max_token_age).count();
  if (core::Status s = core::check_logout_token(token, provider->policy.claims, max_age, now, claims); !s) {
    return refuse(s.detail());
  }
  if (claims.iss.size() > core::kMaxRevocationValueBytes || claims.jti.size() > core::kMaxRevocationValueBytes ||
      claims.sub.size() > core::kMaxRevocationValueBytes || claims.sid.size() > core::kMaxRevocationValueBytes) {
    return refuse("the logout token's iss, jti, sub or sid is longer than 4096 bytes");
  }
  if (store.has_logout(claims.iss, claims.jti, now)) {
    ++counters.replayed;
    log_event("warn", "back-channel logout refused: a logout token was replayed", {{"iss", claims.iss}});
    return answer(400, "invalid_request", "this logout token has been used already");
  }

  std::string key = claims.iss;
  key.push_back('\0');
  key += claims.jti;
  auto& pending = state.unshared.by_token;
  auto found = pending.find(key);
  UnsharedLogouts::Pending plan;
  if (found != pending.end()) {
    plan = found->second;  // a retry of a logout applied here while Redis was away: share that one
  } else {
    // The logout token itself, until it could no longer be accepted: its iat (rounded up) plus
    // the age and skew allowed, and the second it is accepted in.
    plan.marker.kind = core::RevocationKind::logout;
    plan.marker.iss = claims.iss;
    plan.marker.value = claims.jti;
    plan.marker.exp = claims.iat + max_age + provider->policy.claims.clock_skew_seconds + 1;
    plan.cut.iss = claims.iss;
    plan.cut.exp = now + std::chrono::duration_cast<std::chrono::seconds>(cfg.entry_ttl).count();
    if (!claims.sid.empty()) {
      plan.cut.kind = core::RevocationKind::session;
      plan.cut.value = claims.sid;
    } else {
      plan.cut.kind = core::RevocationKind::subject;
      plan.cut.value = claims.sub;
      plan.cut.before = now + 1;  // the tokens of this very second too
    }
  }
  const bool retry = found != pending.end();
  const std::string subject_kind = plan.cut.kind == core::RevocationKind::session ? "session" : "subject";

  // Not shared (Redis away, or it refused): applied here all the same. Spec §2.8: a logout that
  // did not succeed is a 400; the IdP's retry shares this same revocation (no new cut-off) and
  // is not taken for a replay.
  auto unshared = [&state, key, plan, now](std::string why) {
    ++state.counters.failed;
    auto& p = state.unshared.by_token;
    std::erase_if(p, [now](const auto& e) { return e.second.marker.exp && *e.second.marker.exp <= now; });
    if (p.size() < kMaxUnsharedLogouts) p.emplace(key, plan);
    return answer(400, "temporarily_unavailable", why);
  };
  auto shared = [&state, &store, key, plan, subject_kind]() {
    std::string ignored;
    store.revoke(plan.marker, ignored);
    state.unshared.by_token.erase(key);
    ++state.counters.ok;
    log_event("info", "back-channel logout", {{"iss", plan.cut.iss}, {"revoked", subject_kind}});
    return answer(200, "", "");
  };

  std::string error;
  if (!store.shares_through_redis()) {
    store.revoke(plan.cut, error);
    return shared();
  }
  // With Redis, the answer waits for Redis to have stored the revocation: a 200 that the other
  // sidecars drop at their next full load (Redis refused the SET: out of memory, a read-only
  // replica, ACLs) would be no logout.
  auto reply = std::make_shared<AdminDeferredAnswer>();
  auto stored = [reply, unshared, shared](bool ok) {
    if (*reply) (*reply)(ok ? shared() : unshared("Redis did not store the revocation: it holds on this instance only"));
  };
  const bool sent = retry ? store.share(plan.cut, error, stored) : store.revoke(plan.cut, error, stored);
  if (!sent) return unshared(error);
  *reply = request.defer();  // the reply comes from Redis's answer, on a later loop turn
  return answer(202, "", "");  // not sent: the deferred answer is
}

}  // namespace jwtgate::proxy
