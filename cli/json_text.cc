#include "cli/json_text.h"

#include <simdjson.h>

namespace jwtgate::cli {

std::string compact_json(std::string_view json) {
  if (json.empty()) return "null";
  std::string out(json.size(), '\0');
  std::size_t len = 0;
  if (simdjson::minify(json.data(), json.size(), out.data(), len) != simdjson::SUCCESS) return "null";
  out.resize(len);
  return out;
}

}  // namespace jwtgate::cli
