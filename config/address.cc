#include "config/address.h"

#include <arpa/inet.h>

#include <charconv>

namespace jwtgate::config {
namespace {

bool parse_port(std::string_view text, std::uint16_t& port) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool is_dns_name(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') return false;
  for (char c : host) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return true;
}

// "host:port" or "[v6]:port" into its parts.
bool split_host_port(std::string_view text, std::string& host, std::string_view& port, bool& bracketed) {
  bracketed = !text.empty() && text.front() == '[';
  if (bracketed) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    return true;
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || text.find(':') != colon) return false;
  host = std::string(text.substr(0, colon));
  port = text.substr(colon + 1);
  return true;
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  unsigned char buf[4];
  const std::string h(host);
  return inet_pton(AF_INET, h.c_str(), buf) == 1 && buf[0] == 127;
}

std::string local_base_url(const ListenAddress& listen) {
  if (listen.host == "0.0.0.0" || listen.host == "::") return "http://localhost:" + std::to_string(listen.port);
  return "http://" + listen.text;
}

bool parse_listen_address(std::string_view text, ListenAddress& out, std::string& error) {
  std::string host;
  std::string_view port;
  bool bracketed = false;
  error = "expected ADDRESS:PORT such as 0.0.0.0:8080, 127.0.0.1:9901 or [::]:8080";
  if (!split_host_port(text, host, port, bracketed)) return false;
  if (!parse_port(port, out.port)) {
    error = "port must be a number from 1 to 65535";
    return false;
  }
  if (host != "localhost" && !is_ip_literal(host)) {
    error = "\"" + host + "\" is not an IP address (use 0.0.0.0 for all interfaces, 127.0.0.1 for loopback)";
    return false;
  }
  if (bracketed != (host.find(':') != std::string::npos)) {
    error = "IPv6 addresses are written in brackets, such as [::1]:8080";
    return false;
  }
  out.host = host;
  out.text = std::string(text);
  return true;
}

bool parse_upstream_url(std::string_view text, UpstreamUrl& out, std::string& error) {
  const bool tls = text.substr(0, 8) == "https://";
  const bool h2 = text.substr(0, 6) == "h2c://";
  if (!tls && !h2 && text.substr(0, 7) != "http://") {
    error = "expected an http://, https:// or h2c:// URL such as http://127.0.0.1:3000";
    return false;
  }
  std::string_view rest = text.substr(tls ? 8 : h2 ? 6 : 7);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    error = "the upstream URL takes only a host and port; paths, queries and credentials are not supported";
    return false;
  }
  std::string host;
  std::string_view port;
  bool bracketed = false;
  std::uint16_t port_number = tls ? 443 : 80;
  if (rest.find(':') == std::string_view::npos || (rest.size() >= 2 && rest.front() == '[' && rest.back() == ']')) {
    host = std::string(!rest.empty() && rest.front() == '[' ? rest.substr(1, rest.size() - 2) : rest);
  } else if (!split_host_port(rest, host, port, bracketed) || !parse_port(port, port_number)) {
    error = "expected http(s)://HOST[:PORT] or h2c://HOST[:PORT] with a port from 1 to 65535";
    return false;
  }
  if (!is_host(host)) {
    error = "\"" + host + "\" is not a host name or IP address";
    return false;
  }
  out.host = host;
  out.port = port_number;
  out.text = std::string(text);
  out.tls = tls;
  out.h2 = h2;
  return true;
}

bool is_host(std::string_view host) {
  const std::string h(host);
  return is_ip_literal(h) || is_dns_name(host);
}

}  // namespace jwtgate::config
