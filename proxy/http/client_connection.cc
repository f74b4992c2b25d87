#include "proxy/http/client_connection.h"

#include <algorithm>
#include <cstdio>

#include "core/fingerprint.h"
#include "proxy/http/authenticator.h"
#include "proxy/admin/log.h"
#include "proxy/http/error_response.h"
#include "proxy/http/exchange.h"
#include "proxy/http/exchange_record.h"
#include "proxy/http/forward_auth.h"
#include "proxy/http/http1_rules.h"
#include "proxy/http/request_target.h"
#include "proxy/http/response_head.h"
#include "proxy/http/token_extractor.h"
#include "proxy/http/upstream_request.h"
#include "proxy/http/client_certificate.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

constexpr std::size_t kHighWater = 1024 * 1024;  // stop reading the other side above this queue
constexpr std::size_t kLowWater = 256 * 1024;
constexpr std::size_t kMaxPending = 256 * 1024;  // pipelined bytes held while an exchange runs
// How long, and for how many bytes, a closing connection's unread input is drained (linger()).
constexpr std::uint64_t kLingerMs = 2000;
constexpr std::uint64_t kMaxLingerBytes = 1024 * 1024;

ClientConnection* self(llhttp_t* p) { return static_cast<ClientConnection*>(p->data); }

}  // namespace

ClientConnection::ClientConnection(WorkerContext& worker, Mode mode, std::shared_ptr<const TlsServerContext> tls)
    : worker_(worker), mode_(mode), gen_(worker.generation()), transport_(worker.loop(), *this, std::move(tls)) {
  uv_timer_init(worker_.loop(), &timer_);
  timer_.data = this;
  open_handles_ = 2;
  llhttp_init(&parser_, HTTP_REQUEST, &request_settings());
  parser_.data = this;
}

const llhttp_settings_t& ClientConnection::request_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = cb_message_begin;
    s.on_url = cb_url;
    s.on_header_field = cb_header_field;
    s.on_header_value = cb_header_value;
    s.on_headers_complete = cb_headers_complete;
    s.on_body = cb_body;
    s.on_message_complete = cb_message_complete;
    return s;
  }();
  return settings;
}

bool ClientConnection::accept(uv_stream_t* server) {
  if (!transport_.accept(server)) {
    close();
    return false;
  }
  peer_ip_ = transport_.peer_ip();
  // h2c by prior knowledge on plain listeners; TLS listeners negotiate h2 by ALPN instead.
  may_sniff_h2_ = mode_ == Mode::proxy && !transport_.is_tls() && rt().config.http2.enabled;
  if (mode_ == Mode::forward_auth && !peer_ip_.empty()) peer_address_ = config::parse_ip_address(peer_ip_);
  // A connection that sends nothing is held no longer than a slow request head would be; on
  // TLS, the handshake has its own bound first.
  arm(transport_.is_tls() ? Timer::handshake : Timer::head);
  start_reading();
  return true;
}

void ClientConnection::refuse(std::string response) {
  write_client(std::move(response));
  close_after_writes();
}

void ClientConnection::start_reading() {
  if (closed_) return;
  transport_.start_reading();
}

void ClientConnection::stop_reading() { transport_.stop_reading(); }

namespace {
constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
}  // namespace

bool ClientConnection::sniff_h2(const char* data, std::size_t len) {
  const std::string_view got(data, len);
  const std::size_t want = kH2Preface.size() - preface_.size();
  const std::string_view piece = got.substr(0, want);
  if (kH2Preface.substr(preface_.size(), piece.size()) != piece) {
    // HTTP/1: what was held back is parsed first, then the rest.
    may_sniff_h2_ = false;
    if (!preface_.empty()) {
      std::string held = std::move(preface_);
      preface_.clear();
      feed(held.data(), held.size());
      if (closed_) return true;
    }
    return false;
  }
  preface_.append(piece);
  if (preface_.size() < kH2Preface.size()) return true;  // a prefix so far: wait for the rest
  may_sniff_h2_ = false;
  std::string first = std::move(preface_);
  preface_.clear();
  first.append(got.substr(piece.size()));
  start_h2(first);
  return true;
}

void ClientConnection::start_h2(std::string_view first_bytes) {
  H2Peer peer{.ip = peer_ip_, .address = &peer_address_, .certificate = &client_certificate_, .tls = transport_.is_tls()};
  H2SessionHost& host = *this;
  h2_ = std::make_unique<H2Session>(worker_, transport_, host, std::move(peer));
  arm(Timer::none);
  if (!h2_->start()) {
    close();
    return;
  }
  if (!first_bytes.empty()) h2_->received(first_bytes.data(), first_bytes.size());
}

void ClientConnection::h2_arm_timer(std::uint64_t ms) {
  if (closed_ || h2_closing_) return;
  timer_kind_ = Timer::h2;
  if (ms == 0) uv_timer_stop(&timer_);
  else uv_timer_start(&timer_, on_timer, ms, 0);
}

void ClientConnection::h2_finished() {
  if (closed_ || h2_closing_) return;
  h2_closing_ = true;
  phase_ = Phase::closing;
  // The GOAWAY must reach a client that is still sending (a Rapid Reset loop, a flood): closing
  // with its bytes unread would make the kernel reset the connection and destroy the GOAWAY in
  // flight. So the sending side is shut down after the last write and input is drained, bounded.
  if (transport_.queue_size() == 0) {
    linger();
    return;
  }
  // The GOAWAY and what was queued before it go out first, for as long as the client reads.
  body_progress();
  arm(Timer::body);
}

void ClientConnection::transport_data(const char* data, std::size_t len) {
  if (lingering_) {
    // Dropped unseen: after the answer (or GOAWAY) nothing on this connection is a request any more.
    lingered_bytes_ += len;
    if (lingered_bytes_ > kMaxLingerBytes) close();
    return;
  }
  if (h2_) {
    if (!h2_closing_) h2_->received(data, len);
    return;
  }
  if (may_sniff_h2_ && sniff_h2(data, len)) return;
  feed(data, len);
}

