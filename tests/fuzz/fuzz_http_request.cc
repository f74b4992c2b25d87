// The HTTP/1 request path through a real ClientConnection, with a fake upstream that records
// what it receives and answers every complete request with a small numbered response.
//
// Input: byte 0 says how many cut bytes follow (0-7); they say where the rest, the client's
// byte stream, is split into writes. "@@A", "@@D", "@@B", "@@X", "@@I" in the stream stand for
// tokens minted at start-up (see http_fuzz_tokens.h), so the fuzzer can move valid tokens around.
//
// Properties (differential: what the upstream got is what jwtgate parsed and authorised):
//  - the upstream's bytes parse, with a strict llhttp of our own, as complete well-framed
//    HTTP/1.1 requests (only the last may be cut short, when the client's own was), and nothing
//    follows an Upgrade request on that connection;
//  - the client's bytes parse as responses, at most one per request it sent (plus one for a
//    parse error); the ones the upstream wrote (numbered) arrive in order, one for each request
//    the upstream received, each on the response slot of the client message it answers;
//  - each request the upstream got is that client message (llhttp's reading of the client's
//    stream): same method, the normalised target, the same body bytes (a prefix when cut short);
//  - its path is one the route table allows (checked here by our own segment matching of the
//    upstream's path, decoded as a lenient upstream would), and normalised;
//  - on a protected route it carries X-Jwt-Sub/X-Jwt-Scope exactly once, in that spelling, with
//    the claims of a minted token that verifies, has the route's scopes and was in the client's
//    Authorization; on /public none; never any other spelling of those or of the forwarding,
//    override and framing headers; X-Forwarded-* as jwtgate sets them; hop-by-hop headers gone.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
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
constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

constexpr const char* kClaimHeaders = "    claims_to_headers:\n      sub: X-Jwt-Sub\n      scope: X-Jwt-Scope\n";
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

// The fake upstream: every connection's bytes go through a strict parser; each complete request
// is answered at once, numbered in the order the requests arrived.
struct UpstreamConn {
  std::unique_ptr<StreamParser> parser;
  std::size_t answered = 0;
};
struct Arrival {
  std::size_t conn, message;
};

struct State {
  std::vector<UpstreamConn> conns;
  std::vector<Arrival> arrivals;  // request heads, in arrival order
  std::map<std::pair<std::size_t, std::size_t>, std::size_t> seq;  // (conn, message) -> arrival
};

ProxyHarness& harness() {
  static ProxyHarness h(kClaimHeaders, kRoutes);
  return h;
}

void attach(ProxyHarness& h, State& state) {
  h.on_upstream_accept = [&h, &state](Peer& peer) {
    UpstreamConn c;
    const std::size_t conn = peer.index;
    c.parser = std::make_unique<StreamParser>(HTTP_REQUEST, [&state, conn](const Message&, std::size_t i) {
      state.seq[{conn, i}] = state.arrivals.size();
      state.arrivals.push_back({conn, i});
      return 0;
    });
    state.conns.push_back(std::move(c));
    peer.on_data = [&h, &state](Peer& p, std::string_view data) {
      UpstreamConn& c = state.conns[p.index];
      c.parser->feed(data);
      const auto& msgs = c.parser->messages();
      while (c.answered < msgs.size() && msgs[c.answered].complete) {
        const Message& m = msgs[c.answered];
        const std::string n = std::to_string(state.seq[{p.index, c.answered}]);
        std::string r = "HTTP/1.1 200 OK\r\nX-Fuzz-Seq: " + n + "\r\nContent-Length: " + std::to_string(n.size()) +
                        "\r\n\r\n";
        if (m.method != HTTP_HEAD) r += n;
        h.send(p, r);
        ++c.answered;
      }
    };
  };
}

enum class Route { none, public_, optional, api, admin };

std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && proxy::hex_value(s[i + 1]) >= 0 && proxy::hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(proxy::hex_value(s[i + 1]) * 16 + proxy::hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Segments of the path as a lenient upstream routes it: ;params dropped, %-escapes decoded,
// case folded; a segment that is only ;params vanishes.
std::vector<std::string> route_segments(std::string_view path, std::string& problem) {
  std::vector<std::string> out;
  std::size_t pos = 1;
  while (pos <= path.size()) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view seg = path.substr(pos, slash - pos);
    const bool last = slash == path.size();
    if (seg.empty() && !last) problem = "an empty segment";
    std::string name = percent_decoded(seg.substr(0, seg.find(';')));
    for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (name == "." || name == "..") problem = "a dot segment";
    if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos) problem = "an encoded slash";
    if (!name.empty()) out.push_back(name);
    pos = slash + 1;
  }
  return out;
}

