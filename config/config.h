// The typed, validated configuration. proxy/ only ever sees these structs, never YAML; a Config
// exists only when the whole file was valid (see loader.h).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/ip_network.h"
#include "core/alg.h"

namespace jwtgate::config {

using Duration = std::chrono::milliseconds;

struct ListenAddress {
  std::string host;  // literal IPv4 or IPv6 address, or "localhost"
  std::uint16_t port = 0;
  std::string text;  // as written, for messages
};

struct UpstreamUrl {
  std::string host;
  std::uint16_t port = 80;  // 443 for https:// without a port
  std::string text;
  bool tls = false;  // https://
  bool h2 = false;   // h2c://: HTTP/2 with prior knowledge, no TLS (gRPC services)
};

enum class TlsVersion { tls1_2, tls1_3 };

// `tls:`: TLS on the proxy listener (`listen`).
struct TlsListener {
  std::string cert_file;  // PEM: leaf certificate, then its chain
  std::string key_file;   // PEM private key
  TlsVersion min_version = TlsVersion::tls1_2;
  Duration handshake_timeout = std::chrono::seconds(10);
  bool session_tickets = true;  // tls.session_tickets
  std::string client_ca_file;   // PEM CAs client certificates must chain to
  bool alpn_h2 = true;          // offer h2 by ALPN: http2.enabled, copied here by the loader
  enum class ClientAuth { none, optional, required };
  ClientAuth client_auth = ClientAuth::none;
};

// `upstream_tls:`: how https:// upstreams (top-level and routes[].upstream) are verified.
struct UpstreamTls {
  std::string ca_file;      // empty: the system's CAs
  std::string server_name;  // empty: the upstream URL's host (SNI and name verification)
  std::string cert_file, key_file;  // client certificate for mTLS to the service: both or neither
};

struct TokenSource {
  enum class Kind { header, cookie, query };
  Kind kind = Kind::header;
  std::string name;    // header name, cookie name or query parameter
  std::string prefix;  // headers only, e.g. "Bearer " (matched case-insensitively)
};

inline constexpr std::size_t kMaxProviders = 256;

struct JwksConfig {
  std::string uri;              // https://... (exactly one of uri, file, discovery)
  std::string file;             // /etc/jwtgate/jwks.json
  bool discovery = false;       // OIDC discovery from the issuer
  Duration refresh_interval = std::chrono::minutes(5);
  Duration min_refresh_interval = std::chrono::seconds(30);
  Duration stale_max = std::chrono::hours(24);
  Duration timeout = std::chrono::seconds(5);
  std::optional<Duration> connect_timeout;  // default: min(timeout, 2s)
  std::uint64_t max_bytes = 1024 * 1024;
  std::string cache_file;
  std::string ca_file;
  std::string ca_dir;
  // Which HTTP proxy https fetches use: libcurl's environment variables (https_proxy,
  // all_proxy, no_proxy), none, or proxy_url. Plain-http fetches never use one.
  enum class Proxy { env, none, url };
  Proxy proxy = Proxy::env;
  std::string proxy_url;  // http://, https://, socks5:// or socks5h://; only with Proxy::url
  bool configured() const { return !uri.empty() || !file.empty() || discovery; }
};

struct ClaimHeader {
  std::string claim;   // name or dotted path
  std::string header;  // HTTP header name
};

struct Provider {
  std::string name;
  std::string issuer;
  std::vector<std::string> audiences;
  std::vector<core::Alg> algorithms;  // as written, without duplicates
  core::AlgSet algorithm_set;
  JwksConfig jwks;
  std::string hmac_secret_file;
  std::string hmac_secret_env;
  std::string hmac_secret_kid;
  Duration clock_skew = std::chrono::seconds(30);
  std::optional<Duration> max_token_lifetime;
  std::vector<std::string> require_claims{"exp"};
  std::vector<TokenSource> token_sources;  // filled with Authorization: Bearer when not given
  std::vector<ClaimHeader> claims_to_headers;
  std::string forward_payload_header;
  bool forward_token = true;
  // RFC 8705 certificate-bound tokens: every token must carry cnf.x5t#S256 matching the
  // connection's client certificate (a bound token is checked whatever this says).
  bool require_certificate_binding = false;

