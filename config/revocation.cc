// The revocation: section: where revocations come from (a file, Redis), what happens when a
// source is out of reach, and the back-channel logout endpoint.
#include <algorithm>

#include "config/redis_url.h"
#include "config/sections.h"

namespace jwtgate::config {
namespace {

void read_redis(YamlReader& r, const YAML::Node& node, const LoadOptions& options, RevocationRedis& redis) {
  const std::string path = "revocation.redis";
  if (!r.mapping(node, path, {"url", "username", "password_file", "password_env", "ca_file", "key_prefix", "channel",
                              "resync_interval", "connect_timeout"})) {
    return;
  }
  if (auto n = node["url"]) {
    if (auto v = r.string(n, path + ".url")) {
      std::string why;
      if (!parse_redis_url(*v, redis.url, why)) r.error(n, path + ".url", "the Redis URL " + why);
    }
  } else {
    r.error(node, path + ".url", "missing required key: the Redis server, such as redis://redis:6379/0");
  }
  if (auto n = node["username"]) {
    if (auto v = r.string(n, path + ".username")) redis.username = *v;
  }
  const YAML::Node file = node["password_file"], env = node["password_env"];
  if (file && env) r.error(env, path + ".password_env", "set only one of password_file and password_env");
  if (file) {
    if (auto v = r.string(file, path + ".password_file")) redis.password_file = *v;
  }
  if (env) {
    if (auto v = r.string(env, path + ".password_env")) {
      redis.password_env = *v;
      if (options.check_secrets && !options.env(*v)) {
        r.error(env, path + ".password_env", "environment variable " + *v + " is not set");
      }
    }
  }
  if (auto n = node["ca_file"]) {
    if (auto v = r.string(n, path + ".ca_file")) redis.ca_file = *v;
    if (!redis.url.tls) r.warning(n, path + ".ca_file", "is used only with rediss:// URLs");
  }
  auto text = [&](const char* key, std::string& out) {
    if (auto n = node[key]) {
      if (auto v = r.string(n, path + "." + key)) {
        if (v->empty()) r.error(n, path + "." + key, "must not be empty");
        else out = *v;
      }
    }
  };
  text("key_prefix", redis.key_prefix);
  text("channel", redis.channel);
  if (redis.key_prefix.find_first_of("*?[]\\") != std::string::npos) {
    r.error(node["key_prefix"], path + ".key_prefix", "must not hold *, ?, [, ] or \\ (it is matched with SCAN)");
  }
  if (auto n = node["resync_interval"]) {
    if (auto v = r.duration(n, path + ".resync_interval")) {
      if (*v < std::chrono::seconds(1) || *v > std::chrono::hours(24)) r.error(n, path + ".resync_interval", "must be from 1s to 24h");
      else redis.resync_interval = *v;
    }
  }
  if (auto n = node["connect_timeout"]) {
    if (auto v = r.duration(n, path + ".connect_timeout")) {
      if (*v < std::chrono::milliseconds(100) || *v > std::chrono::minutes(1)) {
        r.error(n, path + ".connect_timeout", "must be from 100ms to 1m");
      } else {
        redis.connect_timeout = *v;
      }
    }
  }
}

void read_logout(YamlReader& r, const YAML::Node& node, const std::vector<Provider>& providers, BackchannelLogout& out) {
  const std::string path = "revocation.backchannel_logout";
  if (node.IsNull()) return;  // `backchannel_logout:` alone: every default
  if (!r.mapping(node, path, {"providers", "entry_ttl", "max_token_age"})) return;
  if (auto n = node["providers"]) {
    if (auto v = r.string_list(n, path + ".providers", "[corp]")) {
      for (const std::string& name : *v) {
        auto p = std::find_if(providers.begin(), providers.end(), [&](const Provider& p) { return p.name == name; });
        if (p == providers.end()) r.error(n, path + ".providers", "names no provider called \"" + name + "\"");
        else if (p->issuer.empty()) r.error(n, path + ".providers", "provider \"" + name + "\" has no issuer; logout tokens are matched by iss");
        else if (p->audiences.empty()) {
          r.error(n, path + ".providers", "provider \"" + name + "\" has no audiences; a logout token's aud (the client id) must be checked");
        }
      }
      out.providers = *v;
    }
  }
  if (auto n = node["entry_ttl"]) {
    if (auto v = r.duration(n, path + ".entry_ttl")) {
      if (*v < std::chrono::minutes(1) || *v > std::chrono::hours(24 * 90)) r.error(n, path + ".entry_ttl", "must be from 1m to 90d");
      else out.entry_ttl = *v;
    }
  }
  if (auto n = node["max_token_age"]) {
    if (auto v = r.duration(n, path + ".max_token_age")) {
      if (*v < std::chrono::seconds(10) || *v > std::chrono::hours(1)) r.error(n, path + ".max_token_age", "must be from 10s to 1h");
      else out.max_token_age = *v;
    }
  }
}

}  // namespace

void read_revocation(YamlReader& r, const YAML::Node& node, const LoadOptions& options, Config& config) {
  Revocation rev;
  if (!r.mapping(node, "revocation", {"file", "redis", "on_unavailable", "ready_requires_sync", "backchannel_logout"})) {
    return;
  }
  if (auto n = node["file"]) {
    if (auto v = r.string(n, "revocation.file")) {
      if (v->empty()) r.error(n, "revocation.file", "must not be empty");
      rev.file = *v;
    }
  }
  if (auto n = node["redis"]) {
    rev.redis.emplace();
    read_redis(r, n, options, *rev.redis);
  }
  if (!node["file"] && !node["redis"]) {
    r.error(node, "revocation", "names no source: set file, redis, or both");
  }
  if (auto n = node["on_unavailable"]) {
    if (auto v = r.choice(n, "revocation.on_unavailable", {"keep", "deny"})) {
      rev.on_unavailable = *v == "deny" ? Revocation::OnUnavailable::deny : Revocation::OnUnavailable::keep;
    }
  }
  if (auto n = node["ready_requires_sync"]) {
    if (auto v = r.boolean(n, "revocation.ready_requires_sync")) rev.ready_requires_sync = *v;
  }
  if (node["backchannel_logout"]) {
    rev.backchannel_logout.emplace();
    read_logout(r, node["backchannel_logout"], config.providers, *rev.backchannel_logout);
    if (rev.backchannel_logout->providers.empty() &&
        std::none_of(config.providers.begin(), config.providers.end(),
                     [](const Provider& p) { return !p.issuer.empty() && !p.audiences.empty(); })) {
      r.error(node["backchannel_logout"], "revocation.backchannel_logout",
              "no provider has both an issuer and audiences: logout tokens are matched by iss and checked by aud");
    }
    if (!config.admin_listen.host.empty() && config.admin_listen.host != "127.0.0.1" && config.admin_listen.host != "::1" &&
        config.admin_listen.host != "localhost") {
      // Not an error: the IdP must reach it. Only the signature protects the endpoint.
      r.warning(node["backchannel_logout"], "revocation.backchannel_logout",
                "POST /backchannel-logout is served on the admin listener " + config.admin_listen.text +
                    ": make sure the IdP can reach it and that /config is off there (admin.config_endpoint)");
    }
  }
  for (std::size_t i = 0; i < config.providers.size(); ++i) {
    // A jti revocation lives 5m past its token's exp (in Redis, as every writer stores it); a
    // larger skew would let the token pass again after its revocation is gone.
    if (config.providers[i].clock_skew > std::chrono::minutes(5)) {
      r.error(node, YamlReader::index_path("providers", i) + ".clock_skew",
              "is above 5m, which revocation does not allow: a revoked jti is kept 5m past its token's exp");
    }
  }
  config.revocation = std::move(rev);
}

}  // namespace jwtgate::config
