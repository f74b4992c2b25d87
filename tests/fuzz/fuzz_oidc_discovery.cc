// OIDC discovery parsing. Input: one flag byte (bit 0: allow_http), the expected issuer up to the
// first '\n', then the document. Properties, beyond "no crash":
//  - a jwks_uri is only ever returned from a document whose "issuer" is the expected one, byte
//    for byte, and it is an absolute https URL (http only when allowed) with no control bytes,
//    spaces or non-ASCII bytes in it (it goes into fetches and log lines);
//  - allowing http never takes away an https answer;
//  - discovery_url(issuer) is issuer (one trailing '/' removed) + the well-known path.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/oidc_discovery.h"
#include "tests/fuzz/fuzz_support.h"

using namespace jwtgate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool allow_http = data[0] & 1;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) return 0;
  const std::string_view issuer = rest.substr(0, nl);
  const std::string_view document = rest.substr(nl + 1);

  const std::string url = core::discovery_url(issuer);
  std::string_view base = issuer;
  if (!base.empty() && base.back() == '/') base.remove_suffix(1);
  FUZZ_CHECK(url == std::string(base) + "/.well-known/openid-configuration");

  auto result = core::jwks_uri_from_discovery(document, issuer, allow_http);
  auto https_only = core::jwks_uri_from_discovery(document, issuer, false);
  if (https_only.ok()) {
    auto with_http = core::jwks_uri_from_discovery(document, issuer, true);
    FUZZ_CHECK(with_http.ok() && *with_http == *https_only);
  }
  if (!result.ok()) {
    FUZZ_CHECK(!result.status().detail().empty());
    return 0;
  }
  const std::string& uri = result.value();
  FUZZ_CHECK(uri.rfind("https://", 0) == 0 || (allow_http && uri.rfind("http://", 0) == 0));
  for (char c : uri) {
    const auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u > 0x20 && u < 0x7f);
  }
  // The issuer the document states, read independently (simdjson's DOM, not jwtgate's helper).
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(document);
  simdjson::dom::element root;
  FUZZ_CHECK(!parser.parse(padded).get(root));
  std::string_view stated;
  FUZZ_CHECK(!root["issuer"].get_string().get(stated));
  FUZZ_CHECK(stated == issuer);
  std::string_view stated_uri;
  FUZZ_CHECK(!root["jwks_uri"].get_string().get(stated_uri) && stated_uri == uri);
  return 0;
}
