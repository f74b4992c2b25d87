#include "proxy/http/session_ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

namespace jwtgate::proxy {
namespace {

int ring_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool fresh(SessionTicketKey& k) {
  return RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) == 1 &&
         RAND_bytes(k.aes_key.data(), static_cast<int>(k.aes_key.size())) == 1 &&
         RAND_bytes(k.hmac_key.data(), static_cast<int>(k.hmac_key.size())) == 1;
}

}  // namespace

SessionTicketKeys::~SessionTicketKeys() {
  for (auto& k : keys_) OPENSSL_cleanse(&k, sizeof k);
}

std::shared_ptr<const SessionTicketKeys> SessionTicketKeys::generate() {
  std::shared_ptr<SessionTicketKeys> ring(new SessionTicketKeys());
  ring->keys_.emplace_back();
  if (!fresh(ring->keys_.front())) return nullptr;
  return ring;
}

std::shared_ptr<const SessionTicketKeys> SessionTicketKeys::rotated() const {
  std::shared_ptr<SessionTicketKeys> ring(new SessionTicketKeys());
  ring->keys_.emplace_back();
  if (!fresh(ring->keys_.front())) return nullptr;
  for (std::size_t i = 0; i < keys_.size() && i < kKeptPrevious; ++i) ring->keys_.push_back(keys_[i]);
  return ring;
}

void SessionTicketKeys::install(SSL_CTX* ctx) const {
  // The context holds a reference owned by whoever built it (TlsServerContext keeps the ring
  // alive as long as its SSL_CTX).
  SSL_CTX_set_ex_data(ctx, ring_index(), const_cast<SessionTicketKeys*>(this));
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, callback);
}

int SessionTicketKeys::callback(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                                EVP_MAC_CTX* mac, int encrypt) {
  const auto* ring = static_cast<const SessionTicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index()));
  if (!ring || ring->keys_.empty()) return encrypt ? -1 : 0;
  const SessionTicketKey* key = nullptr;
  bool newest = false;
  if (encrypt) {
    key = &ring->keys_.front();
    newest = true;
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    std::memcpy(name, key->name.data(), key->name.size());
  } else {
    for (std::size_t i = 0; i < ring->keys_.size(); ++i) {
      if (CRYPTO_memcmp(name, ring->keys_[i].name.data(), ring->keys_[i].name.size()) == 0) {
        key = &ring->keys_[i];
        newest = i == 0;
        break;
      }
    }
    if (!key) return 0;  // unknown or expired key: a full handshake
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key->hmac_key.data()),
                                        key->hmac_key.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  const int ok = encrypt ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes_key.data(), iv)
                         : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes_key.data(), iv);
  if (ok != 1) return -1;
  // 2: valid but sealed with a retired key, so the client gets a ticket under the new one.
  return encrypt || newest ? 1 : 2;
}

}  // namespace jwtgate::proxy
