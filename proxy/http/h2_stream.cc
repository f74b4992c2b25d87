#include "proxy/http/h2_stream.h"

#include <algorithm>

#include "proxy/admin/log.h"
#include "proxy/http/error_response.h"
#include "proxy/http/forward_auth.h"
#include "proxy/http/h2_session.h"
#include "proxy/http/http1_rules.h"
#include "proxy/http/request_target.h"
#include "proxy/http/upstream_request.h"

namespace jwtgate::proxy {
namespace {

// Request bytes the upstream has not yet taken, above which the client gets no more credit.
constexpr std::size_t kRequestHighWater = 256 * 1024;
// Response bytes held for the client, above which the upstream is not read.
constexpr std::size_t kResponseHighWater = 256 * 1024;
constexpr std::size_t kResponseLowWater = 64 * 1024;
// A refused stream was not processed: it may be sent again, a few times (a service at its stream
// limit, one going away).
constexpr int kMaxRefusedRetries = 3;

nghttp2_ssize read_response_cb(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                               std::uint32_t* flags, nghttp2_data_source* source, void*) {
  return static_cast<H2Stream*>(source->ptr)->read_response(buf, length, flags);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return out;
}

}  // namespace

H2Stream::H2Stream(H2Session& session, std::int32_t id)
    : session_(session), id_(id), gen_(session.worker().generation()) {
  record_.begin(uv_hrtime());
  last_progress_ms_ = session_.now_ms();
}

H2Stream::~H2Stream() { detach_upstream(); }

void H2Stream::progress() { last_progress_ms_ = session_.now_ms(); }

void H2Stream::add_field(std::string_view name, std::string_view value) {
  // RFC 9113 section 6.5.2's accounting (32 bytes per field), as SETTINGS_MAX_HEADER_LIST_SIZE
  // announces: an HPACK bomb expands here, and stops being stored once over the limit.
  head_bytes_ += name.size() + value.size() + 32;
  if (head_bytes_ > rt().config.limits.max_header_bytes) {
    head_too_large_ = true;
    return;
  }
  if (!name.empty() && name[0] == ':') {
    if (name == ":method") method_ = value;
    else if (name == ":scheme") scheme_ = value;
    else if (name == ":authority") authority_ = value;
    else if (name == ":path") path_ = value;
    return;
  }
  headers_.add(std::string(name), std::string(value));
}

void H2Stream::add_trailer(std::string_view name, std::string_view value) {
  head_bytes_ += name.size() + value.size() + 32;
  if (head_bytes_ > rt().config.limits.max_header_bytes) {
    head_too_large_ = true;
    return;
  }
  if (!trailer_forwardable(name)) return;
  trailers_.push_back({std::string(name), std::string(value)});
}

bool H2Stream::trailer_forwardable(std::string_view name) const {
  // Trailers arrive after the verdict, so they may carry nothing the verdict or jwtgate's own
  // fields vouch for: no identity (x-jwt-sub in any spelling), no token in any place any
  // provider reads one from (a service reading it there would trust a token nobody verified),
  // no cookie, no X-Forwarded-* or Forwarded.
  const RuntimeConfig& rc = rt();
  for (const std::string& removed : rc.removed_headers) {
    if (same_header_to_cgi(name, removed)) return false;
  }
  for (const auto& provider : rc.providers) {
    for (const config::TokenSource& s : provider.config.token_sources) {
      if (s.kind == config::TokenSource::Kind::header && same_header_to_cgi(name, s.name)) return false;
    }
  }
  static constexpr std::string_view kNever[] = {"authorization", "cookie", "x-forwarded-for", "x-forwarded-proto",
                                                "x-forwarded-host", "forwarded", "x-real-ip", "host"};
  for (const std::string_view n : kNever) {
    if (same_header_to_cgi(name, n)) return false;
  }
  return true;
}

void H2Stream::head_complete(bool end_stream) {
  request_ended_ = end_stream;
  grpc_ = is_grpc_request(headers_);
  if (head_too_large_) {
    answer_plain(431, "request_header_fields_too_large", "the request's header list is larger than limits.max_header_bytes");
    return;
  }
  if (method_ == "CONNECT") {
    answer_plain(501, "not_implemented", "CONNECT is not supported");
    return;
  }
  // RFC 9113 section 8.3.1: :authority stands for Host; a request with both that disagree
  // could be routed by one and served by the other.
  std::size_t hosts = 0;
  const std::string_view host = headers_.get("host", &hosts);
  if (hosts > 1 || (hosts == 1 && !authority_.empty() && !iequals(host, authority_))) {
    answer_plain(400, "invalid_request", "the request's :authority and Host disagree");
    return;
  }
  if (hosts == 0) {
    if (authority_.empty()) {
      answer_plain(400, "invalid_request", "the request has neither :authority nor Host");
      return;
    }
    headers_.add("host", authority_);
  }
  // The same rule as for an HTTP/1 Host: one host name or address, an optional port, nothing
  // else (a list or parameters would name two hosts to two readers).
  if (!valid_host(headers_.get("host"))) {
    answer_plain(400, "invalid_request", "the :authority (or Host) is not a host name or address with an optional port");
    return;
  }
  // RFC 9113 section 8.2.3: cookies may arrive split; the token extractor reads one field.
  if (headers_.all("cookie").size() > 1) {
    std::string joined;
    for (const std::string_view c : headers_.all("cookie")) {
      if (!joined.empty()) joined += "; ";
      joined += c;
    }
    headers_.remove("cookie");
    headers_.add("cookie", std::move(joined));
  }
  if (grpc_) {
    if (auto t = parse_grpc_timeout(headers_.get("grpc-timeout"))) grpc_deadline_ms_ = session_.now_ms() + *t;
  }
  head_request_ = method_ == "HEAD";
  std::string why;
  if (!normalize_request_target(path_, exchange_.target_to_normalize(), why)) {
    answer_plain(400, "invalid_request", why);
    return;
  }
  const Exchange::Request request{.mode = Mode::proxy, .method = method_, .peer = session_.peer().address};
  if (std::optional<Answer> a = exchange_.route(rt(), request, headers_, record_)) {
    answer(*a);
    return;
  }
  authorise();
}

bool H2Stream::await_keys(std::size_t provider) { return session_.h2_await_keys(provider); }

void H2Stream::keys_refreshed() {
  if (phase_ != Phase::awaiting_keys) return;
  phase_ = Phase::head;
  keys_deadline_ms_ = 0;
  authorise();
}

void H2Stream::authorise() {
  WorkerContext& worker = session_.worker();
  KeyWaiter* waiter = gen_ == worker.generation() ? this : nullptr;
  const ClientCertificate* cert = session_.peer().certificate;
  ExchangeDecision d = exchange_.authorise(*gen_, headers_, worker.now_seconds(), cert ? cert->thumbprint : std::string(),
                                           worker.metrics(), record_, waiter);
  if (d.kind == ExchangeDecision::Kind::await_keys) {
    phase_ = Phase::awaiting_keys;
    const config::JwksConfig& jwks = rt().providers[static_cast<std::size_t>(exchange_.awaited_provider())].config.jwks;
    const auto wait = jwks.timeout * (jwks.discovery ? 2 : 1) + std::chrono::milliseconds(500);
    keys_deadline_ms_ = session_.now_ms() + static_cast<std::uint64_t>(
                                                std::chrono::duration_cast<std::chrono::milliseconds>(wait).count());
    return;
  }
  if (d.kind == ExchangeDecision::Kind::answer) {
    answer(d.answer);
    return;
  }
  forward(d);
}

void H2Stream::forward(const ExchangeDecision& d) {
  upstream_index_ = d.upstream_index;
  pool_ = gen_->pools[upstream_index_].get();
  const RuntimeConfig& rc = rt();
  // gRPC to an https:// upstream is HTTP/2 by ALPN; other requests to it stay HTTP/1.1.
  use_h2_ = pool_->h2() || (grpc_ && rc.upstreams[upstream_index_].tls);
  if (grpc_ && !use_h2_) {
    // Trailers (grpc-status) cannot cross HTTP/1.1: the call would end as an error the service never sent.
    answer_grpc(GrpcStatus::unavailable,
                "jwtgate: gRPC needs an h2c:// or https:// upstream, and this route's upstream is http:// (HTTP/1.1)", 502);
    return;
  }
  std::optional<std::uint64_t> content_length;
  std::size_t lengths = 0;
  const std::string_view cl = headers_.get("content-length", &lengths);
  if (lengths == 1 && !cl.empty()) {
    std::uint64_t n = 0;
    for (const char c : cl) n = n * 10 + static_cast<std::uint64_t>(c - '0');  // nghttp2 checked the digits
    content_length = n;
  }
  chunked_ = !use_h2_ && !request_ended_ && !content_length;
  const UpstreamRequest request{
      .method = method_,
      .target = exchange_.target(),
      .headers = headers_,
      .connection_options = {},
      .auth = d.auth,
      .token_sources = rc.route_token_sources[rc.routes.index_of(d.auth_route)],
      .folded_token_sources = d.folded_route ? &rc.route_token_sources[rc.routes.index_of(d.folded_route)] : nullptr,
      .folded_strip_sources = d.folded_strip_sources,
      .peer_ip = session_.peer().ip,
      .tls = session_.peer().tls,
      .client_certificate = *session_.peer().certificate,
      .chunked = chunked_,
      .content_length = request_ended_ && !content_length ? std::optional<std::uint64_t>() : content_length,
      .upgrade = false,
      .upgrade_protocols = {},
      .keep_te_trailers = use_h2_,
      .upstream_tls = rc.upstreams[upstream_index_].tls,
      .upstream_authority = {},  // never needed: an HTTP/2 request has :authority or Host
  };
  phase_ = Phase::forwarding;
  if (use_h2_) h2_head_ = build_upstream_h2_headers(request);
  else h1_head_ = build_upstream_head(request);
  start_upstream();
}

void H2Stream::start_upstream() {
  record_.upstream_sent_ns = uv_hrtime();
  const config::Limits& limits = rt().config.limits;
  const auto upstream_ms = static_cast<std::uint64_t>(limits.upstream_timeout.count());
  response_deadline_ms_ = session_.now_ms() + upstream_ms;
  if (use_h2_) {
    h2_ = pool_->h2_session(limits.max_response_header_bytes, kH2UpstreamStreamWindow);
    h2_id_ = h2_->submit(this, h2_head_, request_ended_ && pending_body_.empty());
    if (h2_id_ == 0) {
      h2_ = nullptr;
      upstream_gone("the upstream service is unreachable", false);
      return;
    }
    // Any call into the session may end the stream (its connection failing): h2_ is then null.
    if (!pending_body_.empty()) {
      std::string body = std::move(pending_body_);
      pending_body_.clear();
      h2_->send_data(h2_id_, body);
      if (h2_ && request_ended_) h2_->end_request(h2_id_, trailers_);
    }
    if (h2_) h2_->kick();
    if (h2_) release_request_window();
    return;
  }
  h1_ = pool_->acquire(this, !retried_);
  if (h1_->state() == UpstreamConnection::State::ready) {
    send_h1_head();
  } else if (h1_->state() == UpstreamConnection::State::closed) {
    h1_ = nullptr;
    upstream_gone("the upstream service is unreachable", false);
  }
}

void H2Stream::send_h1_head() {
  h1_->begin_exchange(head_request_, rt().config.limits.max_response_header_bytes);
  h1_->write(h1_head_);
  if (!h1_) return;
  if (!pending_body_.empty()) {
    std::string body = std::move(pending_body_);
    pending_body_.clear();
    h1_->write(chunked_ ? http1_chunk(body) : body);
  }
  if (h1_ && request_ended_ && chunked_) h1_->write("0\r\n\r\n");
  release_request_window();
}

void H2Stream::body(std::string_view data) {
  unconsumed_ += data.size();
  body_bytes_ += data.size();
  progress();
  if (phase_ == Phase::answered || phase_ == Phase::done) {
    release_request_window();  // answered already: what still comes is dropped, and credited
    return;
  }
  pass_body(data);
}

void H2Stream::pass_body(std::string_view data) {
  if (phase_ == Phase::forwarding && h2_) {
    h2_->send_data(h2_id_, data);
  } else if (phase_ == Phase::forwarding && h1_ && h1_->state() == UpstreamConnection::State::ready) {
    h1_->write(chunked_ ? http1_chunk(data) : std::string(data));
  } else {
    pending_body_.append(data);  // bounded by the stream's window: none of it is credited yet
    return;
  }
  release_request_window();
}

void H2Stream::release_request_window() {
  if (unconsumed_ == 0) return;
  // Before the verdict nothing is credited: an unauthenticated client sends one window at most.
  bool room = phase_ == Phase::answered || phase_ == Phase::done;
  if (phase_ == Phase::forwarding) {
    if (h2_) room = h2_->request_buffered(h2_id_) < kRequestHighWater;
    else if (h1_) room = h1_->state() == UpstreamConnection::State::ready && h1_->write_queue_size() < kRequestHighWater;
    else room = false;
    room = room && pending_body_.empty();
  }
  if (!room) return;
  nghttp2_session_consume(session_.nghttp2(), id_, unconsumed_);
  unconsumed_ = 0;
  session_.flush();
}

void H2Stream::request_ended() {
  request_ended_ = true;
  progress();
  if (phase_ != Phase::forwarding) return;
  if (!response_submitted_) {
    response_deadline_ms_ = session_.now_ms() + static_cast<std::uint64_t>(rt().config.limits.upstream_timeout.count());
  }
  if (h2_ && pending_body_.empty()) {
    h2_->end_request(h2_id_, trailers_);
  } else if (h1_ && h1_->state() == UpstreamConnection::State::ready && chunked_ && pending_body_.empty()) {
    // HTTP/1.1 trailers are dropped: an HTTP/1 service would not read them as fields anyway.
    h1_->write("0\r\n\r\n");
  }
}

// --- answers ------------------------------------------------------------------------------

void H2Stream::answer(const Answer& a) {
  switch (a.kind) {
    case Answer::Kind::plain:
      answer_plain(a.code, a.error, a.description);
      return;
    case Answer::Kind::token_refused: {
      const ErrorReply e = error_reply(a.status);
      if (grpc_) {
        answer_grpc(grpc_status_for_http(e.code), std::string(core::reason_name(a.status.reason())) + ": " +
                                                      std::string(a.status.detail()),
                    e.code);
        return;
      }
      std::vector<HeaderField> fields{{":status", std::to_string(e.code)}};
      for (const HeaderField& h : e.headers) fields.push_back({lower(h.name), h.value});
      fields.push_back({"content-type", "application/json"});
      fields.push_back({"cache-control", "no-store"});
      fields.push_back({"content-length", std::to_string(e.body.size())});
      record_.status = e.code;
      out_ = e.body;
      out_end_ = true;
      submit_response(std::move(fields), true);
      return;
    }
    case Answer::Kind::allow:
      // Forward-auth checks do not come over HTTP/2 (only the proxy listener speaks it).
      answer_plain(500, "internal_error", "forward-auth verdicts are not served over HTTP/2");
      return;
  }
}

void H2Stream::answer_plain(int code, std::string_view error, std::string_view description) {
  if (grpc_) {
    answer_grpc(grpc_status_for_http(code), "jwtgate: " + std::string(description), code);
    return;
  }
  const ErrorReply e = plain_error_reply(code, error, description);
  std::vector<HeaderField> fields{{":status", std::to_string(code)}};
  for (const HeaderField& h : e.headers) fields.push_back({lower(h.name), h.value});
  if (code == 405 && exchange_.matched_route() && !exchange_.matched_route()->methods.empty()) {
    std::string allow;
    for (const std::string& m : exchange_.matched_route()->methods) allow += (allow.empty() ? "" : ", ") + m;
    fields.push_back({"allow", allow});
  }
  fields.push_back({"content-type", "application/json"});
  fields.push_back({"cache-control", "no-store"});
  fields.push_back({"content-length", std::to_string(e.body.size())});
  record_.status = code;
  out_ = e.body;
  out_end_ = true;
  submit_response(std::move(fields), true);
}

void H2Stream::answer_grpc(GrpcStatus status, std::string_view message, int http_equivalent) {
  (void)http_equivalent;
  record_.status = 200;
  record_.grpc_status = static_cast<int>(status);
  std::vector<HeaderField> fields{
      {":status", "200"},
      {"content-type", "application/grpc"},
      {"grpc-status", std::to_string(static_cast<int>(status))},
      {"grpc-message", grpc_percent_encode(message)},
  };
  if (status == GrpcStatus::unauthenticated || status == GrpcStatus::permission_denied) {
    // The same challenge an HTTP client gets, for clients that read it.
    if (exchange_.matched_route()) fields.push_back({"www-authenticate", "Bearer realm=\"jwtgate\""});
  }
  submit_response(std::move(fields), false);
}

void H2Stream::submit_response(std::vector<HeaderField> fields, bool has_body) {
  if (response_submitted_) return;
  response_submitted_ = true;
  if (phase_ != Phase::forwarding) phase_ = Phase::answered;
  if (head_request_) {
    has_body = false;
    out_.clear();
  }
  const std::vector<nghttp2_nv> nv = to_nv(fields);
  nghttp2_data_provider2 provider{};
  provider.source.ptr = this;
  provider.read_callback = read_response_cb;
  nghttp2_submit_response2(session_.nghttp2(), id_, nv.data(), nv.size(), has_body ? &provider : nullptr);
  if (phase_ == Phase::answered) release_request_window();
  session_.flush();
}

nghttp2_ssize H2Stream::read_response(std::uint8_t* buf, std::size_t length, std::uint32_t* flags) {
  const std::size_t available = out_.size() - out_pos_;
  const std::size_t n = std::min(available, length);
  std::copy_n(out_.data() + out_pos_, n, buf);
  out_pos_ += n;
  session_.response_buffered(-static_cast<std::ptrdiff_t>(n));
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  }
  if (n > 0) {
    progress();
    // Credited to the upstream after the send (settle()): calling into the upstream from inside
    // nghttp2's callback could end this very stream under it.
    credit_ += n;
  }
  if (out_pos_ == out_.size() && out_end_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!response_trailers_.empty()) {
      const std::vector<nghttp2_nv> nv = to_nv(response_trailers_);
      if (nghttp2_submit_trailer(session_.nghttp2(), id_, nv.data(), nv.size()) == 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    }
    return static_cast<nghttp2_ssize>(n);
  }
  if (n == 0) {
    deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<nghttp2_ssize>(n);
}

void H2Stream::settle() {
  // While the connection's responses together are over budget (a client reading slowly on many
  // streams), no upstream gets more credit, and HTTP/1 upstreams stay paused.
  if (session_.over_response_budget()) return;
  if (credit_ > 0 && h2_) {
    const std::size_t n = credit_;
    credit_ = 0;
    h2_->consume(h2_id_, n);  // the upstream may send as much again
  }
  if (h1_ && h1_paused_ && out_.size() - out_pos_ < kResponseLowWater) {
    h1_paused_ = false;
    h1_->resume_reading();
  }
}

void H2Stream::append_response(std::string_view data) {
  if (data.empty() || phase_ == Phase::done) return;
  progress();
  if (head_request_) return;
  out_.append(data);
  session_.response_buffered(static_cast<std::ptrdiff_t>(data.size()));
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(session_.nghttp2(), id_);
  }
  if (h1_ && !h1_paused_ && (out_.size() - out_pos_ > kResponseHighWater || session_.over_response_budget())) {
    h1_paused_ = true;
    h1_->pause_reading();
  }
  if (batch_ == 0) session_.flush();
}

