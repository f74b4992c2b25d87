#include "config/ip_network.h"

#include <arpa/inet.h>

#include <cstring>

namespace jwtgate::config {
namespace {

constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 3 && s.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

std::optional<IpAddress> parse_ip_address(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  IpAddress a;
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    std::memcpy(a.bytes.data(), kMappedPrefix, 12);
    std::memcpy(a.bytes.data() + 12, &v4, 4);
    a.v4 = true;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(a.bytes.data(), &v6, 16);
    a.v4 = std::memcmp(a.bytes.data(), kMappedPrefix, 12) == 0;
    return a;
  }
  return std::nullopt;
}

bool IpNetwork::contains(const IpAddress& a) const {
  const unsigned full = prefix_bits / 8, rest = prefix_bits % 8;
  if (std::memcmp(a.bytes.data(), base.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (base.bytes[full] & mask);
}

bool parse_ip_network(std::string_view text, IpNetwork& out, std::string& error) {
  const std::size_t slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  const auto base = parse_ip_address(address);
  if (!base) {
    error = "expected an IP network such as 10.0.0.0/8, fd00::/8 or a single address such as 127.0.0.1";
    return false;
  }
  const unsigned width = base->v4 ? 32 : 128;
  unsigned bits = width;
  if (slash != std::string_view::npos) {
    const std::string_view b = text.substr(slash + 1);
    if (!all_digits(b) || std::stoul(std::string(b)) > width) {
      error = "the prefix length after '/' must be a number from 0 to " + std::to_string(width) +
              " for an IPv" + (base->v4 ? "4" : "6") + " network";
      return false;
    }
    bits = static_cast<unsigned>(std::stoul(std::string(b)));
  }
  IpNetwork n;
  n.base = *base;
  n.prefix_bits = bits + (base->v4 ? 96 : 0);
  n.text = std::string(text);
  // The base must be the network's first address: with host bits set, which network was meant
  // (10.0.0.1/8 for 10.0.0.0/8, or a /32 typed wrongly) is a guess a trust list must not make.
  for (unsigned i = n.prefix_bits; i < 128; ++i) {
    if (n.base.bytes[i / 8] & (0x80 >> (i % 8))) {
      error = "the address has bits set beyond its /" + std::to_string(bits) +
              " prefix; write the network's first address (such as 10.0.0.0/8) or a single address";
      return false;
    }
  }
  out = std::move(n);
  return true;
}

}  // namespace jwtgate::config
