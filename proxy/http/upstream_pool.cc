#include "proxy/http/upstream_pool.h"

#include <openssl/x509.h>

#include <algorithm>
#include <cstring>

#include "proxy/http/h2_upstream_session.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

UpstreamConnection* self(llhttp_t* p) { return static_cast<UpstreamConnection*>(p->data); }

// The same bound on fields as for request heads.
constexpr std::size_t kMaxResponseFields = 200;
// 103 Early Hints may come more than once; an endless stream of interim heads is an upstream
// holding the client with no answer.
constexpr unsigned kMaxInterimResponses = 16;

}  // namespace

UpstreamConnection::UpstreamConnection(uv_loop_t* loop, UpstreamPool* pool)
    : pool_(pool), wants_tls_(pool && pool->upstream_.tls) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
  llhttp_init(&parser_, HTTP_RESPONSE, &response_settings());
  parser_.data = this;
}

void UpstreamConnection::begin_exchange(bool head_request, std::size_t max_head_bytes) {
  head_request_ = head_request;
  max_head_bytes_ = max_head_bytes;
  response_started_ = false;
  final_head_ = false;
  interim_responses_ = 0;
  protocol_error_.clear();
  headers_.clear();
  llhttp_init(&parser_, HTTP_RESPONSE, &response_settings());
  parser_.data = this;
  resume_reading();
}

void UpstreamConnection::start_connect(const sockaddr* addr) {
  state_ = State::connecting;
  connect_req_.data = this;
  const int rc = uv_tcp_connect(&connect_req_, &tcp_, addr, on_connect);
  if (rc != 0) fail(rc);
}

void UpstreamConnection::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* up = static_cast<UpstreamConnection*>(req->data);
  if (status != 0 || !res) {
    if (res) uv_freeaddrinfo(res);
    if (up->state_ != State::closed) up->fail(status != 0 ? status : UV_EAI_NONAME);
    return;
  }
  if (up->state_ == State::closed) {
    uv_freeaddrinfo(res);
    return;
  }
  std::memcpy(&up->pool_->address_, res->ai_addr, res->ai_addrlen);
  up->pool_->resolved_ = true;
  uv_freeaddrinfo(res);
  up->start_connect(reinterpret_cast<const sockaddr*>(&up->pool_->address_));
}

void UpstreamConnection::on_connect(uv_connect_t* req, int status) {
  auto* up = static_cast<UpstreamConnection*>(req->data);
  if (up->state_ == State::closed) return;
  if (status != 0) {
    up->fail(status);
    return;
  }
  uv_tcp_nodelay(&up->tcp_, 1);
  if (up->wants_tls_) {
    up->start_tls();
    return;
  }
  up->became_ready();
}

void UpstreamConnection::became_ready() {
  state_ = State::ready;
  resume_reading();
  if (client_) client_->upstream_connected(this);
}

void UpstreamConnection::start_tls() {
  state_ = State::securing;
  if (!pool_ || !pool_->tls_) {
    tls_error_ = "no upstream TLS context";
    fail(UV_EPROTO);
    return;
  }
  tls_ = pool_->tls_->session(pool_->upstream_.host);
  if (!tls_.valid()) {
    tls_error_ = "cannot set up a TLS session for " + pool_->tls_->peer_name(pool_->upstream_.host);
    fail(UV_EPROTO);
    return;
  }
  SSL_set_app_data(tls_.ssl(), static_cast<TlsSessionSink*>(this));
  if (wants_h2_) {
    static constexpr unsigned char kH2[] = {2, 'h', '2'};
    SSL_set_alpn_protos(tls_.ssl(), kH2, sizeof kH2);
  }
  // A session the pool kept was verified under the same context and for the same name.
  if (pool_->session_) SSL_set_session(tls_.ssl(), pool_->session_.get());
  reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), alloc_thread_read_buffer, on_read) == 0;
  if (tls_.start() == TlsSession::Result::failed) {
    tls_error_ = tls_.error();
    fail(UV_EPROTO);
    return;
  }
  flush_tls();
}

void UpstreamConnection::keep_session(SslSession session) {
  // A session verified under a context a reload has since replaced must not resume anywhere:
  // resuming skips the certificate checks the new context would make.
  if (pool_ && pool_->current(*this)) pool_->session_ = std::move(session);
}

