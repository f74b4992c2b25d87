#include "proxy/runtime_config.h"

#include <algorithm>
#include <chrono>

#include "proxy/http/http_head.h"

namespace jwtgate::proxy {

bool RuntimeConfig::same_upstream(const config::UpstreamUrl& a, const config::UpstreamUrl& b) {
  return iequals(a.host, b.host) && a.port == b.port && a.tls == b.tls && a.h2 == b.h2;
}

bool RuntimeConfig::same_pool(const config::UpstreamUrl& a, const config::UpstreamTls& a_tls, const config::UpstreamUrl& b,
                              const config::UpstreamTls& b_tls) {
  return same_upstream(a, b) && (!a.tls || same_upstream_tls(a_tls, b_tls));
}

bool RuntimeConfig::load_upstream_tls(std::string& error) {
  const bool any = std::any_of(upstreams.begin(), upstreams.end(), [](const config::UpstreamUrl& u) { return u.tls; });
  if (!any) return true;
  upstream_tls = TlsClientContext::build(config.upstream_tls, error);
  if (!upstream_tls) error = "upstream_tls: " + error;
  return upstream_tls != nullptr;
}

RuntimeConfig::RuntimeConfig(config::Config c) : config(std::move(c)), routes(config.routes, config.routes_case_sensitive) {
  for (const auto& p : config.providers) {
    ProviderRuntime rt{p, {}};
    rt.policy.algorithms = p.algorithm_set;
    rt.policy.max_token_bytes = config.limits.max_token_bytes;
    rt.policy.claims.issuer = p.issuer;
    rt.policy.claims.audiences = p.audiences;
    rt.policy.claims.clock_skew_seconds = std::chrono::duration_cast<std::chrono::seconds>(p.clock_skew).count();
    rt.policy.claims.require_exp = p.requires_exp();
    if (p.max_token_lifetime) {
      rt.policy.claims.max_lifetime_seconds = std::chrono::duration_cast<std::chrono::seconds>(*p.max_token_lifetime).count();
    }
    for (const auto& claim : p.require_claims) {
      if (claim != "exp") rt.policy.claims.required_claims.push_back(claim);
    }
    providers.push_back(std::move(rt));
    auto add_header = [this](const std::string& h) {
      if (std::none_of(injected_headers.begin(), injected_headers.end(), [&](const std::string& x) { return iequals(x, h); })) {
        injected_headers.push_back(h);
      }
    };
    for (const auto& ch : p.claims_to_headers) add_header(ch.header);
    if (!p.forward_payload_header.empty()) add_header(p.forward_payload_header);
  }
  removed_headers = injected_headers;
  // The rest say, to one framework or another, what X-Forwarded-Proto/-Host and the client's
  // address say (Spring builds links and paths from Forwarded and X-Forwarded-Prefix, Rack takes
  // the scheme from X-Forwarded-Ssl/-Scheme first, chi's RealIP takes True-Client-IP and
  // X-Real-IP first): jwtgate is the one that knows them, and a client's are never passed on.
  removed_headers.insert(removed_headers.end(),
                         {"X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "X-Forwarded-Port", "X-Forwarded-Prefix",
                          "X-Forwarded-Scheme", "X-Forwarded-Ssl", "Front-End-Https", "X-Real-IP", "True-Client-IP",
                          "X-Client-IP"});
  // RFC 9440: the client certificate is what jwtgate's TLS listener verified, and nothing a client
  // writes itself, on any listener, TLS or not.
  removed_headers.insert(removed_headers.end(), {"Client-Cert", "Client-Cert-Chain"});
  if (!config.forward_override_headers) {
    removed_headers.insert(removed_headers.end(), std::begin(kOverrideHeaders), std::end(kOverrideHeaders));
  }
  upstreams.push_back(config.upstream);
  auto upstream_index = [this](const config::UpstreamUrl& u) {
    for (std::size_t i = 0; i < upstreams.size(); ++i) {
      if (same_upstream(upstreams[i], u)) return i;
    }
    upstreams.push_back(u);
    return upstreams.size() - 1;
  };
  for (const auto& r : config.routes) {
    route_upstream.push_back(r.upstream ? upstream_index(*r.upstream) : 0);
    std::vector<config::TokenSource> sources;
    for (const auto& p : config.providers) {
      if (!r.accepts_provider(p.name)) continue;
      for (const auto& src : p.token_sources) {
        const bool dup = std::any_of(sources.begin(), sources.end(), [&](const config::TokenSource& x) {
          return x.kind == src.kind && iequals(x.name, src.name) && x.prefix == src.prefix;
        });
        if (!dup) sources.push_back(src);
      }
    }
    route_token_sources.push_back(std::move(sources));
    for (const auto& req : r.require_claims) {
      if (std::find(requirement_paths.begin(), requirement_paths.end(), req.claim) == requirement_paths.end()) {
        requirement_paths.push_back(req.claim);
      }
    }
  }
}

std::size_t RuntimeConfig::requirement_index(const std::string& path) const {
  return static_cast<std::size_t>(std::find(requirement_paths.begin(), requirement_paths.end(), path) -
                                  requirement_paths.begin());
}

}  // namespace jwtgate::proxy
