// check-config reads the TLS files the way the proxy will: real certificates and keys made by the
// openssl command and, for validity periods it cannot produce (already expired), by OpenSSL's API.
#include <doctest/doctest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>

#include "core/openssl_ptr.h"
#include "tests/support/process.h"

using jwtgate::testing::ProcessResult;
using jwtgate::testing::run_process;
using jwtgate::testing::TempDir;

namespace {

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

ProcessResult check_config(const TempDir& dir, const std::string& yaml) {
  dir.write("jwtgate.yaml", yaml);
  return run_process({JWTGATE_BINARY, "check-config", "--config", dir.file("jwtgate.yaml")});
}

// A self-signed P-256 certificate for CN=`name` valid `days` days, written to PREFIX.crt and PREFIX.key.
void openssl_req(const TempDir& dir, const std::string& prefix, int days, const std::string& name = "localhost") {
  ProcessResult r = run_process({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                 "ec_paramgen_curve:P-256", "-nodes", "-days", std::to_string(days), "-subj",
                                 "/CN=" + name, "-keyout", dir.file(prefix + ".key"), "-out", dir.file(prefix + ".crt")});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// A self-signed certificate valid from now + `from` to now + `to` seconds (OpenSSL's API: the
// openssl command cannot make one that has already expired).
void api_certificate(const TempDir& dir, const std::string& prefix, long from, long to) {
  jwtgate::core::EvpPkeyPtr key(EVP_EC_gen("P-256"));
  REQUIRE(key);
  jwtgate::core::X509Ptr cert(X509_new());
  REQUIRE(cert);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), from);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), to);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("expired.test"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
  jwtgate::core::BioPtr cert_bio(BIO_new(BIO_s_mem())), key_bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_X509(cert_bio.get(), cert.get()) == 1);
  REQUIRE(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  dir.write(prefix + ".crt", bio_text(cert_bio.get()));
  dir.write(prefix + ".key", bio_text(key_bio.get()));
}

std::string utc_day(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

const std::string kProviders = R"(providers:
  - name: main
    issuer: https://idp.example.com/
    audiences: [orders-api]
    algorithms: [ES256]
    jwks: {uri: https://idp.example.com/jwks.json}
)";

std::string tls_yaml(const TempDir& dir, const std::string& cert, const std::string& key, const std::string& extra = "") {
  return "upstream: http://127.0.0.1:3000\n" + kProviders + "tls:\n  cert_file: " + dir.file(cert) +
         "\n  key_file: " + dir.file(key) + "\n" + extra;
}

std::string upstream_tls_yaml(const std::string& body) {
  return "upstream: https://orders.internal\n" + kProviders + "upstream_tls:\n" + body;
}

}  // namespace

