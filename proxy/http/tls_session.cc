#include "proxy/http/tls_session.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace jwtgate::proxy {

TlsSession::TlsSession(SSL_CTX* ctx, bool server) : ssl_(SSL_new(ctx)) {
  if (!ssl_) return;
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (!in_ || !out_) {
    BIO_free(in_);
    BIO_free(out_);
    in_ = out_ = nullptr;
    ssl_.reset();
    return;
  }
  // A read of an empty memory BIO means "wait for more", not end of file.
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_.get(), in_, out_);
  if (server) SSL_set_accept_state(ssl_.get());
  else SSL_set_connect_state(ssl_.get());
}

TlsSession TlsSession::server(SSL_CTX* ctx) { return TlsSession(ctx, true); }

TlsSession TlsSession::client(SSL_CTX* ctx, const std::string& server_name) {
  TlsSession s(ctx, false);
  if (!s.ssl_) return s;
  // SNI only for names: RFC 6066 section 3 forbids literal addresses in it.
  const bool literal = server_name.find_first_not_of("0123456789.") == std::string::npos ||
                       server_name.find(':') != std::string::npos;
  if (!literal) SSL_set_tlsext_host_name(s.ssl_.get(), server_name.c_str());
  // The certificate must name the host: a DNS name, or an IP address (checked as such).
  X509_VERIFY_PARAM* param = SSL_get0_param(s.ssl_.get());
  // RFC 9525 section 6.3: the subject's CN is never a name, even without a subjectAltName.
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
  const bool ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str()) == 1
                          : X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), server_name.size()) == 1;
  if (!ok) s.ssl_.reset();
  return s;
}

TlsSession::Result TlsSession::start() {
  std::string none;
  return drive(none);
}

TlsSession::Result TlsSession::receive(const char* data, std::size_t len, std::string& plain) {
  if (failed_ || !ssl_) return Result::failed;
  while (len > 0) {
    // A memory BIO takes everything, but BIO_write's length is an int.
    const int chunk = len > (1u << 30) ? (1 << 30) : static_cast<int>(len);
    const int n = BIO_write(in_, data, chunk);
    if (n <= 0) {
      failed_ = true;
      error_ = "out of memory";
      return Result::failed;
    }
    data += n;
    len -= static_cast<std::size_t>(n);
  }
  return drive(plain);
}

TlsSession::Result TlsSession::drive(std::string& plain) {
  if (failed_ || !ssl_) return Result::failed;
  Result result = Result::ok;
  if (!handshake_complete_) {
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl_.get());
    if (rc != 1) {
      const int code = SSL_get_error(ssl_.get(), rc);
      if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return Result::ok;
      record_error(code);
      return Result::failed;
    }
    handshake_complete_ = true;
    result = Result::handshake_done;
  }
  // Application data in the same read as the end of the handshake (or after it).
  char buf[16 * 1024];
  for (;;) {
    ERR_clear_error();
    std::size_t n = 0;
    const int rc = SSL_read_ex(ssl_.get(), buf, sizeof buf, &n);
    if (rc == 1) {
      plain.append(buf, n);
      continue;
    }
    const int code = SSL_get_error(ssl_.get(), rc);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return result;
    if (code == SSL_ERROR_ZERO_RETURN) return Result::closed;
    record_error(code);
    return Result::failed;
  }
}

bool TlsSession::send(std::string_view plain) {
  if (failed_ || !ssl_ || !handshake_complete_) return false;
  while (!plain.empty()) {
    ERR_clear_error();
    std::size_t n = 0;
    // Without SSL_MODE_ENABLE_PARTIAL_WRITE, a write into a memory BIO takes everything.
    if (SSL_write_ex(ssl_.get(), plain.data(), plain.size(), &n) != 1) {
      record_error(SSL_get_error(ssl_.get(), 0));
      return false;
    }
    plain.remove_prefix(n);
  }
  return true;
}

void TlsSession::shutdown() {
  if (!ssl_ || failed_ || !handshake_complete_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_.get());  // queues close_notify; the peer's is not waited for
}

bool TlsSession::has_output() const { return out_ && BIO_ctrl_pending(out_) > 0; }

void TlsSession::take_output(std::string& out) {
  if (!out_) return;
  const std::size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return;
  const std::size_t at = out.size();
  out.resize(at + pending);
  const int n = BIO_read(out_, out.data() + at, static_cast<int>(pending));
  out.resize(at + (n > 0 ? static_cast<std::size_t>(n) : 0));
}

void TlsSession::record_error(int code) {
  failed_ = true;
  const unsigned long e = ERR_peek_last_error();
  if (e != 0) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    error_ = text;
  } else if (code == SSL_ERROR_SYSCALL) {
    error_ = "unexpected end of the TLS stream";
  } else {
    error_ = "TLS error " + std::to_string(code);
  }
  ERR_clear_error();
}

}  // namespace jwtgate::proxy
