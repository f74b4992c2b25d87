// The upstream response path: a fixed valid request goes through a real ClientConnection and
// the fuzz input is what the upstream answers, split into writes.
//
// Input: byte 0: bits 0-1 the request (GET, HEAD, GET over HTTP/1.0, POST with a body), bit 2
// whether the upstream then closes its side, bits 3-5 how many cut bytes follow; then the cut
// bytes; the rest is the upstream's answer.
//
// The reference is our own strict llhttp over the upstream's bytes, reading a 1xx (other than
// 101) as an interim head without a body, as RFC 9110 says. Properties:
//  - the client's bytes parse (our own llhttp, response mode) as interim 1xx heads without
//    bodies and at most one final response, with nothing after it;
//  - that response has a status in 200-599 (never 101: the request asked for no upgrade), a
//    reason phrase without control bytes, and framing of its own: Content-Length or chunked, or
//    "Connection: close" and the connection's end;
//  - it is jwtgate's own 502, or the upstream's final response: same status, the same body
//    bytes (a prefix when the upstream's was cut short, and then never complete);
//  - a malformed answer (no final head, status outside 200-599, an unsolicited 101) reaches the
//    client only as a 502; a complete one is delivered complete;
//  - bytes after a complete response mean the upstream connection is not kept (closed).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/fuzz/http_fuzz_harness.h"
#include "tests/fuzz/http_fuzz_parse.h"

using namespace jwtgate;
using namespace jwtgate::fuzz;

