#include "proxy/http/h2_upstream_session.h"

#include <algorithm>

#include "proxy/admin/log.h"

namespace jwtgate::proxy {
namespace {

constexpr std::size_t kRequestLowWater = 64 * 1024;
constexpr std::size_t kQueuedBeforeSettings = 100;
constexpr std::size_t kSocketHighWater = 256 * 1024;

H2UpstreamSession* self(void* user) { return static_cast<H2UpstreamSession*>(user); }

struct Busy {
  explicit Busy(int& n) : n_(n) { ++n_; }
  ~Busy() { --n_; }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;
  int& n_;
};

}  // namespace

H2UpstreamSession::H2UpstreamSession(UpstreamPool& pool, std::size_t max_head_bytes, std::uint32_t window)
    : pool_(pool), max_head_bytes_(max_head_bytes) {
  nghttp2_session_callbacks* raw_callbacks = nullptr;
  nghttp2_session_callbacks_new(&raw_callbacks);
  const Nghttp2Callbacks callbacks(raw_callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(raw_callbacks, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(raw_callbacks, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(raw_callbacks, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(raw_callbacks, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(raw_callbacks, on_stream_close);
  nghttp2_option* raw_option = nullptr;
  nghttp2_option_new(&raw_option);
  const Nghttp2Option option(raw_option);
  // Response bytes are acknowledged only once passed on (consume): the upstream's sending is
  // bounded by how fast the client reads.
  nghttp2_option_set_no_auto_window_update(raw_option, 1);
  // Until the upstream's SETTINGS arrive, one stream at a time: nghttp2 would otherwise assume
  // 100, and a service allowing fewer refuses the rest. nghttp2 queues what waits.
  nghttp2_option_set_peer_max_concurrent_streams(raw_option, 1);
  nghttp2_session* raw = nullptr;
  if (nghttp2_session_client_new2(&raw, raw_callbacks, this, raw_option) != 0) {
    closed_ = true;
    return;
  }
  session_.reset(raw);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(max_head_bytes)},
  };
  nghttp2_submit_settings(raw, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  // No connection-level limit: the per-stream windows (and each client connection's response
  // budget, H2Session) bound what is held. A shared connection window would let one client
  // that stops reading stall every other client of this upstream.
  nghttp2_session_set_local_window_size(raw, NGHTTP2_FLAG_NONE, 0, 0x7fffffff);
  up_ = pool_.acquire(this, false, true);
  if (up_->state() == UpstreamConnection::State::closed) {
    up_ = nullptr;
    closed_ = true;
    return;
  }
  up_->start_tunnel();  // every byte read is HTTP/2, handed to upstream_tunnel_data
}

H2UpstreamSession::~H2UpstreamSession() {
  if (FlushQueue* q = pool_.flush_queue()) q->cancel(this);
  if (up_) {
    UpstreamConnection* up = up_;
    up_ = nullptr;
    up->attach(nullptr);
    up->close();
  }
}

bool H2UpstreamSession::accepting() const {
  if (closed_ || retired_ || goaway_ || !session_) return false;
  if (nghttp2_session_get_next_stream_id(session_.get()) >= 0x7fff0000u) return false;
  // Before the upstream's SETTINGS, up to kQueuedBeforeSettings wait in nghttp2's queue; after,
  // a connection takes what the upstream allows and the pool opens another for the rest.
  if (!settings_received_) return streams_.size() < kQueuedBeforeSettings;
  const std::uint32_t limit = nghttp2_session_get_remote_settings(session_.get(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return streams_.size() < limit;
}

void H2UpstreamSession::retire() {
  retired_ = true;
  if (streams_.empty() && up_) {
    UpstreamConnection* up = up_;
    up_ = nullptr;
    up->attach(nullptr);
    up->close();
    closed_ = true;
  }
}

void H2UpstreamSession::close_if_unused() {
  if (closed_ || busy_ > 0) return;
  for (const auto& [id, s] : streams_) {
    if (s.client) return;
  }
  streams_.clear();
  closed_ = true;
  if (up_) {
    UpstreamConnection* up = up_;
    up_ = nullptr;
    up->attach(nullptr);
    up->close();
  }
}

H2UpstreamSession::Stream* H2UpstreamSession::find(std::int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

std::int32_t H2UpstreamSession::submit(H2UpstreamStreamClient* client, const std::vector<HeaderField>& headers,
                                       bool end_stream) {
  if (!accepting()) return 0;
  const std::vector<nghttp2_nv> nv = to_nv(headers);
  nghttp2_data_provider2 provider{};
  provider.read_callback = read_request_body;
  const std::int32_t id =
      nghttp2_submit_request2(session_.get(), nullptr, nv.data(), nv.size(), end_stream ? nullptr : &provider, this);
  if (id <= 0) return 0;
  Stream& s = streams_[id];
  s.client = client;
  s.out_end = end_stream;
  return id;  // sent by the caller's kick(): a failure now would reach the client before it knows the id
}

void H2UpstreamSession::kick() { flush(); }

void H2UpstreamSession::send_data(std::int32_t id, std::string_view data) {
  Stream* s = find(id);
  if (!s || s->out_end || data.empty()) return;
  if (s->out_pos > 0 && s->out_pos == s->out.size()) {
    s->out.clear();
    s->out_pos = 0;
  }
  s->out.append(data);
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_.get(), id);
  }
  flush();
}

void H2UpstreamSession::end_request(std::int32_t id, const std::vector<HeaderField>& trailers) {
  Stream* s = find(id);
  if (!s || s->out_end) return;
  s->out_end = true;
  s->trailers = trailers;
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_.get(), id);
  }
  flush();
}

std::size_t H2UpstreamSession::request_buffered(std::int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.out.size() - it->second.out_pos;
}

void H2UpstreamSession::consume(std::int32_t id, std::size_t n) {
  if (closed_ || !session_ || n == 0) return;
  Stream* s = find(id);
  if (!s) return;  // its stream ended: what it still owed was credited then
  n = std::min(n, s->unconsumed);
  s->unconsumed -= n;
  if (n > 0) nghttp2_session_consume(session_.get(), id, n);
  flush();
}

void H2UpstreamSession::cancel(std::int32_t id) {
  Stream* s = find(id);
  if (!s) return;
  s->client = nullptr;
  if (!closed_ && session_) {
    if (s->unconsumed > 0) nghttp2_session_consume(session_.get(), id, s->unconsumed);
    s->unconsumed = 0;
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    flush();
  }
}

nghttp2_ssize H2UpstreamSession::read_request_body(nghttp2_session* session, std::int32_t id, std::uint8_t* buf,
                                                   std::size_t length, std::uint32_t* flags, nghttp2_data_source*,
                                                   void* user) {
  H2UpstreamSession* h = self(user);
  Stream* s = h->find(id);
  if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const std::size_t available = s->out.size() - s->out_pos;
  const std::size_t n = std::min(available, length);
  std::copy_n(s->out.data() + s->out_pos, n, buf);
  s->out_pos += n;
  if (s->out_pos == s->out.size()) {
    s->out.clear();
    s->out_pos = 0;
  }
  if (n > 0 && available >= kRequestLowWater && available - n < kRequestLowWater) s->writable_pending = true;
  if (s->out.empty() && s->out_end) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!s->trailers.empty()) {
      const std::vector<nghttp2_nv> nv = to_nv(s->trailers);
      if (nghttp2_submit_trailer(session, id, nv.data(), nv.size()) == 0) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return static_cast<nghttp2_ssize>(n);
  }
  if (n == 0) {
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<nghttp2_ssize>(n);
}

void H2UpstreamSession::flush() {
  if (closed_ || !session_ || !connected_ || !up_) return;
  if (FlushQueue* q = pool_.flush_queue()) q->defer(this);
  else send_now();
}

void H2UpstreamSession::send_now() {
  if (in_nghttp2_ > 0 || closed_ || !session_ || !connected_ || !up_) return;
  const Busy busy(busy_);
  std::string out;
  while (up_ && up_->write_queue_size() < kSocketHighWater) {
    const std::uint8_t* data = nullptr;
    const nghttp2_ssize n = nghttp2_session_mem_send2(session_.get(), &data);
    if (n < 0) {
      fail_all("HTTP/2 error toward the upstream", false);
      return;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    if (out.size() >= 64 * 1024) {
      up_->write(std::move(out));
      out.clear();
    }
  }
  if (!out.empty() && up_) up_->write(std::move(out));
  // Exchanges whose request bytes were taken may send more now (outside nghttp2's callbacks).
  std::vector<H2UpstreamStreamClient*> writable;
  for (auto& [id, s] : streams_) {
    if (s.writable_pending && s.client) writable.push_back(s.client);
    s.writable_pending = false;
  }
  for (H2UpstreamStreamClient* c : writable) c->h2_request_writable();
  if (up_ && !nghttp2_session_want_read(session_.get()) && !nghttp2_session_want_write(session_.get())) {
    fail_all("the upstream ended the HTTP/2 connection", true);
  }
}

void H2UpstreamSession::upstream_connected(UpstreamConnection* up) {
  if (up != up_) return;
  connected_ = true;
  flush();
}

void H2UpstreamSession::upstream_failed(UpstreamConnection* up, int /*status*/, bool /*response_started*/) {
  if (up != up_) return;
  const Busy busy(busy_);
  up_ = nullptr;  // it has closed itself
  const bool never_connected = !connected_;
  if (!up->tls_error().empty()) {
    // Nothing was sent: the upstream did not prove it is the configured service (or refused h2).
    const std::string why = "upstream TLS handshake failed: " + up->tls_error();
    log_event("warn", "upstream TLS handshake failed", {{"reason", up->tls_error()}});
    fail_all(why, false);
    return;
  }
  fail_all(never_connected ? "the upstream service is unreachable" : "the upstream closed the HTTP/2 connection",
           never_connected);
}

void H2UpstreamSession::upstream_writable(UpstreamConnection* up) {
  if (up != up_) return;
  flush();
}

void H2UpstreamSession::upstream_tunnel_data(UpstreamConnection* up, std::string_view data) {
  if (up != up_ || closed_ || data.empty()) return;
  const Busy busy(busy_);
  ++in_nghttp2_;
  const nghttp2_ssize n = nghttp2_session_mem_recv2(session_.get(), reinterpret_cast<const std::uint8_t*>(data.data()),
                                                    data.size());
  --in_nghttp2_;
  if (n < 0) {
    fail_all("the upstream broke the HTTP/2 protocol", false);
    return;
  }
  flush();
}

void H2UpstreamSession::fail_all(std::string_view why, bool refused) {
  if (closed_) return;
  const Busy busy(busy_);
  closed_ = true;
  auto streams = std::move(streams_);
  streams_.clear();
  if (up_) {
    UpstreamConnection* up = up_;
    up_ = nullptr;
    up->attach(nullptr);
    up->close();
  }
  for (auto& [id, s] : streams) {
    // A response that had begun was processed: it is never retried.
    if (s.client) s.client->h2_stream_closed(false, refused && !s.final_head, why);
  }
}

int H2UpstreamSession::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  Stream* s = self(user)->find(frame->hd.stream_id);
  if (s) {
    s->head.clear();
    s->head_bytes = 0;
  }
  return 0;
}

int H2UpstreamSession::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                                 std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                                 void* user) {
  H2UpstreamSession* h = self(user);
  Stream* s = h->find(frame->hd.stream_id);
  if (!s) return 0;
  s->head_bytes += namelen + valuelen + 32;  // RFC 9113 section 6.5.2's accounting
  if (s->head_bytes > h->max_head_bytes_) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream
  const std::string_view n = as_view(name, namelen);
  if (n == ":status") {
    int code = 0;
    for (const std::uint8_t c : std::string_view(as_view(value, valuelen))) code = code * 10 + (c - '0');
    s->status = code;
    return 0;
  }
  s->head.add(std::string(n), std::string(as_view(value, valuelen)));
  return 0;
}

int H2UpstreamSession::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  H2UpstreamSession* h = self(user);
  if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
    h->settings_received_ = true;
    return 0;
  }
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    h->goaway_ = true;  // streams above last_stream_id are closed by nghttp2 as refused
    return 0;
  }
  Stream* s = h->find(frame->hd.stream_id);
  if (!s) return 0;
  const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (!s->final_head) {
      if (s->status >= 100 && s->status < 200) return 0;  // interim: dropped
      s->final_head = true;
      if (s->client) s->client->h2_response_head(s->status, s->head, end);
    } else if (s->client) {
      s->client->h2_response_trailers(s->head);
    }
    if (end) s->response_done = true;
  } else if (frame->hd.type == NGHTTP2_DATA && end) {
    s->response_done = true;
  }
  return 0;
}

