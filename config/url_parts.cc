#include "config/url_parts.h"

#include <arpa/inet.h>
#include <curl/curl.h>

#include <memory>

namespace jwtgate::config {
namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlStringDeleter {
  void operator()(char* s) const { curl_free(s); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

// The part, or nothing when the URL has none (CURLUE_NO_USER and friends) or it cannot be had.
bool get_part(CURLU* url, CURLUPart part, std::string& out) {
  char* raw = nullptr;
  const CURLUcode rc = curl_url_get(url, part, &raw, 0);
  CurlString owned(raw);
  if (rc != CURLUE_OK || !owned) return false;
  out = owned.get();
  return true;
}

bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

bool UrlParts::loopback() const {
  if (ascii_iequals(host, "localhost")) return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    const std::string literal = host.substr(1, host.size() - 2);
    in6_addr a{};
    if (inet_pton(AF_INET6, literal.c_str(), &a) != 1) return false;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
  }
  unsigned char v4[4];
  return inet_pton(AF_INET, host.c_str(), v4) == 1 && v4[0] == 127;
}

bool parse_url(std::string_view text, UrlParts& out, std::string& error) {
  // curl_url_set takes a C string: an embedded NUL would silently shorten the URL.
  if (text.find('\0') != std::string_view::npos) {
    error = "the URL contains a NUL byte";
    return false;
  }
  std::unique_ptr<CURLU, UrlDeleter> url(curl_url());
  if (!url) {
    error = "out of memory";
    return false;
  }
  const std::string copy(text);
  // The flags libcurl itself uses for CURLOPT_URL, minus CURLU_GUESS_SCHEME.
  const CURLUcode rc = curl_url_set(url.get(), CURLUPART_URL, copy.c_str(), CURLU_NON_SUPPORT_SCHEME);
  if (rc != CURLUE_OK) {
    error = std::string("not a URL libcurl accepts (") + curl_url_strerror(rc) + ")";
    return false;
  }
  UrlParts parts;
  std::string ignored;
  if (!get_part(url.get(), CURLUPART_SCHEME, parts.scheme) || !get_part(url.get(), CURLUPART_HOST, parts.host)) {
    error = "the URL has no scheme or no host";
    return false;
  }
  parts.has_userinfo = get_part(url.get(), CURLUPART_USER, ignored) || get_part(url.get(), CURLUPART_PASSWORD, ignored) ||
                       get_part(url.get(), CURLUPART_OPTIONS, ignored);
  out = std::move(parts);
  return true;
}

}  // namespace jwtgate::config