Route route_of(std::string_view target, int method, std::string& problem) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/') {
    problem = "not origin-form";
    return Route::none;
  }
  const std::vector<std::string> segs = route_segments(path, problem);
  if (segs.empty()) return Route::none;
  if (segs[0] == "public") return Route::public_;
  if (segs[0] == "opt") return Route::optional;
  if (segs[0] != "api") return Route::none;
  if (segs.size() > 1 && segs[1] == "admin") return method == HTTP_GET || method == HTTP_HEAD ? Route::admin : Route::none;
  return Route::api;
}

std::string describe(const Message& u, const Message& m) {
  std::string s = "upstream got: " + printable(u.url) + " [";
  for (const auto& f : u.headers) s += printable(f.name) + ": " + printable(f.value, 200) + " | ";
  s += "] body " + std::to_string(u.body.size()) + "B; client message: " + printable(m.url) + " [";
  for (const auto& f : m.headers) s += printable(f.name) + ": " + printable(f.value, 200) + " | ";
  return s + "] body " + std::to_string(m.body.size()) + "B";
}

// Fields of `u` whose name a CGI stack reads as `cgi`.
std::vector<const Field*> fields_cgi(const Message& u, std::string_view cgi) {
  std::vector<const Field*> out;
  for (const auto& f : u.headers) {
    if (cgi_name(f.name) == cgi) out.push_back(&f);
  }
  return out;
}

// At most one field a CGI stack reads as `canonical`, and that one spelt exactly so.
bool one_canonical(const Message& u, std::string_view canonical, bool required) {
  const auto found = fields_cgi(u, cgi_name(canonical));
  if (found.size() > 1) return false;
  if (found.empty()) return !required;
  return found[0]->name == canonical;
}