void UpstreamConnection::flush_tls() {
  if (state_ == State::closed || !tls_.has_output()) return;
  std::string out;
  tls_.take_output(out);
  const int rc = write_or_queue(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(out), this, on_write);
  if (rc < 0) fail(rc);
}

namespace {

// The client stays allocated until its handles close, which happens in a later loop phase, so it
// may be told about the end of the read even when the exchange has ended during it.
class ReadBatch {
 public:
  explicit ReadBatch(UpstreamClient* client) : client_(client) {
    if (client_) client_->upstream_read_begin();
  }
  ~ReadBatch() {
    if (client_) client_->upstream_read_end();
  }
  ReadBatch(const ReadBatch&) = delete;
  ReadBatch& operator=(const ReadBatch&) = delete;

 private:
  UpstreamClient* client_;
};

}  // namespace

void UpstreamConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* up = static_cast<UpstreamConnection*>(stream->data);
  if (nread == 0) return;
  const ReadBatch batch(up->client_);
  if (nread < 0) {
    if (up->state_ == State::securing) up->tls_error_ = "the upstream closed the connection during the TLS handshake";
    if (up->tls_.valid()) {
      // Without close_notify the end of the stream may be an attacker's FIN: a body delimited by
      // the close cannot be known complete (RFC 9112 section 9.8), so nothing is finished here.
      up->fail(static_cast<int>(nread));
      return;
    }
    up->ended(static_cast<int>(nread));
    return;
  }
  if (up->tls_.valid()) {
    up->received_tls(buf->base, static_cast<std::size_t>(nread));
  } else {
    up->received(buf->base, static_cast<std::size_t>(nread));
  }
}

void UpstreamConnection::received_tls(const char* data, std::size_t len) {
  // One buffer per thread, as for the socket reads: an idle pooled connection keeps none. Each
  // read's plaintext is consumed before the next read can run.
  thread_local std::string plain;
  plain.clear();
  if (plain.capacity() > 1024 * 1024) plain.shrink_to_fit();
  const TlsSession::Result r = tls_.receive(data, len, plain);
  flush_tls();  // handshake records, alerts
  if (state_ == State::closed) return;
  if (r == TlsSession::Result::failed) {
    // TLS 1.3 ends the client's handshake before the server has judged its certificate: an
    // alert before the first response byte is the handshake failing too.
    if (!tls_.handshake_complete() || !tls_answered_) {
      // OpenSSL's own reason says only "certificate verify failed"; the verify result says why.
      const long verify = SSL_get_verify_result(tls_.ssl());
      tls_error_ = verify != X509_V_OK ? X509_verify_cert_error_string(verify) : tls_.error();
    } else {
      protocol_error_ = "TLS: " + tls_.error();
    }
    fail(UV_EPROTO);
    return;
  }
  if (r == TlsSession::Result::handshake_done) {
    if (wants_h2_) {
      const unsigned char* alpn = nullptr;
      unsigned int alpn_len = 0;
      SSL_get0_alpn_selected(tls_.ssl(), &alpn, &alpn_len);
      if (alpn_len != 2 || alpn[0] != 'h' || alpn[1] != '2') {
        tls_error_ = "the upstream did not agree to HTTP/2 (ALPN h2), which gRPC needs";
        fail(UV_EPROTO);
        return;
      }
    }
    became_ready();
    if (state_ == State::closed) return;
  }
  if (!plain.empty()) {
    tls_answered_ = true;
    received(plain.data(), plain.size());
    if (state_ == State::closed) return;
  }
  if (r == TlsSession::Result::closed) ended(UV_EOF);  // close_notify: the end of the stream
}

void UpstreamConnection::ended(int status) {
  if (status == UV_EOF && !tunnel_ && response_started_ && llhttp_message_needs_eof(&parser_)) {
    // The response was delimited by the connection closing.
    keep_alive_ = false;
    const llhttp_errno_t finished = llhttp_finish(&parser_);
    if ((finished == HPE_OK || finished == HPE_PAUSED) && message_done_) {
      message_done_ = false;
      UpstreamClient* client = client_;
      if (client) client->upstream_complete(this);  // releases (and so closes) the spent connection
      else close();
      return;
    }
  }
  fail(status);
}

