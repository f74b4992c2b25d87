// Connections to an upstream service: one pool per worker and upstream, kept alive between
// requests, with llhttp parsing the responses and handing them to the client connection that
// owns the exchange.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/http/flush_queue.h"
#include "proxy/http/http_head.h"
#include "proxy/http/tls_client_context.h"
#include "proxy/http/tls_session.h"

namespace jwtgate::proxy {

class UpstreamConnection;
class H2UpstreamSession;

// What an upstream connection reports to the exchange using it (the client connection).
class UpstreamClient {
 public:
  virtual void upstream_connected(UpstreamConnection* up) = 0;
  // `status` is a libuv error; `response_started` whether any response byte had arrived.
  virtual void upstream_failed(UpstreamConnection* up, int status, bool response_started) = 0;
  // A final response head (status 101 or 200-599; the reason phrase is not passed on, jwtgate
  // writes its own). Returns what llhttp's on_headers_complete should return (0 body follows,
  // 1 no body, 2 upgrade) or -1 to refuse the response.
  virtual int upstream_response_head(UpstreamConnection* up, int status_code, const HeaderList& headers) = 0;
  virtual void upstream_body(UpstreamConnection* up, std::string_view data) = 0;
  virtual void upstream_complete(UpstreamConnection* up) = 0;
  virtual void upstream_tunnel_data(UpstreamConnection* up, std::string_view data) = 0;
  virtual void upstream_writable(UpstreamConnection* up) = 0;
  // Brackets everything one read from the upstream produced (head, body, end), so the client
  // side can send it with one write instead of one per piece.
  virtual void upstream_read_begin() = 0;
  virtual void upstream_read_end() = 0;

 protected:
  ~UpstreamClient() = default;
};

class UpstreamPool;

class UpstreamConnection final : private TlsSessionSink {
 public:
  // securing: TCP is up, the TLS handshake with an https:// upstream runs.
  enum class State { resolving, connecting, securing, ready, closed };

  UpstreamConnection(uv_loop_t* loop, UpstreamPool* pool);
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  void attach(UpstreamClient* client) { client_ = client; }
  UpstreamClient* client() const { return client_; }
  // Prepares the response parser for the next exchange; a response head larger than
  // `max_head_bytes` is refused.
  void begin_exchange(bool head_request, std::size_t max_head_bytes);
  void write(std::string data);
  std::size_t write_queue_size() const;
  void pause_reading();
  void resume_reading();
  // After a 101 response: everything read from now on is tunnel data.
  void start_tunnel();
  // Ends the connection; the object frees itself once libuv has closed it.
  void close();

  State state() const { return state_; }
  bool keep_alive() const { return keep_alive_; }
  bool response_started() const { return response_started_; }
  bool reused() const { return reused_; }
  // Records why the response is malformed; returned from an llhttp callback (or
  // upstream_response_head) it makes llhttp stop, and the exchange fails with 502.
  int refuse(const char* why);
  // The connection is closed after this exchange instead of returning to the pool.
  void do_not_reuse() { keep_alive_ = false; }
  // Why the last response was refused as malformed (empty when it was not).
  const std::string& protocol_error() const { return protocol_error_; }
  // Why the TLS handshake with the upstream failed (OpenSSL's verify reason, such as
  // "certificate has expired"); empty when it did not. Nothing was sent to the upstream then.
  const std::string& tls_error() const { return tls_error_; }
  // The response's Content-Length as llhttp parsed it: jwtgate writes its own framing.
  std::uint64_t content_length() const { return parser_.content_length; }
  void mark_reused() { reused_ = true; }

 private:
  friend class UpstreamPool;
  void start_connect(const sockaddr* addr);
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
  static void on_connect(uv_connect_t* req, int status);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(void* owner, int status);
  static void on_closed(uv_handle_t* handle);
  void fail(int status);
  int count_head_bytes(std::size_t len);
  void parse(const char* data, std::size_t len);
  void received(const char* data, std::size_t len);
  void received_tls(const char* data, std::size_t len);
  void ended(int status);
  void start_tls();
  void flush_tls();
  void became_ready();
  void keep_session(SslSession session) override;

