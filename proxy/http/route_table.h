// Which route applies to a request: longest path prefix, matched per path segment as Kubernetes
// Ingress "Prefix" does (/admin covers /admin and /admin/x, not /administrator), with an
// optional method list. Prefixes match ASCII case-insensitively unless routes_case_sensitive is
// set, since many upstreams (Express, ASP.NET Core, IIS) route /ADMIN to the /admin handler.
#pragma once

#include <string_view>
#include <vector>

#include "config/config.h"

namespace jwtgate::proxy {

class RouteTable {
 public:
  RouteTable(const std::vector<config::Route>& routes, bool case_sensitive);

  // The route for a normalized match path (see request_target.h), or nullptr. Only the longest
  // prefix that covers the path is considered: among its routes, one that lists the method wins
  // over one that lists none. When every route with that prefix excludes the method, the result
  // is nullptr and `allow` (if given) receives the methods they list ("GET, HEAD"): a 405, never
  // a shorter, weaker prefix. `allow` stays empty when no prefix covers the path at all (404).
  const config::Route* match(std::string_view match_path, std::string_view method, std::string* allow = nullptr) const {
    return match_with(match_path, method, allow, case_sensitive_);
  }
  // The route exact (case-sensitive) matching picks. When prefixes match without case, a request
  // must satisfy this too: a case-sensitive upstream serves /PUBLIC/x from whatever route covers
  // it exactly, not from /public (and not at all where no route covers it exactly).
  const config::Route* match_exact(std::string_view match_path, std::string_view method,
                                   std::string* allow = nullptr) const {
    return match_with(match_path, method, allow, true);
  }
  bool case_sensitive() const { return case_sensitive_; }

  // Index of a route in the configured order, for labels.
  std::size_t index_of(const config::Route* route) const;

 private:
  const config::Route* match_with(std::string_view match_path, std::string_view method, std::string* allow,
                                  bool case_sensitive) const;
  static bool covers(std::string_view prefix, std::string_view path, bool case_sensitive);
  std::vector<config::Route> routes_;
  bool case_sensitive_;         // configured order
  std::vector<std::size_t> order_;            // match order: longest prefix, then method-specific
};

}  // namespace jwtgate::proxy
