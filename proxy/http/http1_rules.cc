#include "proxy/http/http1_rules.h"

#include <algorithm>
#include <cstdio>

namespace jwtgate::proxy {

bool is_hop_by_hop_field(std::string_view name) {
  static constexpr std::string_view hop[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                                             "transfer-encoding", "upgrade", "proxy-authorization",
                                             "proxy-authenticate"};
  for (auto h : hop) {
    if (iequals(name, h)) return true;
  }
  return false;
}

bool frames_or_routes(std::string_view name) {
  return same_header_to_cgi(name, "content-length") || same_header_to_cgi(name, "transfer-encoding") ||
         same_header_to_cgi(name, "host");
}

// No spaces or commas, so nothing downstream can read the value as a list of hosts.
bool valid_host(std::string_view host) {
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_' || c == '~' || c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

bool names_include(const std::vector<std::string>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return iequals(n, name); });
}

std::vector<std::string> http1_connection_options(const HeaderList& headers) {
  std::vector<std::string> out;
  for (std::string_view v : headers.all("connection")) {
    for_each_list_item(v, [&](std::string_view item) { out.emplace_back(item); });
  }
  return out;
}

std::string http1_chunk(std::string_view data) {
  char size[20];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out;
  out.reserve(static_cast<std::size_t>(n) + data.size() + 2);
  out.append(size, static_cast<std::size_t>(n));
  out.append(data);
  out += "\r\n";
  return out;
}

// Compared by name, a version after "/" included when the response gives one.
bool http1_upgrade_offered(std::string_view offered, std::string_view chosen) {
  std::string_view first;
  for_each_list_item(chosen, [&](std::string_view item) {
    if (first.empty()) first = item;
  });
  if (first.empty()) return false;
  bool found = false;
  for_each_list_item(offered, [&](std::string_view item) {
    const bool versioned = first.find('/') != std::string_view::npos;
    const std::string_view name = versioned ? item : item.substr(0, item.find('/'));
    found |= iequals(name, first);
  });
  return found;
}

}  // namespace jwtgate::proxy
