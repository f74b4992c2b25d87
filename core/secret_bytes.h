// Bytes of a symmetric secret: wiped when released, never printed.
#pragma once

#include <openssl/crypto.h>

#include <string>
#include <string_view>

namespace jwtgate::core {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::string_view bytes) : bytes_(bytes) {}
  SecretBytes(const SecretBytes&) = default;
  SecretBytes& operator=(const SecretBytes& o) { if (this != &o) { wipe(); bytes_ = o.bytes_; } return *this; }
  SecretBytes(SecretBytes&& o) noexcept : bytes_(std::move(o.bytes_)) { o.wipe(); }
  SecretBytes& operator=(SecretBytes&& o) noexcept { if (this != &o) { wipe(); bytes_ = std::move(o.bytes_); o.wipe(); } return *this; }
  ~SecretBytes() { wipe(); }

  std::string_view view() const noexcept { return bytes_; }
  std::size_t size() const noexcept { return bytes_.size(); }
  bool empty() const noexcept { return bytes_.empty(); }

 private:
  void wipe() noexcept {
    if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
    bytes_.clear();
  }
  std::string bytes_;
};

}  // namespace jwtgate::core
