#include <doctest/doctest.h>

#include "config/ip_network.h"

using namespace jwtgate::config;

namespace {

IpNetwork net(const std::string& text) {
  IpNetwork n;
  std::string why;
  REQUIRE_MESSAGE(parse_ip_network(text, n, why), text << ": " << why);
  return n;
}

bool contains(const std::string& network, const std::string& address) {
  const auto a = parse_ip_address(address);
  REQUIRE_MESSAGE(a.has_value(), address);
  return net(network).contains(*a);
}

std::string refusal(const std::string& text) {
  IpNetwork n;
  std::string why;
  CHECK_MESSAGE(!parse_ip_network(text, n, why), text);
  return why;
}

}  // namespace

TEST_CASE("IPv4 networks cover exactly their prefix, at every boundary") {
  CHECK(contains("10.0.0.0/8", "10.0.0.0"));
  CHECK(contains("10.0.0.0/8", "10.255.255.255"));
  CHECK_FALSE(contains("10.0.0.0/8", "11.0.0.0"));
  CHECK_FALSE(contains("10.0.0.0/8", "9.255.255.255"));
  CHECK(contains("192.168.1.128/25", "192.168.1.200"));
  CHECK_FALSE(contains("192.168.1.128/25", "192.168.1.127"));
  CHECK(contains("172.16.0.0/12", "172.31.255.1"));
  CHECK_FALSE(contains("172.16.0.0/12", "172.32.0.1"));
  CHECK(contains("127.0.0.2", "127.0.0.2"));  // a bare address is one host
  CHECK_FALSE(contains("127.0.0.2", "127.0.0.3"));
  CHECK(contains("127.0.0.2/32", "127.0.0.2"));
  CHECK(contains("0.0.0.0/0", "203.0.113.9"));
}

TEST_CASE("IPv6 networks, and IPv4 peers a dual-stack listener reports in mapped form") {
  CHECK(contains("fd00::/8", "fd12:3456::1"));
  CHECK_FALSE(contains("fd00::/8", "fe80::1"));
  CHECK(contains("2001:db8::/32", "2001:db8:ffff::1"));
  CHECK_FALSE(contains("2001:db8::/32", "2001:db9::1"));
  CHECK(contains("::1", "::1"));
  CHECK_FALSE(contains("::1", "::2"));
  CHECK(contains("2001:db8::/127", "2001:db8::1"));
  CHECK_FALSE(contains("2001:db8::/127", "2001:db8::2"));
  // ::ffff:10.1.2.3 is the IPv4 peer 10.1.2.3: trusted by 10.0.0.0/8, and by nothing IPv6 but ::/0.
  CHECK(contains("10.0.0.0/8", "::ffff:10.1.2.3"));
  CHECK_FALSE(contains("10.0.0.0/8", "::ffff:11.1.2.3"));
  CHECK_FALSE(contains("fd00::/8", "::ffff:10.1.2.3"));
  CHECK(contains("::ffff:10.0.0.0/8", "10.9.9.9"));
  // An IPv6 network never covers an IPv4 peer by accident of the mapped prefix.
  CHECK_FALSE(contains("::/8", "10.1.2.3"));
  CHECK_FALSE(contains("::1", "0.0.0.1"));
  CHECK_FALSE(contains("::/0", "10.1.2.3"));
  CHECK_FALSE(contains("0.0.0.0/0", "::1"));
  CHECK(parse_ip_address("::ffff:127.0.0.1")->v4);
  CHECK_FALSE(parse_ip_address("::1")->v4);
}

TEST_CASE("malformed networks and bases with host bits set are refused with a reason") {
  CHECK(refusal("10.0.0.1/8").find("10.0.0.0/8") != std::string::npos);  // says what to write
  CHECK(refusal("fd00::1/8").find("bits set") != std::string::npos);
  CHECK(refusal("10.0.0.0/33").find("0 to 32") != std::string::npos);
  CHECK(refusal("fd00::/129").find("0 to 128") != std::string::npos);
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/ 8", "10.0.0.0/+8",
                          "10.0.0.0/0x8", "10.0.0/8", "10.0.0.0.0", "localhost", "[::1]", "::1%lo", "fe80::1%eth0/64",
                          "10.0.0.0/0008", "1.2.3.4 ", " 1.2.3.4"}) {
    CAPTURE(bad);
    CHECK_FALSE(refusal(bad).empty());
  }
}