namespace {

constexpr std::size_t kMaxResponse = 64 * 1024;

constexpr const char* kRoutes = "routes:\n  - prefix: /\n    auth: none\n";

struct Request {
  const char* text;
  bool head;
};
constexpr Request kRequests[] = {
    {"GET /r HTTP/1.1\r\nHost: app\r\n\r\n", false},
    {"HEAD /r HTTP/1.1\r\nHost: app\r\n\r\n", true},
    {"GET /r HTTP/1.0\r\nHost: app\r\n\r\n", false},
    {"POST /r HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhello", false},
};

bool interim(int status) { return status >= 100 && status < 200 && status != 101; }

bool lists(const Message& m, std::string_view header, std::string_view token) {
  for (std::string_view v : m.all(header)) {
    while (!v.empty()) {
      const std::size_t comma = v.find(',');
      std::string_view item = v.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (iequal(item, token)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

bool clean_reason(std::string_view reason) {
  for (char c : reason) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto b0 = static_cast<unsigned char>(in[0]);
  const Request& request = kRequests[b0 & 3];
  const bool upstream_closes = (b0 >> 2) & 1;
  const std::size_t ncuts = (b0 >> 3) & 7;
  if (size < 1 + ncuts) return 0;
  const std::string_view answer = in.substr(1 + ncuts);
  if (answer.size() > kMaxResponse) return 0;

  static ProxyHarness h("", kRoutes);
  Peer* upstream = nullptr;
  StreamParser got(HTTP_REQUEST);
  h.on_upstream_accept = [&](Peer& p) {
    upstream = &p;
    p.on_data = [&](Peer&, std::string_view d) { got.feed(d); };
  };

  Peer& client = h.connect_client();
  h.send(client, request.text);
  h.run_until_quiet();
  if (!upstream || got.messages().size() != 1 || !got.messages()[0].complete || h.upstream_peers().size() != 1) {
    std::fprintf(stderr, "http fuzz: the fixed request did not reach the upstream whole\n");
    std::abort();
  }
  for (std::string_view piece : split(answer, in.substr(1, ncuts))) {
    h.send(*upstream, piece);
    h.run_until_quiet();
  }
  if (upstream_closes) {
    h.shutdown_peer(*upstream);
    h.run_until_quiet();
  }

  const auto policy = [&](const Message& m, std::size_t) { return interim(m.status) || request.head ? 1 : 0; };
  StreamParser reference(HTTP_RESPONSE, policy);
  reference.feed(answer);
  if (upstream_closes) reference.finish();
  const Message* ref = nullptr;
  for (const auto& m : reference.messages()) {
    if (!interim(m.status) && m.head_done) {
      ref = &m;
      break;
    }
  }
  const bool ref_valid = ref && ref->status >= 200 && ref->status <= 599;
  const bool ref_complete = ref_valid && ref->complete;

  StreamParser seen(HTTP_RESPONSE, policy);
  seen.feed(client.received);
  if (client.eof) seen.finish();
  const std::string ctx = "upstream sent: " + printable(answer) + " | client got: " + printable(client.received);

  // A status llhttp refuses (jwtgate wrote "0" for "000") is the status bug, not a broken stream.
  HTTP_PROPERTY(!seen.failed(), seen.error() == HPE_INVALID_STATUS ? "status_in_range" : "client_stream_valid",
                std::string(seen.error_reason()) + "; " + ctx);
  const Message* final_response = nullptr;
  std::size_t finals = 0;
  for (const auto& m : seen.messages()) {
    HTTP_PROPERTY(m.status != 101, "no_unsolicited_101", ctx);
    if (interim(m.status)) {
      HTTP_PROPERTY(!final_response, "nothing_after_final", ctx);
      continue;
    }
    ++finals;
    if (!final_response) final_response = &m;
  }
  HTTP_PROPERTY(finals <= 1, "one_final_response", ctx);

  if (final_response) {
    const Message& f = *final_response;
    HTTP_PROPERTY(f.status >= 200 && f.status <= 599, "status_in_range", ctx);
    HTTP_PROPERTY(clean_reason(f.reason), "reason_clean", ctx);
    HTTP_PROPERTY(!f.head_done || !f.needs_eof || lists(f, "connection", "close"), "framed_or_close", ctx);
    HTTP_PROPERTY(!(f.needs_eof && !f.complete && client.eof), "framed_or_close", ctx);
    // jwtgate's own 502 (its JSON names the error; a response to HEAD has no body to name it).
    const bool own_502 =
        f.status == 502 && f.complete && (request.head || f.body.find("bad_gateway") != std::string::npos);
    if (!own_502) {
      // Named apart so a status bug does not hide other malformed answers.
      if (ref && !ref_valid && ref->status != 101) HTTP_PROPERTY(false, "bad_status_gets_502", ctx);
      else HTTP_PROPERTY(ref_valid, "malformed_gets_502", ctx);
      if (ref_valid) {
        HTTP_PROPERTY(f.status == ref->status, "status_relayed", ctx);
        const bool prefix = f.body.size() <= ref->body.size() && ref->body.compare(0, f.body.size(), f.body) == 0;
        // A body delimited by the connection's close (an HTTP/1.0 client's) has no way to say it
        // was cut short: when the upstream's response broke after its head, the client's looks
        // complete at the close, and only a prefix of what the upstream sent can be asked for.
        const bool cut_unseen = f.needs_eof && !ref_complete;
        HTTP_PROPERTY(f.complete && !cut_unseen ? f.body == ref->body : prefix, "body_relayed",
                      "client body " + printable(f.body, 300) + " vs upstream body " + printable(ref->body, 300) +
                          "; " + ctx);
        HTTP_PROPERTY(!f.complete || ref_complete || cut_unseen, "complete_only_if_upstream_complete", ctx);
      }
    }
  }
  if (std::getenv("JWTGATE_FUZZ_TRACE")) {
    std::fprintf(stderr, "trace: reference %s (status %d), client got %zu final response(s)%s%s\n",
                 ref_complete ? "complete" : ref_valid ? "cut short" : "malformed", ref ? ref->status : 0, finals,
                 final_response ? ", status " : "", final_response ? std::to_string(final_response->status).c_str() : "");
  }
  if (ref_complete) {
    HTTP_PROPERTY(final_response && final_response->complete, "response_delivered", ctx);
    const bool leftover = ref->end_offset < answer.size();
    HTTP_PROPERTY(!leftover || upstream->eof || upstream_closes, "leftover_not_reused", ctx);
  } else if (upstream_closes && !ref_valid) {
    HTTP_PROPERTY(final_response && final_response->status == 502,
                  ref && ref->status != 101 ? "bad_status_gets_502" : "malformed_gets_502", ctx);
  }
  h.end_input();
  h.on_upstream_accept = nullptr;  // it refers to this input's locals
  return 0;
}
