// config::parse_url reads URLs with libcurl's own parser, so the loopback test of a plain-http
// JWKS looks at the host libcurl will connect to.
#include <doctest/doctest.h>

#include "config/url_parts.h"

using namespace jwtgate::config;

namespace {

struct Case {
  const char* url;
  const char* scheme;
  const char* host;
  bool loopback;
  bool userinfo;
};

}  // namespace

TEST_CASE("parse_url: the scheme and host libcurl connects to, and whether that host is loopback") {
  const Case cases[] = {
      // Userinfo is not the host: this is a fetch from 10.1.2.3.
      {"http://127.0.0.1:80@10.1.2.3/jwks.json", "http", "10.1.2.3", false, true},
      {"http://127.0.0.1%2f@10.1.2.3/", "http", "10.1.2.3", false, true},
      {"http://127.0.0.1\\@10.1.2.3/", "http", "10.1.2.3", false, true},
      {"http://user:pass@127.0.0.1:8080/jwks.json", "http", "127.0.0.1", true, true},
      // What follows '#' or '?' is not the authority.
      {"http://10.1.2.3#@127.0.0.1/", "http", "10.1.2.3", false, false},
      {"http://10.1.2.3?@127.0.0.1/", "http", "10.1.2.3", false, false},
      {"http://127.0.0.1:8081/jwks.json", "http", "127.0.0.1", true, false},
      {"http://127.255.0.9/", "http", "127.255.0.9", true, false},
      {"http://128.0.0.1/", "http", "128.0.0.1", false, false},
      // Schemes in any case are lowercased, as libcurl takes them.
      {"HTTP://127.0.0.1/jwks.json", "http", "127.0.0.1", true, false},
      {"HtTpS://IDP.example.com/jwks", "https", "IDP.example.com", false, false},
      // IPv6 literals, bracketed.
      {"http://[::1]", "http", "[::1]", true, false},
      {"http://[::1]:8080/jwks.json", "http", "[::1]", true, false},
      {"http://[0:0:0:0:0:0:0:1]/", "http", "[::1]", true, false},
      {"http://[::ffff:127.0.0.1]/", "http", "[::ffff:127.0.0.1]", true, false},
      {"http://[::ffff:10.0.0.1]/", "http", "[::ffff:10.0.0.1]", false, false},
      {"http://[fe80::1%25eth0]/", "http", "[fe80::1]", false, false},
      {"http://[::2]/", "http", "[::2]", false, false},
      // localhost in any case (libcurl answers it itself); nothing else is resolved.
      {"http://localhost/jwks.json", "http", "localhost", true, false},
      {"http://LocalHost:9000/", "http", "LocalHost", true, false},
      {"http://localhost./", "http", "localhost.", false, false},
      {"http://keys.localhost/", "http", "keys.localhost", false, false},
      {"http://127.0.0.1.nip.io/jwks.json", "http", "127.0.0.1.nip.io", false, false},
      // Percent-escapes in the host are decoded, as libcurl does before connecting.
      {"http://%31%32%37.0.0.1/", "http", "127.0.0.1", true, false},
      {"http://%31%30.0.0.1/", "http", "10.0.0.1", false, false},
      {"http://%6c%6f%63%61%6c%68%6f%73%74/", "http", "localhost", true, false},
      // Numeric IPv4 forms are normalised, and libcurl connects to the address they spell:
      // 0x7f.1 is 127.0.0.1, so it is loopback; 0x0a.1 is 10.0.0.1, so it is not.
      {"http://0x7f.1/", "http", "127.0.0.1", true, false},
      {"http://2130706433/", "http", "127.0.0.1", true, false},
      {"http://0177.0.0.1/", "http", "127.0.0.1", true, false},
      {"http://127.1/", "http", "127.0.0.1", true, false},
      {"http://0x0a.1/", "http", "10.0.0.1", false, false},
      // Not an address: a name for DNS.
      {"http://256.0.0.1/", "http", "256.0.0.1", false, false},
      {"socks5h://u:p@proxy.internal:1080", "socks5h", "proxy.internal", false, true},
  };
  for (const Case& c : cases) {
    const std::string url = c.url;
    CAPTURE(url);
    UrlParts u;
    std::string error;
    REQUIRE_MESSAGE(parse_url(c.url, u, error), error);
    CHECK(u.scheme == c.scheme);
    CHECK(u.host == c.host);
    CHECK(u.loopback() == c.loopback);
    CHECK(u.has_userinfo == c.userinfo);
  }
}

TEST_CASE("parse_url: refuses what libcurl refuses, and a URL without a scheme") {
  for (const std::string bad : {"idp.example.com/jwks.json", "127.0.0.1/jwks.json", " http://127.0.0.1/", "http://127.0.0.1 /",
                          "http://127.0.0.1:99999/", "http:127.0.0.1/x", "http://[::1/", ""}) {
    CAPTURE(bad);
    UrlParts u;
    std::string error;
    CHECK_FALSE(parse_url(bad, u, error));
    CHECK_FALSE(error.empty());
  }
  UrlParts u;
  std::string error;
  CHECK_FALSE(parse_url(std::string_view("http://127.0.0.1\0@10.1.2.3/", 27), u, error));
  // The message never repeats the URL, which may carry credentials.
  CHECK_FALSE(parse_url("http://user:s3cret@[::1/", u, error));
  CHECK(error.find("s3cret") == std::string::npos);
}
