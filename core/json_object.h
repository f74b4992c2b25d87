// Strict parsing of a JSON object as JOSE requires it (RFC 7515 §4, RFC 7519 §4): the text must
// be one JSON object, member names must be unique at every level after unescaping
// ("\u0065xp" is "exp"), and nesting is bounded.
#pragma once

#include <simdjson.h>

#include <string_view>

#include "core/status.h"

namespace jwtgate::core {

inline constexpr std::size_t kMaxJsonDepth = 32;

// The array or object inside an element already known to be one (an empty one otherwise).
// Returned by value so range-for loops do not iterate a dangling temporary.
inline simdjson::dom::array as_array(simdjson::dom::element e) {
  simdjson::dom::array a;
  if (e.get_array().get(a)) return {};
  return a;
}
inline simdjson::dom::object as_object(simdjson::dom::element e) {
  simdjson::dom::object o;
  if (e.get_object().get(o)) return {};
  return o;
}

// Prepares a parser with jwtgate's depth bound. Call once per parser.
bool init_json_parser(simdjson::dom::parser& parser, std::size_t initial_capacity = 4096);

// Parses `json` with `parser` and stores the root object in `out` (valid until the parser is
// used again). `what` names the document in error details ("JOSE header", "JWKS"). When `json`
// lives in a buffer with SIMDJSON_PADDING spare capacity, `padded` avoids a copy.
Status parse_json_object(simdjson::dom::parser& parser, std::string_view json, bool padded,
                         std::string_view what, simdjson::dom::object& out);

}  // namespace jwtgate::core
