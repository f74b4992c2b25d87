// The decisions of one exchange that no codec owns: which route a request falls under
// (forward-auth's checked request, CORS preflights, case folding) and whether it may pass (the
// authenticator's verdict on every route that covers it, a bounded wait for a key refresh on an
// unknown kid, the upstream it goes to). A codec (HTTP/1 in ClientConnection; an HTTP/2 stream
// next) parses and checks framing, hands the request here, and then frames what was decided in
// its own syntax: answers are described here, never written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/ip_network.h"
#include "core/status.h"
#include "proxy/http/authenticator.h"
#include "proxy/http/exchange_record.h"
#include "proxy/http/http_head.h"
#include "proxy/http/request_target.h"
#include "proxy/worker_context.h"

namespace jwtgate::proxy {

// jwtgate's own answer to a request.
struct Answer {
  enum class Kind {
    plain,          // a condition that is no token verdict: 400, 404, 405, 501 (error_response.h)
    token_refused,  // the token's verdict, mapped in the one place (core/rfc6750.h)
    allow,          // forward-auth's 200 with the identity headers (or a preflight's, without)
  };
  Kind kind = Kind::plain;
  int code = 0;                // plain
  std::string_view error;      // plain: the error word of the JSON body
  std::string description;     // plain: never carries bytes of the request
  std::string allow_methods;   // plain 405: its Allow header
  core::Status status;         // token_refused
  AuthResult auth;             // allow
};

// Where a request waits for its provider's keys to be refreshed (the codec's connection or stream).
class KeyWaiter {
 public:
  // True when the caller will be told (keys_refreshed) once the refresh has ended.
  virtual bool await_keys(std::size_t provider) = 0;

 protected:
  ~KeyWaiter() = default;
};

struct ExchangeDecision {
  enum class Kind { answer, await_keys, forward };
  Kind kind = Kind::answer;
  Answer answer;                // answer
  int provider = -1;            // await_keys: whose keys
  AuthResult auth;              // forward: the headers to add, what to strip
  const config::Route* auth_route = nullptr;  // forward: the route whose verdict is forwarded
  // forward, under case folding: the folded route, and where its verdict's token is to be removed
  // from too (forward_token: false); indexes that route's token sources.
  const config::Route* folded_route = nullptr;
  std::uint64_t folded_strip_sources = 0;
  std::size_t upstream_index = 0;             // forward: in RuntimeConfig::upstreams
};

class Exchange {
 public:
  // What the request is, as its codec parsed it (the method's name; the target is normalized
  // into target() first).
  struct Request {
    Mode mode = Mode::proxy;
    std::string_view method;
    // The peer, for forward_auth.trusted_proxies (empty: not an IP connection).
    const std::optional<config::IpAddress>* peer = nullptr;
  };

  // Forgets the previous request's decisions.
  void reset();

  // Picks the route. An answer when the request ends here (no route, a method the route
  // excludes, a malformed forward-auth check, a preflight); otherwise authorise() comes next.
  // On proxy routes the identity and override headers a client set are removed from `headers`.
  std::optional<Answer> route(const RuntimeConfig& rc, Request request, HeaderList& headers, ExchangeRecord& record);

  // Authenticates on the route, and when case folding found another, on the exact-case route
  // too, whose verdict (identity, token sources) is then the one forwarded: it is the route that
  // serves the request. For forward-auth the allowed verdict is itself the answer. An unknown
  // kid parks the request once, through `waiter` (nullptr: no wait is possible, as for a request
  // of a configuration since replaced); authorise() is then called again when the refresh has
  // ended.
  ExchangeDecision authorise(const Generation& gen, const HeaderList& headers, std::int64_t now,
                             std::string_view client_cert_thumbprint, WorkerMetrics& metrics, ExchangeRecord& record,
                             KeyWaiter* waiter);

  // The method and target routes were matched with: the request's own, or (forward-auth) those
  // of the request the check asks about.
  const std::string& method() const { return method_; }
  const RequestTarget& target() const { return target_; }
  // Where the codec normalizes the request's target to, before route() (a target refused there
  // stays as the normalization left it, for the access log).
  RequestTarget& target_to_normalize() { return target_; }
  const config::Route* matched_route() const { return route_; }
  // The provider whose refresh the request waits for (-1: none).
  int awaited_provider() const { return awaited_provider_; }

 private:
  std::optional<Answer> take_checked_request(const RuntimeConfig& rc, bool trusted, const HeaderList& headers,
                                             bool& preflight, ExchangeRecord& record);

  Mode mode_ = Mode::proxy;
  std::string method_;
  RequestTarget target_;
  const config::Route* route_ = nullptr;
  // The route exact-case matching picks, when it differs from route_: the request must pass it too.
  const config::Route* also_route_ = nullptr;
  bool waited_for_keys_ = false;
  int awaited_provider_ = -1;
};

}  // namespace jwtgate::proxy
