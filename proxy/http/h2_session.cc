#include "proxy/http/h2_session.h"

#include <algorithm>

#include "proxy/http/h2_stream.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

constexpr std::size_t kHighWater = 1024 * 1024;  // stop reading while the client's output is this large
constexpr std::size_t kLowWater = 256 * 1024;
constexpr std::size_t kWriteChunk = 64 * 1024;

H2Session* self(void* user) { return static_cast<H2Session*>(user); }

}  // namespace

H2Session::H2Session(WorkerContext& worker, Transport& transport, H2SessionHost& host, H2Peer peer)
    : worker_(worker), transport_(transport), host_(host), peer_(std::move(peer)) {}

H2Session::~H2Session() { worker_.flush_queue().cancel(this); }

std::uint64_t H2Session::now_ms() const { return uv_now(const_cast<WorkerContext&>(worker_).loop()); }

bool H2Session::start() {
  const config::Config& cfg = worker_.generation()->runtime->config;
  nghttp2_session_callbacks* raw_callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&raw_callbacks) != 0) return false;
  const Nghttp2Callbacks callbacks(raw_callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(raw_callbacks, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(raw_callbacks, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(raw_callbacks, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(raw_callbacks, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(raw_callbacks, on_stream_close);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(raw_callbacks, on_invalid_frame);
  nghttp2_option* raw_option = nullptr;
  if (nghttp2_option_new(&raw_option) != 0) return false;
  const Nghttp2Option option(raw_option);
  // Request bytes are credited back only once the upstream has taken them (H2Stream).
  nghttp2_option_set_no_auto_window_update(raw_option, 1);
  nghttp2_option_set_stream_reset_rate_limit(raw_option, cfg.http2.reset_burst, cfg.http2.resets_per_second);
  // nghttp2's defaults, stated: 8 CONTINUATION frames per header block, 1000 queued
  // acknowledgements (PING, SETTINGS) before the connection is dropped, 32 settings per frame.
  nghttp2_option_set_max_continuations(raw_option, 8);
  nghttp2_option_set_max_outbound_ack(raw_option, 1000);
  nghttp2_option_set_max_settings(raw_option, 32);
  // An HPACK table larger than 4 KiB (the client asks) is not kept for it.
  nghttp2_option_set_max_deflate_dynamic_table_size(raw_option, 4096);
  nghttp2_session* raw = nullptr;
  if (nghttp2_session_server_new2(&raw, raw_callbacks, this, raw_option) != 0) return false;
  session_.reset(raw);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, static_cast<std::uint32_t>(cfg.http2.max_concurrent_streams)},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(cfg.http2.stream_window_bytes)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(cfg.limits.max_header_bytes)},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  if (nghttp2_submit_settings(raw, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0) return false;
  nghttp2_session_set_local_window_size(raw, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<std::int32_t>(cfg.http2.connection_window_bytes));
  idle_since_ms_ = now_ms();
  flush();
  return true;
}

H2Stream* H2Session::find(std::int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void H2Session::received(const char* data, std::size_t len) {
  if (finished_ || aborted_ || !session_) return;
  sweep();
  ++in_nghttp2_;
  const nghttp2_ssize n =
      nghttp2_session_mem_recv2(session_.get(), reinterpret_cast<const std::uint8_t*>(data), len);
  --in_nghttp2_;
  if (n < 0) {
    // A connection error (flood, bad preface, compression error): nghttp2 has queued GOAWAY
    // where it could; that goes out (now: the connection is shut down next), then it closes.
    send_now();
    fail();
    return;
  }
  flush();
}

void H2Session::written(int status) {
  if (writes_in_flight_ > 0) --writes_in_flight_;
  if (status != 0) {
    fail();
    return;
  }
  sweep();
  flush();
}

void H2Session::flush() {
  if (!session_ || aborted_) return;
  worker_.flush_queue().defer(this);
}

void H2Session::send_now() {
  if (in_nghttp2_ > 0 || flushing_ || !session_ || aborted_) return;
  flushing_ = true;
  std::string out;
  while (transport_.queue_size() + out.size() < kHighWater) {
    const std::uint8_t* data = nullptr;
    const nghttp2_ssize n = nghttp2_session_mem_send2(session_.get(), &data);
    if (n < 0) {
      flushing_ = false;
      fail();
      return;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    if (out.size() >= kWriteChunk) {
      const int rc = transport_.write(std::move(out));
      out.clear();
      if (rc == 0) ++writes_in_flight_;
      else if (rc < 0) {
        flushing_ = false;
        fail();
        return;
      }
    }
  }
  if (!out.empty()) {
    const int rc = transport_.write(std::move(out));
    if (rc == 0) ++writes_in_flight_;
    else if (rc < 0) {
      flushing_ = false;
      fail();
      return;
    }
  }
  flushing_ = false;
  // Streams whose bytes went out credit their upstreams, outside nghttp2's callbacks. Any of
  // them may end streams (an upstream failing): a snapshot, and closed ones stay allocated.
  std::vector<H2Stream*> sent;
  for (const auto& [id, s] : streams_) sent.push_back(s.get());
  for (H2Stream* s : sent) s->settle();
  if (aborted_) return;
  // A client that stops reading stops being read: its requests would only pile up answers.
  const std::size_t queued = transport_.queue_size();
  if (!reading_paused_ && queued >= kHighWater) {
    reading_paused_ = true;
    transport_.stop_reading();
  } else if (reading_paused_ && queued < kLowWater) {
    reading_paused_ = false;
    transport_.start_reading();
  }
  if (!nghttp2_session_want_read(session_.get()) && !nghttp2_session_want_write(session_.get())) {
    // GOAWAY sent or received and every stream done: nothing more will happen here.
    if (!finished_) {
      finished_ = true;
      host_.h2_finished();
    }
    return;
  }
  rearm();
}

void H2Session::rearm() {
  const config::Limits& limits = worker_.generation()->runtime->config.limits;
  const std::uint64_t now = now_ms();
  std::uint64_t next = 0;
  auto consider = [&](std::uint64_t t) {
    if (t != 0 && (next == 0 || t < next)) next = t;
  };
  if (streams_.empty()) {
    consider(idle_since_ms_ + static_cast<std::uint64_t>(limits.idle_timeout.count()));
  }
  for (const auto& [id, s] : streams_) consider(s->deadline());
  host_.h2_arm_timer(next == 0 ? 0 : next > now ? next - now : 1);
}

void H2Session::on_timer() {
  if (finished_ || aborted_ || !session_) return;
  sweep();
  const std::uint64_t now = now_ms();
  if (streams_.empty()) {
    const config::Limits& limits = worker_.generation()->runtime->config.limits;
    if (now >= idle_since_ms_ + static_cast<std::uint64_t>(limits.idle_timeout.count())) {
      nghttp2_session_terminate_session(session_.get(), NGHTTP2_NO_ERROR);
      send_now();
      if (!finished_) {
        finished_ = true;
        host_.h2_finished();
      }
      return;
    }
  }
  std::vector<H2Stream*> due;
  for (const auto& [id, s] : streams_) {
    const std::uint64_t d = s->deadline();
    if (d != 0 && d <= now) due.push_back(s.get());
  }
  for (H2Stream* s : due) s->deadline_passed(now);
  flush();
}

void H2Session::drain() {
  if (finished_ || aborted_ || !session_) return;
  nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_.get()),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  flush();
}

void H2Session::keys_refreshed() {
  if (aborted_) return;
  std::vector<H2Stream*> all;
  for (const auto& [id, s] : streams_) all.push_back(s.get());
  for (H2Stream* s : all) s->keys_refreshed();
  flush();
}

void H2Session::fail() {
  if (!finished_) {
    finished_ = true;
    host_.h2_finished();
  }
}

void H2Session::abort() {
  if (aborted_) return;
  aborted_ = true;
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, s] : streams) {
    s->closed(NGHTTP2_CANCEL);
    closed_streams_.push_back(std::move(s));
  }
}

void H2Session::sweep() { closed_streams_.clear(); }

int H2Session::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  H2Session* h = self(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  const std::int32_t id = frame->hd.stream_id;
  h->streams_[id] = std::make_unique<H2Stream>(*h, id);
  return 0;
}

int H2Session::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                         const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
  H2Stream* s = self(user)->find(frame->hd.stream_id);
  if (!s || frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) s->add_field(as_view(name, namelen), as_view(value, valuelen));
  else s->add_trailer(as_view(name, namelen), as_view(value, valuelen));
  return 0;
}

int H2Session::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  H2Session* h = self(user);
  H2Stream* s = h->find(frame->hd.stream_id);
  if (!s) return 0;
  const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      s->head_complete(end);
      return 0;
    }
    if (end) s->request_ended();
  } else if (frame->hd.type == NGHTTP2_DATA && end) {
    s->request_ended();
  }
  return 0;
}

int H2Session::on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                             std::size_t len, void* user) {
  H2Stream* s = self(user)->find(id);
  if (!s) {
    nghttp2_session_consume(session, id, len);  // nobody will: keep the connection's window open
    return 0;
  }
  s->body(as_view(data, len));
  return 0;
}

int H2Session::on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t error_code, void* user) {
  H2Session* h = self(user);
  auto it = h->streams_.find(id);
  if (it == h->streams_.end()) return 0;
  std::unique_ptr<H2Stream> s = std::move(it->second);
  h->streams_.erase(it);
  s->closed(error_code);
  h->closed_streams_.push_back(std::move(s));  // it may be on the stack (a flush it started)
  if (h->streams_.empty()) h->idle_since_ms_ = h->now_ms();
  return 0;
}

int H2Session::on_invalid_frame(nghttp2_session*, const nghttp2_frame*, int, void*) {
  // nghttp2 answers with RST_STREAM or GOAWAY itself (a malformed request never becomes a
  // stream we act on: its HEADERS never reach on_frame_recv).
  return 0;
}

}  // namespace jwtgate::proxy
