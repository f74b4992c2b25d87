// The validated config compiled for the request path: route table, per-provider verification
// policies, and the lists the authenticator needs precomputed. Immutable once built; a reload
// builds a new one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/verifier.h"
#include "proxy/http/route_table.h"
#include "proxy/http/tls_client_context.h"

namespace jwtgate::proxy {

// Headers that make frameworks route by a method or path other than the request's own (Express
// method-override, Symfony, IIS URL Rewrite): removed from proxied requests, refused in checks,
// unless forward_override_headers is set.
inline constexpr std::string_view kOverrideHeaders[] = {"X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override",
                                                        "X-HTTP-Method", "X-Method-Override"};

struct ProviderRuntime {
  config::Provider config;
  core::VerifyPolicy policy;
};

struct RuntimeConfig {
  config::Config config;
  std::vector<ProviderRuntime> providers;
  RouteTable routes;
  // Every claim path some route's require_claims names, deduplicated.
  std::vector<std::string> requirement_paths;
  // Every header jwtgate may set from a token (claim and payload headers of all providers):
  // removed from every incoming request, on every route, before anything is added.
  std::vector<std::string> injected_headers;
  // Removed from every incoming request in any spelling (case ignored, '_' as '-'): the
  // injected headers, the X-Forwarded-Proto/Host jwtgate sets (and Forwarded,
  // X-Forwarded-Port/-Prefix), and the override headers
  // (X-Original-URL ...) unless forward_override_headers is set.
  std::vector<std::string> removed_headers;
  // Per route (configured order): the token sources of every provider it accepts, deduplicated,
  // so the request path does not assemble them per request.
  std::vector<std::vector<config::TokenSource>> route_token_sources;
  // Every distinct upstream (same host and port: one entry), the top-level one first; a worker
  // keeps one connection pool per entry, so connections are never shared across upstreams.
  std::vector<config::UpstreamUrl> upstreams;
  // Per route (configured order): its index in `upstreams`, so choosing one costs nothing.
  std::vector<std::size_t> route_upstream;

  // What every https:// upstream's connections present and verify (upstream_tls is one section,
  // the upstream's name is set per connection); null when no upstream is https://. Set by
  // load_upstream_tls before the configuration is shared.
  std::shared_ptr<const TlsClientContext> upstream_tls;

  explicit RuntimeConfig(config::Config c);
  // Reads upstream_tls's files when some upstream is https://; false with `error` (naming the
  // file) when they cannot be used: start-up fails, a reload is refused.
  bool load_upstream_tls(std::string& error);
  // Whether a pool for `a` under `a_tls` serves `b` under `b_tls`: the same upstream, and for
  // https:// the same upstream_tls settings (a changed CA or name must not ride on connections
  // verified under the old one).
  static bool same_pool(const config::UpstreamUrl& a, const config::UpstreamTls& a_tls, const config::UpstreamUrl& b,
                        const config::UpstreamTls& b_tls);
  // One service, one pool: the same host (ASCII case ignored) and port, however the URL is
  // spelled (a trailing slash keeps a reload's warm connections).
  static bool same_upstream(const config::UpstreamUrl& a, const config::UpstreamUrl& b);
  std::size_t requirement_index(const std::string& path) const;
};

}  // namespace jwtgate::proxy