void ClientConnection::transport_ended() {
  // The client went away (or half-closed), or its TLS failed. In-flight work for it is pointless.
  close();
}

void ClientConnection::transport_secured() {
  worker_.metrics().tls_handshake(TlsHandshakeResult::success, transport_.session().version());
  if (const SSL* ssl = transport_.session().ssl()) {
    client_certificate_ = read_client_certificate(ssl);
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (mode_ == Mode::proxy && alpn_len == 2 && alpn[0] == 'h' && alpn[1] == '2') {
      start_h2({});
      return;
    }
  }
  arm(Timer::head);
}

void ClientConnection::transport_handshake_failed() {
  worker_.metrics().tls_handshake(TlsHandshakeResult::failure, nullptr);
}

void ClientConnection::transport_written(int status) {
  if (!h2_) {
    on_written(status);
    return;
  }
  if (closed_) return;
  body_progress();
  if (h2_closing_) {
    if (status != 0) close();
    else if (transport_.queue_size() == 0 && !lingering_) linger();
    return;
  }
  h2_->written(status);
}

void ClientConnection::transport_closed() { handle_closed(); }

void ClientConnection::feed(const char* data, std::size_t len) {
  if (closed_ || phase_ == Phase::closing) return;
  if (phase_ == Phase::tunnel) {
    if (upstream_) upstream_->write(std::string(data, len));
    if (upstream_ && upstream_->write_queue_size() > kHighWater) {
      stop_reading();
      read_paused_for_backpressure_ = true;
    }
    return;
  }
  if (parser_paused_ || held_bytes() > 0 || input_blocked_ || in_input_loop_) {
    // An exchange is in flight, or earlier bytes wait: these wait behind them, bounded.
    hold_input(data, len);
  } else {
    // Straight from the read buffer, without a copy.
    in_input_loop_ = true;
    execute(data, len, false);
    in_input_loop_ = false;
  }
  resume_input();
}

void ClientConnection::hold_input(const char* data, std::size_t len) {
  if (held_bytes() == 0) {
    pending_.clear();
    pending_pos_ = 0;
  } else if (pending_pos_ >= 64 * 1024 && pending_pos_ * 2 >= pending_.size()) {
    pending_.erase(0, pending_pos_);  // amortized: each byte is moved a bounded number of times
    pending_pos_ = 0;
  }
  pending_.append(data, len);
}

void ClientConnection::execute(const char* data, std::size_t len, bool from_pending) {
  const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (closed_) return;
  if (err == HPE_OK) {
    if (from_pending) {
      pending_.clear();
      pending_pos_ = 0;
    }
    return;
  }
  if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
    handle_parse_error();
    return;
  }
  const char* pos = llhttp_get_error_pos(&parser_);
  const std::size_t used = pos ? static_cast<std::size_t>(pos - data) : len;
  if (from_pending) {
    pending_pos_ += used;
  } else {
    pending_.assign(data + used, len - used);
    pending_pos_ = 0;
  }
  parser_paused_ = true;
  if (err == HPE_PAUSED_UPGRADE && phase_ != Phase::forwarding) {
    // The end of an Upgrade request that was refused: there is no tunnel, and what follows on
    // the connection is HTTP again (pipelined requests must not hang behind it).
    parser_paused_ = false;
    llhttp_resume_after_upgrade(&parser_);
    return;
  }
  if (phase_ == Phase::head) process_head();
}

void ClientConnection::resume_parser() {
  if (!parser_paused_) return;
  parser_paused_ = false;
  llhttp_resume(&parser_);
}

void ClientConnection::resume_input() {
  if (in_input_loop_) return;  // the loop below (or feed) goes on with whatever became ready
  in_input_loop_ = true;
  while (!closed_ && phase_ != Phase::closing && phase_ != Phase::tunnel && !parser_paused_ && held_bytes() > 0) {
    if (client_queue_size() > kHighWater) {
      // A client that pipelines requests without reading the answers: wait until it reads. It
      // is not idle while it reads, however slowly; one that stops reading for body_timeout goes.
      input_blocked_ = true;
      body_progress();
      if (phase_ == Phase::idle) arm(Timer::body);
      break;
    }
    execute(pending_.data() + pending_pos_, held_bytes(), true);
  }
  in_input_loop_ = false;
  if (closed_ || phase_ == Phase::closing || phase_ == Phase::tunnel) return;
  if (held_bytes() == 0) {
    pending_.clear();
    pending_pos_ = 0;
  }
  // Bytes after an Upgrade request belong to the tunnel and are held until the upstream agrees;
  // a key refresh being awaited holds everything behind the request.
  const bool hold = input_blocked_ || read_paused_for_backpressure_ || phase_ == Phase::awaiting_keys ||
                    (upgrade_request_ && phase_ == Phase::forwarding) || held_bytes() > kMaxPending;
  if (hold) stop_reading();
  else start_reading();
}

void ClientConnection::handle_parse_error() {
  // Malformed or hostile framing (smuggling attempts, bad header names, bare LF, obs-fold...):
  // answer once and close, so nothing after it is interpreted.
  if (phase_ == Phase::forwarding && response_head_sent_) {
    close();  // a response is under way: nothing may be spliced into it
  } else if (phase_ == Phase::forwarding) {
    if (upstream_) {
      upstream_->close();
      upstream_ = nullptr;
    }
    respond(head_too_large_ ? plain_error_response(431, "invalid_request", "the request trailers are larger than allowed", false)
                           : plain_error_response(400, "invalid_request", "the request body is malformed", false),
           false);
  } else if (head_too_large_) {
    respond(plain_error_response(431, "invalid_request", "the request head is larger than allowed", false), false);
  } else {
    respond(plain_error_response(400, "invalid_request", "the request is not valid HTTP/1.1", false), false);
  }
}

