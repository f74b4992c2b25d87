#include "proxy/http/tls_credentials.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <ctime>

namespace jwtgate::proxy {
namespace {

std::vector<core::X509Ptr> read_certificates(const std::string& file, std::string& error) {
  std::vector<core::X509Ptr> out;
  core::BioPtr bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    error = file + ": cannot be read";
    return out;
  }
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the end of the file reads as an error
  if (out.empty()) error = file + ": no PEM certificate in it";
  return out;
}

}  // namespace

std::optional<TlsCredentials> load_tls_credentials(const std::string& cert_file, const std::string& key_file,
                                                   std::string& error) {
  std::vector<core::X509Ptr> certs = read_certificates(cert_file, error);
  if (certs.empty()) return std::nullopt;
  core::BioPtr bio(BIO_new_file(key_file.c_str(), "r"));
  if (!bio) {
    error = key_file + ": cannot be read";
    return std::nullopt;
  }
  core::EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key) {
    error = key_file + ": no PEM private key in it (an encrypted key needs a passphrase jwtgate does not take)";
    return std::nullopt;
  }
  if (X509_check_private_key(certs.front().get(), key.get()) != 1) {
    ERR_clear_error();
    error = key_file + ": the private key does not match the certificate in " + cert_file;
    return std::nullopt;
  }
  TlsCredentials c;
  int days = 0, seconds = 0;
  const ASN1_TIME* not_after = X509_get0_notAfter(certs.front().get());
  if (ASN1_TIME_diff(&days, &seconds, nullptr, not_after) == 1) {
    c.not_after = static_cast<std::int64_t>(std::time(nullptr)) + std::int64_t{days} * 86400 + seconds;
  }
  c.leaf = std::move(certs.front());
  for (std::size_t i = 1; i < certs.size(); ++i) c.chain.push_back(std::move(certs[i]));
  c.key = std::move(key);
  return c;
}

std::vector<core::X509Ptr> load_ca_file(const std::string& file, std::string& error) {
  return read_certificates(file, error);
}

}  // namespace jwtgate::proxy
