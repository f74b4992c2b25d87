// Configs shared by the loader tests and the /config rendering tests: a known environment, the
// smallest valid file, and one that sets every key of the schema.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "config/loader.h"

namespace jwtgate::testing {

// A known environment, so tests never depend on the machine's.
inline config::LoadOptions options(std::map<std::string, std::string> env = {}) {
  config::LoadOptions o;
  o.env = [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  return o;
}

inline const std::string kMinimal = R"(upstream: http://127.0.0.1:3000
providers:
  - name: main
    issuer: https://idp.example.com/
    audiences: [orders-api]
    algorithms: [RS256]
    jwks:
      uri: https://idp.example.com/jwks.json
)";

// `secret_path`: a readable file holding an HMAC secret of at least 32 bytes.
inline std::string full_schema_yaml(const std::string& secret_path) {
  return R"(listen: 127.0.0.1:18080
admin_listen: "[::1]:19901"
admin: {config_endpoint: false, max_connections: 32, max_connections_per_peer: 4, head_timeout: 2s, idle_timeout: 1m}
upstream: http://orders:3000/
workers: 3
providers:
  - name: main
    issuer: https://idp.example.com/
    audiences: [orders-api, billing]
    algorithms: [RS256, ES256, EdDSA]
    jwks:
      uri: https://idp.example.com/.well-known/jwks.json
      refresh_interval: 10m
      min_refresh_interval: 1m
      stale_max: 12h
      timeout: 3s
      max_bytes: 512KiB
      cache_file: /var/lib/jwtgate/main.json
      connect_timeout: 1s
      ca_dir: /etc/ssl/certs
      proxy: http://egress:s3cret@proxy.internal:3128
    clock_skew: 10s
    max_token_lifetime: 90m
    require_claims: [exp, sub]
    token_sources:
      - header: Authorization
        prefix: "Bearer "
      - cookie: access_token
    claims_to_headers:
      sub: X-Jwt-Sub
      realm_access.roles: X-Jwt-Roles
    forward_payload_header: X-Jwt-Payload
    forward_token: false
  - name: partner
    issuer: https://partner.example.com
    audiences: [orders-api]
    algorithms: [HS256]
    hmac_secret_file: )" + secret_path + R"(
    hmac_secret_kid: partner-1
routes:
  - prefix: /healthz
    auth: none
  - prefix: /admin
    methods: [GET, POST]
    require_scopes: [admin]
    require_claims: {realm_access.roles: [admin, ops], tier: gold}
    providers: [main]
  - prefix: /public
    auth: optional
    upstream: http://inventory:3001/
  - prefix: /
    auth: required
routes_case_sensitive: true
forward_override_headers: true
limits: {max_header_bytes: 32KiB, max_token_bytes: 4KiB, header_timeout: 5s, idle_timeout: 2m,
         upstream_timeout: 500ms, max_connections: 500, body_timeout: 45s,
         max_response_header_bytes: 128KiB, drain_timeout: 8s}
http2: {enabled: false, max_concurrent_streams: 50, stream_window_bytes: 128KiB, connection_window_bytes: 2MiB,
        reset_burst: 200, resets_per_second: 10}
log: {format: text, level: debug, access_log: false, access_log_sample: 0.25}
)";
}

}  // namespace jwtgate::testing