  static const llhttp_settings_t& response_settings();
  static int cb_message_begin(llhttp_t* p);
  static int cb_status(llhttp_t* p, const char* at, std::size_t len);
  static int cb_header_field(llhttp_t* p, const char* at, std::size_t len);
  static int cb_header_value(llhttp_t* p, const char* at, std::size_t len);
  static int cb_headers_complete(llhttp_t* p);
  static int cb_body(llhttp_t* p, const char* at, std::size_t len);
  static int cb_message_complete(llhttp_t* p);

  uv_tcp_t tcp_{};
  uv_connect_t connect_req_{};
  uv_getaddrinfo_t resolve_req_{};
  llhttp_t parser_{};
  UpstreamPool* pool_;
  bool wants_tls_;  // the pool's upstream is https://: never a byte in plaintext
  bool wants_h2_ = false;  // ALPN h2 only (an HTTP/2 session's connection)
  UpstreamClient* client_ = nullptr;
  State state_ = State::connecting;
  bool keep_alive_ = true;
  bool response_started_ = false;
  bool head_request_ = false;
  bool tunnel_ = false;
  bool reading_ = false;
  bool reused_ = false;
  bool message_done_ = false;
  bool final_head_ = false;  // a final (non-1xx) head was parsed: only now may body bytes flow
  std::size_t max_head_bytes_ = 64 * 1024;
  std::size_t head_bytes_ = 0;
  unsigned interim_responses_ = 0;
  HeaderList headers_;
  std::string protocol_error_;
  std::string tls_error_;
  TlsSession tls_;         // valid for an https:// upstream
  bool tls_answered_ = false;  // some application data has arrived over tls_
};

class UpstreamPool {
 public:
  // `tls`: for an https:// upstream, what its connections present and verify (without one, they
  // fail: an https:// upstream is never spoken to in plaintext).
  // `flushes`: where its HTTP/2 sessions defer their sends (nullptr: they send at once).
  UpstreamPool(uv_loop_t* loop, config::UpstreamUrl upstream, std::size_t max_idle,
               std::shared_ptr<const TlsClientContext> tls = nullptr, FlushQueue* flushes = nullptr);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // An idle kept-alive connection if there is one (state() == ready: use it at once), else a
  // new one (reported connected, or failed, to the client later). The client owns the exchange until it calls
  // release().
  // `h2`: a new connection for an H2UpstreamSession; over TLS it offers only h2 by ALPN and fails
  // unless the upstream agrees.
  UpstreamConnection* acquire(UpstreamClient* client, bool allow_reuse = true, bool h2 = false);
  // Returns a connection after a complete exchange: kept if it can be reused, closed if not.
  void release(UpstreamConnection* up);
  void close_idle();
  std::size_t idle_count() const { return idle_.size(); }
  // A reload with the same upstream_tls settings: new connections use the newly loaded files,
  // the warm ones stay.
  void set_tls(std::shared_ptr<const TlsClientContext> tls);
  // The configuration no longer names this upstream: idle connections close now, busy ones when
  // released, and once live() is 0 nothing refers to the pool any more.
  void retire();
  // Connections made by this pool and not yet closed (they point back at it).
  std::size_t live() const { return live_; }

  // h2c:// upstreams: an HTTP/2 connection with room for one more stream (a new one when none
  // has). `max_head_bytes`, `window`: for a new connection. Never nullptr; it may have failed
  // already (its submit then returns 0).
  H2UpstreamSession* h2_session(std::size_t max_head_bytes, std::uint32_t window);
  bool h2() const { return upstream_.h2; }
  FlushQueue* flush_queue() const { return flushes_; }

 private:
  friend class UpstreamConnection;
  void forget(UpstreamConnection* up);
  // Whether `up` was verified under the pool's current TLS context (plain ones always are).
  bool current(const UpstreamConnection& up) const;

  uv_loop_t* loop_;
  config::UpstreamUrl upstream_;
  std::size_t max_idle_;
  bool resolved_ = false;
  sockaddr_storage address_{};
  std::vector<UpstreamConnection*> idle_;  // owned by themselves (see close())
  std::size_t live_ = 0;
  bool retired_ = false;
  std::shared_ptr<const TlsClientContext> tls_;
  std::vector<std::unique_ptr<H2UpstreamSession>> h2_sessions_;
  FlushQueue* flushes_ = nullptr;
  // The last session the upstream issued, offered by the next connection (resumption spares a
  // full handshake with its certificate checks per new connection).
  SslSession session_;
};

}  // namespace jwtgate::proxy
