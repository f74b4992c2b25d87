// Strict parsing of the human units config and CLI flags use: durations ("500ms", "30s",
// "5m", "1h") and sizes ("512B", "16KiB", "1MiB").
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace jwtgate::config {

// One non-negative integer and one unit, nothing else: "1h30m", "1.5s", " 5s" and "5" are
// refused (a bare number is ambiguous).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Bytes: a non-negative integer with B, KiB, MiB or GiB.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace jwtgate::config
