#include "proxy/http/client_certificate.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/base64url.h"

namespace jwtgate::proxy {
namespace {

// RFC 9440 section 2.1: standard base64 with padding, between colons.
bool append_byte_sequence(X509* cert, std::string& out) {
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert, &der);
  if (n <= 0) return false;
  std::string b64(static_cast<std::size_t>(4 * ((n + 2) / 3)) + 1, '\0');
  const int m = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), der, n);
  OPENSSL_free(der);
  b64.resize(m > 0 ? static_cast<std::size_t>(m) : 0);
  out += ':';
  out += b64;
  out += ':';
  return true;
}

}  // namespace

ClientCertificate read_client_certificate(const SSL* ssl) {
  ClientCertificate c;
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf || SSL_get_verify_result(ssl) != X509_V_OK) return c;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(leaf, EVP_sha256(), digest, &len) != 1 || !append_byte_sequence(leaf, c.header)) return {};
  c.thumbprint = core::base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), len));
  // The chain verification built, not the certificates the client chose to send: those may
  // include any public intermediate (another tenant's, say) that played no part in verifying the
  // leaf. Leaf first and trust anchor last are left out (the leaf is Client-Cert; the anchor is
  // the upstream's own configuration). A resumed session has no verified chain: no header then.
  if (STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl)) {
    for (int i = 1; i + 1 < sk_X509_num(chain); ++i) {
      if (!c.chain_header.empty()) c.chain_header += ", ";
      if (!append_byte_sequence(sk_X509_value(chain, i), c.chain_header)) return {};
    }
  }
  return c;
}

}  // namespace jwtgate::proxy
