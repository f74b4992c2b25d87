// A client connection's byte stream: the accepted TCP socket, and TLS on it when the listener
// has it. Above it, the HTTP codec sees plaintext only; below it, libuv's reads, write queue and
// shutdown stay exactly what they are for plain TCP, so backpressure (the write queue size) and
// lingering mean the same thing on both.
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <string>

#include "proxy/http/tls_server_context.h"
#include "proxy/http/tls_session.h"

namespace jwtgate::proxy {

class TransportUser {
 public:
  // Plaintext from the client; valid only during the call.
  virtual void transport_data(const char* data, std::size_t len) = 0;
  // The client closed its side, the socket failed, or TLS failed: the connection is over.
  virtual void transport_ended() = 0;
  // A write that was queued (write() returned 0) has completed with `status`.
  virtual void transport_written(int status) = 0;
  // The TLS handshake has completed (never called for plain TCP).
  virtual void transport_secured() = 0;
  // A TLS handshake failed (the connection is being closed, transport_ended follows).
  virtual void transport_handshake_failed() = 0;
  // The socket handle has been released after close().
  virtual void transport_closed() = 0;

 protected:
  ~TransportUser() = default;
};

class Transport {
 public:
  // `tls`: the listener's context, or nullptr for plain TCP.
  Transport(uv_loop_t* loop, TransportUser& user, std::shared_ptr<const TlsServerContext> tls);
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  bool accept(uv_stream_t* server);
  // The peer's address as text ("" when unknown).
  const std::string& peer_ip() const { return peer_ip_; }

  void start_reading();
  void stop_reading();
  bool reading() const { return reading_; }

  // Sends `data` (encrypted on TLS). Returns kWrittenNow (nothing queued), 0 (queued:
  // transport_written follows) or a libuv error.
  int write(std::string data);
  // Bytes written but not yet taken by the kernel.
  std::size_t queue_size() const;
  // After the queued writes: close_notify (TLS), then FIN. False when it cannot be started.
  bool shutdown();
  // Queues close_notify (TLS only) as a write of the user's: kWrittenNow, 0 or an error.
  int close_notify();
  void close();

  bool is_tls() const { return tls_context_ != nullptr; }
  const config::TlsListener* tls_config() const { return tls_context_ ? &tls_context_->config() : nullptr; }
  bool secured() const { return session_.handshake_complete(); }
  // The TLS session (valid() false on plain TCP).
  const TlsSession& session() const { return session_; }

 private:
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_written(void* owner, int status);
  static void on_internal_written(void* owner, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_closed(uv_handle_t* handle);
  void received(const char* data, std::size_t len);
  // Writes whatever ciphertext TLS produced that nobody asked to send (handshake flights,
  // tickets, alerts). False when the socket is broken.
  bool flush_tls_output();
  // False when the bytes so far declare a ClientHello longer than kMaxClientHelloBytes.
  bool hello_within_limit(const char* data, std::size_t len);

  TransportUser& user_;
  uv_tcp_t tcp_{};
  std::shared_ptr<const TlsServerContext> tls_context_;  // keeps its SSL_CTX and ticket keys alive
  TlsSession session_;
  // The first TLS record's header and the handshake header after it (9 bytes), kept until the
  // ClientHello's declared length has been checked against kMaxClientHelloBytes.
  unsigned char hello_head_[9] = {};
  std::size_t hello_head_len_ = 0;
  std::string peer_ip_;
  bool reading_ = false;
  bool closed_ = false;
  uv_shutdown_t shutdown_req_{};
};

}  // namespace jwtgate::proxy