// Once the connection is closing (an answer written from inside a callback, such as a 502 when
// a body write fails), llhttp stops: nothing after it is parsed, let alone forwarded.
int ClientConnection::cb_message_begin(llhttp_t* p) {
  auto* c = self(p);
  if (c->closed_ || c->phase_ == Phase::closing) return HPE_PAUSED;
  c->reset_request();
  c->gen_ = c->worker_.generation();  // a reload applies from the next request on
  c->record_.begin(uv_hrtime());
  c->phase_ = Phase::head;
  if (c->timer_kind_ != Timer::head) {
    c->arm(Timer::head);
  }
  return 0;
}

bool ClientConnection::count_head_bytes(std::size_t n) {
  head_bytes_ += n;
  if (head_bytes_ > rt().config.limits.max_header_bytes || headers_.fields().size() > 200) {
    head_too_large_ = true;
  }
  return !head_too_large_;
}

int ClientConnection::cb_url(llhttp_t* p, const char* at, std::size_t len) {
  auto* c = self(p);
  if (!c->count_head_bytes(len)) return -1;
  c->url_.append(at, len);
  return 0;
}

int ClientConnection::cb_header_field(llhttp_t* p, const char* at, std::size_t len) {
  auto* c = self(p);
  if (!c->count_head_bytes(len + 4)) return -1;  // ": " and CRLF
  c->headers_.append_name_piece(std::string_view(at, len));
  return 0;
}

int ClientConnection::cb_header_value(llhttp_t* p, const char* at, std::size_t len) {
  auto* c = self(p);
  if (!c->count_head_bytes(len)) return -1;
  c->headers_.append_value_piece(std::string_view(at, len));
  return 0;
}

int ClientConnection::cb_headers_complete(llhttp_t* p) {
  auto* c = self(p);
  c->keep_alive_ = llhttp_should_keep_alive(p) != 0;
  c->chunked_request_ = (p->flags & F_CHUNKED) != 0;
  c->upgrade_request_ = p->upgrade != 0;
  c->head_request_ = p->method == HTTP_HEAD;
  c->has_content_length_ = (p->flags & F_CONTENT_LENGTH) != 0;
  c->content_length_ = p->content_length;
  // Handle the head outside llhttp (process_head may write, close, or wait for the upstream).
  return HPE_PAUSED;
}

int ClientConnection::cb_body(llhttp_t* p, const char* at, std::size_t len) {
  auto* c = self(p);
  if (c->closed_ || c->phase_ == Phase::closing) return HPE_PAUSED;
  if (c->h2up_) {
    c->body_progress();
    c->h2up_->send_data(c->h2up_id_, std::string_view(at, len));
    if (c->h2up_ && c->h2up_->request_buffered(c->h2up_id_) > kHighWater) {
      c->stop_reading();
      c->read_paused_for_backpressure_ = true;
    }
    return 0;
  }
  if (!c->upstream_) return 0;
  c->body_progress();
  const std::string_view data(at, len);
  c->upstream_->write(c->chunked_request_ ? http1_chunk(data) : std::string(data));
  if (c->upstream_ && c->upstream_->write_queue_size() > kHighWater) {
    c->stop_reading();
    c->read_paused_for_backpressure_ = true;
  }
  return 0;
}

int ClientConnection::cb_message_complete(llhttp_t* p) {
  auto* c = self(p);
  if (c->closed_ || c->phase_ == Phase::closing) return HPE_PAUSED;
  if (c->phase_ != Phase::forwarding) return 0;  // the end of a request already answered
  if (c->upgrade_request_) return 0;              // llhttp stops with HPE_PAUSED_UPGRADE by itself
  if (!c->request_done_) {
    c->request_done_ = true;
    if (c->upstream_ && c->chunked_request_) c->upstream_->write("0\r\n\r\n");
    if (c->h2up_) c->h2up_->end_request(c->h2up_id_, {});
    if (!c->response_head_sent_ && (c->upstream_ || c->h2up_)) {
      c->arm(Timer::upstream);
    }
  }
  return HPE_PAUSED;  // the next pipelined request waits for this response
}

bool ClientConnection::answer_keeps_alive() const { return keep_alive_ && !expects_body() && !worker_.draining(); }

bool ClientConnection::expects_body() const {
  return chunked_request_ || (parser_.flags & F_CONTENT_LENGTH && parser_.content_length > 0);
}

void ClientConnection::reset_request() {
  url_.clear();
  headers_.clear();
  head_bytes_ = 0;
  head_too_large_ = false;
  chunked_request_ = false;
  has_content_length_ = false;
  content_length_ = 0;
  connection_options_.clear();
  upgrade_request_ = false;
  head_request_ = false;
  request_done_ = false;
  retryable_ = false;
  retried_ = false;
  upstream_head_.clear();
  exchange_.reset();
  upstream_pool_ = nullptr;
  upstream_index_ = 0;
  h2up_ = nullptr;
  h2up_id_ = 0;
  h2up_head_.clear();
  h2up_unconsumed_ = 0;
  record_.clear_results();
  response_head_sent_ = false;
  rechunk_response_ = false;
  close_delimited_response_ = false;
}

void ClientConnection::respond(std::string response, bool keep_alive) {
  if (!record_.active && record_.status == 0) {
    // Bytes that never became a request (a parse error at the first byte) are still counted.
    record_.begin(uv_hrtime());
  }
  record_.status = response.size() > 12 ? std::atoi(response.c_str() + 9) : 0;  // "HTTP/1.1 NNN"
  if (head_request_) {
    // A response to HEAD has no body (RFC 9110 section 9.3.2): one sent anyway would be read
    // by the client as the next response on the connection.
    const std::size_t end = response.find("\r\n\r\n");
    if (end != std::string::npos) response.resize(end + 4);
  }
  account();
  arm(Timer::none);
  write_client(std::move(response));
  if (!keep_alive) {
    close_after_writes();
    return;
  }
  finish_exchange();
}

