#include "config/config_json.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>

#include "config/url_parts.h"
#include "core/alg.h"
#include "core/json_writer.h"

namespace jwtgate::config {
namespace {

constexpr std::string_view kRedacted = "[redacted]";

// Environment expansion can put arbitrary bytes into any string after the YAML parser checked
// its input, and JSON must be UTF-8: invalid sequences become U+FFFD instead of producing a
// document clients refuse.
std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0, min = 0;
    if (b < 0x80) { out += s[i++]; continue; }
    if (b >= 0xc2 && b <= 0xdf) { len = 2; cp = b & 0x1f; min = 0x80; }
    else if (b >= 0xe0 && b <= 0xef) { len = 3; cp = b & 0x0f; min = 0x800; }
    else if (b >= 0xf0 && b <= 0xf4) { len = 4; cp = b & 0x07; min = 0x10000; }
    bool ok = len > 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      ok = (c & 0xc0) == 0x80;
      cp = (cp << 6) | (c & 0x3f);
    }
    ok = ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

bool is_host_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c >= 0x80;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// host, host:port, [v6] or [v6]:port with nothing that could be part of a credential.
bool plain_host_port(std::string_view a) {
  if (!a.empty() && a.front() == '[') {
    const auto close = a.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : a.substr(1, close - 1)) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.')) return false;
    }
    const auto rest = a.substr(close + 1);
    return rest.empty() || (rest.front() == ':' && all_digits(rest.substr(1)));
  }
  const auto colon = a.find(':');
  const auto host = a.substr(0, colon);
  if (host.empty()) return false;
  for (char c : host) {
    if (!is_host_byte(static_cast<unsigned char>(c))) return false;
  }
  return colon == std::string_view::npos || all_digits(a.substr(colon + 1));
}

bool valid_scheme(std::string_view s) {
  if (s.empty() || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  });
}

// Names stay (they say what the URL is for); values go, since tokens and API keys travel there.
// A parameter without '=' may itself be the credential (?SECRET), so it goes whole. ';' counts
// as a separator too, as some servers treat it as one, so "?KEY;a=1" cannot smuggle KEY out as
// part of a name.
void append_redacted_query(std::string& out, std::string_view query) {
  std::size_t start = 0;
  while (true) {
    const auto sep = query.find_first_of("&;", start);
    const auto param = query.substr(start, sep == std::string_view::npos ? std::string_view::npos : sep - start);
    const auto eq = param.find('=');
    if (eq != std::string_view::npos) {
      out.append(param.substr(0, eq + 1));
      out.append(kRedacted);
    } else if (!param.empty()) {
      out.append(kRedacted);
    }
    if (sep == std::string_view::npos) break;
    out += query[sep];
    start = sep + 1;
  }
}

void string_or_null(core::JsonWriter& w, std::string_view s) {
  if (s.empty()) w.null();
  else w.string(valid_utf8(s));
}

void string_list(core::JsonWriter& w, const std::vector<std::string>& items) {
  w.begin_array();
  for (const auto& s : items) w.string(valid_utf8(s));
  w.end_array();
}

// Empty lists that mean "no restriction" are null, so they cannot be read as "nothing allowed".
void string_list_or_null(core::JsonWriter& w, const std::vector<std::string>& items) {
  if (items.empty()) w.null();
  else string_list(w, items);
}

void duration(core::JsonWriter& w, Duration d) { w.string(format_duration(d)); }

// Sizes are unsigned 64-bit; JsonWriter::number takes int64, and a cast could turn a huge value
// negative.
void size(core::JsonWriter& w, std::uint64_t n) { w.raw(std::to_string(n)); }

