// Reading the PEM files TLS needs: a certificate chain with its private key (the proxy listener's
// tls.cert_file/key_file, the upstream client certificate) and CA bundles (tls.client_ca_file,
// upstream_tls.ca_file). Used at start-up, on reload and by check-config.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/openssl_ptr.h"

namespace jwtgate::proxy {

struct TlsCredentials {
  core::X509Ptr leaf;
  std::vector<core::X509Ptr> chain;  // after the leaf, as in the file
  core::EvpPkeyPtr key;
  std::int64_t not_after = 0;  // leaf's notAfter, Unix seconds
};

// Reads a PEM certificate chain and private key; error (why, naming the file) when unreadable,
// not PEM, empty, or when the key does not match the leaf's public key. Leaves OpenSSL's error
// queue empty, so a TLS connection on the same thread never reads a stale error.
std::optional<TlsCredentials> load_tls_credentials(const std::string& cert_file, const std::string& key_file,
                                                   std::string& error);

// PEM CA bundle for client_ca_file / upstream_tls.ca_file: empty, with `error` set, on failure
// (an unreadable file, a certificate that does not parse, or no certificate at all).
std::vector<core::X509Ptr> load_ca_file(const std::string& file, std::string& error);

// `what`, with OpenSSL's reason for the last error on this thread (the error queue is cleared).
std::string openssl_error(const std::string& what);

}  // namespace jwtgate::proxy
