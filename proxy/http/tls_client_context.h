// What jwtgate presents and checks when it speaks TLS to an https:// upstream: one client SSL_CTX
// built from upstream_tls (CAs, client certificate). Immutable once built; a reload builds a new
// one. One context serves every https:// upstream of a configuration (upstream_tls is one
// section): the upstream's own name is set per connection.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "config/config.h"
#include "proxy/http/tls_session.h"

namespace jwtgate::proxy {

struct SslSessionDeleter {
  void operator()(SSL_SESSION* s) const noexcept { SSL_SESSION_free(s); }
};
using SslSession = std::unique_ptr<SSL_SESSION, SslSessionDeleter>;

// Whoever set itself as a connection's SSL app data (SSL_set_app_data) is handed every session
// the upstream issues on it, to offer on the next connection.
class TlsSessionSink {
 public:
  virtual void keep_session(SslSession session) = 0;

 protected:
  ~TlsSessionSink() = default;
};

class TlsClientContext {
 public:
  // nullptr with `error` (naming the file) when the CAs or the client certificate cannot be used.
  static std::shared_ptr<const TlsClientContext> build(const config::UpstreamTls& config, std::string& error);

  // A client session for an upstream at `host`: SNI and the name its certificate must carry are
  // server_name when set, else `host` (an IP literal is checked as an address, and sent no SNI).
  TlsSession session(const std::string& host) const;
  // The name a connection to `host` verifies.
  const std::string& peer_name(const std::string& host) const {
    return config_.server_name.empty() ? host : config_.server_name;
  }
  const config::UpstreamTls& config() const { return config_; }
  SSL_CTX* ctx() const { return ctx_.get(); }

 private:
  TlsClientContext() = default;
  config::UpstreamTls config_;
  SslCtxPtr ctx_;
};

// Same CAs, name and client certificate files: connections made under one are as good as under
// the other (a reload that leaves upstream_tls alone keeps the warm connections).
bool same_upstream_tls(const config::UpstreamTls& a, const config::UpstreamTls& b);

}  // namespace jwtgate::proxy
