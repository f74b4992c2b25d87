// IP networks in CIDR notation ("10.0.0.0/8", "fd00::/8", or a bare address for one host), and
// the test of a peer's address against them. forward_auth.trusted_proxies is a list of these.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace jwtgate::config {

// An IPv4 address is held as its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so a peer that a
// dual-stack listener reports as ::ffff:10.1.2.3 matches 10.0.0.0/8, and only that.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;
};

struct IpNetwork {
  IpAddress base;
  unsigned prefix_bits = 0;  // of the 128-bit form: an IPv4 /8 is 104 (96 + 8)
  std::string text;          // as written, for messages and /config
  bool contains(const IpAddress& a) const;
};

// A literal IPv4 or IPv6 address (no brackets, no port, no zone). IPv4-mapped IPv6 addresses
// are IPv4.
std::optional<IpAddress> parse_ip_address(std::string_view text);

// "ADDRESS/BITS" or "ADDRESS". False with why in `error` for anything else, including a base
// with host bits set ("10.0.0.1/8"): such a typo would trust a network the writer did not mean.
bool parse_ip_network(std::string_view text, IpNetwork& out, std::string& error);

}  // namespace jwtgate::config
