#include "proxy/http/tls_client_context.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "proxy/http/tls_credentials.h"
#include "proxy/http/tls_server_context.h"

namespace jwtgate::proxy {
namespace {

// TLS 1.2 hands the session over with the handshake, TLS 1.3 in NewSessionTicket messages after
// it (read while the connection serves requests or idles): the callback sees both, where
// SSL_get1_session right after the handshake would miss TLS 1.3's tickets.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* sink = static_cast<TlsSessionSink*>(SSL_get_app_data(ssl));
  if (!sink || SSL_SESSION_is_resumable(session) != 1) return 0;
  sink->keep_session(SslSession(session));
  return 1;  // the sink holds the reference OpenSSL handed over
}

}  // namespace

std::shared_ptr<const TlsClientContext> TlsClientContext::build(const config::UpstreamTls& config, std::string& error) {
  std::shared_ptr<TlsClientContext> out(new TlsClientContext());
  out->config_ = config;
  out->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = out->ctx_.get();
  if (!ctx) {
    error = openssl_error("cannot create the upstream TLS context");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    error = openssl_error("cannot set the upstream TLS 1.2 ciphers");
    return nullptr;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // Never optional: an upstream that cannot prove its name gets no request (and no token).
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_verify_depth(ctx, 8);
  if (config.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      error = openssl_error("upstream_tls: the system CA certificates cannot be loaded");
      return nullptr;
    }
  } else {
    // Parsed by the same code as check-config, so both refuse the same files with the same words.
    std::vector<core::X509Ptr> cas = load_ca_file(config.ca_file, error);
    if (cas.empty()) return nullptr;
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (const auto& ca : cas) X509_STORE_add_cert(store, ca.get());
    ERR_clear_error();  // a CA listed twice reports "already in hash table"
  }
  static constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  if (SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn) != 0) {
    error = openssl_error("cannot set the upstream ALPN");
    return nullptr;
  }
  if (!config.cert_file.empty()) {
    std::optional<TlsCredentials> creds = load_tls_credentials(config.cert_file, config.key_file, error);
    if (!creds) return nullptr;
    if (SSL_CTX_use_certificate(ctx, creds->leaf.get()) != 1) {
      error = openssl_error(config.cert_file + ": the certificate cannot be used");
      return nullptr;
    }
    for (const auto& c : creds->chain) {
      if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1) {
        error = openssl_error(config.cert_file + ": a chain certificate cannot be used");
        return nullptr;
      }
    }
    if (SSL_CTX_use_PrivateKey(ctx, creds->key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
      error = openssl_error(config.key_file + ": the key does not match the certificate");
      return nullptr;
    }
  }
  // Sessions live in the pools (one per worker and upstream), never in a cache shared by threads.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  ERR_clear_error();
  return out;
}

TlsSession TlsClientContext::session(const std::string& host) const { return TlsSession::client(ctx_.get(), peer_name(host)); }

bool same_upstream_tls(const config::UpstreamTls& a, const config::UpstreamTls& b) {
  return a.ca_file == b.ca_file && a.server_name == b.server_name && a.cert_file == b.cert_file && a.key_file == b.key_file;
}

}  // namespace jwtgate::proxy
