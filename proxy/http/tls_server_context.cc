#include "proxy/http/tls_server_context.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstring>

#include "proxy/http/tls_credentials.h"

namespace jwtgate::proxy {
namespace {

// ALPN (RFC 7301): h2 when HTTP/2 is on (`arg` non-null) and the client offers it, else
// HTTP/1.1. A client that offers ALPN with neither gets the no_application_protocol alert rather
// than a protocol it did not ask for.
bool offers(const unsigned char* in, unsigned int inlen, std::string_view proto, const unsigned char** out,
            unsigned char* outlen) {
  for (unsigned int i = 0; i < inlen;) {
    const unsigned int n = in[i];
    if (i + 1 + n > inlen) break;
    if (n == proto.size() && std::memcmp(in + i + 1, proto.data(), n) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(n);
      return true;
    }
    i += 1 + n;
  }
  return false;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void* h2) {
  if (h2 && offers(in, inlen, "h2", out, outlen)) return SSL_TLSEXT_ERR_OK;
  if (offers(in, inlen, "http/1.1", out, outlen)) return SSL_TLSEXT_ERR_OK;
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// OpenSSL resumes a session only under the session ID context it was made in. Deriving that
// context from the client trust settings (client_auth and every CA's DER) means a ticket issued
// before client_auth became required, or before a CA was removed, is never resumed: the client
// gets a full handshake and the current rules.
bool session_context(const config::TlsListener& config, const std::vector<core::X509Ptr>& cas,
                     unsigned char (&out)[SSL_MAX_SID_CTX_LENGTH], unsigned int& len) {
  static_assert(SSL_MAX_SID_CTX_LENGTH >= 32, "a SHA-256 digest must fit");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!md || EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr) != 1) return false;
  const unsigned char mode = static_cast<unsigned char>(config.client_auth);
  static constexpr char kLabel[] = "jwtgate tls session";
  if (EVP_DigestUpdate(md.get(), kLabel, sizeof kLabel) != 1 || EVP_DigestUpdate(md.get(), &mode, 1) != 1) return false;
  for (const auto& ca : cas) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(ca.get(), &der);
    if (n <= 0) return false;
    const bool ok = EVP_DigestUpdate(md.get(), der, static_cast<std::size_t>(n)) == 1;
    OPENSSL_free(der);
    if (!ok) return false;
  }
  return EVP_DigestFinal_ex(md.get(), out, &len) == 1;
}

// A ticket carries the client certificate verified when it was issued; resuming it skips
// verification. A certificate that has expired (or is not yet valid) since then must not live
// on in the session: the client gets a full handshake, which verifies it again.
SSL_TICKET_RETURN check_resumed_session(SSL*, SSL_SESSION* session, const unsigned char*, size_t,
                                        SSL_TICKET_STATUS status, void*) {
  switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW: {
      if (X509* peer = SSL_SESSION_get0_peer(session)) {
        if (X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0 ||
            X509_cmp_current_time(X509_get0_notBefore(peer)) >= 0) {
          return SSL_TICKET_RETURN_IGNORE_RENEW;
        }
      }
      return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
    }
    case SSL_TICKET_FATAL_ERR_MALLOC:
    case SSL_TICKET_FATAL_ERR_OTHER:
      return SSL_TICKET_RETURN_ABORT;
    default:  // no ticket, an empty one, or one no current key opens: a full handshake
      return SSL_TICKET_RETURN_IGNORE_RENEW;
  }
}

}  // namespace

std::shared_ptr<const TlsServerContext> TlsServerContext::build(const config::TlsListener& config,
                                                                const TlsCredentials& credentials,
                                                                std::shared_ptr<const SessionTicketKeys> tickets,
                                                                std::string& error) {
  std::shared_ptr<TlsServerContext> out(new TlsServerContext());
  out->config_ = config;
  out->not_after_ = credentials.not_after;
  out->ctx_.reset(SSL_CTX_new(TLS_server_method()));
  SSL_CTX* ctx = out->ctx_.get();
  if (!ctx) {
    error = openssl_error("cannot create a TLS context");
    return nullptr;
  }
  // RFC 8996 deprecates TLS 1.0 and 1.1; min_version cannot go below 1.2.
  SSL_CTX_set_min_proto_version(ctx, config.min_version == config::TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Renegotiation is a DoS lever and a source of confused identities; nothing here needs it.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    error = openssl_error("cannot set the TLS 1.2 ciphers");
    return nullptr;
  }
  // Idle keep-alive connections then hold no record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate(ctx, credentials.leaf.get()) != 1) {
    error = openssl_error(config.cert_file + ": the certificate cannot be used");
    return nullptr;
  }
  for (const auto& c : credentials.chain) {
    if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1) {
      error = openssl_error(config.cert_file + ": a chain certificate cannot be used");
      return nullptr;
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx, credentials.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    error = openssl_error(config.key_file + ": the key does not match the certificate");
    return nullptr;
  }
  // Any non-null argument means "h2 too"; the context's own address is one that outlives it.
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, config.alpn_h2 ? static_cast<void*>(ctx) : nullptr);
  // Resumption by tickets only: a server-side session cache would be per worker (or locked),
  // and tickets resume on whichever worker the kernel hands the connection to.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  std::vector<core::X509Ptr> cas;
  if (config.client_auth != config::TlsListener::ClientAuth::none) {
    cas = load_ca_file(config.client_ca_file, error);
    if (cas.empty()) return nullptr;
  }
  unsigned char sid_ctx[SSL_MAX_SID_CTX_LENGTH];
  unsigned int sid_ctx_len = 0;
  if (!session_context(config, cas, sid_ctx, sid_ctx_len) ||
      SSL_CTX_set_session_id_context(ctx, sid_ctx, sid_ctx_len) != 1) {
    error = openssl_error("cannot set the TLS session context");
    return nullptr;
  }
  SSL_CTX_set_session_ticket_cb(ctx, nullptr, check_resumed_session, nullptr);
  if (config.session_tickets && tickets) {
    out->tickets_ = std::move(tickets);
    out->tickets_->install(ctx);
    SSL_CTX_set_num_tickets(ctx, 1);
  } else {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  if (config.client_auth != config::TlsListener::ClientAuth::none) {
    // A client certificate chain longer than this is no real chain: capping it bounds what a
    // client that never finishes its handshake makes the listener hold (OpenSSL's default is 100 KiB).
    SSL_CTX_set_max_cert_list(ctx, kMaxClientCertificateList);
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    for (const auto& ca : cas) {
      X509_STORE_add_cert(store, ca.get());
      if (names) {
        if (X509_NAME* n = X509_NAME_dup(X509_get_subject_name(ca.get()))) sk_X509_NAME_push(names, n);
      }
    }
    ERR_clear_error();  // a CA listed twice reports "already in hash table"
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
    int mode = SSL_VERIFY_PEER;
    if (config.client_auth == config::TlsListener::ClientAuth::required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
    SSL_CTX_set_verify_depth(ctx, 8);
  }
  return out;
}

}  // namespace jwtgate::proxy
