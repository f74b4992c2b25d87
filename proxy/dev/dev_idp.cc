#include "proxy/dev/dev_idp.h"

#include <openssl/rand.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "config/duration.h"
#include "config/url_parts.h"
#include "core/base64url.h"
#include "core/json_object.h"
#include "core/json_writer.h"
#include "core/rfc6750.h"
#include "proxy/http/http_head.h"

namespace jwtgate::proxy {
namespace {

constexpr std::string_view kDiscoveryPath = "/.well-known/openid-configuration";
constexpr std::string_view kJwksPath = "/.well-known/jwks.json";
constexpr std::string_view kTokenPath = "/token";

AdminResponse marked(AdminResponse r) {
  r.headers.emplace_back(std::string(kDevIdpMarkerHeader), std::string(kDevIdpMarker));
  return r;
}

AdminResponse json_response(int status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.body += '\n';
  return marked(std::move(r));
}

// RFC 6749 §5.2's error shape, so OAuth-aware clients show the description.
AdminResponse oauth_error(int status, std::string_view error, std::string_view description) {
  return json_response(status, core::error_json(error, description));
}

AdminResponse plain_response(int status, std::string body, std::string_view allow = {}) {
  AdminResponse r;
  r.status = status;
  r.body = std::move(body);
  if (!allow.empty()) r.headers.emplace_back("Allow", std::string(allow));
  return marked(std::move(r));
}

std::string random_jti() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  return core::base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

struct TokenQuery {
  std::optional<std::chrono::seconds> ttl;
  bool raw = false;
};

// "ttl=5m&format=raw". Parameter values are plain tokens (durations, "raw"), so no percent-decoding:
// an escaped value is simply not a valid one.
bool parse_token_query(std::string_view query, TokenQuery& out, std::string& error) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (name == "ttl") {
      const auto d = config::parse_duration(value);
      if (!d || *d < std::chrono::seconds(1) || *d > kDevIdpMaxTtl) {
        error = "ttl must be a duration from 1s to 24h, such as 15m";
        return false;
      }
      out.ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
    } else if (name == "format") {
      if (value != "raw" && value != "json") {
        error = "format must be raw or json";
        return false;
      }
      out.raw = value == "raw";
    } else {
      error = "unknown query parameter (known: ttl, format)";
      return false;
    }
  }
  return true;
}

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

}  // namespace

bool check_dev_idp_issuer(std::string_view issuer, std::string& error) {
  const std::size_t scheme_end = issuer.find("://");
  const std::string_view scheme = issuer.substr(0, scheme_end);
  if (scheme_end == std::string_view::npos || (scheme != "http" && scheme != "https")) {
    error = "the issuer must be an http:// or https:// URL";
    return false;
  }
  if (issuer.find_first_of("?#") != std::string_view::npos) {
    error = "the issuer must not have a query or fragment (OpenID Connect Discovery 1.0 §3)";
    return false;
  }
  const bool printable = std::all_of(issuer.begin(), issuer.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f;
  });
  config::UrlParts parts;
  if (!printable || !config::parse_url(issuer, parts, error)) {
    if (!printable) error = "the issuer contains spaces or characters a URL cannot hold";
    return false;
  }
  if (parts.has_userinfo) {
    error = "the issuer must not hold credentials";
    return false;
  }
  return true;
}

bool dev_idp_alg_supported(core::Alg alg) { return core::alg_family(alg) != core::AlgFamily::hmac; }

DevIdp::DevIdp(DevIdpOptions options, core::Alg alg, core::SigningKey key)
    : options_(std::move(options)), alg_(alg), key_(std::move(key)) {
  jwks_ = core::jwks_for(key_, alg_, options_.kid);
  std::string_view base = options_.issuer;
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  const std::size_t authority = base.find("://");
  const std::size_t path_start = authority == std::string_view::npos ? std::string_view::npos : base.find('/', authority + 3);
  base_path_ = path_start == std::string_view::npos ? std::string() : std::string(base.substr(path_start));
  discovery_url_ = std::string(base) + std::string(kDiscoveryPath);
  jwks_url_ = std::string(base) + std::string(kJwksPath);
  token_url_ = std::string(base) + std::string(kTokenPath);

  core::JsonWriter w;
  w.begin_object();
  w.key("issuer");
  w.string(options_.issuer);
  w.key("jwks_uri");
  w.string(jwks_url_);
  w.key("token_endpoint");
  w.string(token_url_);
  w.key("id_token_signing_alg_values_supported");
  w.begin_array();
  w.string(core::alg_name(alg_));
  w.end_array();
  w.key("token_endpoint_auth_methods_supported");
  w.begin_array();
  w.string("none");  // nobody is authenticated: this IdP is for development only
  w.end_array();
  w.key("response_types_supported");
  w.begin_array();
  w.string("token");
  w.end_array();
  w.key("subject_types_supported");
  w.begin_array();
  w.string("public");
  w.end_array();
  // No grant_types_supported: /token mints for a JSON body of claims, not by an OAuth grant, and
  // a client library that read "client_credentials" here would fail against it.
  w.key("jwtgate_dev_idp");
  w.string(kDevIdpMarker);
  w.end_object();
  discovery_document_ = w.take();
}