bool ClientConnection::check_head_framing(std::string& why) {
  if (parser_.http_major != 1 || parser_.http_minor > 1) {
    why = "only HTTP/1.0 and HTTP/1.1 are spoken here";
    return false;
  }
  if (upgrade_request_ && expects_body()) {
    // A tunnel's first bytes would be the body: the upstream waits for it, jwtgate for a 101.
    why = "an Upgrade request must not have a body";
    return false;
  }
  std::size_t hosts = 0;
  const std::string_view host = headers_.get("host", &hosts);
  if (hosts > 1) {
    why = "the request has more than one Host header";
    return false;
  }
  if (hosts == 0 && parser_.http_major == 1 && parser_.http_minor >= 1) {
    why = "an HTTP/1.1 request must have a Host header";
    return false;
  }
  if (hosts == 1 && !valid_host(host)) {
    why = "the Host header is not a host name or address with an optional port";
    return false;
  }
  std::size_t codings = 0;
  headers_.get("transfer-encoding", &codings);
  if (codings > 0 && !chunked_request_) {
    // RFC 9112 section 6.3: without chunked as the final coding the length cannot be known.
    why = "a request's Transfer-Encoding must end in chunked";
    return false;
  }
  if (codings > 0 && parser_.http_major == 1 && parser_.http_minor == 0) {
    // RFC 9112 section 6.1: HTTP/1.0 has no transfer codings; such framing is to be treated as
    // faulty, whatever else the message says.
    why = "an HTTP/1.0 request must not have a Transfer-Encoding";
    return false;
  }
  bool ok = true;
  for (std::string_view v : headers_.all("connection")) {
    for_each_list_item(v, [&](std::string_view item) {
      if (!ok || iequals(item, "keep-alive") || iequals(item, "close") || iequals(item, "upgrade")) return;
      if (frames_or_routes(item)) {
        // Never echoed: error descriptions carry no bytes from the request.
        why = "the Connection header must not list Content-Length, Transfer-Encoding or Host: they frame and route the request";
        ok = false;
        return;
      }
      // Any other listed name is hop-by-hop, as RFC 9110 section 7.6.1 says. That cannot touch
      // what jwtgate itself adds (identity and X-Forwarded-* headers are added afterwards), and
      // the upstream only ever sees jwtgate's own Connection header.
      connection_options_.emplace_back(item);
    });
  }
  return ok;
}

void ClientConnection::process_head() {
  arm(Timer::none);
  const bool can_keep_alive = answer_keeps_alive();

  std::string why;
  if (!normalize_request_target(url_, exchange_.target_to_normalize(), why) || !check_head_framing(why)) {
    respond(plain_error_response(400, "invalid_request", why, false), false);
    return;
  }
  if (chunked_request_ && !only_chunked(headers_)) {
    respond(plain_error_response(501, "not_implemented", "the only transfer coding accepted is chunked", false), false);
    return;
  }
  if (parser_.method == HTTP_CONNECT) {
    // jwtgate is a reverse proxy, not a tunnel to anywhere: llhttp would treat CONNECT as an
    // upgrade, and a client reads every byte after a 2xx to it as tunnel data.
    respond(plain_error_response(501, "not_implemented", "CONNECT is not supported", false), false);
    return;
  }
  const Exchange::Request request{
      .mode = mode_,
      .method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method)),
      .peer = &peer_address_,
  };
  if (std::optional<Answer> answer = exchange_.route(rt(), request, headers_, record_)) {
    respond_with(*answer, can_keep_alive);
    return;
  }
  authorize();
}

void ClientConnection::respond_with(const Answer& answer, bool keep_alive) {
  switch (answer.kind) {
    case Answer::Kind::plain:
      respond(plain_error_response(answer.code, answer.error, answer.description, keep_alive,
                                   answer.allow_methods.empty() ? std::string() : "Allow: " + answer.allow_methods + "\r\n"),
              keep_alive);
      return;
    case Answer::Kind::token_refused:
      respond(error_response(answer.status, keep_alive), keep_alive);
      return;
    case Answer::Kind::allow:
      respond(allow_response(rt().injected_headers, answer.auth, keep_alive), keep_alive);
      return;
  }
}

bool ClientConnection::await_keys(std::size_t provider) { return worker_.await_keys(provider, this); }

void ClientConnection::keys_refreshed() {
  if (h2_) {
    if (!closed_) h2_->keys_refreshed();
    return;
  }
  if (closed_ || phase_ != Phase::awaiting_keys) return;
  arm(Timer::none);
  phase_ = Phase::head;
  authorize();
}

