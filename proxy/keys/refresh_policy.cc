#include "proxy/keys/refresh_policy.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>

namespace jwtgate::proxy {

std::optional<std::chrono::seconds> cache_control_max_age(std::string_view header) {
  std::optional<std::chrono::seconds> result;
  bool no_cache = false;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    std::string lower(item);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == "no-cache" || lower == "no-store") {
      no_cache = true;
    } else if (lower.rfind("max-age=", 0) == 0) {
      std::string_view digits = std::string_view(lower).substr(8);
      if (digits.size() >= 2 && digits.front() == '"' && digits.back() == '"') digits = digits.substr(1, digits.size() - 2);
      if (digits.empty() || digits.size() > 10 || digits.find_first_not_of("0123456789") != std::string_view::npos) {
        continue;  // a malformed directive is ignored, as RFC 9111 §4.2.1 asks
      }
      const std::int64_t v = std::stoll(std::string(digits));
      if (!result || std::chrono::seconds(v) < *result) result = std::chrono::seconds(v);
    }
  }
  if (no_cache) return std::chrono::seconds(0);
  return result;
}

std::chrono::milliseconds refresh_delay(std::optional<std::chrono::seconds> max_age, const config::JwksConfig& jwks,
                                        double jitter) {
  using std::chrono::milliseconds;
  milliseconds base = std::chrono::duration_cast<milliseconds>(jwks.refresh_interval);
  if (max_age) {
    base = std::clamp(std::chrono::duration_cast<milliseconds>(*max_age),
                      std::chrono::duration_cast<milliseconds>(jwks.min_refresh_interval), base);
  }
  jitter = std::clamp(jitter, 0.0, 1.0);
  return milliseconds(static_cast<std::int64_t>(static_cast<double>(base.count()) * (1.0 - 0.1 * jitter)));
}

std::chrono::milliseconds retry_delay(unsigned failures, const config::JwksConfig& jwks, double jitter) {
  using std::chrono::milliseconds;
  const milliseconds cap = std::min(std::chrono::duration_cast<milliseconds>(jwks.refresh_interval), milliseconds(60000));
  milliseconds d(1000);
  for (unsigned i = 1; i < failures && d < cap; ++i) d *= 2;
  d = std::min(d, cap);
  jitter = std::clamp(jitter, 0.0, 1.0);
  return std::max(milliseconds(100), milliseconds(static_cast<std::int64_t>(static_cast<double>(d.count()) * (1.0 - 0.2 * jitter))));
}

}  // namespace jwtgate::proxy
