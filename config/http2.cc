// The http2: section, and what a file says about gRPC that cannot work.
#include <algorithm>
#include <cctype>

#include "config/sections.h"

namespace jwtgate::config {
namespace {

// A prefix naming a gRPC service or method: /package.Service/ or /package.Service/Method (the
// first segment holds a dot, and is made of identifier characters).
bool looks_like_grpc(const std::string& prefix) {
  if (prefix.size() < 4 || prefix[0] != '/') return false;
  const std::size_t end = prefix.find('/', 1);
  const std::string segment = prefix.substr(1, end == std::string::npos ? std::string::npos : end - 1);
  if (segment.find('.') == std::string::npos || segment.front() == '.' || segment.back() == '.') return false;
  for (const char c : segment) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return false;
  }
  return true;
}

}  // namespace

void read_http2(YamlReader& r, const YAML::Node& node, Http2& h2) {
  if (!r.mapping(node, "http2", {"enabled", "max_concurrent_streams", "stream_window_bytes", "connection_window_bytes",
                                 "reset_burst", "resets_per_second"})) {
    return;
  }
  if (auto n = node["enabled"]) {
    if (auto v = r.boolean(n, "http2.enabled")) h2.enabled = *v;
  }
  if (auto n = node["max_concurrent_streams"]) {
    if (auto v = r.integer(n, "http2.max_concurrent_streams", 1, 10000)) h2.max_concurrent_streams = *v;
  }
  // nghttp2's window sizes are 31-bit; below 16 KiB one frame would not fit.
  auto window = [&](const char* key, std::uint64_t& out) {
    if (auto n = node[key]) {
      const std::string path = std::string("http2.") + key;
      if (auto s = r.size(n, path)) {
        if (*s < 16 * 1024 || *s > 1024 * 1024 * 1024) r.error(n, path, "must be from 16KiB to 1GiB");
        else out = *s;
      }
    }
  };
  window("stream_window_bytes", h2.stream_window_bytes);
  window("connection_window_bytes", h2.connection_window_bytes);
  if (auto n = node["reset_burst"]) {
    if (auto v = r.integer(n, "http2.reset_burst", 1, 1000000)) h2.reset_burst = *v;
  }
  if (auto n = node["resets_per_second"]) {
    if (auto v = r.integer(n, "http2.resets_per_second", 1, 1000000)) h2.resets_per_second = *v;
  }
}

void check_grpc_routes(YamlReader& r, const YAML::Node& root, const Config& config) {
  const YAML::Node routes = root["routes"];
  bool grpc = std::any_of(config.routes.begin(), config.routes.end(), [](const Route& rt) { return looks_like_grpc(rt.prefix); });
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const Route& route = config.routes[i];
    if (!looks_like_grpc(route.prefix)) continue;
    const UpstreamUrl& up = route.upstream ? *route.upstream : config.upstream;
    if (up.h2 || up.tls || up.host.empty()) continue;
    const YAML::Node at = routes.IsSequence() && i < routes.size() ? routes[i] : root;
    r.warning(at, YamlReader::index_path("routes", i),
              "prefix " + route.prefix + " looks like a gRPC service, and its upstream " + up.text +
                  " speaks HTTP/1.1: gRPC needs HTTP/2 end to end (h2c:// or https://), so gRPC calls on this route "
                  "get 14 UNAVAILABLE from jwtgate");
  }
  const bool h2_upstream = config.upstream.h2 ||
                           std::any_of(config.routes.begin(), config.routes.end(),
                                       [](const Route& rt) { return rt.upstream && rt.upstream->h2; });
  if (!config.http2.enabled && (grpc || h2_upstream)) {
    const YAML::Node at = root["http2"] ? root["http2"] : root;
    r.warning(at, "http2.enabled",
              "is false, so clients can only reach this proxy over HTTP/1.1; gRPC clients need HTTP/2 to jwtgate too");
  }
}

}  // namespace jwtgate::config
