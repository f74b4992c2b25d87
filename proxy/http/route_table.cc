#include "proxy/http/route_table.h"

#include <algorithm>

#include "proxy/http/http_head.h"

namespace jwtgate::proxy {

RouteTable::RouteTable(const std::vector<config::Route>& routes, bool case_sensitive)
    : routes_(routes), case_sensitive_(case_sensitive) {
  for (std::size_t i = 0; i < routes_.size(); ++i) order_.push_back(i);
  std::stable_sort(order_.begin(), order_.end(), [this](std::size_t x, std::size_t y) {
    const config::Route& a = routes_[x];
    const config::Route& b = routes_[y];
    if (a.prefix.size() != b.prefix.size()) return a.prefix.size() > b.prefix.size();
    return !a.methods.empty() && b.methods.empty();
  });
}

bool RouteTable::covers(std::string_view prefix, std::string_view path, bool case_sensitive) {
  if (prefix == "/") return true;
  if (path.size() < prefix.size()) return false;
  const std::string_view head = path.substr(0, prefix.size());
  if (case_sensitive ? head != prefix : !iequals(head, prefix)) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

const config::Route* RouteTable::match_with(std::string_view match_path, std::string_view method, std::string* allow,
                                            bool case_sensitive) const {
  if (allow) allow->clear();
  std::size_t longest = 0;
  bool found = false;
  for (std::size_t i : order_) {
    const config::Route& r = routes_[i];
    // order_ is longest prefix first: once a prefix covered the path, shorter ones never apply.
    if (found && r.prefix.size() < longest) break;
    if (!covers(r.prefix, match_path, case_sensitive)) continue;
    found = true;
    longest = r.prefix.size();
    if (r.methods.empty() || std::find(r.methods.begin(), r.methods.end(), method) != r.methods.end()) return &r;
    if (!allow) continue;
    for (const auto& m : r.methods) {
      bool listed = false;
      for (std::size_t at = 0; at < allow->size();) {
        const std::size_t end = std::min(allow->find(", ", at), allow->size());
        listed |= std::string_view(*allow).substr(at, end - at) == m;
        at = end + 2;
      }
      if (listed) continue;
      if (!allow->empty()) *allow += ", ";
      *allow += m;
    }
  }
  return nullptr;
}

std::size_t RouteTable::index_of(const config::Route* route) const {
  return static_cast<std::size_t>(route - routes_.data());
}

}  // namespace jwtgate::proxy
