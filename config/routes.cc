// routes[]: which paths need which proof. Matching (longest prefix, per path segment) is the
// proxy's; here each route is checked to be unambiguous and self-consistent.
#include <set>

#include "config/address.h"
#include "config/sections.h"

namespace jwtgate::config {
namespace {

using Path = std::string;

}  // namespace

// Prefixes are compared with normalized request paths, so they must be normalized themselves.
std::string path_prefix_problem(const std::string& prefix) {
  if (prefix.empty() || prefix[0] != '/') return "must start with /";
  if (prefix.size() > 1 && prefix.back() == '/') return "must not end with / (prefixes match whole path segments: write \"" + prefix.substr(0, prefix.size() - 1) + "\")";
  if (prefix.find("//") != std::string::npos) return "must not contain an empty segment (//)";
  for (char c : prefix) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return "must not contain spaces, control or non-ASCII characters";
    if (c == '%' || c == '?' || c == '#' || c == ';' || c == '\\') {
      return std::string("must not contain '") + c + "': prefixes are matched against decoded, normalized paths";
    }
  }
  std::size_t start = 1;
  while (start <= prefix.size()) {
    const std::size_t end = std::min(prefix.find('/', start), prefix.size());
    const std::string segment = prefix.substr(start, end - start);
    if (segment == "." || segment == "..") return "must not contain . or .. segments";
    start = end + 1;
  }
  return {};
}