void H2Stream::end_response() {
  out_end_ = true;
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(session_.nghttp2(), id_);
  }
  if (batch_ == 0) session_.flush();
}

void H2Stream::upstream_gone(std::string_view why, bool timeout) {
  detach_upstream();
  if (response_submitted_) {
    // The response cannot be completed: resetting the stream tells the client it is cut short.
    nghttp2_submit_rst_stream(session_.nghttp2(), NGHTTP2_FLAG_NONE, id_, timeout ? NGHTTP2_CANCEL : NGHTTP2_INTERNAL_ERROR);
    session_.flush();
    return;
  }
  if (timeout) {
    if (grpc_) answer_grpc(GrpcStatus::deadline_exceeded, "jwtgate: the upstream service did not answer in time", 504);
    else answer_plain(504, "gateway_timeout", "the upstream service did not answer in time");
    return;
  }
  answer_plain(502, "bad_gateway", why);
}

void H2Stream::detach_upstream() {
  if (h1_) {
    UpstreamConnection* up = h1_;
    h1_ = nullptr;
    up->close();
  }
  if (h2_) {
    H2UpstreamSession* up = h2_;
    h2_ = nullptr;
    up->cancel(h2_id_);
  }
}

// --- an HTTP/1 upstream ------------------------------------------------------------------

