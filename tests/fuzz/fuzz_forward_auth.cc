// The forward-auth check path through a real ClientConnection in Mode::forward_auth: a gateway's
// "may this request pass?" requests, answered from the proxy's own routes and tokens, never
// forwarded. The harness's fake upstream is still configured (proxy and forward-auth in one
// process), so a check that leaked through to it would be seen.
//
// Input: byte 0 holds the number of cut bytes that follow (its low three bits, 0-7) and which
// config runs (bit 3: 0 trusts the fake client's 127.0.0.1 as a proxy, 1 trusts nobody; both
// allow_preflight); the cut bytes say where the rest, the client's byte stream, is split into
// writes. "@@A", "@@D", "@@B", "@@X", "@@I" stand for the minted tokens (http_fuzz_tokens.h).
//
// Properties, on every input:
//  - the fake upstream never accepts a connection (so never receives a byte);
//  - the client's bytes parse as responses, at most one per request it sent (plus one for a
//    parse error), none 1xx, 3xx or a 2xx other than 200, each a status a check may get;
//  - every 200 has Content-Length: 0 and no body, and each identity header (claims_to_headers
//    and the payload header) exactly once in one spelling, either all empty or all the claims
//    of a minted token that verifies and was in that request's Authorization;
//  - a 200 for a route that needs a token only when that request carried a valid token with the
//    route's scopes (and with that token's identity), for a public route with no identity, for
//    no path outside path_prefix or no route at all. The original request is decided here afresh
//    from the request's own bytes (llhttp's reading of them), as the contract says: a trusted
//    peer's X-Forwarded-Uri / X-Original-URI with the forwarded method, else the check's own
//    method and its path after /authz. Requests whose target this simple reading cannot judge
//    (odd bytes, encoded slashes, not origin-form) are not judged on this point;
//  - every connection closes at the end of the input (the harness's own property).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/request_target.h"
#include "tests/fuzz/http_fuzz_harness.h"
#include "tests/fuzz/http_fuzz_parse.h"
#include "tests/fuzz/http_fuzz_tokens.h"

using namespace jwtgate;
using namespace jwtgate::fuzz;

namespace {

constexpr std::size_t kMaxStream = 64 * 1024;

constexpr const char* kProvider =
    "    claims_to_headers:\n      sub: X-Jwt-Sub\n      scope: X-Jwt-Scope\n    forward_payload_header: X-Jwt-Payload\n";
constexpr const char* kRoutes = R"(routes:
  - prefix: /public
    auth: none
  - prefix: /opt
    auth: optional
  - prefix: /api
    require_scopes: [read]
  - prefix: /api/admin
    methods: [GET, HEAD]
    require_scopes: [admin]
)";
constexpr const char* kTrusted =
    "forward_auth:\n  listen: 127.0.0.1:18081\n  trusted_proxies: [127.0.0.1]\n  allow_preflight: true\n";
constexpr const char* kUntrusted = "forward_auth:\n  listen: 127.0.0.1:18081\n  allow_preflight: true\n";

// In the order the checks below read them: sub, scope, payload.
constexpr const char* kIdentity[] = {"X-Jwt-Sub", "X-Jwt-Scope", "X-Jwt-Payload"};

ProxyHarness& harness(bool trusted) {
  // Both built on the first input, so neither is a one-off allocation inside a later one.
  static ProxyHarness with_trust(kProvider, kRoutes, kTrusted, proxy::Mode::forward_auth);
  static ProxyHarness without_trust(kProvider, kRoutes, kUntrusted, proxy::Mode::forward_auth);
  static const bool checked = [] {
    for (ProxyHarness* h : {&with_trust, &without_trust}) {
      const auto& injected = h->runtime().injected_headers;
      bool same = injected.size() == std::size(kIdentity);
      for (std::size_t i = 0; same && i < injected.size(); ++i) same = injected[i] == kIdentity[i];
      if (!same) {
        std::fprintf(stderr, "forward-auth fuzz: the config's identity headers are not the ones checked\n");
        std::abort();
      }
    }
    return true;
  }();
  (void)checked;
  return trusted ? with_trust : without_trust;
}

