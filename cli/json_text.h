// Helpers to print decoded token parts inside the CLI's JSON output.
#pragma once

#include <string>
#include <string_view>

namespace jwtgate::cli {

// `json` (already validated JSON) without insignificant whitespace, or "null" when empty.
std::string compact_json(std::string_view json);

}  // namespace jwtgate::cli