void ClientConnection::authorize() {
  const bool body = expects_body();
  const bool can_keep_alive = answer_keeps_alive();
  // A request of a configuration since replaced decides with the keys it has.
  KeyWaiter* waiter = gen_ == worker_.generation() ? this : nullptr;
  ExchangeDecision d = exchange_.authorise(*gen_, headers_, worker_.now_seconds(), client_certificate_.thumbprint,
                                           worker_.metrics(), record_, waiter);
  if (d.kind == ExchangeDecision::Kind::await_keys) {
    phase_ = Phase::awaiting_keys;
    stop_reading();
    arm(Timer::keys);
    return;
  }
  if (d.kind == ExchangeDecision::Kind::answer) {
    respond_with(d.answer, can_keep_alive);
    return;
  }
  const AuthResult& auth = d.auth;
  request_done_ = !body;  // llhttp reports the end of a body-less request only with the next bytes
  retryable_ = !body && !upgrade_request_ &&
               (parser_.method == HTTP_GET || parser_.method == HTTP_HEAD || parser_.method == HTTP_OPTIONS);
  upstream_index_ = d.upstream_index;
  upstream_pool_ = gen_->pools[upstream_index_].get();
  const bool h2 = upstream_pool_->h2();
  if (h2 && upgrade_request_) {
    respond(plain_error_response(501, "not_implemented", "an upgrade cannot be forwarded to an h2c:// upstream", false),
            false);
    return;
  }
  // Toward an h2c:// upstream an HTTP/1.0 request without Host gets the upstream's authority.
  std::string authority;
  if (h2) {
    const config::UpstreamUrl& u = rt().upstreams[upstream_index_];
    authority = (u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
  }
  const UpstreamRequest request{
      .method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method)),
      .target = exchange_.target(),
      .headers = headers_,
      .connection_options = connection_options_,
      .auth = auth,
      .token_sources = rt().route_token_sources[rt().routes.index_of(d.auth_route)],
      .folded_token_sources = d.folded_route ? &rt().route_token_sources[rt().routes.index_of(d.folded_route)] : nullptr,
      .folded_strip_sources = d.folded_strip_sources,
      .peer_ip = peer_ip_,
      .tls = transport_.is_tls(),
      .client_certificate = client_certificate_,
      .chunked = chunked_request_,
      .content_length = has_content_length_ ? std::optional<std::uint64_t>(content_length_) : std::nullopt,
      .upgrade = upgrade_request_,
      .upgrade_protocols = upgrade_request_ ? headers_.get("upgrade") : std::string_view(),
      .keep_te_trailers = false,  // an HTTP/1 client's TE is its own hop's
      .upstream_tls = false,
      .upstream_authority = authority,
  };
  if (h2) h2up_head_ = build_upstream_h2_headers(request);
  else upstream_head_ = build_upstream_head(request);
  if (body && header_lists_token(headers_.get("expect"), "100-continue")) {
    // Authorized: now the client may send the body.
    write_client("HTTP/1.1 100 Continue\r\n\r\n");
  }
  if (h2) {
    phase_ = Phase::forwarding;
    start_h2_upstream();
    return;
  }
  // The client stays readable while the exchange runs: bytes that arrive meanwhile wait in
  // pending_ (the parser is paused), and a client that goes away is noticed at once. Stopping and
  // restarting reads per request would cost two epoll_ctl calls each time.
  // (An Upgrade request stops reading: what follows it belongs to the tunnel, held until the
  // upstream agrees.)
  phase_ = Phase::forwarding;
  if (upgrade_request_) stop_reading();
  connect_upstream(!upgrade_request_);
}

void ClientConnection::start_h2_upstream() {
  const config::Limits& limits = rt().config.limits;
  record_.upstream_sent_ns = uv_hrtime();
  h2up_ = upstream_pool_->h2_session(limits.max_response_header_bytes,
                                     kH2UpstreamStreamWindow);
  h2up_id_ = h2up_->submit(this, h2up_head_, request_done_);
  if (h2up_id_ == 0) {
    h2up_ = nullptr;
    respond(plain_error_response(502, "bad_gateway", "the upstream service is unreachable", false), false);
    return;
  }
  h2up_->kick();
  if (closed_ || !h2up_) return;
  // Go on with the body (if any), as for an HTTP/1 upstream.
  if (!retried_) {
    resume_parser();
    resume_input();
    if (closed_ || !h2up_) return;
  }
  if (!request_done_) {
    body_progress();
    arm(Timer::body);
  } else if (!response_head_sent_) {
    arm(Timer::upstream);
  }
}

void ClientConnection::cancel_h2_upstream() {
  if (!h2up_) return;
  H2UpstreamSession* up = h2up_;
  h2up_ = nullptr;
  up->cancel(h2up_id_);
}

void ClientConnection::h2_response_head(int status, const HeaderList& headers, bool end_stream) {
  if (!h2up_ || closed_) return;
  record_.upstream_ns = uv_hrtime() - record_.upstream_sent_ns;
  worker_.metrics().upstream_seconds.observe(static_cast<double>(record_.upstream_ns) / 1e9);
  record_.upstream_status = status;
  record_.status = status;
  if (!request_done_) keep_alive_ = false;
  if (worker_.draining()) keep_alive_ = false;
  // HTTP/2 frames the body itself: without a Content-Length it is of unknown length, which an
  // HTTP/1.1 client gets chunked (and a 1.0 client delimited by the close).
  HeaderList fields = headers;
  std::uint64_t length = 0;
  if (!headers.has("content-length")) {
    if (!end_stream) fields.add("transfer-encoding", "chunked");
  } else {
    for (const char c : headers.get("content-length")) length = length * 10 + static_cast<std::uint64_t>(c - '0');
  }
  Http1ResponseHead out = http1_response_head(Http1ResponseInput{
      .code = status,
      .headers = fields,
      .content_length = length,
      .head_request = head_request_,
      .client_http11 = parser_.http_major == 1 && parser_.http_minor == 1,
      .keep_alive = keep_alive_,
  });
  rechunk_response_ = out.rechunk;
  close_delimited_response_ = out.close_delimited;
  keep_alive_ = out.keep_alive;
  write_client(std::move(out.head));
  response_head_sent_ = true;
  body_progress();
  arm(Timer::body);
}

void ClientConnection::h2_response_data(std::string_view data) {
  if (!h2up_ || closed_ || data.empty()) return;
  body_progress();
  if (!head_request_) {
    if (rechunk_response_) write_client(http1_chunk(data));
    else append_client(data);
  }
  // Credited back once the client has taken it (on_written), or now while it keeps up.
  if (client_queue_size() < kHighWater) h2up_->consume(h2up_id_, data.size());
  else h2up_unconsumed_ += data.size();
}