std::string_view trimmed(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

std::vector<const Field*> fields_cgi(const Message& m, std::string_view cgi) {
  std::vector<const Field*> out;
  for (const auto& f : m.headers) {
    if (cgi_name(f.name) == cgi) out.push_back(&f);
  }
  return out;
}

// The values of every field named `a` or `b` (case ignored, as jwtgate reads names).
std::vector<std::string_view> values_of(const Message& m, std::string_view a, std::string_view b) {
  std::vector<std::string_view> out;
  for (const auto& f : m.headers) {
    if (iequal(f.name, a) || iequal(f.name, b)) out.push_back(trimmed(f.value));
  }
  return out;
}

bool all_same(const std::vector<std::string_view>& v) {
  for (std::string_view x : v) {
    if (x != v.front()) return false;
  }
  return true;
}

// The token `t` is in one of the request's Authorization fields (any spelling: a looser reading
// than jwtgate's, so it never calls a token missing that jwtgate may have read).
bool token_sent(const Message& m, const TokenInfo& t) {
  for (const Field* f : fields_cgi(m, "authorization")) {
    if (f->value.find(t.token) != std::string::npos) return true;
  }
  return false;
}

enum class Route { none, public_, optional, api, admin };

// What the oracle makes of the original request.
struct Judged {
  enum class Kind { skip, no_allow, route } kind = Kind::skip;
  Route route = Route::none;
  bool preflight = false;
  std::string why;  // no_allow / skip: the reason
};

// Segments of an origin-form path as a lenient service reads it: %-escapes decoded, ;params
// dropped, case folded, empty and "." segments gone, ".." taking one off. False when the path has
// bytes or escapes this simple reading does not judge.
bool service_segments(std::string_view path, std::vector<std::string>& out) {
  if (path.empty() || path.front() != '/') return false;
  for (char c : path) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       std::string_view("-._~!$&'()*+,;=:@/%").find(c) != std::string_view::npos;
    if (!plain) return false;
  }
  std::size_t pos = 1;
  while (pos <= path.size()) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(pos, slash - pos);
    seg = seg.substr(0, seg.find(';'));
    std::string name;
    for (std::size_t i = 0; i < seg.size(); ++i) {
      if (seg[i] == '%') {
        if (i + 2 >= seg.size() || proxy::hex_value(seg[i + 1]) < 0 || proxy::hex_value(seg[i + 2]) < 0) return false;
        const char c = static_cast<char>(proxy::hex_value(seg[i + 1]) * 16 + proxy::hex_value(seg[i + 2]));
        if (c == '/' || c == '\\' || c == '\0' || c == '?' || c == '#' || c == ';' || c == '%') return false;
        name += c;
        i += 2;
      } else {
        name += seg[i];
      }
    }
    for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (name == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!name.empty() && name != ".") {
      out.push_back(name);
    }
    pos = slash + 1;
  }
  return true;
}

Route route_of(const std::vector<std::string>& segs, std::string_view method) {
  if (segs.empty()) return Route::none;
  if (segs[0] == "public") return Route::public_;
  if (segs[0] == "opt") return Route::optional;
  if (segs[0] != "api") return Route::none;
  if (segs.size() > 1 && segs[1] == "admin") return method == "GET" || method == "HEAD" ? Route::admin : Route::none;
  return Route::api;
}

// The path part of a request target (before any query).
std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

