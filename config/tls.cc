// tls: (TLS on the proxy listener), upstream_tls: (how https:// upstreams are verified) and the
// rule tying require_certificate_binding to client certificates. Only the shape is checked here:
// the files are PEM that proxy/http/tls_credentials.h reads, at start-up and in check-config.
#include "config/address.h"
#include "config/sections.h"

namespace jwtgate::config {
namespace {

// A file path that must be given and must not be empty.
void read_file_key(YamlReader& r, const YAML::Node& n, const std::string& path, std::string& out) {
  if (auto v = r.string(n, path)) {
    if (v->empty()) r.error(n, path, "must not be empty");
    else out = *v;
  }
}

void read_min_version(YamlReader& r, const YAML::Node& n, TlsListener& tls) {
  const std::string path = "tls.min_version";
  // YAML reads an unquoted 1.2 as a number; its text is the same either way.
  const std::string text = n.IsScalar() ? n.Scalar() : std::string();
  if (text == "1.2") {
    tls.min_version = TlsVersion::tls1_2;
  } else if (text == "1.3") {
    tls.min_version = TlsVersion::tls1_3;
  } else if (text == "1.0" || text == "1.1" || text == "1") {
    r.error(n, path,
            "TLS " + std::string(text == "1" ? "1.0" : text) +
                " is refused: RFC 8996 deprecates TLS 1.0 and 1.1 (weak hashes, no AEAD ciphers); use 1.2 or 1.3");
  } else {
    r.error(n, path, "expected 1.2 or 1.3, found " + YamlReader::describe(n));
  }
}

}  // namespace

std::string_view tls_version_name(TlsVersion v) {
  switch (v) {
    case TlsVersion::tls1_2: return "1.2";
    case TlsVersion::tls1_3: return "1.3";
  }
  return "";
}

std::string_view client_auth_name(TlsListener::ClientAuth a) {
  switch (a) {
    case TlsListener::ClientAuth::none: return "none";
    case TlsListener::ClientAuth::optional: return "optional";
    case TlsListener::ClientAuth::required: return "required";
  }
  return "";
}

void read_tls(YamlReader& r, const YAML::Node& node, Config& config) {
  if (!config.proxy) {
    r.error(node, "tls",
            "configures TLS on the proxy listener (listen), and without a top-level upstream there is no proxy "
            "listener: a forward_auth-only file runs none (set upstream to run the proxy as well)");
    return;
  }
  if (!r.mapping(node, "tls", {"cert_file", "key_file", "min_version", "handshake_timeout", "session_tickets",
                               "client_ca_file", "client_auth"})) {
    return;
  }
  TlsListener tls;
  if (auto n = node["cert_file"]) read_file_key(r, n, "tls.cert_file", tls.cert_file);
  else r.error(node, "tls.cert_file", "missing required key: the PEM file with the certificate, then its chain");
  if (auto n = node["key_file"]) read_file_key(r, n, "tls.key_file", tls.key_file);
  else r.error(node, "tls.key_file", "missing required key: the PEM file with the certificate's private key");
  if (auto n = node["min_version"]) read_min_version(r, n, tls);
  if (auto n = node["handshake_timeout"]) {
    if (auto d = r.duration(n, "tls.handshake_timeout")) {
      if (d->count() == 0) r.error(n, "tls.handshake_timeout", "must be longer than 0s");
      else tls.handshake_timeout = *d;
    }
  }
  if (auto n = node["session_tickets"]) {
    if (auto v = r.boolean(n, "tls.session_tickets")) tls.session_tickets = *v;
  }
  bool client_auth_valid = true;
  if (auto n = node["client_auth"]) {
    if (auto v = r.choice(n, "tls.client_auth", {"none", "optional", "required"})) {
      tls.client_auth = *v == "none"       ? TlsListener::ClientAuth::none
                        : *v == "optional" ? TlsListener::ClientAuth::optional
                                           : TlsListener::ClientAuth::required;
    } else {
      client_auth_valid = false;
    }
  }
  const YAML::Node ca = node["client_ca_file"];
  if (ca) read_file_key(r, ca, "tls.client_ca_file", tls.client_ca_file);
  if (client_auth_valid) {
    if (tls.client_auth != TlsListener::ClientAuth::none && !ca) {
      r.error(node["client_auth"], "tls.client_auth",
              std::string(client_auth_name(tls.client_auth)) +
                  " needs tls.client_ca_file: the CAs client certificates are verified against");
    } else if (tls.client_auth == TlsListener::ClientAuth::none && ca) {
      // A CA that is never checked suggests client certificates are verified when none is asked for.
      r.error(ca, "tls.client_ca_file",
              "is set but tls.client_auth is none, so no client certificate is ever asked for or checked; set "
              "client_auth: optional or required, or remove client_ca_file");
    }
  }
  config.tls = std::move(tls);
}

void read_upstream_tls(YamlReader& r, const YAML::Node& node, Config& config) {
  if (!r.mapping(node, "upstream_tls", {"ca_file", "server_name", "cert_file", "key_file"})) return;
  UpstreamTls& u = config.upstream_tls;
  if (auto n = node["ca_file"]) read_file_key(r, n, "upstream_tls.ca_file", u.ca_file);
  if (auto n = node["server_name"]) {
    if (auto v = r.string(n, "upstream_tls.server_name")) {
      if (!is_host(*v)) r.error(n, "upstream_tls.server_name", "expected a host name such as orders.internal, found " + YamlReader::describe(n));
      else u.server_name = *v;
    }
  }
  const YAML::Node cert = node["cert_file"], key = node["key_file"];
  if (cert) read_file_key(r, cert, "upstream_tls.cert_file", u.cert_file);
  if (key) read_file_key(r, key, "upstream_tls.key_file", u.key_file);
  if (cert && !key) {
    r.error(cert, "upstream_tls.key_file", "missing: a client certificate (upstream_tls.cert_file) needs its private key");
  } else if (key && !cert) {
    r.error(key, "upstream_tls.cert_file", "missing: a client key (upstream_tls.key_file) needs its certificate");
  }

  bool any_https = config.proxy && config.upstream.tls;
  for (const auto& route : config.routes) any_https = any_https || (route.upstream && route.upstream->tls);
  if (!any_https) {
    r.warning(node, "upstream_tls",
              "has no effect: no upstream (top-level or routes[].upstream) is an https:// URL");
  }
}

void check_certificate_binding(YamlReader& r, const YAML::Node& providers, const Config& config) {
  const bool client_certificates = config.tls && config.tls->client_auth != TlsListener::ClientAuth::none;
  if (client_certificates || !providers.IsSequence()) return;
  for (std::size_t i = 0; i < config.providers.size() && i < providers.size(); ++i) {
    if (!config.providers[i].require_certificate_binding) continue;
    const YAML::Node at = providers[i]["require_certificate_binding"];
    r.error(at, YamlReader::index_path("providers", i) + ".require_certificate_binding",
            "needs tls.client_auth: optional or required; without it no client certificate is ever presented, so "
            "no token of this provider could pass");
  }
}

}  // namespace jwtgate::config
