// The forward_auth: section: the listener gateways send their checks to, the path prefix the
// original path follows (Envoy style), and whose forwarded headers are believed.
#include "config/address.h"
#include "config/sections.h"

namespace jwtgate::config {

bool same_listen_port(const ListenAddress& a, const ListenAddress& b) {
  auto wildcard = [](const std::string& h) { return h == "0.0.0.0" || h == "::"; };
  return a.port == b.port && a.port != 0 && (a.host == b.host || wildcard(a.host) || wildcard(b.host));
}

void read_forward_auth(YamlReader& r, const YAML::Node& node, Config& config) {
  if (!r.mapping(node, "forward_auth", {"listen", "path_prefix", "trusted_proxies", "allow_preflight"})) return;
  ForwardAuth fa;
  std::string why;
  if (auto n = node["listen"]) {
    if (auto text = r.string(n, "forward_auth.listen")) {
      if (!parse_listen_address(*text, fa.listen, why)) {
        r.error(n, "forward_auth.listen", why + ", found " + YamlReader::describe(n));
      } else if (config.proxy && same_listen_port(fa.listen, config.listen)) {
        r.error(n, "forward_auth.listen",
                "must not share a port with listen (" + config.listen.text +
                    "): checks and proxied requests are told apart by the listener they arrive on");
      } else if (same_listen_port(fa.listen, config.admin_listen)) {
        r.error(n, "forward_auth.listen", "must not share a port with the admin listener (" + config.admin_listen.text + ")");
      }
    }
  } else {
    r.error(node, "forward_auth.listen",
            "missing required key: the address gateways send their checks to, such as 0.0.0.0:9001");
  }
  if (auto n = node["path_prefix"]) {
    if (auto v = r.string(n, "forward_auth.path_prefix")) {
      if (auto problem = path_prefix_problem(*v); !problem.empty()) {
        r.error(n, "forward_auth.path_prefix", problem + ", found " + YamlReader::describe(n));
      } else {
        fa.path_prefix = *v;
      }
    }
  }
  if (auto n = node["trusted_proxies"]) {
    if (auto list = r.string_list(n, "forward_auth.trusted_proxies", "[10.0.0.0/8, 127.0.0.1]")) {
      for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string at = YamlReader::index_path("forward_auth.trusted_proxies", i);
        IpNetwork net;
        if (!parse_ip_network((*list)[i], net, why)) {
          r.error(n[i], at, why + ", found " + YamlReader::describe(n[i]));
          continue;
        }
        if (net.prefix_bits == 0 || (net.base.v4 && net.prefix_bits == 96)) {
          r.warning(n[i], at,
                    "trusts every peer of its address family: any client that can reach forward_auth.listen can "
                    "then name the request it wants judged (X-Forwarded-Uri); list only the gateways' addresses");
        }
        fa.trusted_proxies.push_back(std::move(net));
      }
    }
  }
  if (auto n = node["allow_preflight"]) {
    if (auto v = r.boolean(n, "forward_auth.allow_preflight")) fa.allow_preflight = *v;
  }
  config.forward_auth = std::move(fa);
}

}  // namespace jwtgate::config