// Shortest text that reads back as the same double. JSON has no NaN or infinity; the loader
// never produces them, but a Config built in code could.
void share(core::JsonWriter& w, double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (!std::isfinite(v) || ec != std::errc()) w.null();
  else w.raw(std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

void url(core::JsonWriter& w, std::string_view u) {
  if (u.empty()) w.null();
  else w.string(valid_utf8(redact_url(u)));
}

void listen_address(core::JsonWriter& w, const ListenAddress& a) {
  w.begin_object();
  w.key("address"); w.string(valid_utf8(a.text));
  w.key("host"); w.string(valid_utf8(a.host));
  w.key("port"); w.number(a.port);
  w.end_object();
}

void upstream_url(core::JsonWriter& w, const UpstreamUrl& u) {
  w.begin_object();
  w.key("url"); url(w, u.text);
  w.key("scheme"); w.string(u.tls ? "https" : u.h2 ? "h2c" : "http");
  w.key("host"); w.string(valid_utf8(u.host));
  w.key("port"); w.number(u.port);
  w.end_object();
}

std::string_view token_source_kind(TokenSource::Kind k) {
  switch (k) {
    case TokenSource::Kind::header: return "header";
    case TokenSource::Kind::cookie: return "cookie";
    case TokenSource::Kind::query: return "query";
  }
  return "";
}

// The proxy fetches really use: null without a fetch, "none" for a plain-http uri (never
// proxied, whatever was set), else "env", "none" or the proxy URL without its credentials.
void proxy(core::JsonWriter& w, const JwksConfig& j) {
  UrlParts uri;
  std::string error;
  if (j.uri.empty() && !j.discovery) w.null();
  else if (!j.uri.empty() && parse_url(j.uri, uri, error) && uri.scheme == "http") w.string("none");
  else if (j.proxy == JwksConfig::Proxy::env) w.string("env");
  else if (j.proxy == JwksConfig::Proxy::none) w.string("none");
  else url(w, j.proxy_url);
}

void jwks(core::JsonWriter& w, const JwksConfig& j) {
  w.begin_object();
  w.key("uri"); url(w, j.uri);
  w.key("file"); string_or_null(w, j.file);
  w.key("discovery"); w.boolean(j.discovery);
  w.key("refresh_interval"); duration(w, j.refresh_interval);
  w.key("min_refresh_interval"); duration(w, j.min_refresh_interval);
  w.key("stale_max"); duration(w, j.stale_max);
  w.key("timeout"); duration(w, j.timeout);
  // The documented default, min(timeout, 2s), is what the fetcher uses when the key is unset;
  // showing it beats showing null, which would hide the effective value.
  w.key("connect_timeout");
  duration(w, j.connect_timeout ? *j.connect_timeout : std::min<Duration>(j.timeout, std::chrono::seconds(2)));
  w.key("max_bytes"); size(w, j.max_bytes);
  w.key("cache_file"); string_or_null(w, j.cache_file);
  w.key("ca_file"); string_or_null(w, j.ca_file);
  w.key("ca_dir"); string_or_null(w, j.ca_dir);
  w.key("proxy"); proxy(w, j);
  w.end_object();
}

void provider(core::JsonWriter& w, const Provider& p) {
  w.begin_object();
  w.key("name"); w.string(valid_utf8(p.name));
  w.key("issuer"); url(w, p.issuer);
  w.key("audiences"); string_list_or_null(w, p.audiences);
  w.key("algorithms");
  w.begin_array();
  for (core::Alg a : p.algorithms) w.string(core::alg_name(a));
  w.end_array();
  w.key("jwks"); jwks(w, p.jwks);
  w.key("hmac_secret_file"); string_or_null(w, p.hmac_secret_file);
  w.key("hmac_secret_env"); string_or_null(w, p.hmac_secret_env);
  // The secret itself never reaches a Config; this marker only tells operators one is in use.
  w.key("hmac_secret");
  if (!p.hmac_secret_file.empty() || !p.hmac_secret_env.empty()) w.string(kRedacted);
  else w.null();
  w.key("hmac_secret_kid"); string_or_null(w, p.hmac_secret_kid);
  w.key("clock_skew"); duration(w, p.clock_skew);
  w.key("max_token_lifetime");
  if (p.max_token_lifetime) duration(w, *p.max_token_lifetime);
  else w.null();
  w.key("require_claims"); string_list(w, p.require_claims);
  w.key("token_sources");
  w.begin_array();
  for (const auto& s : p.token_sources) {
    w.begin_object();
    w.key("kind"); w.string(token_source_kind(s.kind));
    w.key("name"); w.string(valid_utf8(s.name));
    w.key("prefix"); string_or_null(w, s.prefix);
    w.end_object();
  }
  w.end_array();
  w.key("claims_to_headers");
  w.begin_array();
  for (const auto& c : p.claims_to_headers) {
    w.begin_object();
    w.key("claim"); w.string(valid_utf8(c.claim));
    w.key("header"); w.string(valid_utf8(c.header));
    w.end_object();
  }
  w.end_array();
  w.key("forward_payload_header"); string_or_null(w, p.forward_payload_header);
  w.key("forward_token"); w.boolean(p.forward_token);
  w.key("require_certificate_binding"); w.boolean(p.require_certificate_binding);
  w.end_object();
}

void route(core::JsonWriter& w, const Route& r) {
  w.begin_object();
  w.key("prefix"); w.string(valid_utf8(r.prefix));
  w.key("methods"); string_list_or_null(w, r.methods);
  w.key("auth"); w.string(auth_mode_name(r.auth));
  w.key("require_scopes"); string_list(w, r.require_scopes);
  w.key("require_claims");
  w.begin_array();
  for (const auto& c : r.require_claims) {
    w.begin_object();
    w.key("claim"); w.string(valid_utf8(c.claim));
    w.key("values"); string_list(w, c.values);
    w.end_object();
  }
  w.end_array();
  w.key("providers"); string_list_or_null(w, r.providers);
  // null: the route's requests go to the top-level upstream.
  w.key("upstream");
  if (r.upstream) upstream_url(w, *r.upstream);
  else w.null();
  w.end_object();
}

// File paths only: the certificates and keys themselves are never read into a Config.
void tls_listener(core::JsonWriter& w, const TlsListener& t) {
  w.begin_object();
  w.key("cert_file"); w.string(valid_utf8(t.cert_file));
  w.key("key_file"); w.string(valid_utf8(t.key_file));
  w.key("min_version"); w.string(tls_version_name(t.min_version));
  w.key("handshake_timeout"); duration(w, t.handshake_timeout);
  w.key("session_tickets"); w.boolean(t.session_tickets);
  w.key("client_ca_file"); string_or_null(w, t.client_ca_file);
  w.key("client_auth"); w.string(client_auth_name(t.client_auth));
  w.end_object();
}

// null members: the defaults (system CAs, the URL's host, no client certificate).
void upstream_tls(core::JsonWriter& w, const UpstreamTls& u) {
  w.begin_object();
  w.key("ca_file"); string_or_null(w, u.ca_file);
  w.key("server_name"); string_or_null(w, u.server_name);
  w.key("cert_file"); string_or_null(w, u.cert_file);
  w.key("key_file"); string_or_null(w, u.key_file);
  w.end_object();
}

std::string_view log_format_name(LogConfig::Format f) {
  switch (f) {
    case LogConfig::Format::json: return "json";
    case LogConfig::Format::text: return "text";
  }
  return "";
}

std::string_view log_level_name(LogConfig::Level l) {
  switch (l) {
    case LogConfig::Level::debug: return "debug";
    case LogConfig::Level::info: return "info";
    case LogConfig::Level::warn: return "warn";
    case LogConfig::Level::error: return "error";
  }
  return "";
}

void newline(std::string& out, int depth) {
  out += '\n';
  out.append(static_cast<std::size_t>(depth) * 2, ' ');
}

// JsonWriter writes compact JSON; operators read /config with curl, so it is re-indented here
// (two spaces, ": " after keys, empty containers as {} and []: the layout of Python's
// json.dumps(indent=2), which makes the output easy to diff against).
std::string pretty(std::string_view compact) {
  std::string out;
  out.reserve(compact.size() * 2);
  int depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < compact.size(); ++i) {
    const char c = compact[i];
    if (in_string) {
      out += c;
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; out += c; break;
      case '{':
      case '[':
        out += c;
        if (i + 1 < compact.size() && (compact[i + 1] == '}' || compact[i + 1] == ']')) {
          out += compact[++i];
        } else {
          newline(out, ++depth);
        }
        break;
      case '}':
      case ']': newline(out, --depth); out += c; break;
      case ',': out += c; newline(out, depth); break;
      case ':': out += ": "; break;
      default: out += c;
    }
  }
  out += '\n';
  return out;
}

}  // namespace

