// Finding the bearer token in a request: the configured headers (with their scheme prefix,
// matched case-insensitively), cookies and, when configured, query parameters. More than one
// distinct token, or a token header sent twice, is an invalid_request.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/status.h"
#include "proxy/http_head.h"

namespace jwtgate::proxy {

struct ExtractedToken {
  std::string token;    // empty when none was presented
  bool present = false;
  config::TokenSource source;  // where it was found (the first place, when it was in several)
};

// `sources` is the union of the token sources of the providers a route accepts.
core::Status extract_token(const HeaderList& headers, std::string_view query,
                           const std::vector<config::TokenSource>& sources, ExtractedToken& out);

// The value of cookie `name` in one Cookie header value, or nullopt-like empty with found=false.
bool find_cookie(std::string_view cookie_header, std::string_view name, std::string_view& value);

}  // namespace jwtgate::proxy