void UpstreamConnection::received(const char* data, std::size_t len) {
  if (tunnel_) {
    if (client_) client_->upstream_tunnel_data(this, std::string_view(data, len));
    return;
  }
  parse(data, len);
}

void UpstreamConnection::parse(const char* data, std::size_t len) {
  if (!client_) {
    // Bytes from an idle upstream: it is not speaking HTTP to us any more.
    fail(UV_EPROTO);
    return;
  }
  const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (err == HPE_OK) return;
  if (err == HPE_PAUSED_UPGRADE) {
    const char* pos = llhttp_get_error_pos(&parser_);
    const std::size_t used = pos ? static_cast<std::size_t>(pos - data) : len;
    tunnel_ = true;
    if (client_) client_->upstream_tunnel_data(this, std::string_view(data + used, len - used));
    return;
  }
  if (err == HPE_PAUSED && message_done_) {
    // Reported only now, outside llhttp: the client may reuse this connection (and re-initialise
    // the parser) at once.
    message_done_ = false;
    // Bytes after a complete response answer no request: reusing the connection would hand them
    // to the next client as its response.
    const char* pos = llhttp_get_error_pos(&parser_);
    if (pos && pos < data + len) keep_alive_ = false;
    if (client_) client_->upstream_complete(this);
    return;
  }
  fail(UV_EPROTO);
}

void UpstreamConnection::write(std::string data) {
  if (state_ != State::ready) return;
  if (tls_.valid()) {
    if (!tls_.send(data)) {
      protocol_error_ = "TLS: " + tls_.error();
      fail(UV_EPROTO);
      return;
    }
    flush_tls();
    return;
  }
  const int rc = write_or_queue(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(data), this, on_write);
  if (rc < 0) fail(rc);
}

void UpstreamConnection::on_write(void* owner, int status) {
  auto* up = static_cast<UpstreamConnection*>(owner);
  if (up->state_ == State::closed) return;
  if (status != 0) {
    up->fail(status);
    return;
  }
  // Handshake records are no request bytes: the client hears of nothing before it is connected.
  if (up->state_ == State::ready && up->client_ && up->write_queue_size() < 256 * 1024) up->client_->upstream_writable(up);
}

std::size_t UpstreamConnection::write_queue_size() const {
  return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_));
}

void UpstreamConnection::pause_reading() {
  if (reading_ && (state_ == State::ready || state_ == State::securing)) uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  reading_ = false;
}

void UpstreamConnection::resume_reading() {
  if (!reading_ && state_ == State::ready) {
    reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), alloc_thread_read_buffer, on_read) == 0;
  }
}

void UpstreamConnection::start_tunnel() { tunnel_ = true; }

int UpstreamConnection::refuse(const char* why) {
  protocol_error_ = why;
  return -1;
}

void UpstreamConnection::fail(int status) {
  if (tls_.valid() && tls_.handshake_complete() && !tls_answered_ && !reused_ && tls_error_.empty() &&
      protocol_error_.empty() && state_ != State::closed) {
    // TLS 1.3 ends the client's handshake before the server has judged its certificate; the
    // server's alert can be lost to the reset that follows it (a read or a write failing), which
    // leaves only this to go by.
    tls_error_ = std::string("the upstream closed the connection right after the TLS handshake (") +
                 uv_err_name(status) + "): under TLS 1.3, how a refused client certificate looks";
  }
  UpstreamClient* client = client_;
  const bool started = response_started_;
  close();
  if (client) client->upstream_failed(this, status, started);
}

void UpstreamConnection::close() {
  if (state_ == State::closed) return;
  if (state_ == State::ready && tls_.handshake_complete()) {
    // Best effort: close_notify tells the upstream the end is deliberate, not a truncation.
    // A write that fails here changes nothing: the connection is going either way.
    tls_.shutdown();
    std::string out;
    tls_.take_output(out);
    if (!out.empty()) (void)write_or_queue(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(out), this, on_write);
  }
  state_ = State::closed;
  client_ = nullptr;
  if (pool_) pool_->forget(this);
  pool_ = nullptr;
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&resolve_req_))) uv_cancel(reinterpret_cast<uv_req_t*>(&resolve_req_));
  close_handle(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
}

