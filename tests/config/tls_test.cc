// tls:, upstream_tls:, https:// upstreams and require_certificate_binding as the loader reads them.
#include <doctest/doctest.h>

#include "config/loader.h"
#include "tests/config/fixtures.h"

using namespace jwtgate::config;
using jwtgate::testing::kMinimal;
using jwtgate::testing::options;

namespace {

LoadResult load(const std::string& yaml) { return load_config(yaml, "test.yaml", options()); }
std::string text(const LoadResult& r) { return r.diagnostics.format(); }
bool has(const LoadResult& r, const std::string& needle) { return text(r).find(needle) != std::string::npos; }

// kMinimal with `tls:` holding `body` (indented two spaces per line by the caller).
std::string with_tls(const std::string& body) { return kMinimal + "tls:\n" + body; }
const std::string kPair = "  cert_file: /etc/jwtgate/tls.crt\n  key_file: /etc/jwtgate/tls.key\n";

std::string with_upstream(const std::string& url) {
  std::string y = kMinimal;
  y.replace(y.find("http://127.0.0.1:3000"), 21, url);
  return y;
}

std::string providers_only() { return kMinimal.substr(kMinimal.find("providers:")); }

// kMinimal's provider with require_certificate_binding set to `value`.
std::string binding(const std::string& value) {
  return kMinimal + "    require_certificate_binding: " + value + "\n";
}

}  // namespace