void H2Stream::upstream_connected(UpstreamConnection* up) {
  if (up != h1_) return;
  send_h1_head();
  session_.flush();
}

void H2Stream::upstream_failed(UpstreamConnection* up, int, bool response_started) {
  if (up != h1_) return;
  h1_ = nullptr;
  if (!response_started && up->reused() && !retried_ && request_ended_ && body_bytes_ == 0 &&
      (method_ == "GET" || method_ == "HEAD" || method_ == "OPTIONS")) {
    retried_ = true;  // a pooled connection the upstream had closed: once more on a fresh one
    start_upstream();
    return;
  }
  if (!up->tls_error().empty()) log_event("warn", "upstream TLS handshake failed", {{"reason", up->tls_error()}});
  if (!up->protocol_error().empty()) {
    log_event("warn", "upstream response refused", {{"reason", up->protocol_error()}});
    upstream_gone("the upstream service sent an invalid response", false);
    return;
  }
  upstream_gone("the upstream service is unreachable", false);
}

int H2Stream::upstream_response_head(UpstreamConnection* up, int code, const HeaderList& headers) {
  if (up != h1_) return -1;
  if (code == 101) return up->refuse("101 Switching Protocols to an HTTP/2 request");
  record_.upstream_ns = uv_hrtime() - record_.upstream_sent_ns;
  session_.worker().metrics().upstream_seconds.observe(static_cast<double>(record_.upstream_ns) / 1e9);
  record_.upstream_status = code;
  record_.status = code;
  response_deadline_ms_ = 0;
  const bool no_body = head_request_ || code == 204 || code == 304;
  submit_response(h2_response_fields(code, headers), !no_body);
  progress();
  return no_body ? 1 : 0;
}

