#include "config/duration.h"

#include <charconv>
#include <limits>

namespace jwtgate::config {
namespace {

struct Unit {
  std::string_view suffix;
  std::uint64_t factor;
};

std::optional<std::uint64_t> parse_scaled(std::string_view text, std::initializer_list<Unit> units) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 18) return std::nullopt;
  std::uint64_t n = 0;
  std::from_chars(text.data(), text.data() + digits, n);
  const std::string_view suffix = text.substr(digits);
  for (const auto& u : units) {
    if (suffix == u.suffix) {
      if (n > std::numeric_limits<std::uint64_t>::max() / u.factor) return std::nullopt;
      return n * u.factor;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto ms = parse_scaled(text, {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}});
  if (!ms || *ms > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(*ms));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  return parse_scaled(text, {{"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024ull * 1024 * 1024}});
}

}  // namespace jwtgate::config
