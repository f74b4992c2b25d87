// A file whose only top-level key is `development:` asks for the development default (what
// `jwtgate` with no arguments runs): how a container image ships a usable default as a config
// file, since its command line is fixed (`jwtgate --config /etc/jwtgate/jwtgate.yaml`).
#include <string>

#include "config/address.h"
#include "config/sections.h"

namespace jwtgate::config {

void read_development(YamlReader& r, const YAML::Node& root, Config& config) {
  // Nothing else applies to it (its key, routes and upstream are built in), so a setting next
  // to it would be silently ignored: refused instead.
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    if (key == "development") continue;
    r.error(it->first, "development", "runs the development default and cannot be combined with " +
                                          (key.empty() ? std::string("another key") : key) + "; remove one");
  }
  Development dev;
  std::string why;
  parse_listen_address("127.0.0.1:8080", dev.listen, why);
  const YAML::Node node = root["development"];
  // `development:` with nothing after it, or {}, is the default as is.
  if (!node.IsNull() && r.mapping(node, "development", {"listen", "upstream"})) {
    if (auto n = node["listen"]) {
      if (auto text = r.string(n, "development.listen")) {
        if (!parse_listen_address(*text, dev.listen, why)) {
          r.error(n, "development.listen", why + ", found " + YamlReader::describe(n));
        }
      }
    }
    if (auto n = node["upstream"]) {
      if (auto text = r.string(n, "development.upstream")) {
        UpstreamUrl url;
        if (parse_upstream_url(*text, url, why)) dev.upstream = url;
        else r.error(n, "development.upstream", why + ", found " + YamlReader::describe(n));
      }
    }
  } else if (!node.IsNull() && !node.IsMap()) {
    return;  // r.mapping reported it
  }
  r.warning(node, "development",
            "runs the development default: an ephemeral key, a printed token valid for 1 hour and, without "
            "upstream, the built-in echo; for development only, never in front of a real service");
  config.development = dev;
}

}  // namespace jwtgate::config
