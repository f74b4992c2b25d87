// One multiplexed HTTP/2 connection to an h2c:// upstream: nghttp2's client session over an
// UpstreamConnection used as a plain byte stream (its tunnel mode), carrying the streams of many
// exchanges at once. Flow control is the backpressure both ways: a response's bytes are only
// acknowledged (WINDOW_UPDATE) once the exchange has passed them on, and a request's bytes wait
// here, bounded by what the exchange lets in, until the upstream's window takes them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/http/h2_fields.h"
#include "proxy/http/http_head.h"
#include "proxy/http/upstream_pool.h"

namespace jwtgate::proxy {

// The receive window jwtgate offers an HTTP/2 upstream per stream: what one stream's response may
// have in flight toward a client that does not read (a client connection's streams together are
// held to H2Session::kResponseBudget by withholding credit; the connection itself has no limit).
inline constexpr std::uint32_t kH2UpstreamStreamWindow = 64 * 1024;

// What one upstream stream reports to the exchange that opened it.
class H2UpstreamStreamClient {
 public:
  // The final response head (1xx heads are dropped). `status` 200-599.
  virtual void h2_response_head(int status, const HeaderList& headers, bool end_stream) = 0;
  // Response body; the exchange calls H2UpstreamSession::consume once it has passed it on.
  virtual void h2_response_data(std::string_view data) = 0;
  virtual void h2_response_trailers(const HeaderList& trailers) = 0;
  // The stream is over and forgotten by the session: `complete` when the response ended
  // normally; otherwise `refused` when the upstream never processed the request (safe to retry)
  // and `why` says what went wrong.
  virtual void h2_stream_closed(bool complete, bool refused, std::string_view why) = 0;
  // Request bytes buffered here fell below the low-water mark.
  virtual void h2_request_writable() = 0;

 protected:
  ~H2UpstreamStreamClient() = default;
};

class H2UpstreamSession final : private UpstreamClient, private DeferredFlush {
 public:
  // `max_head_bytes`: limits.max_response_header_bytes; `window`: the per-stream receive window.
  H2UpstreamSession(UpstreamPool& pool, std::size_t max_head_bytes, std::uint32_t window);
  ~H2UpstreamSession();
  H2UpstreamSession(const H2UpstreamSession&) = delete;
  H2UpstreamSession& operator=(const H2UpstreamSession&) = delete;

  // Opens a stream with the request head; `end_stream` when there is no body. Returns its id, or
  // 0 when the session cannot take streams any more (the client is not called then).
  std::int32_t submit(H2UpstreamStreamClient* client, const std::vector<HeaderField>& headers, bool end_stream);
  // Sends what is queued (submit() does not: the caller learns the id first).
  void kick();
  // Request body, then its end (with trailers when `trailers` is not empty).
  void send_data(std::int32_t id, std::string_view data);
  void end_request(std::int32_t id, const std::vector<HeaderField>& trailers);
  std::size_t request_buffered(std::int32_t id) const;
  // The exchange has passed `n` response bytes on: the upstream may send that many more.
  void consume(std::int32_t id, std::size_t n);
  // The exchange is gone: RST_STREAM(CANCEL), and its client is never called again.
  void cancel(std::int32_t id);

  // New streams may be opened here: connected or connecting, no GOAWAY, below the peer's limit.
  bool accepting() const;
  std::size_t open_streams() const { return streams_.size(); }
  bool failed() const { return closed_; }
  // Nothing refers to the session any more and it is not in one of its own calls: the pool may
  // free it.
  bool deletable() const { return busy_ == 0 && (closed_ || (retired_ && streams_.empty())); }
  // No new streams; closes once the open ones are done.
  void retire();
  // Closes now when no exchange uses the session any more (cancelled streams do not count).
  void close_if_unused();

 private:
  struct Stream {
    H2UpstreamStreamClient* client = nullptr;
    std::string out;  // request body not yet taken by nghttp2
    std::size_t out_pos = 0;
    bool out_end = false;
    bool deferred = false;
    std::vector<HeaderField> trailers;
    HeaderList head;  // the response head or trailers being received
    std::size_t head_bytes = 0;
    int status = 0;
    bool final_head = false;
    bool response_done = false;
    bool writable_pending = false;
    // Response bytes received and not yet credited back (consume): credited to the connection
    // when the stream ends or is cancelled, so nothing a departed client held stays owed.
    std::size_t unconsumed = 0;
  };

  // UpstreamClient: the connection underneath, in tunnel mode.
  void upstream_connected(UpstreamConnection* up) override;
  void upstream_failed(UpstreamConnection* up, int status, bool response_started) override;
  int upstream_response_head(UpstreamConnection*, int, const HeaderList&) override { return -1; }
  void upstream_body(UpstreamConnection*, std::string_view) override {}
  void upstream_complete(UpstreamConnection*) override {}
  void upstream_tunnel_data(UpstreamConnection* up, std::string_view data) override;
  void upstream_writable(UpstreamConnection* up) override;
  void upstream_read_begin() override {}
  void upstream_read_end() override {}

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags, void* user);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_data_chunk(nghttp2_session*, std::uint8_t flags, std::int32_t id, const std::uint8_t* data,
                           std::size_t len, void* user);
  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t error_code, void* user);
  static nghttp2_ssize read_request_body(nghttp2_session*, std::int32_t id, std::uint8_t* buf, std::size_t length,
                                         std::uint32_t* flags, nghttp2_data_source* source, void* user);

  Stream* find(std::int32_t id);
  // Sends what nghttp2 has to send: at the end of the loop iteration (the pool's FlushQueue),
  // so the frames of many streams go in one write.
  void flush();
  void deferred_flush() override { send_now(); }
  // Sends now, while the socket takes it.
  void send_now();
  // The connection is gone: every open stream is told, and the session takes no more.
  void fail_all(std::string_view why, bool refused);

  UpstreamPool& pool_;
  std::size_t max_head_bytes_;
  Nghttp2Session session_;
  UpstreamConnection* up_ = nullptr;
  bool connected_ = false;
  bool closed_ = false;
  bool retired_ = false;
  bool goaway_ = false;
  bool settings_received_ = false;  // the upstream's first SETTINGS: its stream limit is known
  int in_nghttp2_ = 0;
  int busy_ = 0;  // inside one of its own calls that may reach a client (which may reach the pool)  // inside mem_recv2: sending waits until it returns
  std::unordered_map<std::int32_t, Stream> streams_;
};

}  // namespace jwtgate::proxy