void ClientConnection::h2_stream_closed(bool complete, bool refused, std::string_view why) {
  if (!h2up_ || closed_) return;
  h2up_ = nullptr;
  if (complete) {
    if (rechunk_response_) write_client("0\r\n\r\n");
    flush_client();
    account();
    if (!keep_alive_ || !request_done_) {
      close_after_writes();
      return;
    }
    finish_exchange();
    return;
  }
  if (refused && retryable_ && !retried_ && !response_head_sent_) {
    retried_ = true;  // never processed (GOAWAY, REFUSED_STREAM): once more, on another connection
    start_h2_upstream();
    return;
  }
  if (response_head_sent_) {
    close_after_writes();  // cut short: closing tells the client
    return;
  }
  log_event("warn", "upstream HTTP/2 stream failed", {{"reason", std::string(why)}});
  respond(plain_error_response(502, "bad_gateway", "the upstream service is unreachable", false), false);
}

void ClientConnection::h2_request_writable() {
  if (closed_) return;
  body_progress();
  if (read_paused_for_backpressure_) {
    read_paused_for_backpressure_ = false;
    start_reading();
  }
}

void ClientConnection::connect_upstream(bool allow_reuse) {
  upstream_ = upstream_pool_->acquire(this, allow_reuse);
  if (upstream_->state() == UpstreamConnection::State::ready) {
    send_upstream_head();
  } else if (upstream_->state() == UpstreamConnection::State::closed) {
    // Failed before acquire returned (its report could not reach us yet).
    upstream_ = nullptr;
    respond(plain_error_response(502, "bad_gateway", "the upstream service is unreachable", false), false);
  } else {
    // Connecting: an upstream that never answers the handshake is bounded like a slow one.
    arm(Timer::upstream);
  }
}

void ClientConnection::upstream_connected(UpstreamConnection* up) {
  if (up != upstream_ || closed_) return;
  send_upstream_head();
}

void ClientConnection::send_upstream_head() {
  record_.upstream_sent_ns = uv_hrtime();
  upstream_->begin_exchange(head_request_, rt().config.limits.max_response_header_bytes);
  upstream_->write(upstream_head_);
  if (!upstream_) return;
  if (upgrade_request_) return;  // what follows belongs to the tunnel, held until the upstream agrees
  if (!retried_) {
    // Go on with the body (if any) and whatever else arrived. A retry only sends the head again:
    // it is for body-less requests, whose parsing is done, and parsing on would start the next
    // pipelined request while this one still runs.
    resume_parser();
    resume_input();
    if (closed_ || !upstream_) return;
  }
  if (!request_done_) {
    body_progress();
    arm(Timer::body);
  } else if (!response_head_sent_) {
    arm(Timer::upstream);
  }
}

void ClientConnection::upstream_failed(UpstreamConnection* up, int status, bool response_started) {
  if (up != upstream_ || closed_) return;
  upstream_ = nullptr;
  if (!response_started && up->reused() && retryable_ && !retried_) {
    // A pooled connection the upstream had closed: safe to try once more on a fresh one.
    retried_ = true;
    connect_upstream(false);
    return;
  }
  if (response_head_sent_) {
    // The response cannot be completed; closing tells the client it is truncated. What was
    // relayed before the failure, perhaps still collected from this very read, goes out first:
    // dropped, a close-delimited body would end early and look whole.
    close_after_writes();
    return;
  }
  if (!up->tls_error().empty()) {
    // Nothing was sent: the upstream did not prove it is the configured service.
    log_event("warn", "upstream TLS handshake failed", {{"reason", up->tls_error()}});
    respond(plain_error_response(502, "bad_gateway", "the upstream service is unreachable", false), false);
    return;
  }
  if (!up->protocol_error().empty()) {
    // The upstream answered, but not with one well-formed HTTP/1 response: nothing of it is relayed.
    log_event("warn", "upstream response refused", {{"reason", up->protocol_error()}});
    respond(plain_error_response(502, "bad_gateway", "the upstream service sent an invalid response", false), false);
    return;
  }
  (void)status;
  respond(plain_error_response(502, "bad_gateway", "the upstream service is unreachable", false), false);
}

int ClientConnection::upstream_response_head(UpstreamConnection* up, int code, const HeaderList& headers) {
  if (up != upstream_ || closed_) return -1;
  if (record_.upstream_sent_ns != 0) {
    record_.upstream_ns = uv_hrtime() - record_.upstream_sent_ns;
    worker_.metrics().upstream_seconds.observe(static_cast<double>(record_.upstream_ns) / 1e9);
  }
  if (code == 101) {
    if (const char* why = switching_refusal(upgrade_request_, headers_.get("upgrade"), headers.get("upgrade"))) {
      return up->refuse(why);
    }
  }
  record_.upstream_status = code;
  record_.status = code;
  if (!request_done_) keep_alive_ = false;  // an early response: the rest of the request cannot be skipped safely
  if (upgrade_request_ && code != 101) keep_alive_ = false;  // a refused upgrade: the parser state is spent
  if (worker_.draining()) keep_alive_ = false;

  Http1ResponseHead out = http1_response_head(Http1ResponseInput{
      .code = code,
      .headers = headers,
      .content_length = up->content_length(),
      .head_request = head_request_,
      .client_http11 = parser_.http_major == 1 && parser_.http_minor == 1,
      .keep_alive = keep_alive_,
  });
  if (out.switching) {
    arm(Timer::none);
    write_client(std::move(out.head));
    response_head_sent_ = true;
    account();  // the exchange is now a tunnel: its request is done
    return 2;
  }
  if (out.announced_forbidden_body) up->do_not_reuse();
  rechunk_response_ = out.rechunk;
  close_delimited_response_ = out.close_delimited;
  keep_alive_ = out.keep_alive;
  write_client(std::move(out.head));
  response_head_sent_ = true;
  if (out.no_body && request_done_) {
    arm(Timer::none);
  } else {
    body_progress();
    arm(Timer::body);  // a body still flows one way or the other
  }
  return out.no_body ? 1 : 0;
}

void ClientConnection::upstream_body(UpstreamConnection* up, std::string_view data) {
  if (up != upstream_ || closed_ || data.empty()) return;
  body_progress();
  if (rechunk_response_) write_client(http1_chunk(data));
  else append_client(data);
  if (client_queue_size() > kHighWater) up->pause_reading();
}

