// A client connection speaking HTTP/2 (h2 by ALPN on TLS, h2c by prior knowledge on plain TCP):
// nghttp2's server session driven by the connection's bytes (nghttp2_session_mem_recv2 /
// mem_send2), one H2Stream per request. The protocol's own attacks are bounded here and in
// nghttp2: concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS), header lists (limits.max_header_bytes,
// HPACK's dynamic table), resets (CVE-2023-44487: a token bucket, then GOAWAY), CONTINUATION
// frames (CVE-2024-28182), PING/SETTINGS floods (queued acknowledgements), and flow control:
// request bytes are credited back to the client only once the upstream has taken them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/ip_network.h"
#include "proxy/http/client_certificate.h"
#include "proxy/http/flush_queue.h"
#include "proxy/http/h2_fields.h"
#include "proxy/http/transport.h"
#include "proxy/worker_context.h"

namespace jwtgate::proxy {

class H2Stream;

// The connection an HTTP/2 session runs on.
class H2SessionHost {
 public:
  // Parks the connection for `provider`'s key refresh; keys_refreshed() follows when true.
  virtual bool h2_await_keys(std::size_t provider) = 0;
  // Run on_timer() in `ms` milliseconds (0: no timer needed).
  virtual void h2_arm_timer(std::uint64_t ms) = 0;
  // The session is over: close once what was queued has been written.
  virtual void h2_finished() = 0;

 protected:
  ~H2SessionHost() = default;
};

// What the connection knows about its peer, the same for every stream.
struct H2Peer {
  std::string ip;
  const std::optional<config::IpAddress>* address = nullptr;
  const ClientCertificate* certificate = nullptr;
  bool tls = false;
};

class H2Session final : private DeferredFlush {
 public:
  H2Session(WorkerContext& worker, Transport& transport, H2SessionHost& host, H2Peer peer);
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Sends the server's SETTINGS; false when nghttp2 could not be set up.
  bool start();
  void received(const char* data, std::size_t len);
  void written(int status);
  void on_timer();
  // Graceful end (drain, reload of limits): GOAWAY, then close once the open streams are done.
  void drain();
  // The connection is closing: every stream is ended and recorded now.
  void abort();
  void keys_refreshed();

  // For streams.
  WorkerContext& worker() { return worker_; }
  const H2Peer& peer() const { return peer_; }
  nghttp2_session* nghttp2() { return session_.get(); }
  bool h2_await_keys(std::size_t provider) { return host_.h2_await_keys(provider); }
  // Sends what nghttp2 has queued, at the end of the loop iteration (the worker's FlushQueue):
  // what one iteration produced for this client goes out in one write.
  void flush();
  std::uint64_t now_ms() const;
  // Response bytes the connection's streams hold for the client, and whether that is over the
  // connection's budget (then no upstream is read or credited until the client catches up).
  void response_buffered(std::ptrdiff_t delta) { response_buffered_ += delta; }
  bool over_response_budget() const { return response_buffered_ > static_cast<std::ptrdiff_t>(kResponseBudget); }
  static constexpr std::size_t kResponseBudget = 2 * 1024 * 1024;

 private:
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags, void* user);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_data_chunk(nghttp2_session*, std::uint8_t flags, std::int32_t id, const std::uint8_t* data,
                           std::size_t len, void* user);
  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t error_code, void* user);
  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame* frame, int error, void* user);

  void deferred_flush() override { send_now(); }
  void send_now();
  H2Stream* find(std::int32_t id);
  void rearm();
  // Frees streams closed since the last call (never while one of them may be on the stack).
  void sweep();
  void fail();

  WorkerContext& worker_;
  Transport& transport_;
  H2SessionHost& host_;
  H2Peer peer_;
  Nghttp2Session session_;
  std::unordered_map<std::int32_t, std::unique_ptr<H2Stream>> streams_;
  std::vector<std::unique_ptr<H2Stream>> closed_streams_;
  int in_nghttp2_ = 0;
  bool flushing_ = false;
  bool finished_ = false;
  bool aborted_ = false;
  bool reading_paused_ = false;
  int writes_in_flight_ = 0;
  std::uint64_t idle_since_ms_ = 0;
  std::ptrdiff_t response_buffered_ = 0;
};

}  // namespace jwtgate::proxy
