#include "config/redis_url.h"

#include <cctype>
#include <charconv>

namespace jwtgate::config {
namespace {

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

}  // namespace

bool parse_redis_url(std::string_view text, RedisUrl& out, std::string& error) {
  RedisUrl u;
  u.text = std::string(text);
  std::string_view rest = text;
  if (rest.starts_with("redis://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("rediss://")) {
    u.tls = true;
    rest.remove_prefix(9);
  } else {
    error = "must start with redis:// or rediss:// (TLS)";
    return false;
  }
  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (rest.find_first_of("?#") != std::string_view::npos || path.find_first_of("?#") != std::string_view::npos) {
    error = "takes no query or fragment";
    return false;
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (userinfo.find(':') != std::string_view::npos) {
      error = "must not hold a password: give it with password_file or password_env (--password-file, --password-env)";
      return false;
    }
    for (char c : userinfo) {
      if (!host_char(c) && c != '~' && c != '+') {
        error = "has a user name with characters other than letters, digits and -._~+";
        return false;
      }
    }
    u.username = std::string(userinfo);
  }
  std::string_view port;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) {
      error = "has an unclosed [ in its IPv6 host";
      return false;
    }
    u.host = std::string(rest.substr(1, close - 1));
    for (char c : u.host) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        error = "has an IPv6 host with characters other than hex digits, : and .";
        return false;
      }
    }
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        error = "has text after its IPv6 host";
        return false;
      }
      port = rest.substr(1);
    }
  } else {
    const auto colon = rest.find(':');
    u.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
    for (char c : u.host) {
      if (!host_char(c)) {
        error = "has a host with characters other than letters, digits and -._";
        return false;
      }
    }
  }
  if (u.host.empty()) {
    error = "has no host";
    return false;
  }
  if (!port.empty() || rest.ends_with(':')) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) {
      error = "has a port that is not a number from 1 to 65535";
      return false;
    }
    u.port = static_cast<std::uint16_t>(p);
  }
  if (!path.empty()) {
    unsigned db = 0;
    auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
    if (ec != std::errc() || end != path.data() + path.size() || db > 15) {
      error = "has a path that is not a database number (/0 to /15)";
      return false;
    }
    u.db = db;
  }
  out = std::move(u);
  return true;
}

}  // namespace jwtgate::config
