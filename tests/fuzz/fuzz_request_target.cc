// Request-target normalisation and route matching. Input lines: the request target, the method,
// then route prefixes ("/prefix" or "/prefix GET,POST"), added to a fixed table. Properties:
//  - normalising is idempotent: the normalised target normalises to itself (path and match path);
//  - no "." or ".." segment survives (with or without ;params), no empty segment, no escape of an
//    unreserved character, no lower-case hex, and the match path is the path without ;params;
//  - the route picked for a normalised path is the route picked for its re-normalisation;
//  - the route picked covers the path segment-wise and is the longest prefix that does (checked
//    against a plain reference); no route at all means no prefix covers it;
//  - case folding only makes matching stricter: the case-insensitive table's exact match is the
//    case-sensitive table's match, and case-insensitive matching ignores the path's case.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/http/request_target.h"
#include "proxy/http/route_table.h"
#include "tests/fuzz/fuzz_support.h"

using namespace jwtgate;

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const std::size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

// What the loader accepts as a prefix (config/routes.cc: prefix_problem), approximately: a
// normalised path without trailing '/', ;params or escapes.
bool usable_prefix(std::string_view p) {
  if (p.empty() || p[0] != '/' || p.size() > 64) return false;
  if (p.size() > 1 && p.back() == '/') return false;
  if (p.find("//") != std::string_view::npos) return false;
  for (char c : p) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '-' ||
          c == '_' || c == '~')) {
      return false;
    }
  }
  return true;
}

// Segment-wise prefix cover, written plainly (no shared code with RouteTable).
bool reference_covers(std::string_view prefix, std::string_view path, bool case_sensitive) {
  if (prefix == "/") return true;
  std::string p(prefix), q(path);
  if (!case_sensitive) { p = fuzz::ascii_lower(p); q = fuzz::ascii_lower(q); }
  if (q.size() < p.size() || q.compare(0, p.size(), p) != 0) return false;
  return q.size() == p.size() || q[p.size()] == '/';
}

std::size_t index_or_npos(const proxy::RouteTable& t, const config::Route* r) {
  return r ? t.index_of(r) : std::string::npos;
}

void check_normalised(const proxy::RequestTarget& t) {
  FUZZ_CHECK(!t.path.empty() && t.path[0] == '/');
  FUZZ_CHECK(!t.match_path.empty() && t.match_path[0] == '/');
  FUZZ_CHECK(t.path.find("//") == std::string::npos && t.match_path.find("//") == std::string::npos);
  for (std::string_view seg : split(std::string_view(t.path).substr(1), '/')) {
    const std::string_view name = seg.substr(0, seg.find(';'));
    FUZZ_CHECK(name != "." && name != "..");
  }
  for (std::string_view seg : split(std::string_view(t.match_path).substr(1), '/')) {
    FUZZ_CHECK(seg != "." && seg != ".." && seg.find(';') == std::string_view::npos);
  }
  for (std::size_t i = 0; i < t.path.size(); ++i) {
    const char c = t.path[i];
    FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '\\' && c != '#' && c != '?');
    if (c != '%') continue;
    FUZZ_CHECK(i + 2 < t.path.size());
    const std::string_view hex = std::string_view(t.path).substr(i + 1, 2);
    for (char h : hex) FUZZ_CHECK((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'));
    const int v = proxy::hex_value(hex[0]) * 16 + proxy::hex_value(hex[1]);
    const bool unreserved = (v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') || (v >= '0' && v <= '9') ||
                            v == '-' || v == '.' || v == '_' || v == '~';
    FUZZ_CHECK(!unreserved && v != '/' && v != '\\' && v != 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string_view> lines = split(in, '\n');
  const std::string_view target = lines[0];
  const std::string method = lines.size() > 1 && !lines[1].empty() ? std::string(lines[1].substr(0, 16)) : "GET";

  std::vector<config::Route> routes;
  for (const char* p : {"/", "/public", "/api/v1", "/admin", "/Admin/Reports"}) {
    config::Route r;
    r.prefix = p;
    routes.push_back(r);
  }
  routes[2].methods = {"GET", "HEAD"};
  for (std::size_t i = 2; i < lines.size() && routes.size() < 16; ++i) {
    const std::vector<std::string_view> parts = split(lines[i], ' ');
    if (!usable_prefix(parts[0])) continue;
    config::Route r;
    r.prefix = std::string(parts[0]);
    if (parts.size() > 1) {
      for (std::string_view m : split(parts[1], ',')) {
        if (!m.empty()) r.methods.emplace_back(m);
      }
    }
    routes.push_back(r);
  }
  const proxy::RouteTable folded(routes, false), exact(routes, true);

  proxy::RequestTarget once;
  std::string error;
  if (!proxy::normalize_request_target(target, once, error)) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  check_normalised(once);
  std::string again_text = once.path;
  if (once.has_query) again_text += "?" + once.query;
  proxy::RequestTarget twice;
  FUZZ_CHECK(proxy::normalize_request_target(again_text, twice, error));
  FUZZ_CHECK(twice.path == once.path && twice.match_path == once.match_path && twice.query == once.query &&
             twice.has_query == once.has_query);

  for (const proxy::RouteTable* table : {&folded, &exact}) {
    const bool cs = table->case_sensitive();
    std::string allow1, allow2;
    const config::Route* r1 = table->match(once.match_path, method, &allow1);
    const config::Route* r2 = table->match(twice.match_path, method, &allow2);
    FUZZ_CHECK(r1 == r2 && allow1 == allow2);
    std::size_t longest = 0;
    bool any = false;
    for (const config::Route& r : routes) {
      if (reference_covers(r.prefix, once.match_path, cs)) { any = true; longest = std::max(longest, r.prefix.size()); }
    }
    FUZZ_CHECK(any == (r1 != nullptr || !allow1.empty()));
    if (r1) {
      FUZZ_CHECK(reference_covers(r1->prefix, once.match_path, cs));
      FUZZ_CHECK(r1->prefix.size() == longest);
      FUZZ_CHECK(r1->methods.empty() || std::find(r1->methods.begin(), r1->methods.end(), method) != r1->methods.end());
    }
  }
  // Case folding: exact matching on the folded table is the case-sensitive table's matching, and
  // folded matching does not depend on the path's case.
  std::string allow_a, allow_b;
  FUZZ_CHECK(index_or_npos(folded, folded.match_exact(once.match_path, method, &allow_a)) ==
             index_or_npos(exact, exact.match(once.match_path, method, &allow_b)));
  FUZZ_CHECK(allow_a == allow_b);
  FUZZ_CHECK(index_or_npos(folded, folded.match(once.match_path, method)) ==
             index_or_npos(folded, folded.match(fuzz::ascii_lower(once.match_path), method)));
  return 0;
}