std::string format_duration(Duration d) {
  using std::chrono::hours, std::chrono::minutes, std::chrono::seconds, std::chrono::milliseconds;
  std::string out;
  if (d.count() < 0) {
    out += '-';
    d = -d;
  }
  if (d.count() == 0) return "0s";
  const auto h = std::chrono::duration_cast<hours>(d);
  d -= h;
  const auto m = std::chrono::duration_cast<minutes>(d);
  d -= m;
  const auto s = std::chrono::duration_cast<seconds>(d);
  d -= s;
  const auto ms = std::chrono::duration_cast<milliseconds>(d);
  if (h.count()) out += std::to_string(h.count()) + "h";
  if (m.count()) out += std::to_string(m.count()) + "m";
  if (s.count()) out += std::to_string(s.count()) + "s";
  if (ms.count()) out += std::to_string(ms.count()) + "ms";
  return out;
}

std::string redact_url(std::string_view u) {
  std::string out;
  std::string_view rest = u;
  // Only text with a scheme and "//" has an authority (and so userinfo); anything else, such as
  // a non-URL issuer, keeps its body and loses only query values and fragment.
  if (const auto sep = u.find("://"); sep != std::string_view::npos && valid_scheme(u.substr(0, sep))) {
    const auto scheme = u.substr(0, sep + 3);
    rest = u.substr(sep + 3);
    const auto end = std::min(rest.find_first_of("/?#"), rest.size());
    std::string_view authority = rest.substr(0, end);
    rest = rest.substr(end);
    bool userinfo = false;
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
      authority = authority.substr(at + 1);
      userinfo = true;
    }
    out.append(scheme);
    // A password containing '/', '?' or '#' ends the authority early, leaving part of it in what
    // looks like the host, port, path or query. Such a URL could not work anyway, so rather
    // than guess which part is the secret it is hidden whole; the price is that a working URL
    // with '@' in its path or query is hidden too.
    if (!plain_host_port(authority) || rest.find('@') != std::string_view::npos) {
      out.append(kRedacted);
      return out;
    }
    if (userinfo) {
      out.append(kRedacted);
      out += '@';
    }
    out.append(authority);
  }
  // A fragment never reaches a server, but OAuth-style flows carry access tokens in it.
  std::string_view fragment;
  bool has_fragment = false;
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) {
    fragment = rest.substr(hash + 1);
    rest = rest.substr(0, hash);
    has_fragment = true;
  }
  std::string_view query;
  bool has_query = false;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    has_query = true;
  }
  out.append(rest);
  if (has_query) {
    out += '?';
    append_redacted_query(out, query);
  }
  if (has_fragment) {
    out += '#';
    if (!fragment.empty()) out.append(kRedacted);
  }
  return out;
}

