// A certificate chain and its private key, read from PEM files: what a TLS listener presents,
// or the client certificate shown to an upstream.
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
// not PEM, empty, or when the key does not match the leaf's public key.
std::optional<TlsCredentials> load_tls_credentials(const std::string& cert_file, const std::string& key_file,
                                                   std::string& error);

// A PEM CA bundle (client_ca_file, upstream_tls.ca_file); empty with `error` on failure.
std::vector<core::X509Ptr> load_ca_file(const std::string& file, std::string& error);

}  // namespace jwtgate::proxy
