// One TLS connection's record layer, driven by bytes rather than by a socket: ciphertext read
// from the socket goes in, plaintext comes out; plaintext to send goes in, ciphertext to write
// comes out. OpenSSL works on memory BIOs, so the event loop keeps owning the socket, its reads,
// its write queue and its backpressure exactly as for plain TCP, and nothing here ever blocks.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace jwtgate::proxy {

struct SslDeleter {
  void operator()(SSL* s) const noexcept { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;
struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

class TlsSession {
 public:
  enum class Result {
    ok,              // go on (plaintext may have been produced, output may be waiting)
    handshake_done,  // the handshake finished during this call; plaintext may follow it
    closed,          // the peer sent close_notify: no more plaintext will come
    failed,          // a fatal error: the connection is done (an alert may be waiting in output)
  };

  // `server_name`: for a client session, the SNI sent and the name the certificate must carry
  // (verification itself is configured on `ctx`).
  static TlsSession server(SSL_CTX* ctx);
  static TlsSession client(SSL_CTX* ctx, const std::string& server_name);
  TlsSession() = default;
  TlsSession(TlsSession&& o) noexcept { *this = std::move(o); }
  TlsSession& operator=(TlsSession&& o) noexcept {
    ssl_ = std::move(o.ssl_);
    in_ = std::exchange(o.in_, nullptr);
    out_ = std::exchange(o.out_, nullptr);
    handshake_complete_ = o.handshake_complete_;
    failed_ = o.failed_;
    error_ = std::move(o.error_);
    return *this;
  }

  // Starts a client handshake (its ClientHello lands in the output).
  Result start();
  // Takes `len` bytes from the socket; appends decrypted application data to `plain`.
  Result receive(const char* data, std::size_t len, std::string& plain);
  // Encrypts `plain` into the output. False after a fatal error.
  bool send(std::string_view plain);
  // Queues close_notify.
  void shutdown();
  // Moves whatever ciphertext is ready to go (handshake records, alerts, application records)
  // into `out` (appended). Cheap when nothing is waiting.
  void take_output(std::string& out);
  bool has_output() const;

  bool handshake_complete() const { return handshake_complete_; }
  bool valid() const { return ssl_ != nullptr; }
  SSL* ssl() const { return ssl_.get(); }
  // "TLSv1.2" / "TLSv1.3" once the handshake is done.
  const char* version() const { return SSL_get_version(ssl_.get()); }
  // What the last failure was, for a log line: OpenSSL's reason text, never data.
  const std::string& error() const { return error_; }

 private:
  explicit TlsSession(SSL_CTX* ctx, bool server);
  Result drive(std::string& plain);
  void record_error(int code);

  SslPtr ssl_;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
  bool handshake_complete_ = false;
  bool failed_ = false;
  std::string error_;
};

}  // namespace jwtgate::proxy
