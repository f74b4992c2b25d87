// The loader's per-section readers (internal to config/).
#pragma once

#include <yaml-cpp/yaml.h>

#include "config/config.h"
#include "config/loader.h"
#include "config/yaml_reader.h"

namespace jwtgate::config {

void read_providers(YamlReader& r, const YAML::Node& node, const LoadOptions& options, std::vector<Provider>& out);
// `case_sensitive`: routes_case_sensitive. When false, prefixes equal but for ASCII case cover the
// same paths, and are checked as such.
void read_routes(YamlReader& r, const YAML::Node& node, const std::vector<Provider>& providers, bool case_sensitive,
                 std::vector<Route>& out);

// The admin: section. `admin_listen` is the top-level key's node (undefined when absent):
// admin.listen is its newer spelling, and setting both is refused.
void read_admin(YamlReader& r, const YAML::Node& node, const YAML::Node& admin_listen, Config& config);
// Warns when /config is served on an address others can reach. `at`/`path`: the listen key.
void warn_admin_exposure(YamlReader& r, const YAML::Node& at, const std::string& path, const Config& config);

// A document whose top-level key is `development:` (`root` is the whole document): fills
// config.development; any other top-level key beside it is an error.
void read_development(YamlReader& r, const YAML::Node& root, Config& config);

// The forward_auth: section. Its listener must not share a port with `listen` (when the proxy
// runs) or the admin listener.
void read_forward_auth(YamlReader& r, const YAML::Node& node, Config& config);

// The tls: section (TLS on the proxy listener). Read after listen and upstream: a file without
// a proxy listener (forward_auth alone) has nothing for it to apply to.
void read_tls(YamlReader& r, const YAML::Node& node, Config& config);
// The upstream_tls: section. Read after upstream and routes: it warns when no upstream is https://.
void read_upstream_tls(YamlReader& r, const YAML::Node& node, Config& config);
// Providers with require_certificate_binding need client certificates on the proxy listener.
// `providers`: the providers: node, for positions.
void check_certificate_binding(YamlReader& r, const YAML::Node& providers, const Config& config);

// Why a path prefix (routes[].prefix, forward_auth.path_prefix) cannot be compared with
// normalized request paths, or empty when it can.
std::string path_prefix_problem(const std::string& prefix);

// True when two listen addresses would collide: the same port on the same or a wildcard host.
bool same_listen_port(const ListenAddress& a, const ListenAddress& b);

// The http2: section.
void read_http2(YamlReader& r, const YAML::Node& node, Http2& h2);
// Warns about gRPC that cannot work: a route whose prefix names a gRPC service (/pkg.Service/)
// with an http:// (HTTP/1.1) upstream, or gRPC routes and h2c:// upstreams with http2 off.
void check_grpc_routes(YamlReader& r, const YAML::Node& root, const Config& config);

// The revocation: section. Read after providers (backchannel_logout names them) and admin.
void read_revocation(YamlReader& r, const YAML::Node& node, const LoadOptions& options, Config& config);

// RFC 9110 field-name: a token.
bool is_header_name(std::string_view name);

}  // namespace jwtgate::config