Judged judge(const Message& m, bool trusted) {
  Judged j;
  std::string method;
  std::vector<std::string> segs;
  const auto uris = values_of(m, "x-forwarded-uri", "x-original-uri");
  const auto methods = values_of(m, "x-forwarded-method", "x-original-method");
  if (trusted && !uris.empty()) {
    if (!all_same(uris)) {
      j.kind = Judged::Kind::no_allow;
      j.why = "the forwarded URIs disagree";
      return j;
    }
    if (methods.empty() || !all_same(methods)) {
      j.kind = Judged::Kind::no_allow;
      j.why = "no forwarded method, or forwarded methods that disagree";
      return j;
    }
    method = std::string(methods.front());
    if (!service_segments(path_of(uris.front()), segs)) {
      j.why = "a forwarded URI this oracle does not judge";
      return j;
    }
  } else {
    // Envoy style: the check's own method and what follows /authz in its own path.
    method = llhttp_method_name(static_cast<llhttp_method_t>(m.method));
    if (m.method == HTTP_CONNECT || !service_segments(path_of(m.url), segs)) {
      j.why = "a check target this oracle does not judge";
      return j;
    }
    if (segs.empty() || segs.front() != "authz") {
      j.kind = Judged::Kind::no_allow;
      j.why = "the check's path is outside /authz";
      return j;
    }
    segs.erase(segs.begin());
  }
  const auto acrm = m.all("access-control-request-method");
  if (trusted && method == "OPTIONS" && !acrm.empty()) {
    // A preflight passes without a token where a route covers the path; one ACRM value that is
    // plainly there makes it one for sure, anything else is not judged.
    if (acrm.size() != 1 || trimmed(acrm[0]).empty()) {
      j.why = "a preflight this oracle does not judge";
      return j;
    }
    j.kind = Judged::Kind::route;
    j.preflight = true;
    return j;
  }
  j.kind = Judged::Kind::route;
  j.route = route_of(segs, method);
  return j;
}

std::string describe(const Message& r, const Message& m, bool trusted) {
  std::string s = std::string(trusted ? "trusted" : "untrusted") + " peer; request " +
                  llhttp_method_name(static_cast<llhttp_method_t>(m.method)) + " " + printable(m.url) + " [";
  for (const auto& f : m.headers) s += printable(f.name) + ": " + printable(f.value, 200) + " | ";
  s += "] answered " + std::to_string(r.status) + " [";
  for (const auto& f : r.headers) s += printable(f.name) + ": " + printable(f.value, 200) + " | ";
  return s + "] body " + printable(r.body, 200);
}

bool check_status(int status) {
  switch (status) {
    case 200: case 400: case 401: case 403: case 404: case 405: case 408: case 413: case 431: case 501: case 503:
      return true;
    default:
      return false;
  }
}

// The identity a 200 carries: nullptr when every identity header is empty, else the valid,
// sent token whose claims they are (property identity_from_verified_token otherwise).
const TokenInfo* check_allow(const Message& r, const Message& m, const std::string& ctx) {
  HTTP_PROPERTY(r.count("content-length") == 1 && r.all("content-length")[0] == "0" && !r.chunked && r.body.empty(),
                "allow_empty", ctx);
  std::string_view values[std::size(kIdentity)];
  for (std::size_t i = 0; i < std::size(kIdentity); ++i) {
    const auto found = fields_cgi(r, cgi_name(kIdentity[i]));
    HTTP_PROPERTY(found.size() == 1 && iequal(found[0]->name, kIdentity[i]), "identity_headers_once",
                  std::string(kIdentity[i]) + "; " + ctx);
    values[i] = found.size() == 1 ? std::string_view(found[0]->value) : std::string_view();
  }
  if (values[0].empty() && values[1].empty() && values[2].empty()) return nullptr;
  for (const auto& t : fuzz_tokens()) {
    if (t.valid && values[0] == t.sub && values[1] == t.scope && values[2] == t.payload_segment && token_sent(m, t)) {
      return &t;
    }
  }
  property_failed("identity_from_verified_token", ctx);
  return nullptr;
}

