#include "tests/fuzz/http_fuzz_tokens.h"

#include <cstdint>

#include "tests/fuzz/http_fuzz_harness.h"

namespace jwtgate::fuzz {
namespace {

std::string payload(std::string_view sub, std::string_view scope, std::int64_t exp, std::string_view iss) {
  return R"({"iss":")" + std::string(iss) + R"(","aud":"api","sub":")" + std::string(sub) + R"(","scope":")" +
         std::string(scope) + R"(","iat":)" + std::to_string(kNow - 60) + R"(,"exp":)" + std::to_string(exp) + "}";
}

}  // namespace

const std::vector<TokenInfo>& fuzz_tokens() {
  static const std::vector<TokenInfo> t = [] {
    std::vector<TokenInfo> out = {
        {'A', "alice", "read", true, {}, {}},
        {'D', "dana", "read admin", true, {}, {}},
        {'B', "bob", "write", true, {}, {}},
        {'X', "xavier", "read admin", false, {}, {}},  // expired
        {'I', "ivan", "read admin", false, {}, {}},    // another issuer
    };
    for (auto& i : out) {
      const std::int64_t exp = i.placeholder == 'X' ? kNow - 30 : kNow + 3600;
      const std::string iss = i.placeholder == 'I' ? "https://evil.fuzz/" : "https://idp.fuzz/";
      i.token = ProxyHarness::mint(payload(i.sub, i.scope, exp, iss));
      const std::size_t dot = i.token.find('.');
      i.payload_segment = i.token.substr(dot + 1, i.token.find('.', dot + 1) - dot - 1);
    }
    return out;
  }();
  return t;
}

std::string expand_tokens(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 512);
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '@' && i + 2 < in.size() && in[i + 1] == '@') {
      bool done = false;
      for (const auto& t : fuzz_tokens()) {
        if (in[i + 2] == t.placeholder) {
          out += t.token;
          i += 2;
          done = true;
          break;
        }
      }
      if (done) continue;
    }
    out += in[i];
  }
  return out;
}

}  // namespace jwtgate::fuzz