  bool requires_exp() const;
};

enum class AuthMode { required, optional, none };

struct ClaimRequirement {
  std::string claim;                // name or dotted path
  std::vector<std::string> values;  // any one matches
};

struct Route {
  std::string prefix;
  std::vector<std::string> methods;  // empty: every method
  AuthMode auth = AuthMode::required;
  std::vector<std::string> require_scopes;
  std::vector<ClaimRequirement> require_claims;
  std::vector<std::string> providers;  // empty: every provider
  // Where this route's requests go; empty: the top-level upstream.
  std::optional<UpstreamUrl> upstream{};

  bool accepts_provider(std::string_view name) const {
    return providers.empty() || std::find(providers.begin(), providers.end(), name) != providers.end();
  }
};

struct Limits {
  std::uint64_t max_header_bytes = 16 * 1024;
  std::uint64_t max_token_bytes = 8 * 1024;
  Duration header_timeout = std::chrono::seconds(10);
  Duration idle_timeout = std::chrono::seconds(60);
  Duration upstream_timeout = std::chrono::seconds(30);
  std::uint64_t max_connections = 10000;
  // The longest gap between two reads of a request or response body (either direction).
  Duration body_timeout = std::chrono::seconds(60);
  // An upstream's status line plus headers; a larger response head is answered with 502.
  std::uint64_t max_response_header_bytes = 64 * 1024;
  // After SIGTERM/SIGINT, how long in-flight requests get before their connections are closed.
  Duration drain_timeout = std::chrono::seconds(30);
};

// `http2:`: HTTP/2 on the proxy listener (h2 by ALPN on TLS, h2c by prior knowledge on plain
// TCP) and its bounds against the protocol's own attacks. nghttp2 enforces most of them.
struct Http2 {
  bool enabled = true;
  std::uint64_t max_concurrent_streams = 100;  // SETTINGS_MAX_CONCURRENT_STREAMS; more are refused
  // Receive windows: how much request body a client may send ahead of the upstream taking it.
  std::uint64_t stream_window_bytes = 256 * 1024;
  std::uint64_t connection_window_bytes = 1024 * 1024;
  // RST_STREAMs a client may send (CVE-2023-44487, Rapid Reset): a token bucket of reset_burst
  // refilled by resets_per_second; an empty bucket ends the connection with GOAWAY.
  std::uint64_t reset_burst = 1000;
  std::uint64_t resets_per_second = 33;
};

// The admin listener's bounds and what it shows (see proxy/admin/admin_server.h for how they hold).
struct AdminConfig {
  // /config shows routes, scopes, trusted header names and secret file paths to any caller.
  bool config_endpoint = true;
  std::uint64_t max_connections = 64;
  std::uint64_t max_connections_per_peer = 8;
  Duration head_timeout = std::chrono::seconds(5);
  Duration idle_timeout = std::chrono::seconds(30);
};

struct LogConfig {
  enum class Format { json, text };
  enum class Level { debug, info, warn, error };
  Format format = Format::json;
  Level level = Level::info;
  bool access_log = true;          // one line per request
  double access_log_sample = 1.0;  // the share of requests logged, (0, 1]
};

// `development:`: run the development default (an ephemeral key, a printed token, the built-in
// echo upstream) instead of a proxy configuration.
struct Development {
  ListenAddress listen;                 // 127.0.0.1:8080 unless given
  std::optional<UpstreamUrl> upstream;  // unset: the built-in echo
};

// `forward_auth:`: a second listener that answers a gateway's "may this request pass?" (nginx
// auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz) with the proxy's own
// routes and verdicts, instead of forwarding the request.
struct ForwardAuth {
  ListenAddress listen;
  // The check's own path starts with this; what follows is the original path (Envoy's
  // path_prefix), unless a trusted peer names the original request in headers.
  std::string path_prefix = "/authz";
  // Peers (by socket address) whose X-Forwarded-Method/-Uri and X-Original-Method/-URI are
  // believed. Empty: nobody's.
  std::vector<IpNetwork> trusted_proxies;
  // A trusted peer's OPTIONS with Access-Control-Request-Method passes without a token.
  bool allow_preflight = false;
};

// A Redis server: redis://[user@]host[:port][/db] or rediss:// (TLS). A password is never part
// of the URL: it comes from a file or an environment variable.
struct RedisUrl {
  bool tls = false;
  std::string host;  // name, IPv4, or IPv6 without brackets
  std::uint16_t port = 6379;
  unsigned db = 0;
  std::string username;  // from the URL's userinfo; "" for none
  std::string text;      // as written
  bool operator==(const RedisUrl&) const = default;
};

// `revocation.redis:`.
struct RevocationRedis {
  RedisUrl url;
  std::string username;       // ACL user; overrides the URL's
  std::string password_file;  // at most one of these two
  std::string password_env;
  std::string ca_file;  // rediss: CAs the server's certificate must chain to; empty: the system's
  std::string key_prefix = "jwtgate:revoked:";
  std::string channel = "jwtgate:revocations";
  Duration resync_interval = std::chrono::seconds(30);
  Duration connect_timeout = std::chrono::seconds(2);
  bool operator==(const RevocationRedis&) const = default;
};

// `revocation.backchannel_logout:`: POST /backchannel-logout on the admin listener.
struct BackchannelLogout {
  std::vector<std::string> providers;  // by name; empty: every provider with an issuer
  Duration entry_ttl = std::chrono::hours(24);     // how long a logout's revocation lives
  Duration max_token_age = std::chrono::minutes(5);  // a logout token's iat may be this old
  bool operator==(const BackchannelLogout&) const = default;
};

// `revocation:`.
struct Revocation {
  std::string file;  // JSON lines; empty: none
  std::optional<RevocationRedis> redis;
  enum class OnUnavailable { keep, deny };
  OnUnavailable on_unavailable = OnUnavailable::keep;
  bool ready_requires_sync = false;
  std::optional<BackchannelLogout> backchannel_logout;
  bool operator==(const Revocation&) const = default;
};

struct Config {
  // Set for a file whose only key is `development:`; nothing else in this Config is then read.
  std::optional<Development> development;
  ListenAddress listen;
  std::optional<TlsListener> tls;  // the proxy listener's TLS; unset: plain HTTP
  ListenAddress admin_listen;  // admin.listen, or the top-level admin_listen (its older spelling)
  AdminConfig admin;
  UpstreamUrl upstream;  // unset (empty host) when there is no proxy: forward_auth alone
  UpstreamTls upstream_tls;  // for every https:// upstream, top-level or per route
  // The proxy listener runs: a top-level upstream is set. False only for a forward-auth-only file.
  bool proxy = true;
  std::optional<ForwardAuth> forward_auth;
  unsigned workers = 0;  // 0: one per CPU core ("auto")
  std::vector<Provider> providers;
  std::vector<Route> routes;  // filled with one "/" route, auth required, when not given
  // Route prefixes match case-insensitively unless this is set (upstreams such as Express,
  // ASP.NET Core and IIS route /ADMIN to the /admin handler).
  bool routes_case_sensitive = false;
  // X-Original-URL, X-Rewrite-URL, X-HTTP-Method-Override, X-HTTP-Method and X-Method-Override
  // are removed from requests unless this is set: they make frameworks route by a path or method
  // other than the one jwtgate authorized.
  bool forward_override_headers = false;
  // A change to the config file reloads it, as SIGHUP does. A Kubernetes ConfigMap volume changes
  // by a `..data` symlink swap, and the image has no shell to send SIGHUP from.
  bool watch_config = true;
  Limits limits;
  Http2 http2;
  std::optional<Revocation> revocation;
  LogConfig log;
};

std::string_view auth_mode_name(AuthMode m);
std::string_view tls_version_name(TlsVersion v);  // "1.2", "1.3": as written in the config
std::string_view client_auth_name(TlsListener::ClientAuth a);

}  // namespace jwtgate::config