std::string effective_config_json(const Config& config) {
  core::JsonWriter w;
  w.begin_object();
  // null: no proxy listener (forward_auth alone).
  w.key("listen");
  if (config.proxy) listen_address(w, config.listen);
  else w.null();
  // null: plain HTTP on listen (or no proxy listener).
  w.key("tls");
  if (config.proxy && config.tls) tls_listener(w, *config.tls);
  else w.null();
  w.key("admin_listen"); listen_address(w, config.admin_listen);
  w.key("admin");
  w.begin_object();
  w.key("config_endpoint"); w.boolean(config.admin.config_endpoint);
  w.key("max_connections"); size(w, config.admin.max_connections);
  w.key("max_connections_per_peer"); size(w, config.admin.max_connections_per_peer);
  w.key("head_timeout"); duration(w, config.admin.head_timeout);
  w.key("idle_timeout"); duration(w, config.admin.idle_timeout);
  w.end_object();
  w.key("upstream");
  if (config.proxy) upstream_url(w, config.upstream);
  else w.null();
  w.key("upstream_tls"); upstream_tls(w, config.upstream_tls);
  w.key("forward_auth");
  if (const auto& fa = config.forward_auth) {
    w.begin_object();
    w.key("listen"); listen_address(w, fa->listen);
    w.key("path_prefix"); w.string(valid_utf8(fa->path_prefix));
    w.key("trusted_proxies");
    w.begin_array();
    for (const auto& n : fa->trusted_proxies) w.string(valid_utf8(n.text));
    w.end_array();
    w.key("allow_preflight"); w.boolean(fa->allow_preflight);
    w.end_object();
  } else {
    w.null();
  }
  w.key("workers");
  if (config.workers == 0) w.string("auto");
  else w.number(config.workers);
  w.key("providers");
  w.begin_array();
  for (const auto& p : config.providers) provider(w, p);
  w.end_array();
  w.key("routes");
  w.begin_array();
  for (const auto& r : config.routes) route(w, r);
  w.end_array();
  w.key("routes_case_sensitive"); w.boolean(config.routes_case_sensitive);
  w.key("forward_override_headers"); w.boolean(config.forward_override_headers);
  w.key("watch_config"); w.boolean(config.watch_config);
  w.key("limits");
  w.begin_object();
  w.key("max_header_bytes"); size(w, config.limits.max_header_bytes);
  w.key("max_token_bytes"); size(w, config.limits.max_token_bytes);
  w.key("header_timeout"); duration(w, config.limits.header_timeout);
  w.key("idle_timeout"); duration(w, config.limits.idle_timeout);
  w.key("upstream_timeout"); duration(w, config.limits.upstream_timeout);
  w.key("max_connections"); size(w, config.limits.max_connections);
  w.key("body_timeout"); duration(w, config.limits.body_timeout);
  w.key("max_response_header_bytes"); size(w, config.limits.max_response_header_bytes);
  w.key("drain_timeout"); duration(w, config.limits.drain_timeout);
  w.end_object();
  w.key("http2");
  w.begin_object();
  w.key("enabled"); w.boolean(config.http2.enabled);
  w.key("max_concurrent_streams"); w.number(config.http2.max_concurrent_streams);
  w.key("stream_window_bytes"); size(w, config.http2.stream_window_bytes);
  w.key("connection_window_bytes"); size(w, config.http2.connection_window_bytes);
  w.key("reset_burst"); w.number(config.http2.reset_burst);
  w.key("resets_per_second"); w.number(config.http2.resets_per_second);
  w.end_object();
  if (const auto& rev = config.revocation) {
    w.key("revocation");
    w.begin_object();
    if (!rev->file.empty()) { w.key("file"); w.string(rev->file); }
    if (const auto& r = rev->redis) {
      w.key("redis");
      w.begin_object();
      w.key("url"); w.string(r->url.text);  // never holds a password (refused by the loader)
      if (!r->username.empty()) { w.key("username"); w.string(r->username); }
      if (!r->password_file.empty()) { w.key("password_file"); w.string(r->password_file); }
      if (!r->password_env.empty()) { w.key("password_env"); w.string(r->password_env); }
      if (!r->ca_file.empty()) { w.key("ca_file"); w.string(r->ca_file); }
      w.key("key_prefix"); w.string(r->key_prefix);
      w.key("channel"); w.string(r->channel);
      w.key("resync_interval"); w.string(format_duration(r->resync_interval));
      w.key("connect_timeout"); w.string(format_duration(r->connect_timeout));
      w.end_object();
    }
    w.key("on_unavailable"); w.string(rev->on_unavailable == Revocation::OnUnavailable::deny ? "deny" : "keep");
    w.key("ready_requires_sync"); w.boolean(rev->ready_requires_sync);
    if (const auto& b = rev->backchannel_logout) {
      w.key("backchannel_logout");
      w.begin_object();
      w.key("providers");
      w.begin_array();
      for (const auto& p : b->providers) w.string(p);
      w.end_array();
      w.key("entry_ttl"); w.string(format_duration(b->entry_ttl));
      w.key("max_token_age"); w.string(format_duration(b->max_token_age));
      w.end_object();
    }
    w.end_object();
  }
  w.key("log");
  w.begin_object();
  w.key("format"); w.string(log_format_name(config.log.format));
  w.key("level"); w.string(log_level_name(config.log.level));
  w.key("access_log"); w.boolean(config.log.access_log);
  w.key("access_log_sample"); share(w, config.log.access_log_sample);
  w.end_object();
  w.end_object();
  return pretty(w.take());
}

}  // namespace jwtgate::config