void H2Stream::upstream_body(UpstreamConnection* up, std::string_view data) {
  if (up != h1_) return;
  append_response(data);
}

void H2Stream::upstream_complete(UpstreamConnection* up) {
  if (up != h1_) return;
  h1_ = nullptr;
  if (request_ended_ && pending_body_.empty()) pool_->release(up);
  else up->close();  // an early answer: the rest of the request cannot be skipped on that connection
  end_response();
}

void H2Stream::upstream_writable(UpstreamConnection* up) {
  if (up != h1_) return;
  progress();
  release_request_window();
}

void H2Stream::upstream_read_begin() { ++batch_; }

void H2Stream::upstream_read_end() {
  if (batch_ > 0) --batch_;
  if (batch_ == 0) session_.flush();
}

// --- an h2c:// upstream ------------------------------------------------------------------

void H2Stream::h2_response_head(int status, const HeaderList& headers, bool end_stream) {
  if (!h2_) return;
  record_.upstream_ns = uv_hrtime() - record_.upstream_sent_ns;
  session_.worker().metrics().upstream_seconds.observe(static_cast<double>(record_.upstream_ns) / 1e9);
  record_.upstream_status = status;
  record_.status = status;
  if (!grpc_) response_deadline_ms_ = 0;  // a gRPC call's deadline runs to its trailers
  if (grpc_ && end_stream) record_.grpc_status = grpc_status_of(headers);  // Trailers-Only
  std::vector<HeaderField> fields{{":status", std::to_string(status)}};
  for (const HeaderField& f : headers.fields()) fields.push_back(f);
  out_end_ = end_stream;
  submit_response(std::move(fields), !end_stream && !head_request_);
  progress();
}

