// Finding the bearer token in a request: the configured headers (with their scheme prefix,
// matched case-insensitively), cookies and, when configured, query parameters. More than one
// distinct token, a token header sent twice, or two cookies (or query parameters) of the token's
// name, is an invalid_request: which one the upstream would read is not ours to guess.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/status.h"
#include "proxy/http/http_head.h"

namespace jwtgate::proxy {

struct ExtractedToken {
  std::string token;    // empty when none was presented
  bool present = false;
  config::TokenSource source;  // where it was found (the first place, when it was in several)
  // Bit i: the token was found in sources[i] (bit 63 also stands for every source past it), so
  // that forward_token: false can remove it from every place it was sent in.
  std::uint64_t found_in = 0;
};

// `sources` is the union of the token sources of the providers a route accepts.
core::Status extract_token(const HeaderList& headers, std::string_view query,
                           const std::vector<config::TokenSource>& sources, ExtractedToken& out);

// One cookie-pair of a Cookie header, parsed as RFC 6265 §5.2 says a user agent's cookie string
// is: pairs split at ';', name and value split at the first '=', space and tab trimmed from both.
// ',' separates pairs too, as RFC 2965-era servers still read it (no cookie value may hold one).
struct CookiePair {
  std::string_view name;
  std::string_view value;  // without the optional surrounding DQUOTEs
  std::string_view text;   // the whole pair, trimmed, as sent
};

// Calls `visit(pair)` for each non-empty cookie-pair in `cookie_header`. A pair without '=' is
// visited as a name with an empty value (as some servers read it).
template <typename Visit>
void for_each_cookie(std::string_view cookie_header, Visit&& visit);

// The Cookie header value without any cookie some server reads as `name` (empty when nothing is
// left): case ignored, %XX decoded, PHP's name mangling applied.
std::string without_cookie(std::string_view cookie_header, std::string_view name);

// The query string without any parameter some server reads as `name` (as for cookies); '&' and
// ';' both separate parameters.
std::string without_query_param(std::string_view query, std::string_view name);

// --- implementation of the template ---
namespace detail {
inline std::string_view trim_wsp(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace detail

template <typename Visit>
void for_each_cookie(std::string_view header, Visit&& visit) {
  while (!header.empty()) {
    const std::size_t semi = header.find_first_of(";,");
    const std::string_view pair = detail::trim_wsp(header.substr(0, semi));
    const std::size_t eq = pair.find('=');
    if (!pair.empty()) {
      std::string_view value = eq == std::string_view::npos ? std::string_view() : detail::trim_wsp(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      visit(CookiePair{detail::trim_wsp(pair.substr(0, eq)), value, pair});
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
}

}  // namespace jwtgate::proxy