void ClientConnection::upstream_complete(UpstreamConnection* up) {
  if (up != upstream_ || closed_) return;
  if (rechunk_response_) write_client("0\r\n\r\n");
  upstream_ = nullptr;
  account();
  if (request_done_) {
    upstream_pool_->release(up);
  } else {
    up->close();
  }
  if (!keep_alive_ || !request_done_) {
    close_after_writes();
    return;
  }
  finish_exchange();
}

void ClientConnection::upstream_tunnel_data(UpstreamConnection* up, std::string_view data) {
  if (up != upstream_ || closed_) return;
  if (phase_ != Phase::tunnel) {
    phase_ = Phase::tunnel;
    up->start_tunnel();
    std::string early = pending_.substr(pending_pos_);
    pending_.clear();
    pending_pos_ = 0;
    if (!early.empty()) up->write(std::move(early));
    start_reading();
  }
  if (!data.empty()) append_client(data);
  if (client_queue_size() > kHighWater) up->pause_reading();
}

void ClientConnection::upstream_writable(UpstreamConnection* up) {
  if (up != upstream_ || closed_) return;
  body_progress();
  if (read_paused_for_backpressure_) {
    read_paused_for_backpressure_ = false;
    start_reading();
  }
}

void ClientConnection::finish_exchange() {
  reset_request();
  phase_ = Phase::idle;
  if (worker_.draining()) {
    close_after_writes();
    return;
  }
  arm_between_requests();
  resume_parser();
  resume_input();
}

void ClientConnection::arm_between_requests() {
  // idle_timeout counts from the last byte sent: a client still reading its answers, however
  // slowly, is bounded by body_timeout between writes instead.
  if (output_pending()) {
    body_progress();
    arm(Timer::body);
  } else {
    arm(Timer::idle);
  }
}

void ClientConnection::write_client(std::string data) {
  if (closed_) return;
  if (!batching_) {
    send_client(std::move(data));
  } else if (out_.empty()) {
    out_ = std::move(data);
  } else {
    out_ += data;
  }
}

void ClientConnection::send_client(std::string data) {
  const int rc = transport_.write(std::move(data));
  if (rc < 0) {
    close();
    return;
  }
  if (rc != kWrittenNow) ++writes_in_flight_;
  // Output collected during an upstream read may go out at once, with no write callback to come.
  unblock_input_if_drained();
}

void ClientConnection::unblock_input_if_drained() {
  if (!input_blocked_ || closed_ || client_queue_size() >= kLowWater) return;
  input_blocked_ = false;
  resume_input();
}

void ClientConnection::append_client(std::string_view data) {
  if (batching_ && !closed_) out_ += data;
  else write_client(std::string(data));
}

void ClientConnection::flush_client() {
  if (out_.empty() || closed_) return;
  std::string data = std::move(out_);
  out_.clear();
  send_client(std::move(data));
}

void ClientConnection::upstream_read_end() {
  batching_ = false;
  flush_client();
}

std::size_t ClientConnection::client_queue_size() const {
  return transport_.queue_size() + out_.size();
}

void ClientConnection::on_written(int status) {
  --writes_in_flight_;
  if (closed_) return;
  if (status != 0) {
    close();
    return;
  }
  const std::size_t queued = transport_.queue_size();
  if (close_after_writes_ && writes_in_flight_ == 0) {
    close_when_written();
    return;
  }
  body_progress();
  if (queued >= kLowWater) return;
  if (upstream_) upstream_->resume_reading();
  if (h2up_ && h2up_unconsumed_ > 0) {
    const std::size_t n = h2up_unconsumed_;
    h2up_unconsumed_ = 0;
    h2up_->consume(h2up_id_, n);
    if (closed_) return;
  }
  unblock_input_if_drained();
  if (!closed_ && phase_ == Phase::idle && timer_kind_ == Timer::body && !input_blocked_ && !output_pending()) {
    arm(Timer::idle);  // everything answered has been sent: from now on the client is idle
  }
}

void ClientConnection::close_after_writes() {
  // Answered (by jwtgate or early by the upstream) before the request's body was all read: the
  // rest is drained, not parsed, and not left to reset the connection.
  if (phase_ != Phase::closing) linger_ = phase_ != Phase::idle && expects_body() && !request_done_;
  flush_client();
  if (transport_.is_tls() && transport_.secured() && !closed_) {
    // close_notify after the answer: a client reading a close-delimited body over TLS can tell
    // the end from a truncation only by it.
    const int rc = transport_.close_notify();
    if (rc < 0) {
      close();
      return;
    }
    if (rc != kWrittenNow) ++writes_in_flight_;
  }
  phase_ = Phase::closing;
  stop_reading();
  close_after_writes_ = true;
  if (writes_in_flight_ == 0) {
    close_when_written();
    return;
  }
  // on_written closes once the queue is empty; a client that stops reading its response is not
  // waited for longer than body_timeout (however long a slow one takes to read it all).
  body_progress();
  arm(Timer::body);
}

void ClientConnection::close_when_written() {
  if (!linger_ || lingering_) {
    close();
    return;
  }
  linger();
}

void ClientConnection::linger() {
  lingering_ = true;
  if (!transport_.shutdown()) {
    close();
    return;
  }
  start_reading();
  timer_kind_ = Timer::none;  // its expiry closes
  uv_timer_start(&timer_, on_timer, kLingerMs, 0);
}

void ClientConnection::begin_drain() {
  if (h2_) {
    if (!closed_ && !h2_closing_) h2_->drain();
    return;
  }
  if (phase_ != Phase::idle || closed_) return;
  // Answers still being sent are finished first (bounded by body_timeout and the drain timeout).
  if (output_pending()) close_after_writes();
  else close();
}