int H2UpstreamSession::on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                                     std::size_t len, void* user) {
  Stream* s = self(user)->find(id);
  if (!s || !s->client) {
    nghttp2_session_consume(session, id, len);  // nobody will: keep the connection's window open
    return 0;
  }
  s->unconsumed += len;
  s->client->h2_response_data(as_view(data, len));
  return 0;
}

int H2UpstreamSession::on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t error_code, void* user) {
  H2UpstreamSession* h = self(user);
  auto it = h->streams_.find(id);
  if (it == h->streams_.end()) return 0;
  Stream s = std::move(it->second);
  h->streams_.erase(it);
  if (s.unconsumed > 0) nghttp2_session_consume_connection(h->session_.get(), s.unconsumed);
  if (s.client) {
    const bool complete = error_code == NGHTTP2_NO_ERROR && s.response_done;
    const bool refused = error_code == NGHTTP2_REFUSED_STREAM && !s.final_head;
    s.client->h2_stream_closed(complete, refused,
                               complete ? std::string_view() : refused ? "the upstream refused the stream"
                                                                       : "the upstream reset the stream");
  }
  if (h->retired_ && h->streams_.empty() && h->up_) {
    // A retired pool's connection ends with its last stream (closing is safe inside a callback:
    // the handle goes in a later loop phase, and nothing is read from it after this).
    UpstreamConnection* up = h->up_;
    h->up_ = nullptr;
    up->attach(nullptr);
    up->close();
    h->closed_ = true;
  }
  return 0;
}

}  // namespace jwtgate::proxy
