// A URL taken apart by libcurl's own URL parser (curl_url), so that what the configuration checks
// about a JWKS or discovery URL — its scheme, and whether its host is loopback — is what the
// fetcher will connect to. Hand-written splitting disagreed with libcurl: userinfo such as
// "http://127.0.0.1:80@10.1.2.3/" was read as the host 127.0.0.1.
#pragma once

#include <string>
#include <string_view>

namespace jwtgate::config {

struct UrlParts {
  std::string scheme;  // lowercase, as libcurl reports it ("HTTP://" is "http")
  // The host libcurl connects to: percent-escapes decoded, numeric IPv4 forms normalised
  // ("0x7f.1" and "2130706433" are "127.0.0.1"), IPv6 literals in brackets ("[::1]").
  std::string host;
  bool has_userinfo = false;  // a user name or password before '@'

  // Whether a connection to `host` stays on this machine: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104,
  // and "localhost" in any case, which libcurl resolves itself without asking DNS. Nothing is
  // resolved here, so every other name ("127.0.0.1.nip.io", "localhost.") is not loopback.
  bool loopback() const;
};

// Parses `text` as libcurl parses CURLOPT_URL, except that the scheme must be written (libcurl
// would guess "http" for "idp.example.com/jwks"). On failure returns false and says why in
// `error`, without repeating `text` (it may hold credentials).
bool parse_url(std::string_view text, UrlParts& out, std::string& error);

}  // namespace jwtgate::config