void H2Stream::h2_response_data(std::string_view data) {
  if (!h2_) return;
  if (head_request_) {
    h2_->consume(h2_id_, data.size());
    return;
  }
  append_response(data);
}

void H2Stream::h2_response_trailers(const HeaderList& trailers) {
  if (!h2_) return;
  if (grpc_) record_.grpc_status = grpc_status_of(trailers);
  response_trailers_ = trailers.fields();
}

void H2Stream::h2_stream_closed(bool complete, bool refused, std::string_view why) {
  if (!h2_) return;
  h2_ = nullptr;
  if (complete) {
    end_response();
    return;
  }
  // Only a body-less request can be sent again: a body handed to the session is gone.
  if (refused && refusals_ < kMaxRefusedRetries && !response_submitted_ && body_bytes_ == 0 && request_ended_) {
    ++refusals_;  // never processed (GOAWAY, REFUSED_STREAM): again, on a connection that takes it
    retried_ = true;
    start_upstream();
    return;
  }
  if (grpc_ && !response_submitted_) {
    answer_grpc(GrpcStatus::unavailable, "jwtgate: " + std::string(why), 502);
    return;
  }
  upstream_gone(why.empty() ? std::string_view("the upstream service is unreachable") : why, false);
}

void H2Stream::h2_request_writable() {
  progress();
  release_request_window();
}