void UpstreamConnection::on_closed(uv_handle_t* handle) {
  // Created with make_unique and released to libuv in UpstreamPool::acquire.
  std::unique_ptr<UpstreamConnection> owned(static_cast<UpstreamConnection*>(handle->data));
}

int UpstreamConnection::cb_message_begin(llhttp_t* p) {
  auto* up = self(p);
  up->response_started_ = true;
  up->head_bytes_ = 0;
  up->headers_.clear();
  return 0;
}

int UpstreamConnection::count_head_bytes(std::size_t len) {
  head_bytes_ += len;
  if (head_bytes_ > max_head_bytes_) return refuse("response head larger than limits.max_response_header_bytes");
  return 0;
}

int UpstreamConnection::cb_status(llhttp_t* p, const char* /*at*/, std::size_t len) {
  // The reason phrase is only counted: jwtgate writes its own, so no byte of it reaches the client.
  return self(p)->count_head_bytes(len);
}

int UpstreamConnection::cb_header_field(llhttp_t* p, const char* at, std::size_t len) {
  auto* up = self(p);
  if (up->count_head_bytes(len) != 0) return -1;
  up->headers_.append_name_piece(std::string_view(at, len));
  if (up->headers_.fields().size() > kMaxResponseFields) return up->refuse("response head has more than 200 header fields");
  return 0;
}

int UpstreamConnection::cb_header_value(llhttp_t* p, const char* at, std::size_t len) {
  auto* up = self(p);
  if (up->count_head_bytes(len) != 0) return -1;
  up->headers_.append_value_piece(std::string_view(at, len));
  return 0;
}

int UpstreamConnection::cb_headers_complete(llhttp_t* p) {
  auto* up = self(p);
  const int code = llhttp_get_status_code(p);
  if (code < 100 || code > 599) return up->refuse("response status outside 100-599");
  if (p->http_major != 1 || p->http_minor > 1) return up->refuse("response version other than HTTP/1.0 or HTTP/1.1");
  if (code < 200 && code != 101) {
    // RFC 9110 section 15.2: an interim response ends with its head. One that claims a body
    // would have llhttp read the next response as that body.
    if (up->headers_.has("content-length") || up->headers_.has("transfer-encoding")) {
      return up->refuse("interim (1xx) response with a body");
    }
    if (++up->interim_responses_ > kMaxInterimResponses) return up->refuse("more than 16 interim (1xx) responses");
    up->headers_.clear();  // dropped, parsing goes on
    return 1;
  }
  if (code != 101 && up->headers_.has("transfer-encoding") && !only_chunked(up->headers_)) {
    // Re-chunking would strip the other codings and hand the client coded bytes as the content.
    return up->refuse("response transfer coding other than chunked");
  }
  up->final_head_ = true;
  up->keep_alive_ = llhttp_should_keep_alive(p) != 0;
  if (!up->client_) return -1;
  const int verdict = up->client_->upstream_response_head(up, code, up->headers_);
  if (verdict == 0 && up->head_request_) return 1;
  return verdict;
}

int UpstreamConnection::cb_body(llhttp_t* p, const char* at, std::size_t len) {
  auto* up = self(p);
  if (!up->final_head_) return up->refuse("response body before a final head");
  if (up->client_) up->client_->upstream_body(up, std::string_view(at, len));
  return 0;
}

int UpstreamConnection::cb_message_complete(llhttp_t* p) {
  auto* up = self(p);
  const int code = llhttp_get_status_code(p);
  // An interim response means the upstream has the request: response_started_ stays set, so a
  // failure from here on is never retried.
  if (code >= 100 && code < 200 && code != 101) return 0;
  if (code == 101) return 0;  // llhttp now stops with HPE_PAUSED_UPGRADE: the tunnel begins
  up->keep_alive_ = up->keep_alive_ && llhttp_should_keep_alive(p) != 0;
  up->message_done_ = true;
  return HPE_PAUSED;  // nothing may follow a response until the next request is sent
}

const llhttp_settings_t& UpstreamConnection::response_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = cb_message_begin;
    s.on_status = cb_status;
    s.on_header_field = cb_header_field;
    s.on_header_value = cb_header_value;
    s.on_headers_complete = cb_headers_complete;
    s.on_body = cb_body;
    s.on_message_complete = cb_message_complete;
    return s;
  }();
  return settings;
}

