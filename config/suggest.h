// "Did you mean" for misspelled keys and values.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace jwtgate::config {

// The closest candidate within a small edit distance (case-insensitive), or empty.
std::string closest_match(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace jwtgate::config
