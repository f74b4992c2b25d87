#include "core/oidc_discovery.h"

#include <algorithm>

#include "core/json_object.h"

namespace jwtgate::core {

std::string discovery_url(std::string_view issuer) {
  if (!issuer.empty() && issuer.back() == '/') issuer.remove_suffix(1);
  return std::string(issuer) + "/.well-known/openid-configuration";
}

Result<std::string> jwks_uri_from_discovery(std::string_view document, std::string_view expected_issuer,
                                            bool allow_http) {
  simdjson::dom::parser parser;
  if (!init_json_parser(parser, document.size())) return Status(Reason::malformed, "discovery document: out of memory");
  simdjson::dom::object root;
  if (Status s = parse_json_object(parser, document, false, "discovery document", root); !s) return s;
  std::string_view issuer;
  if (root["issuer"].get_string().get(issuer)) {
    return Status(Reason::malformed, "the discovery document has no \"issuer\" string");
  }
  if (issuer != expected_issuer) {
    // Both are configuration, not secrets, and an operator needs to see the difference.
    return Status(Reason::bad_issuer, "the discovery document's issuer \"" + std::string(issuer.substr(0, 256)) +
                                          "\" is not the configured issuer \"" + std::string(expected_issuer) + "\"");
  }
  std::string_view uri;
  if (root["jwks_uri"].get_string().get(uri)) {
    return Status(Reason::malformed, "the discovery document has no \"jwks_uri\" string");
  }
  const bool https = uri.rfind("https://", 0) == 0 && uri.size() > 8;
  const bool http = uri.rfind("http://", 0) == 0 && uri.size() > 7;
  if (!https && !(allow_http && http)) {
    return Status(Reason::malformed, allow_http ? "the discovery document's jwks_uri is not an http(s) URL"
                                                : "the discovery document's jwks_uri is not an https URL");
  }
  // A URL is printable ASCII (RFC 3986: anything else is percent-encoded); it goes into fetches
  // and log lines, where a control byte (DEL, VT, ESC...) or raw UTF-8 has no business.
  const bool printable = std::all_of(uri.begin(), uri.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f;
  });
  if (uri.size() > 2048 || !printable) {
    return Status(Reason::malformed, "the discovery document's jwks_uri is not a usable URL");
  }
  return std::string(uri);
}

}  // namespace jwtgate::core
