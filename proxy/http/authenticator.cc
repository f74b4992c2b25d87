#include "proxy/http/authenticator.h"

#include <algorithm>

#include "core/base64url.h"
#include "core/certificate_binding.h"
#include "core/claims.h"
#include "core/json_object.h"
#include "core/logout_token.h"
#include "proxy/http/token_extractor.h"

namespace jwtgate::proxy {
namespace {

void flatten(simdjson::dom::element e, std::vector<std::string>& out) {
  if (e.is_array()) {
    for (simdjson::dom::element item : core::as_array(e)) flatten(item, out);
  } else if (e.is_string()) {
    out.emplace_back(e.get_string().value_unsafe());
  } else if (!e.is_null() && !e.is_object()) {
    out.push_back(simdjson::minify(e));
  }
}

}  // namespace

Authenticator::Authenticator(std::shared_ptr<const RuntimeConfig> config, std::size_t cache_capacity)
    : config_(std::move(config)), keys_(config_->providers.size()), cache_(cache_capacity) {}

void Authenticator::set_keys(std::size_t provider, std::shared_ptr<const core::KeySet> keys) {
  if (provider >= keys_.size()) return;
  keys_[provider] = std::move(keys);
  cache_.drop_provider(provider);
}

int Authenticator::select_provider(const config::Route& route, const core::Token& token, core::Status& error) const {
  const auto& providers = config_->providers;
  std::string_view iss;
  simdjson::dom::element e;
  const bool has_iss = !token.payload().at_key("iss").get(e) && !e.get_string().get(iss);
  int only = -1, candidates = 0;
  for (std::size_t i = 0; i < providers.size(); ++i) {
    if (!route.accepts_provider(providers[i].config.name)) continue;
    ++candidates;
    only = static_cast<int>(i);
    if (has_iss && providers[i].config.issuer == iss) return static_cast<int>(i);
  }
  // One provider without a configured issuer takes any token; its claims check says the rest.
  if (candidates == 1 && providers[static_cast<std::size_t>(only)].config.issuer.empty()) return only;
  if (candidates == 1) return only;  // check_claims reports the issuer mismatch precisely
  error = core::Status(core::Reason::bad_issuer, has_iss ? "the token's issuer is not accepted on this route"
                                                         : "the token has no iss to select a provider");
  return -1;
}

core::Status Authenticator::verify_fresh(const config::Route& route, std::string_view token, std::int64_t now,
                                         VerifiedToken& out) {
  if (core::Status s = scratch_.decode(token, config_->config.limits.max_token_bytes); !s) return s;
  // Its aud is the client id, which a provider's audiences may well accept.
  if (core::looks_like_logout_token(scratch_)) return {core::Reason::invalid_claim, "a logout token is not an access token"};
  core::Status error;
  const int index = select_provider(route, scratch_, error);
  if (index < 0) return error;
  out.provider = static_cast<std::size_t>(index);  // also names the provider when verification fails
  const ProviderRuntime& provider = config_->providers[static_cast<std::size_t>(index)];
  const auto& keys = keys_[static_cast<std::size_t>(index)];
  if (!keys) return {core::Reason::keys_unavailable, "the provider's keys are not loaded yet"};
  if (core::Status s = core::verify_token_signature(scratch_, *keys, provider.policy.algorithms); !s) return s;
  const core::Claims claims(scratch_.payload());
  if (core::Status s = core::check_claims(claims, provider.policy.claims, now); !s) return s;
  std::string_view x5t;
  if (core::Status s = core::read_certificate_binding(scratch_.payload(), x5t); !s) return s;
  out.x5t_s256 = std::string(x5t);

  // Types were checked by check_claims, so these only read.
  core::read_numeric_date(claims, "exp", out.exp);
  core::read_numeric_date(claims, "nbf", out.nbf);
  std::vector<std::string_view> scopes;
  if (core::Status s = claims.scopes(scopes); !s) return s;
  out.scopes.assign(scopes.begin(), scopes.end());
  out.requirement_values.resize(config_->requirement_paths.size());
  for (std::size_t i = 0; i < config_->requirement_paths.size(); ++i) {
    if (auto v = claims.find(config_->requirement_paths[i])) flatten(*v, out.requirement_values[i]);
  }
  auto short_string = [&](const char* name, std::string& out) {
    std::string_view v;
    if (auto e = claims.find(name); e && !e->get_string().get(v)) out = std::string(v.substr(0, 128));
  };
  short_string("sub", out.sub);
  short_string("jti", out.jti);
  if (config_->config.revocation) {
    // What a revocation names must be something it can name: a jti, sub or sid that is not a
    // string (RFC 7519 §4.1.2, §4.1.7; OIDC's sid), or longer than an entry may hold, could never
    // be revoked.
    std::string_view fields[3];
    const char* names[3] = {"sub", "sid", "jti"};
    for (int i = 0; i < 3; ++i) {
      simdjson::dom::element e;
      if (scratch_.payload().at_key(names[i]).get(e)) continue;
      if (e.get_string().get(fields[i])) return {core::Reason::invalid_claim, core::quoted_detail(names[i], "is not a string")};
      if (fields[i].size() > core::kMaxRevocationValueBytes) {
        return {core::Reason::invalid_claim, core::quoted_detail(names[i], "is longer than 4096 bytes")};
      }
    }
    std::string_view iss;
    simdjson::dom::element e;
    if (!scratch_.payload().at_key("iss").get(e) && !e.get_string().get(iss) && iss.size() > core::kMaxRevocationValueBytes) {
      return {core::Reason::invalid_claim, core::quoted_detail("iss", "is longer than 4096 bytes")};
    }
    std::optional<double> iat;
    core::read_numeric_date(claims, "iat", iat);
    out.revocation = core::revocation_subject(iss, fields[0], fields[1], fields[2], iat);
  }
  for (const auto& ch : provider.config.claims_to_headers) {
    auto v = claims.find(ch.claim);
    out.claim_headers.push_back(v ? core::claim_header_value(*v) : std::nullopt);
  }
  if (!provider.config.forward_payload_header.empty()) {
    const std::string_view segment = token.substr(token.find('.') + 1);
    out.payload_header = std::string(segment.substr(0, segment.find('.')));
  }
  return core::Status::Ok();
}

core::Status Authenticator::check_route(const config::Route& route, const VerifiedToken& v, std::int64_t now,
                                        std::string_view client_cert_thumbprint) const {
  const ProviderRuntime& provider = config_->providers[v.provider];
  if (!route.accepts_provider(provider.config.name)) {
    return {core::Reason::bad_issuer, "the token's issuer is not accepted on this route"};
  }
  // Per request, cached verdicts included: the binding belongs to the token, the certificate to
  // the connection. Before scopes, since a token this client may not use at all says so first.
  if (core::Status s = core::check_certificate_binding(v.x5t_s256, client_cert_thumbprint,
                                                       provider.config.require_certificate_binding);
      !s) {
    return s;
  }
  if (core::Status s = core::check_validity_window(v.exp, v.nbf, now, provider.policy.claims.clock_skew_seconds); !s) {
    return s;
  }
  // Every request, cache hits included: a revocation takes effect on the next request.
  if (!revocations_ && config_->config.revocation) {
    return {core::Reason::revocation_unavailable, "the revocations are not loaded yet"};
  }
  if (revocations_) {
    if (core::Status s = revocations_->check(v.revocation, now, provider.policy.claims.clock_skew_seconds); !s) return s;
  }
  for (const auto& want : route.require_scopes) {
    if (std::find(v.scopes.begin(), v.scopes.end(), want) == v.scopes.end()) {
      return {core::Reason::insufficient_scope, "the token lacks the \"" + want + "\" scope"};
    }
  }
  for (const auto& req : route.require_claims) {
    const auto& have = v.requirement_values[config_->requirement_index(req.claim)];
    const bool ok = std::any_of(req.values.begin(), req.values.end(), [&](const std::string& want) {
      return std::find(have.begin(), have.end(), want) != have.end();
    });
    if (!ok) return {core::Reason::claim_mismatch, "the token's \"" + req.claim + "\" claim does not hold a required value"};
  }
  return core::Status::Ok();
}

AuthResult Authenticator::authenticate(const config::Route& route, const HeaderList& headers, std::string_view query,
                                       std::int64_t now, std::string_view client_cert_thumbprint) {
  AuthResult result;
  if (route.auth == config::AuthMode::none) return result;

  const auto& sources = config_->route_token_sources[config_->routes.index_of(&route)];
  ExtractedToken token;
  if (core::Status s = extract_token(headers, query, sources, token); !s) {
    result.status = std::move(s);
    return result;
  }
  result.token_present = token.present;
  if (!token.present) {
    if (route.auth == config::AuthMode::required) {
      result.status = core::Status(core::Reason::missing_token, "this route requires a bearer token");
    }
    return result;
  }
  result.digest = core::token_digest(token.token);
  decide(route, token, now, client_cert_thumbprint, result);
  return result;
}

void Authenticator::decide(const config::Route& route, const ExtractedToken& token, std::int64_t now,
                           std::string_view client_cert_thumbprint, AuthResult& result) {
  const VerifiedToken* verified = result.digest ? cache_.find(*result.digest) : nullptr;
  VerifiedToken fresh;
  if (verified) {
    result.cache_hit = true;
  } else {
    if (core::Status s = verify_fresh(route, token.token, now, fresh); !s) {
      // The caller may wait for a key refresh of this provider.
      if (s.reason() == core::Reason::unknown_kid) result.provider = static_cast<int>(fresh.provider);
      result.status = std::move(s);
      return;
    }
    verified = result.digest ? cache_.insert(*result.digest, std::move(fresh)) : nullptr;
    if (!verified) verified = &fresh;
  }
  if (core::Status s = check_route(route, *verified, now, client_cert_thumbprint); !s) {
    result.status = std::move(s);
    return;
  }
  result.authenticated = true;
  result.provider = static_cast<int>(verified->provider);
  result.sub = verified->sub;
  result.jti = verified->jti;
  const config::Provider& p = config_->providers[verified->provider].config;
  for (std::size_t i = 0; i < p.claims_to_headers.size(); ++i) {
    if (verified->claim_headers[i]) result.add_headers.push_back({p.claims_to_headers[i].header, *verified->claim_headers[i]});
  }
  if (!p.forward_payload_header.empty()) result.add_headers.push_back({p.forward_payload_header, verified->payload_header});
  if (!p.forward_token) result.strip_sources = token.found_in;
}

}  // namespace jwtgate::proxy