TEST_SUITE("tls section") {

TEST_CASE("without tls: the listener is plain HTTP and no provider requires binding") {
  LoadResult r = load(kMinimal);
  REQUIRE_MESSAGE(r.config, text(r));
  CHECK_FALSE(r.config->tls);
  CHECK_FALSE(r.config->upstream.tls);
  CHECK(r.config->upstream_tls.ca_file.empty());
  CHECK(r.config->upstream_tls.server_name.empty());
  CHECK(r.config->upstream_tls.cert_file.empty());
  CHECK(r.config->upstream_tls.key_file.empty());
  CHECK_FALSE(r.config->providers[0].require_certificate_binding);
}

TEST_CASE("tls: cert_file and key_file alone take every default") {
  LoadResult r = load(with_tls(kPair));
  REQUIRE_MESSAGE(r.config, text(r));
  REQUIRE(r.config->tls);
  const TlsListener& t = *r.config->tls;
  CHECK(t.cert_file == "/etc/jwtgate/tls.crt");
  CHECK(t.key_file == "/etc/jwtgate/tls.key");
  CHECK(t.min_version == TlsVersion::tls1_2);
  CHECK(t.handshake_timeout == std::chrono::seconds(10));
  CHECK(t.session_tickets);
  CHECK(t.client_ca_file.empty());
  CHECK(t.client_auth == TlsListener::ClientAuth::none);
  CHECK(r.diagnostics.items().empty());
}

TEST_CASE("tls: every key is read") {
  LoadResult r = load(with_tls(kPair + "  min_version: 1.3\n  handshake_timeout: 2500ms\n  session_tickets: false\n"
                                       "  client_ca_file: /etc/jwtgate/clients.pem\n  client_auth: required\n"));
  REQUIRE_MESSAGE(r.config, text(r));
  const TlsListener& t = *r.config->tls;
  CHECK(t.min_version == TlsVersion::tls1_3);
  CHECK(t.handshake_timeout == std::chrono::milliseconds(2500));
  CHECK_FALSE(t.session_tickets);
  CHECK(t.client_ca_file == "/etc/jwtgate/clients.pem");
  CHECK(t.client_auth == TlsListener::ClientAuth::required);
  LoadResult optional = load(with_tls(kPair + "  client_ca_file: /ca.pem\n  client_auth: optional\n"));
  REQUIRE_MESSAGE(optional.config, text(optional));
  CHECK(optional.config->tls->client_auth == TlsListener::ClientAuth::optional);
  LoadResult none = load(with_tls(kPair + "  client_auth: none\n"));
  REQUIRE_MESSAGE(none.config, text(none));
  CHECK(none.config->tls->client_auth == TlsListener::ClientAuth::none);
  // ${VAR} expands in paths as in every other string.
  LoadResult env = load_config(with_tls("  cert_file: ${DIR}/tls.crt\n  key_file: ${DIR}/tls.key\n"), "test.yaml",
                               options({{"DIR", "/run/secrets"}}));
  REQUIRE_MESSAGE(env.config, text(env));
  CHECK(env.config->tls->cert_file == "/run/secrets/tls.crt");
}

TEST_CASE("tls.min_version: 1.2 or 1.3, as a number or a string; 1.0 and 1.1 are refused with the reason") {
  for (const char* v : {"1.2", "\"1.2\"", "'1.2'"}) {
    CAPTURE(v);
    LoadResult r = load(with_tls(kPair + "  min_version: " + v + "\n"));
    REQUIRE_MESSAGE(r.config, text(r));
    CHECK(r.config->tls->min_version == TlsVersion::tls1_2);
  }
  for (const char* v : {"1.3", "\"1.3\""}) {
    CAPTURE(v);
    LoadResult r = load(with_tls(kPair + "  min_version: " + v + "\n"));
    REQUIRE_MESSAGE(r.config, text(r));
    CHECK(r.config->tls->min_version == TlsVersion::tls1_3);
  }
  for (const char* v : {"1.0", "1.1", "\"1.1\"", "1"}) {
    CAPTURE(v);
    LoadResult r = load(with_tls(kPair + "  min_version: " + v + "\n"));
    CHECK_FALSE(r.config);
    CHECK_MESSAGE(has(r, "test.yaml:12:16: error: tls.min_version: TLS 1."), text(r));
    CHECK_MESSAGE(has(r, "RFC 8996"), text(r));
  }
  for (const char* v : {"1.4", "TLSv1.2", "[1.2]", "\"\"", "2"}) {
    CAPTURE(v);
    LoadResult r = load(with_tls(kPair + "  min_version: " + v + "\n"));
    CHECK_FALSE(r.config);
    CHECK_MESSAGE(has(r, "error: tls.min_version: expected 1.2 or 1.3, found"), text(r));
  }
}

TEST_CASE("tls: cert_file and key_file are required and not empty") {
  LoadResult no_cert = load(with_tls("  key_file: /k.pem\n"));
  CHECK_FALSE(no_cert.config);
  CHECK_MESSAGE(has(no_cert, "error: tls.cert_file: missing required key"), text(no_cert));
  CHECK_FALSE(has(no_cert, "tls.key_file"));
  LoadResult no_key = load(with_tls("  cert_file: /c.pem\n"));
  CHECK_FALSE(no_key.config);
  CHECK_MESSAGE(has(no_key, "error: tls.key_file: missing required key"), text(no_key));
  LoadResult neither = load(kMinimal + "tls: {}\n");
  CHECK(has(neither, "tls.cert_file: missing required key"));
  CHECK(has(neither, "tls.key_file: missing required key"));
  LoadResult empty = load(with_tls("  cert_file: \"\"\n  key_file: /k.pem\n"));
  CHECK_FALSE(empty.config);
  CHECK_MESSAGE(has(empty, "error: tls.cert_file: must not be empty"), text(empty));
  CHECK(has(load(with_tls("  cert_file: [a]\n  key_file: /k.pem\n")), "tls.cert_file: expected a string, found a list"));
  CHECK(has(load(kMinimal + "tls: /etc/cert.pem\n"), "error: tls: expected a mapping"));
}

TEST_CASE("tls.handshake_timeout is a duration longer than 0s; session_tickets a boolean") {
  LoadResult zero = load(with_tls(kPair + "  handshake_timeout: 0s\n"));
  CHECK_FALSE(zero.config);
  CHECK_MESSAGE(has(zero, "error: tls.handshake_timeout: must be longer than 0s"), text(zero));
  CHECK(has(load(with_tls(kPair + "  handshake_timeout: 10\n")), "error: tls.handshake_timeout: expected a duration"));
  CHECK(has(load(with_tls(kPair + "  session_tickets: maybe\n")), "error: tls.session_tickets: expected true or false"));
}

TEST_CASE("tls.client_auth: none, optional or required; optional and required need client_ca_file") {
  LoadResult typo = load(with_tls(kPair + "  client_ca_file: /ca.pem\n  client_auth: requird\n"));
  CHECK_FALSE(typo.config);
  CHECK_MESSAGE(has(typo, "error: tls.client_auth: expected one of none, optional, required, found \"requird\"; did "
                          "you mean \"required\"?"),
                text(typo));
  // An invalid client_auth is one error, not a second one about client_ca_file.
  CHECK_FALSE(has(typo, "tls.client_ca_file"));
  for (const char* mode : {"optional", "required"}) {
    CAPTURE(mode);
    LoadResult r = load(with_tls(kPair + "  client_auth: " + mode + "\n"));
    CHECK_FALSE(r.config);
    CHECK_MESSAGE(has(r, "test.yaml:12:16: error: tls.client_auth: " + std::string(mode) + " needs tls.client_ca_file"),
                  text(r));
  }
}

TEST_CASE("tls.client_ca_file with client_auth none is an error: a CA that is never checked misleads") {
  for (const std::string& extra : {std::string(), std::string("  client_auth: none\n")}) {
    LoadResult r = load(with_tls(kPair + "  client_ca_file: /ca.pem\n" + extra));
    CHECK_FALSE(r.config);
    CHECK_MESSAGE(has(r, "test.yaml:12:19: error: tls.client_ca_file: is set but tls.client_auth is none"), text(r));
    CHECK(has(r, "set client_auth: optional or required, or remove client_ca_file"));
  }
  CHECK(has(load(with_tls(kPair + "  client_ca_file: \"\"\n  client_auth: required\n")),
            "error: tls.client_ca_file: must not be empty"));
}

TEST_CASE("tls: unknown keys get a suggestion") {
  CHECK(has(load(with_tls(kPair + "  min_verison: 1.3\n")), "tls.min_verison: unknown key \"min_verison\"; did you mean \"min_version\"?"));
  CHECK(has(load(with_tls(kPair + "  client_cafile: /ca.pem\n")), "did you mean \"client_ca_file\"?"));
  CHECK(has(load(kMinimal + "tsl:\n" + kPair), "unknown key \"tsl\"; did you mean \"tls\"?"));
}

TEST_CASE("tls in a forward_auth-only file is an error: it applies to the proxy listener") {
  LoadResult r = load("forward_auth:\n  listen: 127.0.0.1:9001\ntls:\n" + kPair + providers_only());
  CHECK_FALSE(r.config);
  CHECK_MESSAGE(has(r, "test.yaml:4:3: error: tls: configures TLS on the proxy listener (listen)"), text(r));
  CHECK(has(r, "forward_auth-only"));
  // Beside a proxy, forward_auth does not stand in the way.
  LoadResult both = load(kMinimal + "forward_auth:\n  listen: 127.0.0.1:9001\ntls:\n" + kPair);
  REQUIRE_MESSAGE(both.config, text(both));
  CHECK(both.config->tls);
}

TEST_CASE("development: beside tls is an error, as beside any other key") {
  CHECK(has(load("development: {}\ntls:\n" + kPair), "error: development: runs the development default and cannot be combined with tls"));
}

}  // TEST_SUITE