bool DevIdp::check_key(std::string& error) const {
  auto token = core::mint_token(alg_, key_, options_.kid, "{}");
  if (!token) {
    error = "the key cannot sign " + std::string(core::alg_name(alg_)) + ": " + token.status().detail();
    return false;
  }
  return true;
}

AdminResponse DevIdp::handle(const AdminRequest& request, std::int64_t now) const {
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (request.path == base_path_ + std::string(kDiscoveryPath)) {
    if (!get) return plain_response(405, "use GET\n", "GET, HEAD");
    return json_response(200, discovery_document_);
  }
  if (request.path == base_path_ + std::string(kJwksPath)) {
    if (!get) return plain_response(405, "use GET\n", "GET, HEAD");
    AdminResponse r = json_response(200, jwks_);
    r.content_type = "application/jwk-set+json";
    // Short, so a gateway restarted against a new ephemeral key does not keep the old one for long.
    r.headers.emplace_back("Cache-Control", "public, max-age=60");
    return r;
  }
  if (request.path == base_path_ + std::string(kTokenPath)) {
    if (request.method != "POST") return plain_response(405, "use POST with a JSON object of claims\n", "POST");
    return token(request, now);
  }
  if (request.path == "/healthz") {
    if (!get) return plain_response(405, "use GET\n", "GET, HEAD");
    return plain_response(200, "ok\n");
  }
  return plain_response(404, "not found: this development IdP serves " + discovery_url_ + ", " + jwks_url_ +
                                 " and POST " + token_url_ + "\n");
}

AdminResponse DevIdp::token(const AdminRequest& request, std::int64_t now) const {
  TokenQuery query;
  std::string error;
  if (!parse_token_query(request.query, query, error)) return oauth_error(400, "invalid_request", error);
  if (request.body.size() > kDevIdpMaxBody) {
    return oauth_error(400, "invalid_request", "the request body is larger than 32 KiB");
  }
  const std::int64_t ttl = (query.ttl ? *query.ttl : options_.ttl).count();

  // The body is read as JSON whatever its Content-Type says: `curl -d '{...}'` sends
  // application/x-www-form-urlencoded unless told otherwise.
  simdjson::dom::parser parser;
  simdjson::dom::object claims;
  if (!is_blank(request.body)) {
    if (!core::init_json_parser(parser, request.body.size())) return oauth_error(500, "server_error", "out of memory");
    if (core::Status s = core::parse_json_object(parser, request.body, false, "the request body", claims); !s) {
      std::string why = "the body must be a JSON object of claims: " + s.detail();
      if (!request.content_type.empty()) why += " (Content-Type " + std::string(request.content_type.substr(0, 100)) + ")";
      return oauth_error(400, "invalid_request", why);
    }
  }

  core::JsonWriter w;
  w.begin_object();
  simdjson::dom::element ignored;
  auto absent = [&](const char* name) { return is_blank(request.body) || claims.at_key(name).get(ignored) != simdjson::SUCCESS; };
  std::optional<std::int64_t> exp;
  if (absent("iss")) { w.key("iss"); w.string(options_.issuer); }
  if (absent("aud")) { w.key("aud"); w.string(options_.audience); }
  if (absent("sub")) { w.key("sub"); w.string("dev-user"); }
  if (absent("iat")) { w.key("iat"); w.number(now); }
  if (absent("exp")) { w.key("exp"); w.number(now + ttl); exp = now + ttl; }
  if (absent("jti")) { w.key("jti"); w.string(random_jti()); }
  if (!is_blank(request.body)) {
    for (auto field : claims) {
      // null drops a claim, defaults included: a token without exp or aud is something to test too.
      if (field.value.is_null()) continue;
      w.key(field.key);
      w.raw(simdjson::minify(field.value));
      if (field.key == "exp") {
        std::int64_t v = 0;
        if (field.value.get_int64().get(v) == simdjson::SUCCESS) exp = v;
      }
    }
  }
  w.end_object();

  core::Result<std::string> minted = core::mint_token(alg_, key_, options_.kid, w.take());
  if (!minted) return oauth_error(500, "server_error", minted.status().detail());
  AdminResponse r;
  if (query.raw) {
    r = plain_response(200, *minted + "\n");
  } else {
    core::JsonWriter out;
    out.begin_object();
    out.key("access_token");
    out.string(*minted);
    out.key("token_type");
    out.string("Bearer");
    if (exp) {
      out.key("expires_in");
      // An exp from the body may be anything JSON holds: compared, never subtracted into overflow.
      out.number(*exp <= now ? std::int64_t{0} : *exp - now);
    }
    out.end_object();
    r = json_response(200, out.take());
  }
  // RFC 6749 §5.1: a token response is not cached. (no-store is the server's default.)
  r.headers.emplace_back("Pragma", "no-cache");
  return r;
}

}  // namespace jwtgate::proxy
