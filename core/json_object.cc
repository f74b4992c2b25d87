#include "core/json_object.h"

#include <algorithm>
#include <string>
#include <vector>

namespace jwtgate::core {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

bool has_duplicate_keys(simdjson::dom::object obj) {
  // Objects in tokens are small: a quadratic scan with no allocation beats sorting until they
  // are not.
  const std::size_t n = obj.size();
  if (n <= 32) {
    std::string_view keys[32];
    std::size_t i = 0;
    for (auto field : obj) {
      for (std::size_t j = 0; j < i; ++j) {
        if (keys[j] == field.key) return true;
      }
      keys[i++] = field.key;
    }
    return false;
  }
  std::vector<std::string_view> keys;
  keys.reserve(n);
  for (auto field : obj) keys.push_back(field.key);
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

bool any_duplicate(element e) {
  switch (e.type()) {
    case element_type::OBJECT: {
      simdjson::dom::object obj = as_object(e);
      if (has_duplicate_keys(obj)) return true;
      for (auto field : obj) {
        if (any_duplicate(field.value)) return true;
      }
      return false;
    }
    case element_type::ARRAY:
      for (element child : as_array(e)) {
        if (any_duplicate(child)) return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace

bool init_json_parser(simdjson::dom::parser& parser, std::size_t initial_capacity) {
  return parser.allocate(initial_capacity, kMaxJsonDepth) == simdjson::SUCCESS;
}

Status parse_json_object(simdjson::dom::parser& parser, std::string_view json, bool padded,
                         std::string_view what, simdjson::dom::object& out) {
  element root;
  auto err = parser.parse(reinterpret_cast<const std::uint8_t*>(json.data()), json.size(), !padded).get(root);
  if (err) {
    std::string detail(what);
    if (err == simdjson::DEPTH_ERROR) {
      detail += " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    } else {
      detail += " is not valid JSON (";
      detail += simdjson::error_message(err);
      detail += ')';
    }
    return {Reason::malformed, std::move(detail)};
  }
  if (!root.is_object()) return {Reason::malformed, std::string(what) + " is not a JSON object"};
  if (any_duplicate(root)) return {Reason::malformed, std::string(what) + " has a duplicate member name"};
  out = as_object(root);
  return Status::Ok();
}

}  // namespace jwtgate::core
