// The tokens the HTTP fuzz targets move around: minted once with ProxyHarness::mint, and named
// in an input by a placeholder ("@@A" is alice's token), so the fuzzer can put a valid token in
// any header without having to find a signature.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace jwtgate::fuzz {

struct TokenInfo {
  char placeholder;
  std::string sub, scope;
  bool valid;  // signed, unexpired, right issuer and audience
  std::string token;
  std::string payload_segment;  // the token's second part, what forward_payload_header carries
};

// A alice "read", D dana "read admin", B bob "write"; X xavier (expired) and I ivan (another
// issuer), both "read admin", never valid.
const std::vector<TokenInfo>& fuzz_tokens();

// `in` with every "@@<placeholder>" replaced by its token.
std::string expand_tokens(std::string_view in);

}  // namespace jwtgate::fuzz