void ClientConnection::arm(Timer kind) {
  timer_kind_ = kind;
  const config::Limits& limits = rt().config.limits;
  config::Duration d{0};
  switch (kind) {
    case Timer::none:
      uv_timer_stop(&timer_);
      return;
    case Timer::idle: d = limits.idle_timeout; break;
    case Timer::head: d = limits.header_timeout; break;
    case Timer::handshake: d = transport_.tls_config() ? transport_.tls_config()->handshake_timeout : limits.header_timeout; break;
    case Timer::upstream: d = limits.upstream_timeout; break;
    case Timer::body: d = limits.body_timeout; break;
    case Timer::h2: return;  // the session arms it (h2_arm_timer)
    case Timer::keys: {
      // Bounded by the fetch's own timeout (twice for discovery, which may fetch two documents).
      const config::JwksConfig& jwks = rt().providers[static_cast<std::size_t>(exchange_.awaited_provider())].config.jwks;
      d = jwks.timeout * (jwks.discovery ? 2 : 1) + std::chrono::milliseconds(500);
      break;
    }
  }
  uv_timer_start(&timer_, on_timer, static_cast<std::uint64_t>(d.count()), 0);
}

void ClientConnection::on_timer(uv_timer_t* timer) {
  auto* c = static_cast<ClientConnection*>(timer->data);
  switch (c->timer_kind_) {
    case Timer::handshake:
      c->worker_.metrics().tls_handshake(TlsHandshakeResult::timeout, nullptr);
      c->close();
      return;
    case Timer::head:
      if (c->phase_ == Phase::head) {
        c->respond(plain_error_response(408, "request_timeout", "the request head was not received in time", false), false);
      } else {
        c->close();
      }
      return;
    case Timer::upstream:
      c->cancel_h2_upstream();
      if (c->upstream_) {
        c->upstream_->close();
        c->upstream_ = nullptr;
      }
      if (c->response_head_sent_) c->close();
      else c->respond(plain_error_response(504, "gateway_timeout", "the upstream service did not answer in time", false), false);
      return;
    case Timer::body: {
      // Progress only stores a time; the timer fires at the first possible deadline and is set
      // again for what is left of the gap since the last progress.
      const auto limit = static_cast<std::uint64_t>(c->rt().config.limits.body_timeout.count());
      const std::uint64_t idle = uv_now(c->worker_.loop()) - c->last_body_progress_ms_;
      if (idle < limit) {
        uv_timer_start(&c->timer_, on_timer, limit - idle, 0);
        return;
      }
      if (c->phase_ == Phase::idle || c->phase_ == Phase::closing) {
        c->close();  // answers were waiting for a client that stopped reading them
        return;
      }
      c->cancel_h2_upstream();
      if (c->upstream_) {
        c->upstream_->close();
        c->upstream_ = nullptr;
      }
      if (!c->response_head_sent_ && c->read_paused_for_backpressure_) {
        // The client's body waited for the upstream, which stopped taking it.
        c->respond(plain_error_response(504, "gateway_timeout", "the upstream service stopped reading the request body", false), false);
      } else if (!c->response_head_sent_) {
        c->respond(plain_error_response(408, "request_timeout", "the request body stopped arriving", false), false);
      } else {
        c->close();  // the response cannot be completed; closing tells the client it is cut short
      }
      return;
    }
    case Timer::keys:
      // The refresh did not end in time: decide with the keys there are (a 401 for the kid).
      c->worker_.cancel_key_wait(c);
      c->keys_refreshed();
      return;
    case Timer::h2:
      if (c->h2_) c->h2_->on_timer();
      return;
    case Timer::idle:
    case Timer::none:
      c->close();
      return;
  }
}

void ClientConnection::close() {
  if (closed_) return;
  closed_ = true;
  out_.clear();
  if (phase_ == Phase::awaiting_keys || h2_) worker_.cancel_key_wait(this);
  if (h2_) {
    h2_->abort();  // each open stream is ended and recorded; the session goes with the connection
  } else if (phase_ != Phase::idle) {
    account();  // cut short: the status says what the client got, 0 if nothing
  }
  phase_ = Phase::closing;
  cancel_h2_upstream();
  if (upstream_) {
    UpstreamConnection* up = upstream_;
    upstream_ = nullptr;
    up->close();
  }
  uv_timer_stop(&timer_);
  transport_.close();
  close_handle(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
}

void ClientConnection::on_closed(uv_handle_t* handle) { static_cast<ClientConnection*>(handle->data)->handle_closed(); }

void ClientConnection::handle_closed() {
  if (--open_handles_ > 0) return;
  worker_.connection_closed(this);  // frees it
}

void ClientConnection::account() {
  if (!record_.active) return;
  record_.active = false;
  const RuntimeConfig& rc = rt();
  const config::Route* route = exchange_.matched_route();
  const std::string& method_name = exchange_.method();
  RouteCounters* counters = route ? gen_->route_metrics[rc.routes.index_of(route)] : worker_.metrics().unrouted;
  // A forward-auth check is logged as the request it asks about.
  const std::string_view method = !method_name.empty() ? std::string_view(method_name)
                                  : route || !exchange_.target().path.empty() || !url_.empty()
                                      ? std::string_view(llhttp_method_name(static_cast<llhttp_method_t>(parser_.method)))
                                      : std::string_view("-");
  write_exchange_record(record_,
                        ExchangeSubject{
                            .mode = mode_,
                            .method = method,
                            .target_path = exchange_.target().path,
                            .url = url_,
                            .route = route ? std::string_view(route->prefix) : std::string_view(),
                            .client = peer_ip_,
                            .upstream = upstream_pool_ ? std::optional<std::string_view>(rc.upstreams[upstream_index_].text)
                                                       : std::nullopt,
                            .protocol = {},
                        },
                        worker_.metrics(), *counters, rc.config.log, worker_.access_log());
}

}  // namespace jwtgate::proxy