TEST_SUITE("https upstreams and upstream_tls") {

TEST_CASE("upstream: https:// is TLS on port 443 unless another is given; routes take it too") {
  LoadResult r = load(with_upstream("https://orders.internal") +
                      "routes:\n  - prefix: /a\n    upstream: https://inventory:8443/\n  - prefix: /b\n"
                      "    upstream: http://legacy:3000\n  - prefix: /\n");
  REQUIRE_MESSAGE(r.config, text(r));
  CHECK(r.config->upstream.tls);
  CHECK(r.config->upstream.host == "orders.internal");
  CHECK(r.config->upstream.port == 443);
  REQUIRE(r.config->routes.size() == 3);
  CHECK(r.config->routes[0].upstream->tls);
  CHECK(r.config->routes[0].upstream->port == 8443);
  CHECK_FALSE(r.config->routes[1].upstream->tls);
  CHECK(r.diagnostics.items().empty());
  CHECK(has(load(with_upstream("ftp://orders")), "error: upstream: expected an http://, https:// or h2c:// URL"));
  CHECK(has(load(with_upstream("https://orders/v1")), "error: upstream: the upstream URL takes only a host and port"));
}

TEST_CASE("upstream_tls: every key is read beside an https:// upstream") {
  LoadResult r = load(with_upstream("https://orders:8443") +
                      "upstream_tls:\n  ca_file: /etc/jwtgate/upstream-ca.pem\n  server_name: orders.svc.cluster.local\n"
                      "  cert_file: /etc/jwtgate/client.crt\n  key_file: /etc/jwtgate/client.key\n");
  REQUIRE_MESSAGE(r.config, text(r));
  const UpstreamTls& u = r.config->upstream_tls;
  CHECK(u.ca_file == "/etc/jwtgate/upstream-ca.pem");
  CHECK(u.server_name == "orders.svc.cluster.local");
  CHECK(u.cert_file == "/etc/jwtgate/client.crt");
  CHECK(u.key_file == "/etc/jwtgate/client.key");
  CHECK(r.diagnostics.items().empty());
  LoadResult ip = load(with_upstream("https://10.0.0.7") + "upstream_tls: {server_name: 10.0.0.7}\n");
  REQUIRE_MESSAGE(ip.config, text(ip));
  CHECK(ip.config->upstream_tls.server_name == "10.0.0.7");
}

TEST_CASE("upstream_tls.cert_file and key_file: both or neither") {
  LoadResult cert = load(with_upstream("https://orders") + "upstream_tls:\n  cert_file: /c.pem\n");
  CHECK_FALSE(cert.config);
  CHECK_MESSAGE(has(cert, "test.yaml:10:14: error: upstream_tls.key_file: missing: a client certificate"), text(cert));
  LoadResult key = load(with_upstream("https://orders") + "upstream_tls:\n  key_file: /k.pem\n");
  CHECK_FALSE(key.config);
  CHECK_MESSAGE(has(key, "test.yaml:10:13: error: upstream_tls.cert_file: missing: a client key"), text(key));
  LoadResult ca_only = load(with_upstream("https://orders") + "upstream_tls:\n  ca_file: /ca.pem\n");
  REQUIRE_MESSAGE(ca_only.config, text(ca_only));
  CHECK(ca_only.diagnostics.items().empty());
}

TEST_CASE("upstream_tls: bad values are errors naming the key") {
  CHECK(has(load(with_upstream("https://orders") + "upstream_tls: {server_name: \"orders internal\"}\n"),
            "error: upstream_tls.server_name: expected a host name such as orders.internal, found \"orders internal\""));
  CHECK(has(load(with_upstream("https://orders") + "upstream_tls: {ca_file: \"\"}\n"),
            "error: upstream_tls.ca_file: must not be empty"));
  CHECK(has(load(with_upstream("https://orders") + "upstream_tls: {cafile: /ca.pem}\n"),
            "upstream_tls.cafile: unknown key \"cafile\"; did you mean \"ca_file\"?"));
  CHECK(has(load(with_upstream("https://orders") + "upstream_tls: yes\n"), "error: upstream_tls: expected a mapping"));
}

TEST_CASE("upstream_tls without an https:// upstream is warned about: it has no effect") {
  LoadResult r = load(kMinimal + "upstream_tls:\n  ca_file: /ca.pem\n");
  REQUIRE_MESSAGE(r.config, text(r));
  CHECK_MESSAGE(has(r, "test.yaml:10:3: warning: upstream_tls: has no effect: no upstream"), text(r));
  // One https:// route upstream is enough.
  LoadResult route = load(kMinimal + "upstream_tls:\n  ca_file: /ca.pem\nroutes:\n  - prefix: /a\n    upstream: https://a\n"
                                     "  - prefix: /\n");
  REQUIRE_MESSAGE(route.config, text(route));
  CHECK_MESSAGE(route.diagnostics.items().empty(), text(route));
}

}  // TEST_SUITE

