#include "config/loader.h"

#include <fstream>
#include <iterator>

#include "config/address.h"
#include "config/sections.h"

namespace jwtgate::config {
namespace {

void read_limits(YamlReader& r, const YAML::Node& node, Limits& limits) {
  const std::string path = "limits";
  if (!r.mapping(node, path, {"max_header_bytes", "max_token_bytes", "header_timeout", "idle_timeout",
                              "upstream_timeout", "max_connections", "body_timeout", "max_response_header_bytes",
                              "drain_timeout"})) {
    return;
  }
  auto positive = [&](const YAML::Node& n, const std::string& p, Duration& out) {
    if (auto d = r.duration(n, p)) {
      if (d->count() == 0) r.error(n, p, "must be longer than 0s");
      else out = *d;
    }
  };
  if (auto n = node["max_header_bytes"]) {
    if (auto s = r.size(n, "limits.max_header_bytes")) {
      if (*s < 1024 || *s > 1024 * 1024) r.error(n, "limits.max_header_bytes", "must be from 1KiB to 1MiB");
      else limits.max_header_bytes = *s;
    }
  }
  if (auto n = node["max_response_header_bytes"]) {
    if (auto s = r.size(n, "limits.max_response_header_bytes")) {
      if (*s < 1024 || *s > 1024 * 1024) r.error(n, "limits.max_response_header_bytes", "must be from 1KiB to 1MiB");
      else limits.max_response_header_bytes = *s;
    }
  }
  if (auto n = node["max_token_bytes"]) {
    if (auto s = r.size(n, "limits.max_token_bytes")) {
      if (*s < 256 || *s > 1024 * 1024) r.error(n, "limits.max_token_bytes", "must be from 256B to 1MiB");
      else limits.max_token_bytes = *s;
    }
  }
  if (limits.max_token_bytes > limits.max_header_bytes) {
    r.error(node["max_token_bytes"] ? node["max_token_bytes"] : node, "limits.max_token_bytes",
            "cannot be larger than limits.max_header_bytes: a token arrives inside the request head");
  }
  if (auto n = node["header_timeout"]) positive(n, "limits.header_timeout", limits.header_timeout);
  if (auto n = node["idle_timeout"]) positive(n, "limits.idle_timeout", limits.idle_timeout);
  if (auto n = node["upstream_timeout"]) positive(n, "limits.upstream_timeout", limits.upstream_timeout);
  if (auto n = node["body_timeout"]) positive(n, "limits.body_timeout", limits.body_timeout);
  if (auto n = node["drain_timeout"]) {
    // A stop that may take longer than an hour is one no orchestrator waits for: it kills first.
    if (auto d = r.duration(n, "limits.drain_timeout")) {
      if (d->count() == 0 || *d > std::chrono::hours(1)) r.error(n, "limits.drain_timeout", "must be longer than 0s and at most 1h");
      else limits.drain_timeout = *d;
    }
  }
  if (auto n = node["max_connections"]) {
    if (auto v = r.integer(n, "limits.max_connections", 1, 1'000'000)) limits.max_connections = *v;
  }
}

void read_log(YamlReader& r, const YAML::Node& node, LogConfig& log) {
  if (!r.mapping(node, "log", {"format", "level", "access_log", "access_log_sample"})) return;
  if (auto n = node["access_log"]) {
    if (auto v = r.boolean(n, "log.access_log")) log.access_log = *v;
  }
  if (auto n = node["access_log_sample"]) {
    double rate = 0;
    if (!YAML::convert<double>::decode(n, rate) || !(rate > 0.0 && rate <= 1.0)) {
      r.error(n, "log.access_log_sample", "expected a share of requests from 0 (exclusive) to 1, such as 0.1, found " +
                                              YamlReader::describe(n));
    } else {
      log.access_log_sample = rate;
    }
  }
  if (auto n = node["format"]) {
    if (auto v = r.choice(n, "log.format", {"json", "text"})) {
      log.format = *v == "json" ? LogConfig::Format::json : LogConfig::Format::text;
    }
  }
  if (auto n = node["level"]) {
    if (auto v = r.choice(n, "log.level", {"debug", "info", "warn", "error"})) {
      log.level = *v == "debug" ? LogConfig::Level::debug
                  : *v == "info" ? LogConfig::Level::info
                  : *v == "warn" ? LogConfig::Level::warn
                                 : LogConfig::Level::error;
    }
  }
}

void read_listen(YamlReader& r, const YAML::Node& node, const std::string& path, ListenAddress& out) {
  auto text = r.string(node, path);
  if (!text) return;
  std::string why;
  if (!parse_listen_address(*text, out, why)) r.error(node, path, why + ", found " + YamlReader::describe(node));
}

void read_document(YamlReader& r, const YAML::Node& root, const LoadOptions& options, Config& config) {
  if (!root.IsDefined() || root.IsNull()) {
    r.error(root, "", "the config file is empty; see deploy/examples/ for a starting point");
    return;
  }
  if (root.IsMap() && root["development"]) {
    read_development(r, root, config);
    return;
  }
  if (!r.mapping(root, "", {"listen", "admin_listen", "upstream", "workers", "providers", "routes",
                            "routes_case_sensitive", "forward_override_headers", "watch_config", "limits", "log", "admin",
                            "development", "forward_auth", "tls", "upstream_tls", "http2", "revocation"})) {
    return;
  }
  std::string why;
  // Without an upstream there is nothing to proxy to: a file with forward_auth alone runs only the
  // checks, and a proxy setting there would be ignored, so it is refused instead.
  config.proxy = root["upstream"].IsDefined() || !root["forward_auth"].IsDefined();
  parse_listen_address("0.0.0.0:8080", config.listen, why);
  parse_listen_address("127.0.0.1:9901", config.admin_listen, why);
  if (auto n = root["listen"]) read_listen(r, n, "listen", config.listen);
  if (auto n = root["admin_listen"]) read_listen(r, n, "admin_listen", config.admin_listen);
  if (auto n = root["admin"]) read_admin(r, n, root["admin_listen"], config);
  // Messages about the admin listener point at whichever key set it.
  const bool admin_section_listen = root["admin"] && root["admin"].IsMap() && root["admin"]["listen"] &&
                                    !root["admin_listen"];
  const YAML::Node admin_at = admin_section_listen ? root["admin"]["listen"]
                              : root["admin_listen"] ? root["admin_listen"]
                                                     : root;
  const std::string admin_path = admin_section_listen ? "admin.listen" : "admin_listen";
  if (config.proxy && same_listen_port(config.listen, config.admin_listen)) {
    r.error(admin_at, admin_path, "must not share a port with listen (" + config.listen.text + ")");
  }
  warn_admin_exposure(r, admin_at, admin_path, config);

  if (auto n = root["upstream"]) {
    if (auto text = r.string(n, "upstream")) {
      if (!parse_upstream_url(*text, config.upstream, why)) r.error(n, "upstream", why + ", found " + YamlReader::describe(n));
    }
  } else if (config.proxy) {
    r.error(root, "upstream",
            "missing required key: the URL of the service jwtgate protects, such as http://127.0.0.1:3000 (or a "
            "forward_auth: section, to answer a gateway's checks without proxying)");
  } else if (auto listen = root["listen"]) {
    r.error(listen, "listen",
            "is the proxy's listener, and there is no upstream to proxy to; gateways' checks go to "
            "forward_auth.listen (set upstream to run the proxy as well)");
  }
  if (auto n = root["forward_auth"]) read_forward_auth(r, n, config);
  if (auto n = root["tls"]) read_tls(r, n, config);

  if (auto n = root["workers"]) {
    if (n.IsScalar() && n.Scalar() == "auto") config.workers = 0;
    else if (n.IsScalar() && !n.Scalar().empty() && n.Scalar().find_first_not_of("0123456789") == std::string::npos) {
      if (auto v = r.integer(n, "workers", 1, 256)) config.workers = static_cast<unsigned>(*v);
    } else {
      r.error(n, "workers", "expected auto or a number of worker threads from 1 to 256, found " + YamlReader::describe(n));
    }
  }

  if (auto n = root["providers"]) read_providers(r, n, options, config.providers);
  else r.error(root, "providers", "missing required key: at least one identity provider");

  // Read before routes, wherever it appears in the file: it decides which prefixes collide.
  // When it is invalid (an error already), the case-only checks are skipped rather than guessed.
  bool case_checks = true;
  if (auto n = root["routes_case_sensitive"]) {
    if (auto v = r.boolean(n, "routes_case_sensitive")) config.routes_case_sensitive = *v;
    else case_checks = false;
  }
  if (auto n = root["routes"]) {
    read_routes(r, n, config.providers, config.routes_case_sensitive || !case_checks, config.routes);
    if (!config.proxy && n.IsSequence()) {
      for (std::size_t i = 0; i < n.size(); ++i) {
        if (n[i].IsMap() && n[i]["upstream"]) {
          r.error(n[i]["upstream"], YamlReader::index_path("routes", i) + ".upstream",
                  "names where the proxy sends the route's requests, and without a top-level upstream there is no "
                  "proxy (forward_auth only answers checks)");
        }
      }
    }
  } else {
    config.routes.push_back(Route{"/", {}, AuthMode::required, {}, {}, {}});
  }
  if (auto n = root["upstream_tls"]) read_upstream_tls(r, n, config);
  if (auto n = root["providers"]) check_certificate_binding(r, n, config);
  if (auto n = root["watch_config"]) {
    if (auto v = r.boolean(n, "watch_config")) config.watch_config = *v;
  }
  if (auto n = root["forward_override_headers"]) {
    if (auto v = r.boolean(n, "forward_override_headers")) {
      config.forward_override_headers = *v;
      if (*v) {
        r.warning(n, "forward_override_headers",
                  "X-Original-URL, X-Rewrite-URL, X-HTTP-Method-Override, X-HTTP-Method and X-Method-Override will "
                  "reach the upstream and let frameworks that honor them route by a path or method other than the one "
                  "jwtgate authorized; leave this false unless the upstream ignores them");
      }
    }
  }
  if (auto n = root["limits"]) read_limits(r, n, config.limits);
  if (auto n = root["http2"]) read_http2(r, n, config.http2);
  if (config.tls) config.tls->alpn_h2 = config.http2.enabled;
  check_grpc_routes(r, root, config);
  if (auto n = root["revocation"]) read_revocation(r, n, options, config);
  if (auto n = root["log"]) read_log(r, n, config.log);
}

}  // namespace

bool Provider::requires_exp() const {
  for (const auto& c : require_claims) {
    if (c == "exp") return true;
  }
  return false;
}

std::string_view auth_mode_name(AuthMode m) {
  switch (m) {
    case AuthMode::required: return "required";
    case AuthMode::optional: return "optional";
    case AuthMode::none: return "none";
  }
  return "";
}

LoadResult load_config(std::string_view yaml_text, const std::string& file_name, const LoadOptions& options) {
  LoadResult result;
  YamlReader reader(file_name, result.diagnostics, options.env);
  Config config;
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    read_document(reader, root, options, config);
  } catch (const YAML::Exception& e) {
    Diagnostic d;
    d.file = file_name;
    if (!e.mark.is_null()) {
      d.line = e.mark.line + 1;
      d.column = e.mark.column + 1;
    }
    d.message = "not valid YAML: " + e.msg;
    result.diagnostics.add(std::move(d));
  }
  if (!result.diagnostics.has_errors()) result.config = std::move(config);
  return result;
}

LoadResult load_config_file(const std::string& path, const LoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.diagnostics.add(Diagnostic{Diagnostic::Severity::error, path, 0, 0, "", "cannot read the config file"});
    return result;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return load_config(text, path, options);
}

}  // namespace jwtgate::config