UpstreamPool::UpstreamPool(uv_loop_t* loop, config::UpstreamUrl upstream, std::size_t max_idle,
                           std::shared_ptr<const TlsClientContext> tls, FlushQueue* flushes)
    : loop_(loop), upstream_(std::move(upstream)), max_idle_(max_idle), tls_(std::move(tls)), flushes_(flushes) {
  const std::string port = std::to_string(upstream_.port);
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  if (uv_ip4_addr(upstream_.host.c_str(), upstream_.port, &v4) == 0) {
    std::memcpy(&address_, &v4, sizeof v4);
    resolved_ = true;
  } else if (uv_ip6_addr(upstream_.host.c_str(), upstream_.port, &v6) == 0) {
    std::memcpy(&address_, &v6, sizeof v6);
    resolved_ = true;
  }
}

UpstreamPool::~UpstreamPool() {
  close_idle();
  h2_sessions_.clear();  // each closes its connection, which forgets itself here
}

H2UpstreamSession* UpstreamPool::h2_session(std::size_t max_head_bytes, std::uint32_t window) {
  std::erase_if(h2_sessions_, [](const std::unique_ptr<H2UpstreamSession>& s) { return s->deletable(); });
  for (const auto& s : h2_sessions_) {
    if (s->accepting()) return s.get();
  }
  h2_sessions_.push_back(std::make_unique<H2UpstreamSession>(*this, max_head_bytes, window));
  return h2_sessions_.back().get();
}

UpstreamConnection* UpstreamPool::acquire(UpstreamClient* client, bool allow_reuse, bool h2) {
  while (allow_reuse && !h2 && !idle_.empty()) {
    UpstreamConnection* up = idle_.back();
    idle_.pop_back();
    if (up->state() != UpstreamConnection::State::ready) continue;
    up->attach(client);
    up->mark_reused();
    return up;  // ready now: the caller sends at once
  }
  auto owned = std::make_unique<UpstreamConnection>(loop_, this);
  UpstreamConnection* up = owned.release();  // freed in on_closed once libuv is done with it
  ++live_;
  up->wants_h2_ = h2;
  up->attach(client);
  if (resolved_) {
    up->start_connect(reinterpret_cast<const sockaddr*>(&address_));
  } else {
    up->state_ = UpstreamConnection::State::resolving;
    up->resolve_req_.data = up;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    const std::string port = std::to_string(upstream_.port);
    const int rc = uv_getaddrinfo(loop_, &up->resolve_req_, UpstreamConnection::on_resolved, upstream_.host.c_str(),
                                  port.c_str(), &hints);
    if (rc != 0) up->fail(rc);
  }
  return up;
}

bool UpstreamPool::current(const UpstreamConnection& up) const {
  if (!up.tls_.valid()) return true;
  return tls_ && SSL_get_SSL_CTX(up.tls_.ssl()) == tls_->ctx();
}

void UpstreamPool::release(UpstreamConnection* up) {
  up->attach(nullptr);
  // A retired pool's connections, and ones verified under a context a reload replaced, are done.
  if (retired_ || !current(*up) || up->state() != UpstreamConnection::State::ready || !up->keep_alive() ||
      idle_.size() >= max_idle_) {
    up->close();
    return;
  }
  // Keep reading while idle, so a close by the upstream is noticed before reuse.
  up->resume_reading();
  idle_.push_back(up);
}

void UpstreamPool::set_tls(std::shared_ptr<const TlsClientContext> tls) {
  if (tls == tls_) return;
  tls_ = std::move(tls);
  // Verified under the old context, whose files may have changed in place (a ConfigMap's
  // ..data swap keeps every path): the session and the idle connections go; busy ones are
  // closed when released (current()).
  session_.reset();
  close_idle();
}

void UpstreamPool::retire() {
  retired_ = true;
  session_.reset();
  close_idle();
  for (const auto& s : h2_sessions_) s->retire();
}

void UpstreamPool::forget(UpstreamConnection* up) {
  idle_.erase(std::remove(idle_.begin(), idle_.end(), up), idle_.end());
  --live_;
}

void UpstreamPool::close_idle() {
  auto idle = std::move(idle_);
  idle_.clear();
  for (UpstreamConnection* up : idle) up->close();
  for (const auto& s : h2_sessions_) s->close_if_unused();
}

}  // namespace jwtgate::proxy