namespace {

bool is_method(const std::string& m) {
  if (m.empty()) return false;
  for (char c : m) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

void read_route(YamlReader& r, const YAML::Node& node, const Path& path, const std::vector<Provider>& providers,
                Route& route) {
  if (!r.mapping(node, path, {"prefix", "methods", "auth", "require_scopes", "require_claims", "providers", "upstream"})) {
    return;
  }
  if (auto n = node["prefix"]) {
    if (auto v = r.string(n, path + ".prefix")) {
      route.prefix = *v;
      if (auto problem = path_prefix_problem(*v); !problem.empty()) {
        r.error(n, path + ".prefix", problem + ", found " + YamlReader::describe(n));
      }
    }
  } else {
    r.error(node, path + ".prefix", "missing required key: the path prefix this route covers, such as /api");
  }
  if (auto n = node["methods"]) {
    if (auto v = r.string_list(n, path + ".methods", "[GET, POST]")) {
      std::set<std::string> seen;
      for (std::size_t i = 0; i < v->size(); ++i) {
        const std::string& m = (*v)[i];
        if (!is_method(m)) r.error(n[i], YamlReader::index_path(path + ".methods", i), "methods are upper-case, such as GET, found " + YamlReader::describe(n[i]));
        else if (!seen.insert(m).second) r.warning(n[i], YamlReader::index_path(path + ".methods", i), "listed twice");
        else route.methods.push_back(m);
      }
      if (v->empty()) r.error(n, path + ".methods", "empty: leave methods out to cover every method");
    }
  }
  const YAML::Node auth = node["auth"];
  if (auth) {
    if (auto v = r.choice(auth, path + ".auth", {"required", "optional", "none"})) {
      route.auth = *v == "required" ? AuthMode::required : *v == "optional" ? AuthMode::optional : AuthMode::none;
    }
  }
  if (auto n = node["require_scopes"]) {
    if (auto v = r.string_list(n, path + ".require_scopes", "[orders:read]")) {
      for (std::size_t i = 0; i < v->size(); ++i) {
        if ((*v)[i].empty() || (*v)[i].find(' ') != std::string::npos) {
          r.error(n[i], YamlReader::index_path(path + ".require_scopes", i), "a scope is one word without spaces");
        }
      }
      route.require_scopes = *v;
    }
  }
  if (auto n = node["require_claims"]) {
    if (!n.IsMap()) {
      r.error(n, path + ".require_claims", "expected a mapping of claim to accepted values, such as {realm_access.roles: [admin]}, found " +
                                               YamlReader::describe(n));
    } else {
      for (const auto& item : n) {
        const std::string claim = item.first.IsScalar() ? item.first.Scalar() : std::string();
        const Path where = YamlReader::key_path(path + ".require_claims", claim);
        ClaimRequirement req{claim, {}};
        if (item.second.IsScalar()) {
          if (auto v = r.string(item.second, where)) req.values.push_back(*v);
        } else if (auto v = r.string_list(item.second, where, "[admin]")) {
          req.values = *v;
          if (v->empty()) r.error(item.second, where, "empty: no token could ever match");
        }
        route.require_claims.push_back(std::move(req));
      }
    }
  }
  const bool requirements = !route.require_scopes.empty() || !route.require_claims.empty();
  if (requirements && auth && route.auth != AuthMode::required) {
    r.error(auth, path + ".auth", "require_scopes and require_claims need a verified token; they imply auth: required");
  }
  if (auto n = node["providers"]) {
    if (auto v = r.string_list(n, path + ".providers", "[main]")) {
      for (std::size_t i = 0; i < v->size(); ++i) {
        bool known = false;
        for (const auto& p : providers) known |= p.name == (*v)[i];
        if (!known) r.error(n[i], YamlReader::index_path(path + ".providers", i), "no provider is named " + YamlReader::describe(n[i]));
      }
      route.providers = *v;
      if (v->empty()) r.error(n, path + ".providers", "empty: leave providers out to accept every provider");
    }
    if (route.auth == AuthMode::none) r.warning(n, path + ".providers", "ignored: auth is none");
  }
  if (auto n = node["upstream"]) {
    if (auto text = r.string(n, path + ".upstream")) {
      UpstreamUrl url;
      std::string why;
      if (parse_upstream_url(*text, url, why)) route.upstream = std::move(url);
      else r.error(n, path + ".upstream", why + ", found " + YamlReader::describe(n));
    }
  }
}

bool methods_overlap(const Route& a, const Route& b) {
  if (a.methods.empty() || b.methods.empty()) return true;
  for (const auto& m : a.methods) {
    for (const auto& n : b.methods) {
      if (m == n) return true;
    }
  }
  return false;
}

// Prefixes are ASCII (prefix_problem refuses anything else), so ASCII folding is all it takes.
bool equal_ignoring_case(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

void read_routes(YamlReader& r, const YAML::Node& node, const std::vector<Provider>& providers, bool case_sensitive,
                 std::vector<Route>& out) {
  if (!node.IsSequence()) {
    r.error(node, "routes", "expected a list of routes, found " + YamlReader::describe(node));
    return;
  }
  if (node.size() == 0) {
    r.error(node, "routes", "empty: leave routes out for one route requiring a token everywhere, or list them");
    return;
  }
  bool catch_all = false;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const Path path = YamlReader::index_path("routes", i);
    Route route;
    read_route(r, node[i], path, providers, route);
    for (std::size_t j = 0; j < out.size(); ++j) {
      if (route.prefix.empty()) break;
      const std::string other = YamlReader::index_path("routes", j);
      if (out[j].prefix == route.prefix) {
        if (methods_overlap(out[j], route)) {
          r.error(node[i], path, "same prefix \"" + route.prefix + "\" and methods as " + other +
                                     ": which one applies would be ambiguous");
        }
      } else if (!case_sensitive && equal_ignoring_case(out[j].prefix, route.prefix)) {
        const std::string pair = "prefix \"" + route.prefix + "\" differs from " + other + "'s \"" + out[j].prefix +
                                 "\" only in case";
        if (methods_overlap(out[j], route)) {
          r.error(node[i], path, pair + ", and their methods overlap: with case-insensitive matching "
                                 "(routes_case_sensitive: false) they cover the same paths, so which one applies would "
                                 "be ambiguous; merge them, or set routes_case_sensitive: true");
        } else {
          r.warning(node[i], path, pair + ": with case-insensitive matching (routes_case_sensitive: false) they cover "
                                   "the same paths; write them the same, or set routes_case_sensitive: true");
        }
      }
    }
    catch_all |= route.prefix == "/" && route.methods.empty();
    out.push_back(std::move(route));
  }
  if (!catch_all) {
    r.warning(node, "routes",
              "no catch-all route (prefix: / without methods): requests no route covers are refused with 404; "
              "add one to say what should happen to them");
  }
}

}  // namespace jwtgate::config