// --- time and the end ----------------------------------------------------------------------

std::uint64_t H2Stream::deadline() const {
  if (phase_ == Phase::done) return 0;
  const config::Limits& limits = rt().config.limits;
  std::uint64_t d = 0;
  auto consider = [&](std::uint64_t t) {
    if (t != 0 && (d == 0 || t < d)) d = t;
  };
  switch (phase_) {
    case Phase::head:
      return last_progress_ms_ + static_cast<std::uint64_t>(limits.header_timeout.count());
    case Phase::awaiting_keys:
      return keys_deadline_ms_;
    case Phase::forwarding:
      // The answer is due: its head (HTTP), or for gRPC the end of the call (its trailers).
      if (!response_submitted_ || (grpc_ && !out_end_)) {
        consider(grpc_deadline_ms_);
        if (request_ended_) consider(response_deadline_ms_);
      }
      // A body still flowing one way or the other: bounded by progress, as on HTTP/1.
      if (!request_ended_ || !out_end_) consider(last_progress_ms_ + static_cast<std::uint64_t>(limits.body_timeout.count()));
      return d;
    case Phase::answered:
      return last_progress_ms_ + static_cast<std::uint64_t>(limits.body_timeout.count());
    case Phase::done:
      return 0;
  }
  return 0;
}

