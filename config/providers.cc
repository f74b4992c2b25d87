// providers[]: who issues tokens, which algorithms and keys they use, how tokens are found and
// what of them is passed upstream.
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sys/stat.h>

#include "config/address.h"
#include "config/bounded_file.h"
#include "config/secret_file.h"
#include "config/sections.h"
#include "config/suggest.h"
#include "config/url_parts.h"
#include "core/jwk.h"

namespace jwtgate::config {
namespace {

using Path = std::string;

// Headers jwtgate must never be told to set from a claim: they frame the request, route it, or
// carry credentials the upstream would trust.
// Compared as a CGI-style upstream reads names (case folded, every non-alphanumeric byte an
// underscore), as jwtgate compares them when it strips a client's copies: X_Forwarded_Proto is
// X-Forwarded-Proto to such an upstream, so a claim may not be injected under either.
bool is_reserved_header(std::string_view name) {
  static constexpr std::string_view reserved[] = {
      // framing and routing
      "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
      "proxy-connection", "proxy-authorization", "expect", "cookie",
      // what jwtgate itself says about the client and the connection
      "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-forwarded-port",
      "x-forwarded-prefix", "x-forwarded-scheme", "x-forwarded-ssl", "front-end-https", "x-real-ip",
      "true-client-ip", "x-client-ip", "client-cert", "client-cert-chain"};
  auto cgi = [](char c) {
    const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') ? l : '_';
  };
  for (auto r : reserved) {
    if (r.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < r.size() && same; ++i) same = cgi(r[i]) == cgi(name[i]);
    if (same) return true;
  }
  return false;
}

std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void read_algorithms(YamlReader& r, const YAML::Node& node, const Path& path, Provider& p) {
  if (!node.IsSequence() || node.size() == 0) {
    r.error(node, path, "expected a non-empty list of algorithms, such as [RS256, ES256], found " + YamlReader::describe(node));
    return;
  }
  std::vector<std::string_view> names;
  for (int i = 0; i < core::kAlgCount; ++i) names.push_back(core::alg_name(static_cast<core::Alg>(i)));
  for (std::size_t i = 0; i < node.size(); ++i) {
    const Path item = YamlReader::index_path(path, i);
    auto name = r.string(node[i], item);
    if (!name) continue;
    if (core::is_none_alg(*name)) {
      r.error(node[i], item, "\"" + *name + "\" means unsigned tokens, which anyone can forge; it is never allowed");
      continue;
    }
    auto alg = core::alg_from_name(*name);
    if (!alg) {
      const std::string suggestion = closest_match(*name, names);
      r.error(node[i], item, "unknown algorithm " + YamlReader::describe(node[i]) +
                                 (suggestion.empty() ? "; expected one of HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 "
                                                       "PS512 ES256 ES384 ES512 EdDSA"
                                                     : "; did you mean \"" + suggestion + "\"?"));
      continue;
    }
    if (p.algorithm_set.contains(*alg)) {
      r.warning(node[i], item, "listed twice");
      continue;
    }
    p.algorithm_set.add(*alg);
    p.algorithms.push_back(*alg);
  }
}

// Plain http is fine on loopback (a local key agent); anywhere else whoever is on the path can
// replace the keys. The host is libcurl's reading of the URL, userinfo removed.
void warn_plain_http(YamlReader& r, const YAML::Node& at, const Path& path, const UrlParts& url) {
  if (url.scheme == "http" && !url.loopback()) {
    r.warning(at, path, "plain http outside loopback (host " + url.host +
                            "): anyone on the network path can replace the keys; use https");
  }
}

// proxy: env (libcurl's environment variables), none, or a proxy URL.
void read_proxy(YamlReader& r, const YAML::Node& n, const Path& path, JwksConfig& j) {
  auto v = r.string(n, path);
  if (!v) return;
  if (*v == "env") {
    j.proxy = JwksConfig::Proxy::env;
  } else if (*v == "none") {
    j.proxy = JwksConfig::Proxy::none;
  } else {
    UrlParts url;
    std::string error;
    if (!parse_url(*v, url, error)) {
      r.error(n, path, "expected env, none or a proxy URL such as http://proxy.internal:3128: " + error);
      return;
    }
    if (url.scheme != "http" && url.scheme != "https" && url.scheme != "socks5" && url.scheme != "socks5h") {
      r.error(n, path, "a proxy URL's scheme is http, https, socks5 or socks5h, not " + url.scheme);
      return;
    }
    j.proxy = JwksConfig::Proxy::url;
    j.proxy_url = *v;
  }
  if (j.uri.empty() && !j.discovery) r.warning(n, path, "only used for uri or discovery fetches");
  else if (j.proxy == JwksConfig::Proxy::url && !j.uri.empty()) {
    UrlParts uri;
    std::string error;
    if (parse_url(j.uri, uri, error) && uri.scheme == "http") {
      r.warning(n, path, "jwks.uri is plain http, which is never fetched through a proxy");
    }
  }
}

void read_jwks(YamlReader& r, const YAML::Node& node, const Path& path, Provider& p) {
  if (!r.mapping(node, path, {"uri", "file", "discovery", "refresh_interval", "min_refresh_interval", "stale_max",
                              "timeout", "connect_timeout", "max_bytes", "cache_file", "ca_file", "ca_dir", "proxy"})) {
    return;
  }
  JwksConfig& j = p.jwks;
  int sources = 0;
  if (auto n = node["uri"]) {
    ++sources;
    if (auto v = r.string(n, path + ".uri")) {
      j.uri = *v;
      UrlParts url;
      std::string error;
      if (!parse_url(*v, url, error)) {
        r.error(n, path + ".uri", "expected an https:// URL: " + error);
      } else if (url.scheme != "https" && url.scheme != "http") {
        r.error(n, path + ".uri", "expected an https:// URL, found a " + url.scheme + ":// one");
      } else {
        warn_plain_http(r, n, path + ".uri", url);
      }
    }
  }
  if (auto n = node["file"]) {
    ++sources;
    if (auto v = r.string(n, path + ".file")) {
      j.file = *v;
      struct stat st{};
      if (::stat(v->c_str(), &st) != 0) {
        r.warning(n, path + ".file", "\"" + *v + "\" does not exist (yet); the provider stays not ready until it does");
      } else if (!S_ISREG(st.st_mode)) {
        // The proxy reads regular files only (a FIFO or device could block or never end).
        r.error(n, path + ".file", "\"" + *v + "\" is not a regular file");
      } else if (std::string why = writable_by_others(*v, st.st_mode); !why.empty()) {
        r.error(n, path + ".file", why);
      }
    }
  }
  if (auto n = node["discovery"]) {
    if (auto v = r.boolean(n, path + ".discovery")) {
      j.discovery = *v;
      if (*v) ++sources;
      if (*v && p.issuer.empty()) {
        r.error(n, path + ".discovery", "OIDC discovery needs the provider's issuer: set providers[].issuer");
      }
      // The discovery document, and so the jwks_uri it names, come from the issuer's URL.
      UrlParts url;
      std::string error;
      if (*v && !p.issuer.empty()) {
        if (!parse_url(p.issuer, url, error)) {
          r.error(n, path + ".discovery", "OIDC discovery needs an https:// issuer URL: " + error);
        } else if (url.scheme != "https" && url.scheme != "http") {
          r.error(n, path + ".discovery", "OIDC discovery needs an https:// issuer URL, not a " + url.scheme + ":// one");
        } else {
          warn_plain_http(r, n, path + ".discovery", url);
        }
      }
    }
  }
  if (sources > 1) r.error(node, path, "set exactly one of uri, file or discovery: true");
  if (sources == 0) r.error(node, path, "missing key source: set one of uri, file or discovery: true");

  auto positive = [&](const char* key, Duration& out) {
    if (auto n = node[key]) {
      if (auto d = r.duration(n, path + "." + key)) {
        if (d->count() == 0) r.error(n, path + "." + key, "must be longer than 0s");
        else out = *d;
      }
    }
  };
  positive("refresh_interval", j.refresh_interval);
  positive("min_refresh_interval", j.min_refresh_interval);
  positive("stale_max", j.stale_max);
  positive("timeout", j.timeout);
  if (node["connect_timeout"]) {
    Duration d{0};
    positive("connect_timeout", d);
    if (d.count() > 0) j.connect_timeout = d;
    if (d > j.timeout) r.warning(node["connect_timeout"], path + ".connect_timeout", "longer than timeout, which bounds the whole fetch");
  }
  if (j.min_refresh_interval > j.refresh_interval) {
    r.error(node["min_refresh_interval"] ? node["min_refresh_interval"] : node, path + ".min_refresh_interval",
            "cannot be longer than refresh_interval");
  }
  if (auto n = node["max_bytes"]) {
    if (auto s = r.size(n, path + ".max_bytes")) {
      if (*s < 1024 || *s > 64ull * 1024 * 1024) r.error(n, path + ".max_bytes", "must be from 1KiB to 64MiB");
      else j.max_bytes = *s;
    }
  }
  if (auto n = node["cache_file"]) {
    if (auto v = r.string(n, path + ".cache_file")) j.cache_file = *v;
    if (j.uri.empty() && !j.discovery) r.warning(n, path + ".cache_file", "only used for uri or discovery fetches");
  }
  if (auto n = node["proxy"]) read_proxy(r, n, path + ".proxy", j);
  if (auto n = node["ca_dir"]) {
    if (auto v = r.string(n, path + ".ca_dir")) {
      j.ca_dir = *v;
      struct stat st{};
      if (::stat(v->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) r.error(n, path + ".ca_dir", "\"" + *v + "\" is not a directory");
    }
    if (j.uri.empty() && !j.discovery) r.warning(n, path + ".ca_dir", "only used for uri or discovery fetches");
  }
  if (auto n = node["ca_file"]) {
    if (auto v = r.string(n, path + ".ca_file")) {
      j.ca_file = *v;
      struct stat st{};
      if (::stat(v->c_str(), &st) != 0) r.error(n, path + ".ca_file", "\"" + *v + "\" does not exist");
    }
    if (j.uri.empty() && !j.discovery) r.warning(n, path + ".ca_file", "only used for uri or discovery fetches");
  }
}

// The secret is read here only to validate it (length, not a public key); it is not kept in the
// Config and never appears in a message.
void check_secret(YamlReader& r, const YAML::Node& at, const Path& path, std::string_view secret) {
  auto key = core::jwk_from_hmac_secret(secret, "");
  if (!key) r.error(at, path, key.status().detail());
}

void read_hmac_secret(YamlReader& r, const YAML::Node& node, const Path& path, const LoadOptions& options, Provider& p) {
  const YAML::Node file = node["hmac_secret_file"], env = node["hmac_secret_env"];
  if (file && env) r.error(env, path + ".hmac_secret_env", "set only one of hmac_secret_file and hmac_secret_env");
  if (file) {
    if (auto v = r.string(file, path + ".hmac_secret_file")) {
      p.hmac_secret_file = *v;
      if (options.check_secrets) {
        // Regular file, bounded, judged by its mode: the same rules the proxy applies when it loads it.
        SecretFile secret = read_secret_file(*v);
        if (!secret.error.empty()) {
          r.error(file, path + ".hmac_secret_file", secret.error);
        } else {
          if (!secret.warning.empty()) r.warning(file, path + ".hmac_secret_file", secret.warning);
          check_secret(r, file, path + ".hmac_secret_file", secret.secret.view());
        }
      }
    }
  }
  if (env) {
    if (auto v = r.string(env, path + ".hmac_secret_env")) {
      p.hmac_secret_env = *v;
      if (options.check_secrets) {
        auto secret = options.env(*v);
        if (!secret) r.error(env, path + ".hmac_secret_env", "environment variable " + *v + " is not set");
        else check_secret(r, env, path + ".hmac_secret_env", *secret);
      }
    }
  }
  if (auto n = node["hmac_secret_kid"]) {
    if (auto v = r.string(n, path + ".hmac_secret_kid")) p.hmac_secret_kid = *v;
    if (!file && !env) r.error(n, path + ".hmac_secret_kid", "names the key of hmac_secret_file or hmac_secret_env; set one");
  }
}

void read_token_sources(YamlReader& r, const YAML::Node& node, const Path& path, Provider& p) {
  if (!node.IsSequence() || node.size() == 0) {
    r.error(node, path, "expected a non-empty list such as [{header: Authorization, prefix: \"Bearer \"}, {cookie: access_token}], found " +
                            YamlReader::describe(node));
    return;
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const Path item = YamlReader::index_path(path, i);
    const YAML::Node& s = node[i];
    if (!r.mapping(s, item, {"header", "prefix", "cookie", "query"})) continue;
    TokenSource src;
    int kinds = 0;
    struct KindKey {
      const char* key;
      TokenSource::Kind kind;
    };
    for (KindKey k : {KindKey{"header", TokenSource::Kind::header}, KindKey{"cookie", TokenSource::Kind::cookie},
                      KindKey{"query", TokenSource::Kind::query}}) {
      const YAML::Node n = s[k.key];
      if (!n) continue;
      ++kinds;
      src.kind = k.kind;
      const Path where = item + "." + k.key;
      auto v = r.string(n, where);
      if (!v) continue;
      src.name = *v;
      if (k.kind == TokenSource::Kind::query) {
        r.warning(n, where, "tokens in URLs end up in access logs, browser history and Referer headers; prefer a header or cookie");
      } else if (!is_header_name(*v)) {
        r.error(n, where, k.kind == TokenSource::Kind::header ? "not a valid HTTP header name" : "not a valid cookie name");
      }
    }
    if (auto n = s["prefix"]) {
      if (auto v = r.string(n, item + ".prefix")) src.prefix = *v;
      if (src.kind != TokenSource::Kind::header || !s["header"]) r.error(n, item + ".prefix", "only a header source takes a prefix");
    }
    if (kinds != 1) {
      r.error(s, item, "set exactly one of header, cookie or query");
      continue;
    }
    const std::string key = std::to_string(static_cast<int>(src.kind)) + ":" +
                            (src.kind == TokenSource::Kind::header ? lowercase(src.name) : src.name);
    if (!seen.insert(key).second) r.error(s, item, "the same source is listed twice");
    p.token_sources.push_back(std::move(src));
  }
}

void read_claims_to_headers(YamlReader& r, const YAML::Node& node, const Path& path, Provider& p,
                            std::set<std::string>& headers) {
  if (!node.IsMap()) {
    r.error(node, path, "expected a mapping of claim to header name, such as {sub: X-Jwt-Sub}, found " + YamlReader::describe(node));
    return;
  }
  std::set<std::string> claims;
  for (const auto& item : node) {
    if (!item.first.IsScalar()) {
      r.error(item.first, path, "claim names must be plain strings");
      continue;
    }
    const std::string claim = item.first.Scalar();
    const Path where = YamlReader::key_path(path, claim);
    if (!claims.insert(claim).second) {
      r.error(item.first, where, "duplicate key; each claim may appear once");
      continue;
    }
    auto header = r.string(item.second, where);
    if (!header) continue;
    if (!is_header_name(*header)) {
      r.error(item.second, where, "not a valid HTTP header name, found " + YamlReader::describe(item.second));
    } else if (is_reserved_header(*header)) {
      r.error(item.second, where, "\"" + *header + "\" is a header jwtgate or the HTTP framing controls; pick another name");
    } else if (!headers.insert(lowercase(*header)).second) {
      r.error(item.second, where, "header \"" + *header + "\" is already set from another claim or the payload");
    }
    p.claims_to_headers.push_back({claim, *header});
  }
}

void read_provider(YamlReader& r, const YAML::Node& node, const Path& path, const LoadOptions& options, Provider& p) {
  if (!r.mapping(node, path, {"name", "issuer", "audiences", "algorithms", "jwks", "hmac_secret_file", "hmac_secret_env",
                              "hmac_secret_kid", "clock_skew", "max_token_lifetime", "require_claims", "token_sources",
                              "claims_to_headers", "forward_payload_header", "forward_token",
                              "require_certificate_binding"})) {
    return;
  }
  if (auto n = node["name"]) {
    if (auto v = r.string(n, path + ".name")) {
      p.name = *v;
      const bool valid = !v->empty() && v->size() <= 64 &&
                         v->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
      if (!valid) r.error(n, path + ".name", "use 1 to 64 lowercase letters, digits, _ or - (it labels metrics and logs)");
    }
  } else {
    r.error(node, path + ".name", "missing required key: a short name such as main");
  }
  if (auto n = node["issuer"]) {
    if (auto v = r.string(n, path + ".issuer")) {
      p.issuer = *v;
      if (v->empty()) r.error(n, path + ".issuer", "must not be empty");
    }
  }
  if (auto n = node["audiences"]) {
    if (auto v = r.string_list(n, path + ".audiences", "[orders-api]")) {
      p.audiences = *v;
      if (v->empty()) r.warning(n, path + ".audiences", "empty: any audience is accepted");
    }
  } else {
    r.warning(node, path + ".audiences",
              "not set: tokens minted for any other service of this issuer are accepted; list this service's audience");
  }
  if (auto n = node["algorithms"]) read_algorithms(r, n, path + ".algorithms", p);
  else r.error(node, path + ".algorithms", "missing required key: an explicit allowlist such as [RS256, ES256]");

  if (auto n = node["jwks"]) read_jwks(r, n, path + ".jwks", p);
  read_hmac_secret(r, node, path, options, p);

  bool hmac = false, asymmetric = false;
  for (core::Alg a : p.algorithms) (core::alg_family(a) == core::AlgFamily::hmac ? hmac : asymmetric) = true;
  const bool has_secret = !p.hmac_secret_file.empty() || !p.hmac_secret_env.empty();
  if (!node["jwks"] && !has_secret) {
    r.error(node, path + ".jwks", "missing key source: set jwks (uri, file or discovery)" +
                                      std::string(hmac ? ", or hmac_secret_file / hmac_secret_env" : ""));
  }
  if (has_secret && !hmac) {
    r.error(node["hmac_secret_file"] ? node["hmac_secret_file"] : node["hmac_secret_env"], path,
            "an HMAC secret is set but algorithms has no HS256/HS384/HS512");
  }
  if (hmac && asymmetric) {
    r.warning(node["algorithms"], path + ".algorithms",
              "HMAC and public-key algorithms in one provider: safe only because jwtgate binds each algorithm to "
              "its key type; prefer separate providers");
  }
  if (auto n = node["clock_skew"]) {
    if (auto d = r.duration(n, path + ".clock_skew")) {
      p.clock_skew = *d;
      if (*d > std::chrono::minutes(5)) r.warning(n, path + ".clock_skew", "more than 5m lets expired tokens live much longer");
    }
  }
  if (auto n = node["max_token_lifetime"]) {
    if (auto d = r.duration(n, path + ".max_token_lifetime")) {
      if (d->count() == 0) r.error(n, path + ".max_token_lifetime", "must be longer than 0s");
      else p.max_token_lifetime = *d;
    }
  }
  if (auto n = node["require_claims"]) {
    if (auto v = r.string_list(n, path + ".require_claims", "[exp, sub]")) p.require_claims = *v;
    if (!p.requires_exp()) {
      r.warning(n, path + ".require_claims", "exp is not required: a token without exp never expires");
    }
  }
  if (auto n = node["token_sources"]) read_token_sources(r, n, path + ".token_sources", p);
  else p.token_sources.push_back({TokenSource::Kind::header, "Authorization", "Bearer "});

  std::set<std::string> headers;
  if (auto n = node["forward_payload_header"]) {
    if (auto v = r.string(n, path + ".forward_payload_header")) {
      p.forward_payload_header = *v;
      if (!is_header_name(*v)) r.error(n, path + ".forward_payload_header", "not a valid HTTP header name");
      else if (is_reserved_header(*v)) r.error(n, path + ".forward_payload_header", "\"" + *v + "\" is reserved; pick another name");
      headers.insert(lowercase(*v));
    }
  }
  if (auto n = node["claims_to_headers"]) read_claims_to_headers(r, n, path + ".claims_to_headers", p, headers);
  for (const auto& src : p.token_sources) {
    if (src.kind == TokenSource::Kind::header && headers.count(lowercase(src.name))) {
      r.error(node["token_sources"] ? node["token_sources"] : node, path + ".token_sources",
              "header \"" + src.name + "\" is both a token source and a claim header");
    }
  }
  if (auto n = node["forward_token"]) {
    if (auto v = r.boolean(n, path + ".forward_token")) p.forward_token = *v;
  }
  if (auto n = node["require_certificate_binding"]) {
    if (auto v = r.boolean(n, path + ".require_certificate_binding")) p.require_certificate_binding = *v;
  }
}

}  // namespace

bool is_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

void read_providers(YamlReader& r, const YAML::Node& node, const LoadOptions& options, std::vector<Provider>& out) {
  if (!node.IsSequence()) {
    r.error(node, "providers", "expected a list of providers, found " + YamlReader::describe(node));
    return;
  }
  if (node.size() == 0) {
    r.error(node, "providers", "empty: at least one identity provider is needed");
    return;
  }
  if (node.size() > kMaxProviders) {
    r.error(node, "providers", "at most " + std::to_string(kMaxProviders) + " providers, found " + std::to_string(node.size()));
    return;
  }
  std::set<std::string> names, issuers;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const Path path = YamlReader::index_path("providers", i);
    Provider p;
    read_provider(r, node[i], path, options, p);
    if (!p.name.empty() && !names.insert(p.name).second) {
      r.error(node[i]["name"], path + ".name", "duplicate provider name \"" + p.name + "\"");
    }
    if (!p.issuer.empty() && !issuers.insert(p.issuer).second) {
      r.error(node[i]["issuer"], path + ".issuer",
              "another provider has the same issuer; the token's iss must select exactly one provider");
    }
    out.push_back(std::move(p));
  }
  if (out.size() > 1) {
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i].issuer.empty()) {
        r.error(node[i], YamlReader::index_path("providers", i) + ".issuer",
                "required when there are several providers: the token's iss selects the provider");
      }
    }
  } else if (out.size() == 1 && out[0].issuer.empty() && node[0].IsMap()) {
    r.warning(node[0], "providers[0].issuer", "not set: iss is not checked, so tokens from any issuer with these keys pass");
  }
}

}  // namespace jwtgate::config
