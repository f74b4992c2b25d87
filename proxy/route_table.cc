#include "proxy/route_table.h"

#include <algorithm>

namespace jwtgate::proxy {

RouteTable::RouteTable(const std::vector<config::Route>& routes) : routes_(routes) {
  for (std::size_t i = 0; i < routes_.size(); ++i) order_.push_back(i);
  std::stable_sort(order_.begin(), order_.end(), [this](std::size_t x, std::size_t y) {
    const config::Route& a = routes_[x];
    const config::Route& b = routes_[y];
    if (a.prefix.size() != b.prefix.size()) return a.prefix.size() > b.prefix.size();
    return !a.methods.empty() && b.methods.empty();
  });
}

bool RouteTable::covers(std::string_view prefix, std::string_view path) {
  if (prefix == "/") return true;
  if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

const config::Route* RouteTable::match(std::string_view match_path, std::string_view method) const {
  for (std::size_t i : order_) {
    const config::Route& r = routes_[i];
    if (!covers(r.prefix, match_path)) continue;
    if (!r.methods.empty() && std::find(r.methods.begin(), r.methods.end(), method) == r.methods.end()) continue;
    return &r;
  }
  return nullptr;
}

std::size_t RouteTable::index_of(const config::Route* route) const {
  return static_cast<std::size_t>(route - routes_.data());
}

}  // namespace jwtgate::proxy
