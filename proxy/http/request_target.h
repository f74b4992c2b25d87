// The request target as jwtgate authorizes it and forwards it. Matching and forwarding use the
// same normalized path, so a rule cannot be skipped by a spelling the upstream reads
// differently (/public/../admin, /public/%2e%2e/admin, //admin, /admin;x).
#pragma once

#include <string>
#include <string_view>

namespace jwtgate::proxy {

struct RequestTarget {
  std::string path;        // normalized; what the upstream receives
  std::string match_path;  // `path` with ";params" removed from each segment; what routes match
  std::string query;       // after '?', as received (never used for routing)
  bool has_query = false;
};

// Origin-form targets only ("/path?query"). Percent-escapes of unreserved characters are
// decoded, other escapes are kept with upper-case hex; "%2F", "%5C", "%00", a raw backslash,
// control or non-ASCII bytes, a '#' and malformed escapes are refused (returns false with a
// reason). Dot segments are resolved (RFC 3986 §5.2.4) and repeated slashes merged; a ".."
// right after a segment that is only ";params" is refused, as servers resolve it two ways.
bool normalize_request_target(std::string_view target, RequestTarget& out, std::string& error);

// The value of one hex digit of a %-escape, or -1.
int hex_value(char c);

}  // namespace jwtgate::proxy