void check_forwarded(const Message& u, const Message& m, bool upstream_complete) {
  const std::string ctx = describe(u, m);
  HTTP_PROPERTY(u.method == m.method, "same_method", ctx);
  HTTP_PROPERTY(u.http_major == 1 && u.http_minor == 1, "upstream_http11", ctx);
  proxy::RequestTarget t;
  std::string why;
  HTTP_PROPERTY(proxy::normalize_request_target(m.url, t, why), "target_valid", ctx);
  const std::string expected = t.path + (t.has_query ? "?" + t.query : "");
  HTTP_PROPERTY(u.url == expected, "target_as_authorized", "expected " + printable(expected) + "; " + ctx);

  std::string problem;
  const Route route = route_of(u.url, u.method, problem);
  HTTP_PROPERTY(problem.empty(), "path_normalized", problem + "; " + ctx);
  HTTP_PROPERTY(route != Route::none, "routed", "the route table refuses this path/method; " + ctx);

  // Identity: jwtgate's own headers, from a token that verifies and was sent.
  const auto subs = fields_cgi(u, "x_jwt_sub");
  const auto scopes = fields_cgi(u, "x_jwt_scope");
  if (route == Route::public_) {
    HTTP_PROPERTY(subs.empty() && scopes.empty(), "no_identity_on_public", ctx);
  } else if (!subs.empty() || !scopes.empty() || route != Route::optional) {
    const bool once = subs.size() == 1 && scopes.size() == 1;
    HTTP_PROPERTY(once && subs[0]->name == "X-Jwt-Sub" && scopes[0]->name == "X-Jwt-Scope", "identity_once", ctx);
    bool matched = false;
    for (const auto& tok : fuzz_tokens()) {
      if (!once || !tok.valid || tok.sub != subs[0]->value || tok.scope != scopes[0]->value) continue;
      const bool scoped = route == Route::optional || (route == Route::api && tok.scope.find("read") != std::string::npos) ||
                          (route == Route::admin && tok.scope.find("admin") != std::string::npos);
      bool sent = false;
      for (const auto& f : m.headers) {
        if (cgi_name(f.name) == "authorization" && f.value.find(tok.token) != std::string::npos) sent = true;
      }
      matched |= scoped && sent;
    }
    HTTP_PROPERTY(matched, "identity_from_verified_token", ctx);
  }

  // Forwarding headers: jwtgate's, once, in its spelling; the others never.
  HTTP_PROPERTY(one_canonical(u, "X-Forwarded-For", true) && one_canonical(u, "X-Forwarded-Proto", true) &&
                    one_canonical(u, "X-Forwarded-Host", false),
                "forwarding_headers_once", ctx);
  const auto xfp = u.all("X-Forwarded-Proto");
  HTTP_PROPERTY(xfp.size() == 1 && xfp[0] == "http", "forwarded_proto", ctx);
  const auto xffs = u.all("X-Forwarded-For");
  const std::string_view xff = xffs.empty() ? std::string_view() : xffs.back();
  HTTP_PROPERTY(xff.size() >= 9 && xff.substr(xff.size() - 9) == "127.0.0.1", "forwarded_for_appended", ctx);
  const auto hosts = m.all("host");
  const auto xfh = u.all("X-Forwarded-Host");
  HTTP_PROPERTY(hosts.size() == u.all("host").size() && (hosts.empty() || u.all("host").front() == hosts.front()),
                "host_forwarded", ctx);
  HTTP_PROPERTY((hosts.empty() || hosts.front().empty()) ? xfh.empty() : (xfh.size() == 1 && xfh[0] == hosts.front()),
                "forwarded_host", ctx);
  static const char* const kNever[] = {"forwarded", "x_forwarded_port", "x_forwarded_prefix", "x_forwarded_scheme",
                                       "x_forwarded_ssl", "front_end_https", "x_real_ip", "true_client_ip",
                                       "x_client_ip", "x_original_url", "x_rewrite_url", "x_http_method_override",
                                       "x_http_method", "x_method_override"};
  for (const char* name : kNever) HTTP_PROPERTY(fields_cgi(u, name).empty(), "stripped_headers", std::string(name) + "; " + ctx);
  // Hop-by-hop (RFC 9110 section 7.6.1), by their exact names.
  static const char* const kHop[] = {"keep-alive", "te", "trailer", "proxy-connection", "proxy-authorization",
                                     "proxy-authenticate"};
  for (const char* name : kHop) HTTP_PROPERTY(u.count(name) == 0, "hop_by_hop_removed", std::string(name) + "; " + ctx);
  HTTP_PROPERTY(u.count("upgrade") == (m.upgrade && u.upgrade ? 1u : 0u), "hop_by_hop_removed", "upgrade; " + ctx);

  // Framing: jwtgate's own, one way only; the body is the one llhttp read from the client.
  HTTP_PROPERTY(one_canonical(u, "Content-Length", false) && one_canonical(u, "Transfer-Encoding", false) &&
                    !(u.has_length && u.chunked),
                "upstream_framing", ctx);
  HTTP_PROPERTY(u.count("connection") == 1, "one_connection_header", ctx);
  if (upstream_complete && m.complete) {
    HTTP_PROPERTY(u.body == m.body, "same_body",
                  "upstream body " + printable(u.body, 300) + " vs client body " + printable(m.body, 300) + "; " + ctx);
  } else {
    HTTP_PROPERTY(u.body.size() <= m.body.size() && m.body.compare(0, u.body.size(), u.body) == 0, "body_prefix",
                  "upstream body " + printable(u.body, 300) + " vs client body " + printable(m.body, 300) + "; " + ctx);
  }
  // Names the client's Connection made hop-by-hop are gone (unless jwtgate itself sets them).
  static const char* const kOwn[] = {"keep-alive", "close", "upgrade", "connection", "host", "content-length",
                                     "transfer-encoding", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                                     "x-jwt-sub", "x-jwt-scope"};
  for (std::string_view v : m.all("connection")) {
    while (!v.empty()) {
      const std::size_t comma = v.find(',');
      std::string_view item = v.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      bool own = item.empty();
      for (const char* o : kOwn) own |= iequal(item, o);
      if (!own) HTTP_PROPERTY(u.count(item) == 0, "connection_listed_removed", printable(item) + "; " + ctx);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
}

bool own_status(int status) {
  switch (status) {
    case 400: case 401: case 403: case 404: case 405: case 408: case 413: case 431: case 501: case 502: case 503:
    case 504:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t ncuts = static_cast<unsigned char>(in[0]) % 8;
  if (size < 1 + ncuts) return 0;
  const std::string stream = expand_tokens(in.substr(1 + ncuts));
  if (stream.size() > kMaxStream) return 0;

  State state;
  ProxyHarness& h = harness();
  attach(h, state);
  Peer& client = h.connect_client();
  for (std::string_view piece : split(stream, in.substr(1, ncuts))) {
    h.send(client, piece);
    h.run_until_quiet();
  }

  // A stream that opens with the whole HTTP/2 preface is served as h2c, which this HTTP/1 oracle
  // cannot read. Running it still puts random frames through the h2 session under the
  // sanitizers; a stream that only starts like the preface falls back to HTTP/1 and is checked.
  if (stream.starts_with(kH2Preface)) return 0;

  // jwtgate's parser is llhttp with its default (strict) settings: this one reads the client's
  // stream the same way, including going on after an Upgrade request that was refused.
  const ClientMessages client_messages = read_client_messages(stream);
  const std::vector<const Message*>& asked = client_messages.asked;  // the client's messages, in order
  {
    // The client's responses, read with the methods of the messages they answer.
    const std::unique_ptr<StreamParser> client_responses = read_client_responses(client.received, client.eof, asked);
    const StreamParser& responses = *client_responses;
    HTTP_PROPERTY(!responses.failed(), "client_stream_valid",
                  std::string(responses.error_reason()) + ": " + printable(client.received));

    std::vector<const Message*> final_responses;
    for (const auto& r : responses.messages()) {
      if (!(r.status >= 100 && r.status < 200 && r.status != 101)) final_responses.push_back(&r);
    }
    HTTP_PROPERTY(final_responses.size() <= asked.size() + 1, "one_response_per_request",
                  std::to_string(final_responses.size()) + " responses to " + std::to_string(asked.size()) +
                      " requests: " + printable(client.received));

    // The upstream's side.
    std::size_t complete_upstream = 0;
    for (std::size_t c = 0; c < state.conns.size(); ++c) {
      const StreamParser& up = *state.conns[c].parser;
      const std::string& raw = h.upstream_peers()[c]->received;
      HTTP_PROPERTY(!up.failed(), "upstream_strict", std::string(up.error_reason()) + ": " + printable(raw));
      HTTP_PROPERTY(up.bytes_after_upgrade() == 0, "nothing_after_upgrade", printable(raw));
      for (std::size_t i = 0; i < up.messages().size(); ++i) {
        if (up.messages()[i].complete) ++complete_upstream;
        else HTTP_PROPERTY(i + 1 == up.messages().size(), "upstream_strict", "incomplete request mid-stream: " + printable(raw));
      }
    }
    std::size_t incomplete_upstream = 0;
    for (std::size_t a = 0; a < state.arrivals.size(); ++a) {
      const Message& u = state.conns[state.arrivals[a].conn].parser->messages()[state.arrivals[a].message];
      if (!u.complete) {
        ++incomplete_upstream;
        HTTP_PROPERTY(a + 1 == state.arrivals.size(), "one_exchange_at_a_time", "a request after one cut short");
      }
    }

    // Numbered responses: one per complete upstream request, in order, each on the slot of the
    // client message it answers.
    std::size_t numbered = 0;
    for (std::size_t k = 0; k < final_responses.size(); ++k) {
      const Message& r = *final_responses[k];
      const auto seq = r.all("X-Fuzz-Seq");
      if (seq.empty()) {
        HTTP_PROPERTY(own_status(r.status), "own_response_status",
                      std::to_string(r.status) + " " + printable(client.received));
        continue;
      }
      HTTP_PROPERTY(seq.size() == 1 && seq[0] == std::to_string(numbered), "responses_in_order",
                    printable(client.received));
      HTTP_PROPERTY(k < asked.size(), "response_has_request", printable(client.received));
      const Arrival& arrival = state.arrivals[numbered];
      const Message& u = state.conns[arrival.conn].parser->messages()[arrival.message];
      HTTP_PROPERTY(asked[k]->complete, "forwarded_message_complete", describe(u, *asked[k]));
      check_forwarded(u, *asked[k], u.complete);
      ++numbered;
    }
    HTTP_PROPERTY(numbered == complete_upstream, "responses_equal_upstream_requests",
                  std::to_string(numbered) + " numbered responses for " + std::to_string(complete_upstream) +
                      " upstream requests; client got " + printable(client.received));
    if (std::getenv("JWTGATE_FUZZ_TRACE")) {
      std::fprintf(stderr, "trace: %zu client messages, %zu responses (%zu from the upstream), %zu upstream requests (%zu cut short)\n",
                   asked.size(), final_responses.size(), numbered, state.arrivals.size(), incomplete_upstream);
    }
    if (incomplete_upstream == 1) {
      // Cut short: the client's message that was being forwarded when the input ended or broke.
      const Arrival& arrival = state.arrivals.back();
      const Message& u = state.conns[arrival.conn].parser->messages()[arrival.message];
      bool mapped = false;
      for (std::size_t k = final_responses.empty() ? 0 : final_responses.size() - 1;
           k <= final_responses.size() && k < asked.size() && !mapped; ++k) {
        proxy::RequestTarget t;
        std::string why;
        if (!proxy::normalize_request_target(asked[k]->url, t, why)) continue;
        if (u.url != t.path + (t.has_query ? "?" + t.query : "") || u.method != asked[k]->method) continue;
        // Two pipelined requests may share method and target, the first one answered: the cut one
        // is the one whose body the upstream's begins and whose Host it carries.
        if (asked[k]->body.compare(0, u.body.size(), u.body) != 0 || u.all("host") != asked[k]->all("host")) continue;
        mapped = true;
        check_forwarded(u, *asked[k], false);
        // Still being forwarded (no answer yet): what the client completed, the upstream must get whole.
        HTTP_PROPERTY(!(asked[k]->complete && k == final_responses.size()), "forwarded_whole", describe(u, *asked[k]));
      }
      HTTP_PROPERTY(mapped, "cut_request_has_message", "no client message for " + printable(u.url));
    }
  }
  h.end_input();
  h.on_upstream_accept = nullptr;  // it refers to this input's state
  return 0;
}
