// The certificate a TLS client presented, in the forms the exchange needs: RFC 9440's
// Client-Cert and Client-Cert-Chain header values for the upstream, and the RFC 8705 thumbprint
// a certificate-bound token is checked against. Read once, when the handshake completes.
#pragma once

#include <openssl/ssl.h>

#include <string>

namespace jwtgate::proxy {

struct ClientCertificate {
  std::string header;        // ":<base64 DER>:" (an RFC 8941 byte sequence); empty: none presented
  std::string chain_header;  // the verified chain between leaf and trust anchor, comma-separated
  std::string thumbprint;    // base64url(SHA-256(DER)), x5t#S256
  bool present() const { return !header.empty(); }
};

// Only a certificate the handshake verified is read (SSL_VERIFY_PEER fails the handshake
// otherwise, so on a completed handshake any peer certificate is a verified one).
ClientCertificate read_client_certificate(const SSL* ssl);

}  // namespace jwtgate::proxy
