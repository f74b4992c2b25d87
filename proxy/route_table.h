// Which route applies to a request: longest path prefix, matched per path segment as Kubernetes
// Ingress "Prefix" does (/admin covers /admin and /admin/x, not /administrator), with an
// optional method list.
#pragma once

#include <string_view>
#include <vector>

#include "config/config.h"

namespace jwtgate::proxy {

class RouteTable {
 public:
  explicit RouteTable(const std::vector<config::Route>& routes);

  // The route for a normalized match path (see request_target.h), or nullptr when none covers
  // it. Among routes with the same prefix, one that lists the method wins over one that lists
  // none; a route whose method list lacks the method does not match at all.
  const config::Route* match(std::string_view match_path, std::string_view method) const;

  // Index of a route in the configured order, for labels.
  std::size_t index_of(const config::Route* route) const;

 private:
  static bool covers(std::string_view prefix, std::string_view path);
  std::vector<config::Route> routes_;         // configured order
  std::vector<std::size_t> order_;            // match order: longest prefix, then method-specific
};

}  // namespace jwtgate::proxy