TEST_SUITE("require_certificate_binding") {

TEST_CASE("require_certificate_binding is a boolean, false unless set") {
  LoadResult off = load(binding("false"));
  REQUIRE_MESSAGE(off.config, text(off));
  CHECK_FALSE(off.config->providers[0].require_certificate_binding);
  CHECK(has(load(binding("yes please")), "error: providers[0].require_certificate_binding: expected true or false"));
  CHECK(has(load(kMinimal + "    require_certificate_bindng: true\n"), "did you mean \"require_certificate_binding\"?"));
}

TEST_CASE("require_certificate_binding needs tls.client_auth optional or required") {
  const std::string client_tls = "tls:\n" + kPair + "  client_ca_file: /ca.pem\n  client_auth: ";
  for (const char* mode : {"optional", "required"}) {
    CAPTURE(mode);
    LoadResult r = load(binding("true") + client_tls + mode + "\n");
    REQUIRE_MESSAGE(r.config, text(r));
    CHECK(r.config->providers[0].require_certificate_binding);
  }
  LoadResult plain = load(binding("true"));
  CHECK_FALSE(plain.config);
  CHECK_MESSAGE(has(plain, "test.yaml:9:34: error: providers[0].require_certificate_binding: needs tls.client_auth: "
                           "optional or required"),
                text(plain));
  CHECK(has(plain, "no client certificate is ever presented"));
  LoadResult none = load(binding("true") + "tls:\n" + kPair + "  client_auth: none\n");
  CHECK_FALSE(none.config);
  CHECK_MESSAGE(has(none, "error: providers[0].require_certificate_binding: needs tls.client_auth"), text(none));
  // Only the provider that requires binding is blamed.
  LoadResult two = load(with_upstream("http://127.0.0.1:3000") +
                        "  - name: bound\n    issuer: https://bound.example.com/\n    audiences: [orders-api]\n"
                        "    algorithms: [ES256]\n    jwks: {uri: https://bound.example.com/jwks.json}\n"
                        "    require_certificate_binding: true\n");
  CHECK_FALSE(two.config);
  CHECK_MESSAGE(has(two, "error: providers[1].require_certificate_binding: needs tls.client_auth"), text(two));
  CHECK_FALSE(has(two, "providers[0].require_certificate_binding"));
}

}  // TEST_SUITE
