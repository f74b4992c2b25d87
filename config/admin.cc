// The admin: section: where the admin listener binds, how it bounds its connections, and whether
// it serves /config.
#include "config/address.h"
#include "config/sections.h"

namespace jwtgate::config {

void read_admin(YamlReader& r, const YAML::Node& node, const YAML::Node& admin_listen, Config& config) {
  if (!r.mapping(node, "admin", {"listen", "config_endpoint", "max_connections", "max_connections_per_peer",
                                 "head_timeout", "idle_timeout"})) {
    return;
  }
  AdminConfig& admin = config.admin;
  if (auto n = node["listen"]) {
    if (admin_listen.IsDefined()) {
      r.error(n, "admin.listen",
              "the admin listener is also set by the top-level admin_listen; keep one of the two (admin.listen is "
              "the newer spelling)");
    } else if (auto text = r.string(n, "admin.listen")) {
      std::string why;
      if (!parse_listen_address(*text, config.admin_listen, why)) {
        r.error(n, "admin.listen", why + ", found " + YamlReader::describe(n));
      }
    }
  }
  if (auto n = node["config_endpoint"]) {
    if (auto v = r.boolean(n, "admin.config_endpoint")) admin.config_endpoint = *v;
  }
  if (auto n = node["max_connections"]) {
    if (auto v = r.integer(n, "admin.max_connections", 1, 10'000)) admin.max_connections = *v;
  }
  if (auto n = node["max_connections_per_peer"]) {
    if (auto v = r.integer(n, "admin.max_connections_per_peer", 1, 10'000)) admin.max_connections_per_peer = *v;
  }
  if (admin.max_connections_per_peer > admin.max_connections) {
    r.error(node["max_connections_per_peer"] ? node["max_connections_per_peer"] : node, "admin.max_connections_per_peer",
            "cannot be larger than admin.max_connections (" + std::to_string(admin.max_connections) + ")");
  }
  auto positive = [&](const char* key, Duration& out) {
    const std::string path = std::string("admin.") + key;
    if (auto n = node[key]) {
      if (auto d = r.duration(n, path)) {
        if (d->count() == 0) r.error(n, path, "must be longer than 0s");
        else out = *d;
      }
    }
  };
  positive("head_timeout", admin.head_timeout);
  positive("idle_timeout", admin.idle_timeout);
}

void warn_admin_exposure(YamlReader& r, const YAML::Node& at, const std::string& path, const Config& config) {
  if (!config.admin.config_endpoint || is_loopback_host(config.admin_listen.host)) return;
  r.warning(at, path,
            "the admin listener on " + config.admin_listen.text +
                " is reachable beyond this host and serves /config, which shows the whole policy (routes, scopes, "
                "trusted header names, secret file paths) to anyone who connects; set admin.config_endpoint: false, "
                "or bind the admin listener to 127.0.0.1");
}

}  // namespace jwtgate::config
