#include "proxy/http/tls_credentials.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>

#include "config/bounded_file.h"

namespace jwtgate::proxy {
namespace {

// A chain or a key is a few KiB; a CA bundle such as Debian's is a few hundred. The limits only
// keep a wrong path (a log, a disk image) from being read whole.
constexpr std::uint64_t kMaxPemBytes = 1024 * 1024;
constexpr std::uint64_t kMaxCaBundleBytes = 16 * 1024 * 1024;

// OpenSSL's error queue is per thread and TLS reads it after every failed call: whatever these
// functions leave behind would be taken for a connection's error later on the same thread.
struct ClearErrorsOnExit {
  ClearErrorsOnExit() { ERR_clear_error(); }
  ~ClearErrorsOnExit() { ERR_clear_error(); }
  ClearErrorsOnExit(const ClearErrorsOnExit&) = delete;
  ClearErrorsOnExit& operator=(const ClearErrorsOnExit&) = delete;
};

// Without a callback, OpenSSL asks for an encrypted key's passphrase on the terminal, which would
// block a server (or check-config in a pipeline) forever.
int no_passphrase(char*, int, int, void*) { return 0; }

std::string openssl_reason(unsigned long e) {
  const char* reason = ERR_reason_error_string(e);
  return reason ? reason : "unknown error";
}

core::BioPtr memory_bio(const std::string& text) {
  return core::BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate in `text`, in file order; OpenSSL skips PEM blocks of other kinds (a key in a
// combined file). `aux`: also accept "TRUSTED CERTIFICATE" blocks, as CA bundles may hold.
bool read_certificates(const std::string& text, const std::string& file, bool aux, std::vector<core::X509Ptr>& out,
                       std::string& error) {
  core::BioPtr bio = memory_bio(text);
  if (!bio) {
    error = file + ": out of memory";
    return false;
  }
  while (X509* x = aux ? PEM_read_bio_X509_AUX(bio.get(), nullptr, no_passphrase, nullptr)
                       : PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr)) {
    out.emplace_back(x);
  }
  // Running out of BEGIN lines is how a well-formed file ends; anything else is a broken block.
  const unsigned long e = ERR_peek_last_error();
  if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
    if (!out.empty()) return true;
    error = file + ": no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)";
  } else {
    error = file + ": certificate " + std::to_string(out.size() + 1) + " is not valid PEM: " + openssl_reason(e);
  }
  out.clear();
  return false;
}

std::int64_t not_after(X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

core::EvpPkeyPtr read_private_key(const std::string& key_file, std::string& error) {
  config::BoundedFile f = config::read_bounded_file(key_file, kMaxPemBytes);
  if (!f.ok()) {
    error = f.error;
    return nullptr;
  }
  core::EvpPkeyPtr key;
  if (core::BioPtr bio = memory_bio(f.text)) key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    if (f.text.find("ENCRYPTED") != std::string::npos) {
      error = key_file + ": the private key is encrypted; jwtgate reads unencrypted PEM keys only (protect the file by "
                         "its permissions instead)";
    } else if (f.text.find("PRIVATE KEY-----") == std::string::npos) {
      error = key_file + ": no PEM private key in it (expected -----BEGIN PRIVATE KEY-----)";
    } else {
      error = key_file + ": the private key is not valid: " + openssl_reason(ERR_peek_last_error());
    }
  }
  OPENSSL_cleanse(f.text.data(), f.text.size());
  return key;
}

}  // namespace

std::optional<TlsCredentials> load_tls_credentials(const std::string& cert_file, const std::string& key_file,
                                                   std::string& error) {
  ClearErrorsOnExit clear;
  config::BoundedFile f = config::read_bounded_file(cert_file, kMaxPemBytes);
  if (!f.ok()) {
    error = f.error;
    return std::nullopt;
  }
  std::vector<core::X509Ptr> certs;
  if (!read_certificates(f.text, cert_file, false, certs, error)) return std::nullopt;
  // A combined file (cert_file == key_file) holds the key too; it is not kept around.
  OPENSSL_cleanse(f.text.data(), f.text.size());
  TlsCredentials c;
  c.key = read_private_key(key_file, error);
  if (!c.key) return std::nullopt;
  c.leaf = std::move(certs.front());
  if (X509_check_private_key(c.leaf.get(), c.key.get()) != 1) {
    error = "the private key in " + key_file + " does not match the certificate in " + cert_file +
            " (the first certificate of the file, which must be the server's own)";
    return std::nullopt;
  }
  c.not_after = not_after(c.leaf.get());
  for (std::size_t i = 1; i < certs.size(); ++i) c.chain.push_back(std::move(certs[i]));
  return c;
}

std::vector<core::X509Ptr> load_ca_file(const std::string& file, std::string& error) {
  ClearErrorsOnExit clear;
  std::vector<core::X509Ptr> out;
  config::BoundedFile f = config::read_bounded_file(file, kMaxCaBundleBytes);
  if (!f.ok()) {
    error = f.error;
    return out;
  }
  read_certificates(f.text, file, true, out, error);
  return out;
}

std::string openssl_error(const std::string& what) {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return what;
  char text[256];
  ERR_error_string_n(e, text, sizeof text);
  return what + ": " + text;
}

}  // namespace jwtgate::proxy