void check_verdict(const Message& r, const Message& m, bool trusted, const TokenInfo* identity, const std::string& ctx) {
  const Judged j = judge(m, trusted);
  if (j.kind == Judged::Kind::skip) return;
  HTTP_PROPERTY(j.kind == Judged::Kind::route, "allow_only_when_judged_allowed", j.why + "; " + ctx);
  if (j.preflight) {
    HTTP_PROPERTY(identity == nullptr, "preflight_without_identity", ctx);
    return;
  }
  switch (j.route) {
    case Route::none:
      property_failed("allow_only_on_a_route", ctx);
      break;
    case Route::public_:
      HTTP_PROPERTY(identity == nullptr, "public_without_identity", ctx);
      break;
    case Route::optional:
      break;
    case Route::api:
    case Route::admin: {
      const std::string_view scope = j.route == Route::api ? "read" : "admin";
      HTTP_PROPERTY(identity != nullptr && identity->scope.find(scope) != std::string::npos, "allow_needs_scoped_token",
                    "route needs " + std::string(scope) + "; " + ctx);
      break;
    }
  }
  (void)r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto control = static_cast<unsigned char>(in[0]);
  const std::size_t ncuts = control & 7;
  const bool trusted = (control & 8) == 0;
  if (size < 1 + ncuts) return 0;
  const std::string stream = expand_tokens(in.substr(1 + ncuts));
  if (stream.size() > kMaxStream) return 0;

  ProxyHarness& h = harness(trusted);
  std::size_t upstream_accepts = 0;
  h.on_upstream_accept = [&upstream_accepts](Peer&) { ++upstream_accepts; };
  Peer& client = h.connect_client();
  for (std::string_view piece : split(stream, in.substr(1, ncuts))) {
    h.send(client, piece);
    h.run_until_quiet();
  }

  // The client's messages as llhttp (strict, as jwtgate runs it) reads the stream, going on
  // after an Upgrade request, which a check never honours.
  const ClientMessages client_messages = read_client_messages(stream);
  const std::vector<const Message*>& asked = client_messages.asked;
  const std::unique_ptr<StreamParser> client_responses = read_client_responses(client.received, client.eof, asked);
  const StreamParser& responses = *client_responses;
  HTTP_PROPERTY(!responses.failed(), "client_stream_valid",
                std::string(responses.error_reason()) + ": " + printable(client.received));
  for (const auto& r : responses.messages()) {
    HTTP_PROPERTY(!(r.status >= 100 && r.status < 200) && !(r.status >= 300 && r.status < 400), "no_interim_or_redirect",
                  std::to_string(r.status) + " " + printable(client.received));
    HTTP_PROPERTY(check_status(r.status), "check_status_known", std::to_string(r.status) + " " + printable(client.received));
  }
  const auto& rs = responses.messages();
  HTTP_PROPERTY(rs.size() <= asked.size() + 1, "one_response_per_request",
                std::to_string(rs.size()) + " responses to " + std::to_string(asked.size()) +
                    " requests: " + printable(client.received));

  std::size_t allowed = 0, judged = 0;
  for (std::size_t k = 0; k < rs.size() && k < asked.size(); ++k) {
    const Message& r = rs[k];
    const Message& m = *asked[k];
    if (r.status == 401) {
      HTTP_PROPERTY(r.all("www-authenticate").size() == 1 && r.all("www-authenticate")[0].substr(0, 6) == "Bearer",
                    "deny_has_bearer_challenge", describe(r, m, trusted));
    }
    if (r.status != 200) continue;
    ++allowed;
    const std::string ctx = describe(r, m, trusted);
    HTTP_PROPERTY(m.head_done, "allow_answers_a_whole_head", ctx);
    const TokenInfo* identity = check_allow(r, m, ctx);
    if (judge(m, trusted).kind != Judged::Kind::skip) ++judged;
    check_verdict(r, m, trusted, identity, ctx);
  }
  // A 200 past the requests (the "+1") would answer bytes that were no request at all.
  if (rs.size() > asked.size()) {
    HTTP_PROPERTY(rs.back().status != 200, "allow_answers_a_request", printable(client.received));
  }

  HTTP_PROPERTY(upstream_accepts == 0 && h.upstream_peers().empty(), "upstream_untouched",
                std::to_string(upstream_accepts) + " upstream connections for: " + printable(stream));
  if (std::getenv("JWTGATE_FUZZ_TRACE")) {
    std::string statuses;
    for (const auto& r : rs) statuses += " " + std::to_string(r.status);
    std::fprintf(stderr, "trace: %s peer, %zu client messages, %zu responses (%s), %zu allowed (%zu judged)\n",
                 trusted ? "trusted" : "untrusted", asked.size(), rs.size(), statuses.c_str() + (statuses.empty() ? 0 : 1),
                 allowed, judged);
  }
  h.end_input();
  HTTP_PROPERTY(upstream_accepts == 0, "upstream_untouched", "an upstream connection while the input ended");
  h.on_upstream_accept = nullptr;  // it refers to this input's counter
  return 0;
}