void H2Stream::deadline_passed(std::uint64_t now) {
  switch (phase_) {
    case Phase::head:
    case Phase::answered:
      nghttp2_submit_rst_stream(session_.nghttp2(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
      return;
    case Phase::awaiting_keys:
      keys_refreshed();  // decide with the keys there are (a 401 for the kid)
      return;
    case Phase::forwarding: {
      const bool waiting_answer = (!response_submitted_ || (grpc_ && !out_end_)) &&
                                  ((grpc_deadline_ms_ != 0 && now >= grpc_deadline_ms_) ||
                                   (request_ended_ && response_deadline_ms_ != 0 && now >= response_deadline_ms_));
      if (waiting_answer && grpc_ && response_submitted_) {
        // The call began but did not end in time: it ends here, in gRPC's terms, with what was
        // relayed so far followed by DEADLINE_EXCEEDED trailers (the upstream's stream is reset).
        detach_upstream();
        record_.grpc_status = static_cast<int>(GrpcStatus::deadline_exceeded);
        response_trailers_ = {{"grpc-status", "4"},
                              {"grpc-message", grpc_percent_encode("jwtgate: the upstream service did not finish in time")}};
        end_response();
        return;
      }
      if (waiting_answer) {
        upstream_gone({}, true);
        return;
      }
      const auto body_ms = static_cast<std::uint64_t>(rt().config.limits.body_timeout.count());
      if (now >= last_progress_ms_ + body_ms) {
        if (!response_submitted_) {
          detach_upstream();
          if (grpc_) answer_grpc(GrpcStatus::deadline_exceeded, "jwtgate: the request body stopped arriving", 408);
          else answer_plain(408, "request_timeout", "the request body stopped arriving");
        } else {
          upstream_gone({}, true);
        }
      }
      return;
    }
    case Phase::done:
      return;
  }
}

void H2Stream::closed(std::uint32_t error_code) {
  if (phase_ == Phase::done) return;
  (void)error_code;
  phase_ = Phase::done;
  detach_upstream();
  session_.response_buffered(-static_cast<std::ptrdiff_t>(out_.size() - out_pos_));
  out_.clear();
  out_pos_ = 0;
  if (!record_.active) return;
  record_.active = false;
  const RuntimeConfig& rc = rt();
  const config::Route* route = exchange_.matched_route();
  RouteCounters* counters = route ? gen_->route_metrics[rc.routes.index_of(route)] : session_.worker().metrics().unrouted;
  write_exchange_record(record_,
                        ExchangeSubject{
                            .mode = Mode::proxy,
                            .method = method_.empty() ? std::string_view("-") : std::string_view(method_),
                            .target_path = exchange_.target().path,
                            .url = path_,
                            .route = route ? std::string_view(route->prefix) : std::string_view(),
                            .client = session_.peer().ip,
                            .upstream = pool_ ? std::optional<std::string_view>(rc.upstreams[upstream_index_].text)
                                              : std::nullopt,
                            .protocol = "h2",
                        },
                        session_.worker().metrics(), *counters, rc.config.log, session_.worker().access_log());
}

}  // namespace jwtgate::proxy