TEST_SUITE("check-config: TLS files") {

TEST_CASE("a matching certificate and key are valid") {
  TempDir dir;
  openssl_req(dir, "server", 90);
  ProcessResult r = check_config(dir, tls_yaml(dir, "server.crt", "server.key"));
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK_MESSAGE(contains(r.out, "jwtgate.yaml: valid (0 warnings)"), r.out, r.err);
  CHECK_MESSAGE(r.err.empty(), r.err);
}

TEST_CASE("a key that belongs to another certificate is an error") {
  TempDir dir;
  openssl_req(dir, "server", 90);
  openssl_req(dir, "other", 90);
  ProcessResult r = check_config(dir, tls_yaml(dir, "server.crt", "other.key"));
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(contains(r.err, "jwtgate.yaml: error: tls: the private key in " + dir.file("other.key") +
                                    " does not match the certificate in " + dir.file("server.crt")),
                r.err);
  CHECK_MESSAGE(contains(r.err, "jwtgate.yaml: invalid (1 error, 0 warnings)"), r.err);
  CHECK(r.out.empty());
  // The private key's bytes never appear in a message.
  const std::string key = dir.read("other.key");
  const std::string body = key.substr(key.find('\n') + 1, 40);
  CHECK_FALSE(contains(r.err, body));
}

TEST_CASE("a certificate that expires within 14 days is a warning naming the date") {
  TempDir dir;
  const std::time_t before = std::time(nullptr);
  openssl_req(dir, "soon", 3);
  const std::time_t after = std::time(nullptr);
  ProcessResult r = check_config(dir, tls_yaml(dir, "soon.crt", "soon.key"));
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK_MESSAGE(contains(r.out, "valid (1 warning)"), r.out);
  CHECK_MESSAGE(contains(r.err, "jwtgate.yaml: warning: tls.cert_file: the certificate in " + dir.file("soon.crt") +
                                    " expires on "),
                r.err);
  CHECK_MESSAGE(contains(r.err, "(within 3 days)"), r.err);
  const bool dated = contains(r.err, "expires on " + utc_day(before + 3 * 86400)) ||
                     contains(r.err, "expires on " + utc_day(after + 3 * 86400));
  CHECK_MESSAGE(dated, r.err);
  // 15 days is outside the window.
  openssl_req(dir, "later", 15);
  ProcessResult later = check_config(dir, tls_yaml(dir, "later.crt", "later.key"));
  CHECK_MESSAGE(later.exit_code == 0, later.err);
  CHECK_MESSAGE(contains(later.out, "valid (0 warnings)"), later.out, later.err);
}

TEST_CASE("an expired certificate is an error naming the date") {
  TempDir dir;
  api_certificate(dir, "expired", -30 * 86400L, -86400L);
  const std::time_t now = std::time(nullptr);
  ProcessResult r = check_config(dir, tls_yaml(dir, "expired.crt", "expired.key"));
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(contains(r.err, "jwtgate.yaml: error: tls.cert_file: the certificate in " + dir.file("expired.crt") +
                                    " expired on "),
                r.err);
  const bool dated = contains(r.err, "expired on " + utc_day(now - 86400)) ||
                     contains(r.err, "expired on " + utc_day(now - 86400 - 60));
  CHECK_MESSAGE(dated, r.err);
  CHECK(contains(r.err, "invalid (1 error, 0 warnings)"));
}

TEST_CASE("unreadable, empty and non-PEM files are errors naming the file") {
  TempDir dir;
  openssl_req(dir, "server", 90);
  ProcessResult missing = check_config(dir, tls_yaml(dir, "absent.crt", "server.key"));
  CHECK(missing.exit_code == 2);
  CHECK_MESSAGE(contains(missing.err, "error: tls: cannot read " + dir.file("absent.crt")), missing.err);
  dir.write("empty.crt", "");
  ProcessResult empty = check_config(dir, tls_yaml(dir, "empty.crt", "server.key"));
  CHECK(empty.exit_code == 2);
  CHECK_MESSAGE(contains(empty.err, dir.file("empty.crt") + ": no PEM certificate in it"), empty.err);
  // DER is not PEM.
  REQUIRE(run_process({"/usr/bin/openssl", "x509", "-in", dir.file("server.crt"), "-outform", "DER", "-out",
                       dir.file("server.der")}).exit_code == 0);
  ProcessResult der = check_config(dir, tls_yaml(dir, "server.der", "server.key"));
  CHECK(der.exit_code == 2);
  CHECK_MESSAGE(contains(der.err, dir.file("server.der") + ": no PEM certificate in it"), der.err);
  // A certificate whose base64 is damaged.
  std::string broken = dir.read("server.crt");
  broken.replace(broken.find('\n') + 10, 8, "!!!!!!!!");
  dir.write("broken.crt", broken);
  ProcessResult bad = check_config(dir, tls_yaml(dir, "broken.crt", "server.key"));
  CHECK(bad.exit_code == 2);
  CHECK_MESSAGE(contains(bad.err, dir.file("broken.crt") + ": certificate 1 is not valid PEM"), bad.err);
  // The certificate given as the key.
  ProcessResult swapped = check_config(dir, tls_yaml(dir, "server.crt", "server.crt"));
  CHECK(swapped.exit_code == 2);
  CHECK_MESSAGE(contains(swapped.err, dir.file("server.crt") + ": no PEM private key in it"), swapped.err);
}

TEST_CASE("an encrypted key is refused without asking for a passphrase") {
  TempDir dir;
  openssl_req(dir, "server", 90);
  REQUIRE(run_process({"/usr/bin/openssl", "pkey", "-in", dir.file("server.key"), "-aes256", "-passout", "pass:secret",
                       "-out", dir.file("encrypted.key")}).exit_code == 0);
  ProcessResult r = check_config(dir, tls_yaml(dir, "server.crt", "encrypted.key"));
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(contains(r.err, dir.file("encrypted.key") + ": the private key is encrypted"), r.err);
}

TEST_CASE("the leaf comes first: a chain file after it is fine, before it is a mismatch") {
  TempDir dir;
  openssl_req(dir, "leaf", 90);
  openssl_req(dir, "intermediate", 90, "Intermediate");
  dir.write("chain.crt", dir.read("leaf.crt") + dir.read("intermediate.crt"));
  ProcessResult ok = check_config(dir, tls_yaml(dir, "chain.crt", "leaf.key"));
  CHECK_MESSAGE(ok.exit_code == 0, ok.err);
  dir.write("reversed.crt", dir.read("intermediate.crt") + dir.read("leaf.crt"));
  ProcessResult reversed = check_config(dir, tls_yaml(dir, "reversed.crt", "leaf.key"));
  CHECK(reversed.exit_code == 2);
  CHECK_MESSAGE(contains(reversed.err, "does not match the certificate in " + dir.file("reversed.crt")), reversed.err);
  // One file holding the chain and the key, as HAProxy-style bundles do.
  dir.write("bundle.pem", dir.read("chain.crt") + dir.read("leaf.key"));
  ProcessResult bundle = check_config(dir, tls_yaml(dir, "bundle.pem", "bundle.pem"));
  CHECK_MESSAGE(bundle.exit_code == 0, bundle.err);
}

TEST_CASE("tls.client_ca_file must hold at least one certificate") {
  TempDir dir;
  openssl_req(dir, "server", 90);
  openssl_req(dir, "clients", 90, "Client CA");
  const std::string client_auth = "  client_auth: required\n  client_ca_file: ";
  ProcessResult ok = check_config(dir, tls_yaml(dir, "server.crt", "server.key", client_auth + dir.file("clients.crt") + "\n"));
  CHECK_MESSAGE(ok.exit_code == 0, ok.err);
  ProcessResult key = check_config(dir, tls_yaml(dir, "server.crt", "server.key", client_auth + dir.file("clients.key") + "\n"));
  CHECK(key.exit_code == 2);
  CHECK_MESSAGE(contains(key.err, "error: tls.client_ca_file: " + dir.file("clients.key") + ": no PEM certificate in it"),
                key.err);
  ProcessResult missing = check_config(dir, tls_yaml(dir, "server.crt", "server.key", client_auth + dir.file("no.pem") + "\n"));
  CHECK(missing.exit_code == 2);
  CHECK_MESSAGE(contains(missing.err, "error: tls.client_ca_file: cannot read " + dir.file("no.pem")), missing.err);
}

TEST_CASE("upstream_tls: ca_file and the client certificate are checked like the listener's") {
  TempDir dir;
  openssl_req(dir, "ca", 90, "Upstream CA");
  openssl_req(dir, "client", 90, "jwtgate");
  openssl_req(dir, "other", 90);
  openssl_req(dir, "soon", 2, "jwtgate");
  api_certificate(dir, "expired", -30 * 86400L, -3600L);
  ProcessResult ok = check_config(dir, upstream_tls_yaml("  ca_file: " + dir.file("ca.crt") + "\n  cert_file: " +
                                                         dir.file("client.crt") + "\n  key_file: " + dir.file("client.key") + "\n"));
  CHECK_MESSAGE(ok.exit_code == 0, ok.err);
  CHECK_MESSAGE(contains(ok.out, "valid (0 warnings)"), ok.out, ok.err);
  ProcessResult bad_ca = check_config(dir, upstream_tls_yaml("  ca_file: " + dir.file("ca.key") + "\n"));
  CHECK(bad_ca.exit_code == 2);
  CHECK_MESSAGE(contains(bad_ca.err, "error: upstream_tls.ca_file: " + dir.file("ca.key") + ": no PEM certificate"), bad_ca.err);
  ProcessResult mismatch = check_config(dir, upstream_tls_yaml("  cert_file: " + dir.file("client.crt") + "\n  key_file: " +
                                                               dir.file("other.key") + "\n"));
  CHECK(mismatch.exit_code == 2);
  CHECK_MESSAGE(contains(mismatch.err, "error: upstream_tls: the private key in " + dir.file("other.key") + " does not match"),
                mismatch.err);
  ProcessResult soon = check_config(dir, upstream_tls_yaml("  cert_file: " + dir.file("soon.crt") + "\n  key_file: " +
                                                           dir.file("soon.key") + "\n"));
  CHECK_MESSAGE(soon.exit_code == 0, soon.err);
  CHECK_MESSAGE(contains(soon.err, "warning: upstream_tls.cert_file: the certificate in " + dir.file("soon.crt") +
                                       " expires on "),
                soon.err);
  CHECK(contains(soon.err, "(within 2 days)"));
  ProcessResult expired = check_config(dir, upstream_tls_yaml("  cert_file: " + dir.file("expired.crt") + "\n  key_file: " +
                                                              dir.file("expired.key") + "\n"));
  CHECK(expired.exit_code == 2);
  CHECK_MESSAGE(contains(expired.err, "error: upstream_tls.cert_file: the certificate in " + dir.file("expired.crt") +
                                          " expired on "),
                expired.err);
}

TEST_CASE("files are only read when the rest of the config is valid") {
  TempDir dir;
  // The missing files are not reported: the file is already invalid, and its tls section may be
  // what is wrong.
  ProcessResult r = check_config(dir, tls_yaml(dir, "absent.crt", "absent.key", "  min_version: 1.1\n"));
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(contains(r.err, "tls.min_version: TLS 1.1 is refused"), r.err);
  CHECK_FALSE(contains(r.err, "cannot read"));
}

}  // TEST_SUITE
