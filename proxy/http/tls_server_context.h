// What a TLS listener presents: one SSL_CTX built from the configured certificate, key, client
// CAs and the process's session-ticket keys. Immutable once built: a certificate reload or a
// ticket-key rotation builds a new one and hands it to the workers, new connections take the
// newest, and a connection keeps the one it started with (its SSL holds a reference).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "config/config.h"
#include "proxy/http/session_ticket_keys.h"
#include "proxy/http/tls_credentials.h"
#include "proxy/http/tls_session.h"

namespace jwtgate::proxy {

class TlsServerContext {
 public:
  // nullptr with `error` when the pair cannot be installed or the client CAs cannot be read.
  static std::shared_ptr<const TlsServerContext> build(const config::TlsListener& config, const TlsCredentials& credentials,
                                                       std::shared_ptr<const SessionTicketKeys> tickets,
                                                       std::string& error);

  SSL_CTX* ctx() const { return ctx_.get(); }
  const config::TlsListener& config() const { return config_; }
  std::int64_t not_after() const { return not_after_; }

 private:
  TlsServerContext() = default;
  config::TlsListener config_;
  SslCtxPtr ctx_;
  std::shared_ptr<const SessionTicketKeys> tickets_;  // referenced by ctx_'s ticket callback
  std::int64_t not_after_ = 0;
};

// ECDHE key exchange with AEAD ciphers only, for TLS 1.2 (TLS 1.3's suites are all AEAD):
// forward secrecy and no CBC padding oracles. Also what upstream connections offer.
inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// What a client may make the listener hold before its handshake is done: OpenSSL sizes its
// buffer from the length a handshake message declares (up to 128 KiB for a ClientHello, 100 KiB
// for a certificate list), so 9 bytes could pin far more memory than any real client sends.
// Real ClientHellos, post-quantum key shares and tickets included, stay well under 16 KiB.
inline constexpr std::size_t kMaxClientHelloBytes = 16 * 1024;
inline constexpr long kMaxClientCertificateList = 32 * 1024;

}  // namespace jwtgate::proxy
