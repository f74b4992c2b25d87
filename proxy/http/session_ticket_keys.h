// The keys that seal TLS session tickets, rotated by the process (a ticket key that never
// changes would let whoever reads it once decrypt every resumed session's traffic forever). A
// ring is immutable: rotation builds a new one holding the new key and the previous ones, so a
// ticket issued just before a rotation still resumes, and handshakes on any worker read it
// without a lock.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace jwtgate::proxy {

struct SessionTicketKey {
  std::array<unsigned char, 16> name{};
  std::array<unsigned char, 32> aes_key{};
  std::array<unsigned char, 32> hmac_key{};
};

class SessionTicketKeys {
 public:
  // Keys retired by rotation stay accepted for this many rotations.
  static constexpr std::size_t kKeptPrevious = 2;

  // A ring with one fresh random key; nullptr when the random generator fails.
  static std::shared_ptr<const SessionTicketKeys> generate();
  // A new ring: a fresh key for new tickets, this ring's newest ones still accepted.
  std::shared_ptr<const SessionTicketKeys> rotated() const;
  ~SessionTicketKeys();

  // For SSL_CTX_set_tlsext_ticket_key_evp_cb: `ring` is the SSL_CTX's ex-data (see
  // install()).
  void install(SSL_CTX* ctx) const;

 private:
  SessionTicketKeys() = default;
  static int callback(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                      int encrypt);
  std::vector<SessionTicketKey> keys_;  // newest first
};

}  // namespace jwtgate::proxy
