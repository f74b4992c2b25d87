// The JWKS lifecycle end to end: the jwtgate binary, a real identity provider (tests/support/
// idp.py: JWKS, OIDC discovery, controllable failures, fetch counters), a real upstream, real
// keys, real sockets on 127.0.0.1.
#include <doctest/doctest.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <csignal>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <tuple>

#include "tests/support/child.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/proxy_env.h"
#include "tests/support/tokens.h"

using namespace jwtgate;
using namespace jwtgate::testing;

namespace {

const char* const kIssuer = "https://idp.test/";

std::string token_for(const TestKey& key, const std::string& issuer = kIssuer) {
  return signed_token(header_for(key), payload_now("", 300, issuer), key);
}

// One JWKS document holding every key given.
std::string jwks_of(std::initializer_list<const TestKey*> keys) {
  std::string members;
  for (const TestKey* k : keys) {
    const std::string& doc = k->jwks_json;  // {"keys":[<jwk>]}
    if (!members.empty()) members += ",";
    members += doc.substr(9, doc.size() - 11);
  }
  return "{\"keys\":[" + members + "]}";
}

// A JSON string literal for `s` (the control endpoint takes the JWKS as a string).
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

struct Counts {
  int jwks = -1;
  int discovery = -1;
};

class Idp {
 public:
  // port 0: any free port. `tls`: {cert, key}. `jwks_redirect`: /jwks.json always redirects there.
  explicit Idp(const TempDir& dir, int port = 0, const std::vector<std::string>& tls = {},
               const std::string& jwks_redirect = "") {
    std::vector<std::string> argv{"/usr/bin/python3", JWTGATE_IDP_SCRIPT, "--port", std::to_string(port)};
    if (!tls.empty()) argv.insert(argv.end(), {"--tls", tls[0], tls[1]});
    if (!jwks_redirect.empty()) argv.insert(argv.end(), {"--jwks-redirect", jwks_redirect});
    child_ = std::make_unique<Child>(argv, dir.path(), "idp" + std::to_string(++instances_));
    port_ = std::atoi(child_->first_stdout_line().c_str());
    REQUIRE_MESSAGE(port_ > 0, child_->stderr_text());
    tls_ = !tls.empty();
  }
  int port() const { return port_; }
  std::string url(const std::string& path = "") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  // Requests to the control endpoints go over plain HTTP; a TLS IdP is only configured at start.
  void control(const std::string& json) const {
    REQUIRE_FALSE(tls_);
    const HttpResponse r = http_request(port_, "POST /_control HTTP/1.1\r\nHost: idp\r\nContent-Type: application/json\r\n"
                                               "Content-Length: " + std::to_string(json.size()) + "\r\n\r\n" + json);
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }
  void serve(const std::string& jwks) const { control("{\"jwks\":" + json_string(jwks) + ",\"mode\":\"ok\"}"); }
  Counts counts() const {
    const HttpResponse r = http_request(port_, "GET /_counts HTTP/1.1\r\nHost: idp\r\n\r\n");
    Counts c;
    std::sscanf(r.body.c_str(), "{\"jwks\":%d,\"discovery\":%d}", &c.jwks, &c.discovery);
    return c;
  }
  void stop() { child_.reset(); }

 private:
  static inline int instances_ = 0;
  std::unique_ptr<Child> child_;
  int port_ = 0;
  bool tls_ = false;
};

// The proxy with a real upstream, configured with `providers` (YAML list items) and `routes`.
class Gate {
 public:
  // `env`: NAME=VALUE settings for the proxy process on top of the test's environment.
  Gate(const TempDir& dir, const std::string& providers, const std::string& routes = "  - prefix: /public\n    auth: none\n  - prefix: /\n",
       const std::string& name = "gate", const std::vector<std::string>& env = {}) {
    if (!upstream_) {
      upstream_ = std::make_unique<Child>(std::vector<std::string>{"/usr/bin/python3", JWTGATE_UPSTREAM_SCRIPT}, dir.path(), name + "-upstream");
      upstream_port_ = std::atoi(upstream_->first_stdout_line().c_str());
      REQUIRE(upstream_port_ > 0);
    }
    port_ = free_port();
    admin_port_ = free_port();
    const std::string yaml = "listen: 127.0.0.1:" + std::to_string(port_) + "\nadmin_listen: 127.0.0.1:" +
                             std::to_string(admin_port_) + "\nupstream: http://127.0.0.1:" + std::to_string(upstream_port_) +
                             "\nworkers: 2\nproviders:\n" + providers + "routes:\n" + routes;
    dir.write(name + ".yaml", yaml);
    proxy_ = std::make_unique<Child>(std::vector<std::string>{JWTGATE_BINARY, "--config", dir.file(name + ".yaml")}, dir.path(), name, env);
    REQUIRE_MESSAGE(wait_for_port(port_), proxy_->stderr_text());
    REQUIRE(wait_for_port(admin_port_));
  }
  ~Gate() {
    proxy_.reset();
    upstream_.reset();
  }

  int get(const std::string& path, const std::string& token = "", HttpResponse* out = nullptr) const {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: test\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    HttpResponse r = http_request(port_, req + "\r\n");
    if (out) *out = r;
    return r.status;
  }
  HttpResponse admin(const std::string& path) const {
    return http_request(admin_port_, "GET " + path + " HTTP/1.1\r\nHost: admin\r\n\r\n");
  }
  bool ready() const { return admin("/readyz").status == 200; }
  int admin_port() const { return admin_port_; }
  std::string log() const { return proxy_->stdout_text() + proxy_->stderr_text(); }
  Child& process() { return *proxy_; }
  void stop() { proxy_.reset(); }

 private:
  std::unique_ptr<Child> upstream_;
  std::unique_ptr<Child> proxy_;
  int upstream_port_ = 0;
  int port_ = 0;
  int admin_port_ = 0;
};

std::string uri_provider(const std::string& uri, const std::string& jwks_extra = "", const std::string& name = "main",
                         const std::string& issuer = kIssuer) {
  return "  - name: " + name + "\n    issuer: " + issuer + "\n    audiences: [api]\n    algorithms: [ES256]\n"
         "    jwks:\n      uri: " + uri + "\n" + jwks_extra;
}

// A ready proxy whose one provider ("main") fetches k1 from a running IdP.
struct Fetching {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  Idp idp{dir};
  std::unique_ptr<Gate> gate;

  explicit Fetching(const std::string& jwks_extra) {
    idp.serve(k1.jwks_json);
    gate = std::make_unique<Gate>(dir, uri_provider(idp.url("/jwks.json"), jwks_extra));
    REQUIRE_MESSAGE(eventually([&] { return gate->ready(); }, 5), gate->log());
  }
  std::tuple<const TestKey&, Idp&, Gate&> parts() { return {k1, idp, *gate}; }
};

// tests/support/forward_proxy.py: an HTTP forward proxy that records every request line it
// receives; with `serve_file` it answers plain requests itself with that file, as a hostile
// proxy would.
class ForwardProxy {
 public:
  ForwardProxy(const TempDir& dir, const std::string& name, const std::string& serve_file = "") {
    std::vector<std::string> argv{"/usr/bin/python3", JWTGATE_FORWARD_PROXY_SCRIPT};
    if (!serve_file.empty()) argv.insert(argv.end(), {"--serve", serve_file});
    child_ = std::make_unique<Child>(argv, dir.path(), name);
    port_ = std::atoi(child_->first_stdout_line().c_str());
    REQUIRE_MESSAGE(port_ > 0, child_->stderr_text());
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The request lines received so far, one a line.
  std::string requests() const {
    const std::string out = child_->stdout_text();
    return out.substr(out.find('\n') + 1);
  }

 private:
  std::unique_ptr<Child> child_;
  int port_ = 0;
};

// Every proxy variable libcurl reads set to `proxy`, and no exceptions to it.
std::vector<std::string> proxy_env(const std::string& proxy) {
  return {"http_proxy=" + proxy, "HTTP_PROXY=" + proxy, "https_proxy=" + proxy, "HTTPS_PROXY=" + proxy,
          "all_proxy=" + proxy,  "ALL_PROXY=" + proxy,  "no_proxy=",             "NO_PROXY="};
}

// A self-signed certificate for 127.0.0.1 in dir/idp.crt, its key in dir/idp.key.
void make_idp_certificate(const TempDir& dir) {
  const ProcessResult gen = run_process(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
       "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", dir.file("idp.key"), "-out",
       dir.file("idp.crt")});
  REQUIRE_MESSAGE(gen.exit_code == 0, gen.err);
}

}  // namespace

TEST_CASE("an IdP that is down at start: not ready and 503 until it comes up, then ready") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  const int idp_port = free_port();
  Gate gate(dir, uri_provider("http://127.0.0.1:" + std::to_string(idp_port) + "/jwks.json"));

  CHECK(gate.admin("/healthz").status == 200);
  HttpResponse readyz = gate.admin("/readyz");
  CHECK(readyz.status == 503);
  CHECK(readyz.body.find("main: not ready") != std::string::npos);
  HttpResponse r;
  CHECK(gate.get("/x", token_for(k1), &r) == 503);
  CHECK(r.header("Retry-After") != "");
  CHECK(gate.get("/public/x") == 200);  // routes without auth do not depend on keys

  Idp idp(dir, idp_port);
  idp.serve(k1.jwks_json);
  // Retries back off from 1s: the IdP is noticed within a few seconds.
  REQUIRE_MESSAGE(eventually([&] { return gate.ready(); }, 10), gate.log());
  CHECK(gate.get("/x", token_for(k1)) == 200);
  CHECK(gate.log().find("key fetch failed; provider not ready") != std::string::npos);
}

TEST_CASE("an IdP that goes down later: the last good keys serve until stale_max, then 503") {
  Fetching scene("      refresh_interval: 1s\n      min_refresh_interval: 1s\n      stale_max: 4s\n");
  auto [k1, idp, gate] = scene.parts();
  const std::string token = token_for(k1);
  CHECK(gate.get("/x", token) == 200);

  idp.control(R"({"mode":"error"})");
  const auto down_at = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return gate.log().find("key refresh failed; keeping the last good keys") != std::string::npos; }, 5));
  // Fetches fail, yet the keys fetched before the outage still verify (while within stale_max).
  if (std::chrono::steady_clock::now() - down_at < std::chrono::milliseconds(2500)) {
    CHECK(gate.get("/x", token) == 200);
    CHECK(gate.ready());
    CHECK(gate.admin("/readyz").body == "ready\n");
  }
  REQUIRE_MESSAGE(eventually([&] { return gate.get("/x", token) == 503; }, 8), gate.log());
  CHECK(gate.admin("/readyz").status == 503);
  CHECK(gate.log().find("older than stale_max") != std::string::npos);

  // Back up: ready again on the next retry.
  idp.control(R"({"mode":"ok"})");
  REQUIRE(eventually([&] { return gate.ready(); }, 5));
  CHECK(gate.get("/x", token) == 200);
}

TEST_CASE("garbage, empty, oversized and slow responses keep the last good keys") {
  Fetching scene("      refresh_interval: 1s\n      min_refresh_interval: 1s\n"
                 "      timeout: 1s\n      max_bytes: 64KiB\n");
  auto [k1, idp, gate] = scene.parts();
  const std::string token = token_for(k1);

  struct Case {
    const char* control;
    const char* logged;
  };
  const Case cases[] = {
      {R"({"mode":"garbage"})", "JSON"},
      {R"({"mode":"empty"})", "no usable key"},
      {R"({"mode":"error"})", "HTTP status 500"},
      {R"({"mode":"oversized","oversize_bytes":200000})", "larger than max_bytes"},
      {R"({"mode":"oversized_chunked","oversize_bytes":200000})", "larger than max_bytes"},
      {R"({"mode":"slow","delay_ms":3000})", "no complete response within 1000 ms"},
      {R"({"mode":"reset"})", "JWKS fetch from"},
      {R"({"jwks":"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"kid\":\"weak\"}]}","mode":"ok"})", "no usable key"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.control);
    const std::size_t log_before = gate.log().size();
    idp.control(c.control);
    idp.control(R"({"reset_counts":true})");
    REQUIRE(eventually([&] { return idp.counts().jwks >= 2; }, 6));
    REQUIRE(eventually([&] { return gate.log().find(c.logged, log_before) != std::string::npos; }, 3));
    CHECK(gate.get("/x", token) == 200);
    CHECK(gate.ready());
  }
  idp.serve(k1.jwks_json);
}

TEST_CASE("a fresh start against a broken IdP stays not ready") {
  TempDir dir;
  Idp idp(dir);
  idp.control(R"({"mode":"garbage"})");
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  Gate gate(dir, uri_provider(idp.url("/jwks.json")));
  REQUIRE(eventually([&] { return idp.counts().jwks >= 1; }, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(gate.get("/x", token_for(k1)) == 503);
  CHECK(gate.admin("/readyz").status == 503);
  CHECK(gate.admin("/readyz").body.find("not valid JSON") != std::string::npos);
}

TEST_CASE("rotation with overlap: a new kid is accepted at once, a removed one after the next refresh") {
  Fetching scene("      refresh_interval: 2s\n      min_refresh_interval: 1s\n");
  auto [k1, idp, gate] = scene.parts();
  TestKey k2 = make_key(core::Alg::ES256, "k2");
  const std::string t1 = token_for(k1), t2 = token_for(k2);
  CHECK(gate.get("/x", t1) == 200);
  CHECK(gate.get("/x", t1) == 200);  // now from the verified-token cache

  idp.serve(jwks_of({&k1, &k2}));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past min_refresh_interval
  // The unknown kid triggers a refetch which the request waits for.
  CHECK(gate.get("/x", t2) == 200);
  CHECK(gate.get("/x", t1) == 200);

  idp.serve(k2.jwks_json);
  REQUIRE_MESSAGE(eventually([&] { return gate.get("/x", t1) == 401; }, 6), gate.log());
  CHECK(gate.get("/x", t2) == 200);
}

TEST_CASE("an unknown-kid flood causes at most one fetch per min_refresh_interval") {
  Fetching scene("      refresh_interval: 10m\n      min_refresh_interval: 1s\n");
  auto [k1, idp, gate] = scene.parts();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  idp.control(R"({"reset_counts":true})");

  TestKey attacker = make_key(core::Alg::ES256, "x");
  std::atomic<int> unauthorized{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string header = R"({"alg":"ES256","typ":"JWT","kid":"random-)" + std::to_string(t * 100 + i) + "\"}";
        const int status = gate.get("/x", signed_token(header, payload_now("", 300, kIssuer), attacker));
        (status == 401 ? unauthorized : other)++;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(unauthorized == 200);
  CHECK(other == 0);
  CHECK(idp.counts().jwks == 1);

  // The next interval allows one more.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const std::string header = R"({"alg":"ES256","typ":"JWT","kid":"later"})";
  CHECK(gate.get("/x", signed_token(header, payload_now("", 300, kIssuer), attacker)) == 401);
  CHECK(idp.counts().jwks == 2);
  CHECK(gate.get("/x", token_for(k1)) == 200);
}

TEST_CASE("requests with the same new kid share one slow fetch and wait for it") {
  Fetching scene("      refresh_interval: 10m\n      min_refresh_interval: 1s\n");
  auto [k1, idp, gate] = scene.parts();
  TestKey k2 = make_key(core::Alg::ES256, "k2");
  idp.serve(jwks_of({&k1, &k2}));
  idp.control(R"({"mode":"slow","delay_ms":700,"reset_counts":true})");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));

  const std::string t2 = token_for(k2);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&] {
      if (gate.get("/x", t2) == 200) ++ok;
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ok == 10);
  CHECK(idp.counts().jwks == 1);
}

TEST_CASE("a refresh that outlasts the wait bound answers 401, not a hang") {
  Fetching scene("      refresh_interval: 10m\n      min_refresh_interval: 1s\n      timeout: 1s\n");
  auto [k1, idp, gate] = scene.parts();
  TestKey k2 = make_key(core::Alg::ES256, "k2");
  idp.control(R"({"mode":"hang"})");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto start = std::chrono::steady_clock::now();
  CHECK(gate.get("/x", token_for(k2)) == 401);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(4));
  CHECK(gate.get("/x", token_for(k1)) == 200);
}

TEST_CASE("OIDC discovery: a matching issuer is used, a mismatching one keeps the provider not ready") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  Idp idp(dir);
  idp.serve(k1.jwks_json);
  const std::string issuer = idp.url();
  Gate gate(dir, "  - name: oidc\n    issuer: " + issuer + "\n    audiences: [api]\n    algorithms: [ES256]\n"
                 "    jwks: {discovery: true}\n");
  REQUIRE_MESSAGE(eventually([&] { return gate.ready(); }, 5), gate.log());
  CHECK(gate.get("/x", token_for(k1, issuer)) == 200);
  CHECK(idp.counts().discovery == 1);

  Idp liar(dir);
  liar.serve(k1.jwks_json);
  liar.control(R"({"issuer":"https://someone-else.example/"})");
  Gate bad(dir, "  - name: oidc\n    issuer: " + liar.url() + "\n    audiences: [api]\n    algorithms: [ES256]\n"
                "    jwks: {discovery: true}\n", "  - prefix: /\n", "bad");
  REQUIRE(eventually([&] { return liar.counts().discovery >= 1; }, 5));
  REQUIRE(eventually([&] { return bad.log().find("is not the configured issuer") != std::string::npos; }, 3));
  HttpResponse readyz = bad.admin("/readyz");
  CHECK(readyz.status == 503);
  CHECK(readyz.body.find("someone-else") != std::string::npos);
  CHECK(bad.get("/x", token_for(k1, liar.url())) == 503);
  CHECK(liar.counts().jwks == 0);  // the document's jwks_uri is never used
  CHECK(bad.process().wait_exit(0.1) == -1);  // still running
}

TEST_CASE("jwks.file is reloaded when a ConfigMap-style symlink swap replaces it") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  TestKey k2 = make_key(core::Alg::ES256, "k2");
  // The kubelet's layout: jwks.json -> ..data/jwks.json, ..data -> ..<timestamp>/
  REQUIRE(::mkdir(dir.file("cm").c_str(), 0755) == 0);
  REQUIRE(::mkdir(dir.file("cm/..v1").c_str(), 0755) == 0);
  dir.write("cm/..v1/jwks.json", k1.jwks_json);
  REQUIRE(::symlink("..v1", dir.file("cm/..data").c_str()) == 0);
  REQUIRE(::symlink("..data/jwks.json", dir.file("cm/jwks.json").c_str()) == 0);
  Gate gate(dir, "  - name: main\n    issuer: https://idp.test/\n    audiences: [api]\n    algorithms: [ES256]\n"
                 "    jwks: {file: " + dir.file("cm/jwks.json") + "}\n");
  REQUIRE(eventually([&] { return gate.ready(); }, 5));
  const std::string t1 = token_for(k1), t2 = token_for(k2);
  CHECK(gate.get("/x", t1) == 200);
  CHECK(gate.get("/x", t2) == 401);

  REQUIRE(::mkdir(dir.file("cm/..v2").c_str(), 0755) == 0);
  dir.write("cm/..v2/jwks.json", k2.jwks_json);
  REQUIRE(::symlink("..v2", dir.file("cm/..data_tmp").c_str()) == 0);
  REQUIRE(::rename(dir.file("cm/..data_tmp").c_str(), dir.file("cm/..data").c_str()) == 0);
  REQUIRE_MESSAGE(eventually([&] { return gate.get("/x", t2) == 200; }, 3), gate.log());
  CHECK(gate.get("/x", t1) == 401);

  // A broken update keeps the keys that work.
  REQUIRE(::mkdir(dir.file("cm/..v3").c_str(), 0755) == 0);
  dir.write("cm/..v3/jwks.json", "{\"keys\": [");
  REQUIRE(::symlink("..v3", dir.file("cm/..data_tmp").c_str()) == 0);
  REQUIRE(::rename(dir.file("cm/..data_tmp").c_str(), dir.file("cm/..data").c_str()) == 0);
  REQUIRE(eventually([&] { return gate.log().find("cm/jwks.json: ") != std::string::npos; }, 3));
  CHECK(gate.get("/x", t2) == 200);
  CHECK(gate.ready());
}

TEST_CASE("two providers with different issuers on one route: iss selects, and only its keys verify") {
  TempDir dir;
  TestKey ka = make_key(core::Alg::ES256, "ka");
  TestKey kb = make_key(core::Alg::ES256, "kb");
  dir.write("a.json", ka.jwks_json);
  Idp idp(dir);
  idp.serve(kb.jwks_json);
  const std::string providers =
      "  - name: alpha\n    issuer: https://alpha.test/\n    audiences: [api]\n    algorithms: [ES256]\n"
      "    jwks: {file: " + dir.file("a.json") + "}\n" +
      uri_provider(idp.url("/jwks.json"), "      min_refresh_interval: 1s\n", "beta", "https://beta.test/");
  Gate gate(dir, providers, "  - prefix: /alpha-only\n    providers: [alpha]\n  - prefix: /\n    providers: [alpha, beta]\n");
  REQUIRE(eventually([&] { return gate.ready(); }, 5));
  CHECK(gate.get("/x", token_for(ka, "https://alpha.test/")) == 200);
  CHECK(gate.get("/x", token_for(kb, "https://beta.test/")) == 200);
  // beta's key cannot vouch for an alpha token, nor alpha's for a beta one.
  CHECK(gate.get("/x", token_for(kb, "https://alpha.test/")) == 401);
  CHECK(gate.get("/x", token_for(ka, "https://beta.test/")) == 401);
  CHECK(gate.get("/x", token_for(ka, "https://gamma.test/")) == 401);
  CHECK(gate.get("/alpha-only/x", token_for(ka, "https://alpha.test/")) == 200);
  CHECK(gate.get("/alpha-only/x", token_for(kb, "https://beta.test/")) == 401);

  // One provider down makes readiness fail, naming it; the other keeps working.
  idp.stop();
  Gate second(dir, providers + "", "  - prefix: /\n    providers: [alpha, beta]\n", "second");
  REQUIRE(eventually([&] { return second.admin("/readyz").body.find("beta: not ready") != std::string::npos; }, 5));
  CHECK(second.admin("/readyz").body.find("alpha") == std::string::npos);
  CHECK(second.get("/x", token_for(ka, "https://alpha.test/")) == 200);
  CHECK(second.get("/x", token_for(kb, "https://beta.test/")) == 503);
}

TEST_CASE("cache_file: the last good set is persisted and used at start while the IdP is unreachable") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  const std::string cache = dir.file("main-jwks.json");
  auto idp = std::make_unique<Idp>(dir);
  idp->serve(k1.jwks_json);
  const std::string provider = uri_provider(idp->url("/jwks.json"), "      cache_file: " + cache + "\n      stale_max: 1h\n");
  {
    // The usual umask, under which the file would be 0644 if jwtgate asked for that.
    const mode_t umask_before = ::umask(022);
    Gate first(dir, provider, "  - prefix: /\n", "first");
    ::umask(umask_before);
    REQUIRE(eventually([&] { return first.ready(); }, 5));
    CHECK(eventually([&] { return dir.read("main-jwks.json") == k1.jwks_json; }, 5));
    // It may hold oct secrets: readable by its owner only.
    struct stat st{};
    REQUIRE(::stat(cache.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
  }
  idp->stop();  // the IdP is now unreachable: connections are refused

  {
    Gate second(dir, provider, "  - prefix: /\n", "second");
    REQUIRE_MESSAGE(eventually([&] { return second.ready(); }, 5), second.log());
    CHECK(second.get("/x", token_for(k1)) == 200);
    CHECK(second.log().find("serving keys from cache_file") != std::string::npos);
  }

  // A cache older than stale_max is not trusted.
  const timeval old[2] = {{std::time(nullptr) - 7200, 0}, {std::time(nullptr) - 7200, 0}};
  REQUIRE(::utimes(cache.c_str(), old) == 0);
  Gate third(dir, provider, "  - prefix: /\n", "third");
  REQUIRE(eventually([&] { return third.log().find("cache_file is older than stale_max") != std::string::npos; }, 5));
  CHECK_FALSE(third.ready());
  CHECK(third.get("/x", token_for(k1)) == 503);
}

TEST_CASE("TLS: the IdP's certificate is verified against ca_file; redirects are bounded") {
  TempDir dir;
  const ProcessResult gen = run_process(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
       "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", dir.file("idp.key"), "-out",
       dir.file("idp.crt")});
  REQUIRE_MESSAGE(gen.exit_code == 0, gen.err);
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  dir.write("served.json", k1.jwks_json);
  // The TLS IdP cannot be controlled over plain HTTP, so it starts with its keys via a plain one.
  Idp plain(dir);
  plain.serve(k1.jwks_json);
  Idp tls(dir, 0, {dir.file("idp.crt"), dir.file("idp.key")});

  Gate trusted(dir, uri_provider(tls.url("/jwks.json"), "      ca_file: " + dir.file("idp.crt") + "\n"), "  - prefix: /\n", "trusted");
  Gate untrusted(dir, uri_provider(tls.url("/jwks.json")), "  - prefix: /\n", "untrusted");
  REQUIRE_MESSAGE(eventually([&] { return untrusted.log().find("key fetch failed") != std::string::npos; }, 5), untrusted.log());
  CHECK_FALSE(untrusted.ready());
  CHECK(untrusted.log().find("certificate") != std::string::npos);
  // The TLS IdP serves an empty set (it has no control channel here): the fetch succeeds, the
  // set is refused for having no key, which proves the TLS handshake itself was accepted.
  REQUIRE(eventually([&] { return trusted.log().find("no usable key") != std::string::npos; }, 5));
  CHECK(trusted.log().find("certificate") == std::string::npos);

  // Redirects: three are followed, a fourth is refused.
  plain.control(R"({"redirects":3})");
  Gate followed(dir, uri_provider(plain.url("/jwks.json")), "  - prefix: /\n", "followed");
  REQUIRE(eventually([&] { return followed.ready(); }, 5));
  plain.control(R"({"redirects":4})");
  Gate refused(dir, uri_provider(plain.url("/jwks.json")), "  - prefix: /\n", "refused");
  REQUIRE(eventually([&] { return refused.log().find("key fetch failed") != std::string::npos; }, 5));
  CHECK(refused.log().find("redirect") != std::string::npos);
  CHECK_FALSE(refused.ready());
}

namespace {

// Points a ConfigMap-style `..data` link (dir/cm/..data) at a new version directory.
void swap_configmap(const TempDir& dir, const std::string& version) {
  REQUIRE(::symlink(version.c_str(), dir.file("cm/..data_tmp").c_str()) == 0);
  REQUIRE(::rename(dir.file("cm/..data_tmp").c_str(), dir.file("cm/..data").c_str()) == 0);
}

std::string file_provider(const std::string& file, const std::string& jwks_extra = "") {
  return "  - name: main\n    issuer: https://idp.test/\n    audiences: [api]\n    algorithms: [ES256]\n"
         "    jwks: {file: " + file + jwks_extra + "}\n";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("jwks.file larger than max_bytes is refused without reading it; the last good keys keep working") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  dir.write("jwks.json", k1.jwks_json);
  Gate gate(dir, file_provider(dir.file("jwks.json"), ", max_bytes: 64KiB"));
  REQUIRE(eventually([&] { return gate.ready(); }, 5));
  const std::string t1 = token_for(k1);
  REQUIRE(gate.get("/x", t1) == 200);

  // 256 MiB that take no disk (sparse), renamed over the watched file.
  {
    const int fd = ::open(dir.file("big.json").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 256 << 20) == 0);
    ::close(fd);
  }
  REQUIRE(::rename(dir.file("big.json").c_str(), dir.file("jwks.json").c_str()) == 0);
  REQUIRE_MESSAGE(eventually([&] { return has(gate.log(), "jwks.json is larger than max_bytes (65536 bytes)"); }, 5), gate.log());
  CHECK(has(gate.log(), "keeping the last good keys"));
  CHECK(has(gate.admin("/metrics").body, "jwtgate_jwks_fetches_total{provider=\"main\",result=\"failure\"} 1\n"));
  CHECK(gate.admin("/healthz").status == 200);
  CHECK(gate.ready());
  CHECK(gate.get("/x", t1) == 200);
  // Refused for its size, not after holding it: reading it whole costs 256 MiB and more.
  const long peak = gate.process().peak_rss_kib();
  MESSAGE("proxy peak RSS: " << peak << " KiB");
#ifdef JWTGATE_SANITIZED
  CHECK(peak < 200 * 1024);
#else
  CHECK(peak < 64 * 1024);
#endif
}

TEST_CASE("a FIFO renamed over jwks.file is refused: /healthz keeps answering and SIGTERM still ends the process") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  dir.write("jwks.json", k1.jwks_json);
  Gate gate(dir, file_provider(dir.file("jwks.json")));
  REQUIRE(eventually([&] { return gate.ready(); }, 5));
  const std::string t1 = token_for(k1);
  REQUIRE(gate.get("/x", t1) == 200);

  // Opening a FIFO for reading waits for a writer; this one never gets one.
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0644) == 0);
  REQUIRE(::rename(dir.file("fifo").c_str(), dir.file("jwks.json").c_str()) == 0);
  CHECK_MESSAGE(eventually([&] { return has(gate.log(), "jwks.json is a FIFO, not a regular file"); }, 5), gate.log());
  CHECK(http_request(gate.admin_port(), "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n", 2).status == 200);
  CHECK(gate.get("/x", t1) == 200);
  gate.process().signal(SIGTERM);
  CHECK(gate.process().wait_exit(5) == 0);
}

TEST_CASE("jwks.file: a directory or a device is refused with a clear error, at load and when swapped in") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  // check-config (and start-up) refuse them outright.
  REQUIRE(::mkdir(dir.file("adir").c_str(), 0755) == 0);
  for (const std::string& path : {dir.file("adir"), std::string("/dev/null")}) {
    CAPTURE(path);
    dir.write("check.yaml", "upstream: http://127.0.0.1:9\nproviders:\n" + file_provider(path) + "routes:\n  - prefix: /\n");
    ProcessResult r = run_process({JWTGATE_BINARY, "check-config", "--config", dir.file("check.yaml")});
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(has(r.err, "error: providers[0].jwks.file: \"" + path + "\" is not a regular file"), r.err);
  }

  // A ConfigMap-style mount whose file becomes a directory, then a device: both refused by what
  // they are, the working keys kept.
  REQUIRE(::mkdir(dir.file("cm").c_str(), 0755) == 0);
  REQUIRE(::mkdir(dir.file("cm/..v1").c_str(), 0755) == 0);
  dir.write("cm/..v1/jwks.json", k1.jwks_json);
  REQUIRE(::symlink("..v1", dir.file("cm/..data").c_str()) == 0);
  REQUIRE(::symlink("..data/jwks.json", dir.file("cm/jwks.json").c_str()) == 0);
  Gate gate(dir, file_provider(dir.file("cm/jwks.json")));
  REQUIRE(eventually([&] { return gate.ready(); }, 5));
  const std::string t1 = token_for(k1);
  REQUIRE(gate.get("/x", t1) == 200);

  REQUIRE(::mkdir(dir.file("cm/..v2").c_str(), 0755) == 0);
  REQUIRE(::mkdir(dir.file("cm/..v2/jwks.json").c_str(), 0755) == 0);
  swap_configmap(dir, "..v2");
  CHECK_MESSAGE(eventually([&] { return has(gate.log(), "cm/jwks.json is a directory, not a regular file"); }, 5), gate.log());
  CHECK(gate.get("/x", t1) == 200);

  REQUIRE(::mkdir(dir.file("cm/..v3").c_str(), 0755) == 0);
  REQUIRE(::symlink("/dev/null", dir.file("cm/..v3/jwks.json").c_str()) == 0);
  swap_configmap(dir, "..v3");
  CHECK_MESSAGE(eventually([&] { return has(gate.log(), "cm/jwks.json is a character device, not a regular file"); }, 5),
                gate.log());
  CHECK(gate.get("/x", t1) == 200);
  CHECK(gate.ready());
  CHECK(has(gate.admin("/readyz").body, "ready"));
}

TEST_CASE("jwks.file writable by others is refused: at load, and when one is swapped in the keys are kept") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  TestKey k2 = make_key(core::Alg::ES256, "k2");
  dir.write("open.json", k1.jwks_json);
  REQUIRE(::chmod(dir.file("open.json").c_str(), 0666) == 0);
  dir.write("check.yaml", "upstream: http://127.0.0.1:9\nproviders:\n" + file_provider(dir.file("open.json")) +
                              "routes:\n  - prefix: /\n");
  ProcessResult r = run_process({JWTGATE_BINARY, "check-config", "--config", dir.file("check.yaml")});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(has(r.err, "error: providers[0].jwks.file: " + dir.file("open.json") + " is writable by others (mode 0666)"),
                r.err);

  dir.write("jwks.json", k1.jwks_json);
  Gate gate(dir, file_provider(dir.file("jwks.json")));
  REQUIRE(eventually([&] { return gate.ready(); }, 5));
  const std::string t1 = token_for(k1);
  REQUIRE(gate.get("/x", t1) == 200);
  // Any local user could have written this one: its keys are not taken.
  dir.write("new.json", k2.jwks_json);
  REQUIRE(::chmod(dir.file("new.json").c_str(), 0666) == 0);
  REQUIRE(::rename(dir.file("new.json").c_str(), dir.file("jwks.json").c_str()) == 0);
  CHECK_MESSAGE(eventually([&] { return has(gate.log(), "jwks.json is writable by others (mode 0666)"); }, 5), gate.log());
  CHECK(gate.get("/x", token_for(k2)) == 401);
  CHECK(gate.get("/x", t1) == 200);
}

TEST_CASE("cache_file: a symlink planted at the temporary file's name is not followed") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  const std::string cache = dir.file("main-jwks.json");
  dir.write("victim", "do not touch\n");
  // The name earlier versions wrote through, and one a guesser might try next.
  REQUIRE(::symlink(dir.file("victim").c_str(), (cache + ".tmp").c_str()) == 0);
  Idp idp(dir);
  idp.serve(k1.jwks_json);
  Gate gate(dir, uri_provider(idp.url("/jwks.json"), "      cache_file: " + cache + "\n"), "  - prefix: /\n");
  REQUIRE(eventually([&] { return gate.ready(); }, 5));
  REQUIRE_MESSAGE(eventually([&] { return dir.read("main-jwks.json") == k1.jwks_json; }, 5), gate.log());
  CHECK(dir.read("victim") == "do not touch\n");
  struct stat st{};
  REQUIRE(::lstat(cache.c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  REQUIRE(::lstat((cache + ".tmp").c_str(), &st) == 0);
  CHECK(S_ISLNK(st.st_mode));
  // Nothing else is left beside it.
  int entries = 0;
  if (DIR* d = ::opendir(dir.path().c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (std::string(e->d_name).rfind("main-jwks.json.tmp-", 0) == 0) ++entries;
    }
    ::closedir(d);
  }
  CHECK(entries == 0);
}

TEST_CASE("hmac_secret_file: group- or world-readable warns at start and in check-config; world-writable is refused") {
  TempDir dir;
  const std::string secret = "a-shared-secret-of-more-than-32-bytes-0123456789";
  const std::string provider = "  - name: partner\n    issuer: https://partner.test/\n    audiences: [api]\n"
                               "    algorithms: [HS256]\n    hmac_secret_file: " + dir.file("secret") + "\n";
  const std::string yaml = "upstream: http://127.0.0.1:9\nproviders:\n" + provider + "routes:\n  - prefix: /\n";
  dir.write("secret", secret + "\n");
  dir.write("check.yaml", yaml);
  const auto check_config = [&] { return run_process({JWTGATE_BINARY, "check-config", "--config", dir.file("check.yaml")}); };

  REQUIRE(::chmod(dir.file("secret").c_str(), 0600) == 0);
  ProcessResult tight = check_config();
  CHECK(tight.exit_code == 0);
  CHECK_MESSAGE(has(tight.out, "valid (0 warnings)"), tight.err);

  // The Kubernetes Secret volume default, and a group-readable file.
  for (mode_t mode : {mode_t{0644}, mode_t{0640}}) {
    CAPTURE(mode);
    REQUIRE(::chmod(dir.file("secret").c_str(), mode) == 0);
    ProcessResult loose = check_config();
    CHECK(loose.exit_code == 0);
    CHECK_MESSAGE(has(loose.err, "warning: providers[0].hmac_secret_file: " + dir.file("secret") + " is readable by its group"),
                  loose.err);
    CHECK(has(loose.err, "defaultMode: 0400"));
  }
  {
    Gate gate(dir, provider);
    REQUIRE(eventually([&] { return gate.ready(); }, 5));
    CHECK_MESSAGE(eventually([&] { return has(gate.log(), "hmac_secret_file permissions are too open"); }, 5), gate.log());
    CHECK(has(gate.log(), "is readable by its group (mode 0640)"));
  }

  // Anyone on the host could replace it and mint tokens.
  REQUIRE(::chmod(dir.file("secret").c_str(), 0666) == 0);
  ProcessResult writable = check_config();
  CHECK(writable.exit_code == 2);
  CHECK_MESSAGE(has(writable.err, "error: providers[0].hmac_secret_file: " + dir.file("secret") + " is writable by others (mode 0666)"),
                writable.err);
}

TEST_CASE("jwks.proxy: a plain-http JWKS or discovery fetch never goes through a proxy, whatever the environment or config say") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  TestKey impostor = make_key(core::Alg::ES256, "k1");  // the same kid, other key: what the proxy would hand out
  dir.write("impostor.json", impostor.jwks_json);
  ForwardProxy proxy(dir, "proxy", dir.file("impostor.json"));
  Idp idp(dir);
  idp.serve(k1.jwks_json);
  const std::string oidc_issuer = idp.url();
  const std::string providers =
      uri_provider(idp.url("/jwks.json")) +  // proxy: env, the default
      uri_provider(idp.url("/jwks.json?explicit"), "      proxy: " + proxy.url() + "\n", "explicit", "https://explicit.test/") +
      "  - name: oidc\n    issuer: " + oidc_issuer + "\n    audiences: [api]\n    algorithms: [ES256]\n    jwks: {discovery: true}\n";
  Gate gate(dir, providers, "  - prefix: /\n", "gate", proxy_env(proxy.url()));
  CHECK_MESSAGE(eventually([&] { return gate.ready(); }, 5), gate.log());
  for (const std::string& issuer : {std::string(kIssuer), std::string("https://explicit.test/"), oidc_issuer}) {
    CAPTURE(issuer);
    CHECK(gate.get("/x", token_for(k1, issuer)) == 200);
    CHECK(gate.get("/x", token_for(impostor, issuer)) == 401);
  }
  CHECK(proxy.requests() == "");
  const Counts counts = idp.counts();
  CHECK(counts.jwks >= 3);
  CHECK(counts.discovery >= 1);
  // /config says so: a plain-http uri is fetched with no proxy, whatever was set.
  CHECK(gate.admin("/config").body.find(R"("proxy": "env")") != std::string::npos);  // discovery, which may find https keys
  CHECK(gate.admin("/config").body.find(R"("proxy": "none")") != std::string::npos);
  CHECK(gate.admin("/config").body.find(proxy.url()) == std::string::npos);
}

TEST_CASE("jwks.proxy: an https fetch tunnels through the configured proxy or the environment's, and through none with none") {
  TempDir dir;
  make_idp_certificate(dir);
  Idp tls(dir, 0, {dir.file("idp.crt"), dir.file("idp.key")});
  const std::string connect = "CONNECT 127.0.0.1:" + std::to_string(tls.port()) + " ";
  ForwardProxy configured(dir, "configured-proxy"), environment(dir, "environment-proxy"), bypassed(dir, "bypassed-proxy");
  const std::string ca = "      ca_file: " + dir.file("idp.crt") + "\n";
  const std::string with_credentials = "http://egress:Pr0xy-Pass@127.0.0.1:" + std::to_string(configured.port());

  // The configured proxy wins over the environment's, no_proxy included; `env` (the default)
  // takes the environment's.
  std::vector<std::string> other_env = proxy_env(bypassed.url());
  other_env.insert(other_env.end(), {"no_proxy=127.0.0.1,localhost", "NO_PROXY=127.0.0.1,localhost"});
  Gate by_config(dir, uri_provider(tls.url("/jwks.json"), ca + "      proxy: " + with_credentials + "\n"), "  - prefix: /\n",
                 "by-config", other_env);
  Gate by_env(dir, uri_provider(tls.url("/jwks.json"), ca), "  - prefix: /\n", "by-env", proxy_env(environment.url()));
  Gate direct(dir, uri_provider(tls.url("/jwks.json"), ca + "      proxy: none\n"), "  - prefix: /\n", "direct",
              proxy_env(bypassed.url()));
  // The TLS IdP serves an empty set (it cannot be controlled here): "no usable key" means the
  // fetch, TLS handshake included, got through.
  for (Gate* g : {&by_config, &by_env, &direct}) {
    REQUIRE_MESSAGE(eventually([&] { return g->log().find("no usable key") != std::string::npos; }, 5), g->log());
  }
  CHECK(configured.requests().find(connect) == 0);
  CHECK(environment.requests().find(connect) == 0);
  CHECK(bypassed.requests() == "");

  const std::string config = by_config.admin("/config").body;
  CHECK(config.find(R"("proxy": "http://[redacted]@127.0.0.1:)" + std::to_string(configured.port()) + "\"") != std::string::npos);
  CHECK(config.find("Pr0xy-Pass") == std::string::npos);
  CHECK(by_config.log().find("Pr0xy-Pass") == std::string::npos);
  CHECK(by_env.admin("/config").body.find(R"("proxy": "env")") != std::string::npos);
  CHECK(direct.admin("/config").body.find(R"("proxy": "none")") != std::string::npos);
}

TEST_CASE("key-fetch logs and /readyz name JWKS and discovery URLs without their credentials or query values") {
  TempDir dir;
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  Idp idp(dir);
  idp.serve(k1.jwks_json);
  const std::string idp_port = std::to_string(idp.port()), dead = std::to_string(free_port());
  const std::string providers =
      uri_provider("http://jwtuser:S3cr3t-Pass@127.0.0.1:" + idp_port + "/jwks.json?api_key=K3y-Value&tenant=t1") +
      uri_provider("http://jwtuser:S3cr3t-Pass@127.0.0.1:" + dead + "/keys.json?api_key=K3y-Value", "", "down", "https://down.test/") +
      "  - name: oidc\n    issuer: http://jwtuser:S3cr3t-Pass@127.0.0.1:" + dead +
      "\n    audiences: [api]\n    algorithms: [ES256]\n    jwks: {discovery: true}\n";
  Gate gate(dir, providers, "  - prefix: /\n");
  const std::string jwks_down = "down: not ready: JWKS fetch from http://[redacted]@127.0.0.1:" + dead + "/keys.json?api_key=[redacted]: ";
  const std::string discovery_down =
      "oidc: not ready: OIDC discovery from http://[redacted]@127.0.0.1:" + dead + "/.well-known/openid-configuration: ";
  REQUIRE_MESSAGE(eventually([&] {
                    const std::string body = gate.admin("/readyz").body;
                    return body.find("down: not ready: JWKS fetch from") != std::string::npos &&
                           body.find("oidc: not ready: OIDC discovery from") != std::string::npos;
                  }, 5),
                  gate.admin("/readyz").body);
  // The credentials still reach the IdP (its provider may be ready after the other two failed).
  CHECK(eventually([&] { return gate.get("/x", token_for(k1)) == 200; }, 5));
  REQUIRE(eventually([&] { return gate.log().find("key fetch failed; provider not ready") != std::string::npos; }, 5));
  const std::string log = gate.log(), readyz = gate.admin("/readyz").body;
  CHECK(readyz.find(jwks_down) != std::string::npos);
  CHECK(readyz.find(discovery_down) != std::string::npos);
  // The diagnosis stays possible: which host, port and path, and which query parameters.
  CHECK(log.find("http://[redacted]@127.0.0.1:" + idp_port + "/jwks.json?api_key=[redacted]&tenant=[redacted]") != std::string::npos);
  CHECK(log.find("http://[redacted]@127.0.0.1:" + dead + "/keys.json?api_key=[redacted]") != std::string::npos);
  for (const std::string secret : {"S3cr3t-Pass", "jwtuser", "K3y-Value"}) {
    CAPTURE(secret);
    CHECK(log.find(secret) == std::string::npos);
    CHECK(readyz.find(secret) == std::string::npos);
  }
}

TEST_CASE("jwks.proxy and redirects: https never redirects to http, and a plain-http fetch stays direct after one to https") {
  TempDir dir;
  make_idp_certificate(dir);
  TestKey k1 = make_key(core::Alg::ES256, "k1");
  TestKey impostor = make_key(core::Alg::ES256, "k1");
  dir.write("impostor.json", impostor.jwks_json);
  ForwardProxy proxy(dir, "proxy", dir.file("impostor.json"));
  Idp plain(dir);
  plain.serve(k1.jwks_json);
  const std::string ca = "      ca_file: " + dir.file("idp.crt") + "\n";

  // https -> http: refused, so nothing plain ever goes through the proxy the https fetch uses.
  Idp downgrading(dir, 0, {dir.file("idp.crt"), dir.file("idp.key")}, plain.url("/jwks.json"));
  Gate refused(dir, uri_provider(downgrading.url("/jwks.json"), ca), "  - prefix: /\n", "refused", proxy_env(proxy.url()));
  REQUIRE_MESSAGE(eventually([&] { return refused.log().find("key fetch failed") != std::string::npos; }, 5), refused.log());
  CHECK_FALSE(refused.ready());
  CHECK(refused.get("/x", token_for(impostor)) == 503);
  CHECK(plain.counts().jwks == 0);
  CHECK(proxy.requests().find("CONNECT 127.0.0.1:" + std::to_string(downgrading.port()) + " ") == 0);
  CHECK(proxy.requests().find("GET ") == std::string::npos);
  refused.stop();  // its retries would go on through the proxy

  // http -> https: the whole chain goes direct, so the proxy sees no CONNECT either.
  Idp tls(dir, 0, {dir.file("idp.crt"), dir.file("idp.key")});
  Idp upgrading(dir, 0, {}, tls.url("/jwks.json"));
  const std::string before = proxy.requests();
  Gate direct(dir, uri_provider(upgrading.url("/jwks.json"), ca), "  - prefix: /\n", "direct", proxy_env(proxy.url()));
  // The TLS IdP serves an empty set: "no usable key" means the redirected fetch got through.
  REQUIRE_MESSAGE(eventually([&] { return direct.log().find("no usable key") != std::string::npos; }, 5), direct.log());
  CHECK(upgrading.counts().jwks >= 1);
  CHECK(proxy.requests() == before);
}

// break-ops (issue 13 points 8 and 11): hmac_secret_file refuses a file others can write, and the
// cache_file "may hold oct secrets" (written 0600), yet a cache_file anyone on the host can write
// is read at start and its keys trusted: whoever can write it signs the tokens.
TEST_CASE("cache_file writable by others is not trusted at start, even with the IdP down") {
  TempDir dir;
  TestKey attacker = make_key(core::Alg::ES256, "planted");
  const std::string cache = dir.file("main-jwks.json");
  auto idp = std::make_unique<Idp>(dir);
  const std::string url = idp->url("/jwks.json");
  idp->stop();  // the IdP is unreachable at start
  dir.write("main-jwks.json", attacker.jwks_json);
  REQUIRE(::chmod(cache.c_str(), 0666) == 0);
  Gate gate(dir, uri_provider(url, "      cache_file: " + cache + "\n      stale_max: 1h\n"), "  - prefix: /\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK_MESSAGE(gate.get("/x", token_for(attacker)) != 200, gate.log());
}

namespace {

// `jwtgate dev-idp` as a compose stack runs it, on a free loopback port.
class DevIdpProcess {
 public:
  DevIdpProcess(const TempDir& dir, const std::vector<std::string>& extra = {}) {
    port_ = free_port();
    std::vector<std::string> argv{JWTGATE_BINARY, "dev-idp", "--listen", "127.0.0.1:" + std::to_string(port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child_ = std::make_unique<Child>(argv, dir.path(), "dev-idp");
    REQUIRE_MESSAGE(wait_for_port(port_), child_->stderr_text());
  }
  std::string issuer() const { return "http://127.0.0.1:" + std::to_string(port_); }
  HttpResponse request(const std::string& method, const std::string& target, const std::string& body = "",
                       const std::string& headers = "") const {
    return http_request(port_, method + " " + target + " HTTP/1.1\r\nHost: idp\r\n" + headers +
                                   "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  }
  // POST /token; the access_token of a 200 JSON answer.
  std::string token(const std::string& claims) const {
    const HttpResponse r = request("POST", "/token", claims, "Content-Type: application/json\r\n");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    const std::string key = "\"access_token\":\"";
    const auto start = r.body.find(key);
    REQUIRE(start != std::string::npos);
    return r.body.substr(start + key.size(), r.body.find('"', start + key.size()) - start - key.size());
  }
  Child& process() { return *child_; }

 private:
  std::unique_ptr<Child> child_;
  int port_ = 0;
};

std::string dev_idp_provider(const std::string& issuer) {
  return "  - name: dev\n    issuer: " + issuer + "\n    audiences: [dev-api]\n    algorithms: [ES256]\n"
         "    jwks: {discovery: true}\n    claims_to_headers: {sub: X-Jwt-Sub, scope: X-Jwt-Scope}\n";
}

}  // namespace

TEST_CASE("dev-idp: a gateway using discovery trusts its tokens; expired and wrong-audience ones are 401") {
  TempDir dir;
  DevIdpProcess idp(dir);
  Gate gate(dir, dev_idp_provider(idp.issuer()));
  REQUIRE_MESSAGE(eventually([&] { return gate.ready(); }, 5), gate.log());

  HttpResponse r;
  CHECK(gate.get("/orders", idp.token(R"({"sub":"alice","scope":"read write"})"), &r) == 200);
  // What the upstream received: the claims jwtgate verified, as headers.
  CHECK(echoed_header(r, "X-Jwt-Sub") == "alice");
  CHECK(echoed_header(r, "X-Jwt-Scope") == "read write");

  // ?format=raw: the bare token and a newline, as `curl ... | read TOKEN` wants it.
  const HttpResponse raw = idp.request("POST", "/token?format=raw", R"({"sub":"bob"})");
  REQUIRE_MESSAGE(raw.status == 200, raw.body);
  CHECK(raw.header("Content-Type").rfind("text/plain", 0) == 0);
  REQUIRE(raw.body.size() > 1);
  CHECK(raw.body.back() == '\n');
  CHECK(gate.get("/orders", raw.body.substr(0, raw.body.size() - 1), &r) == 200);
  CHECK(echoed_header(r, "X-Jwt-Sub") == "bob");

  // An empty body gets the defaults.
  CHECK(gate.get("/orders", idp.token(""), &r) == 200);
  CHECK(echoed_header(r, "X-Jwt-Sub") == "dev-user");

  // Tokens the IdP signs but the gateway must refuse.
  CHECK(gate.get("/orders", idp.token(R"({"sub":"alice","exp":1000})")) == 401);
  CHECK(gate.get("/orders", idp.token(R"({"sub":"alice","aud":"other-api"})")) == 401);
  CHECK(gate.get("/orders", idp.token(R"({"sub":"alice","iss":"http://elsewhere"})")) == 401);
  CHECK(gate.get("/orders") == 401);

  // A second dev-idp signs with its own ephemeral key: the gateway does not trust it.
  TempDir other_dir;
  DevIdpProcess other(other_dir);
  CHECK(gate.get("/orders", other.token(R"({"iss":")" + idp.issuer() + R"("})")) == 401);

  // Runs until SIGTERM and then exits 0 promptly.
  idp.process().signal(SIGTERM);
  CHECK(idp.process().wait_exit(3) == 0);
}

TEST_CASE("dev-idp over HTTP: discovery, JWKS, 400s in RFC 6749 shape, 405, 404 and 413, all marked development-only") {
  TempDir dir;
  DevIdpProcess idp(dir, {"--issuer", "http://idp.test:9000/", "--kid", "compose-1"});
  const std::string marker = "development only, not for production";

  const HttpResponse discovery = idp.request("GET", "/.well-known/openid-configuration");
  REQUIRE(discovery.status == 200);
  CHECK(discovery.header("X-Jwtgate-Dev-Idp") == marker);
  CHECK(discovery.body.find(R"("issuer":"http://idp.test:9000/")") != std::string::npos);
  CHECK(discovery.body.find(R"("jwks_uri":"http://idp.test:9000/.well-known/jwks.json")") != std::string::npos);
  CHECK(discovery.body.find(R"("token_endpoint":"http://idp.test:9000/token")") != std::string::npos);

  const HttpResponse jwks = idp.request("GET", "/.well-known/jwks.json");
  REQUIRE(jwks.status == 200);
  CHECK(jwks.header("Cache-Control") == "public, max-age=60");
  CHECK(jwks.body.find(R"("kid":"compose-1")") != std::string::npos);

  for (const auto& [target, body] : std::vector<std::pair<std::string, std::string>>{
           {"/token", "sub=alice"}, {"/token", "[]"}, {"/token?ttl=48h", "{}"}, {"/token?ttl=x", "{}"},
           {"/token", "{\"pad\":\"" + std::string(40 * 1024, 'x') + "\"}"}}) {
    CAPTURE(target);
    CAPTURE(body.substr(0, 20));
    const HttpResponse r = idp.request("POST", target, body);
    CHECK(r.status == 400);
    CHECK(r.header("Content-Type") == "application/json");
    CHECK(r.body.find(R"("error":"invalid_request","error_description":")") != std::string::npos);
    CHECK(r.header("X-Jwtgate-Dev-Idp") == marker);
  }
  const HttpResponse get_token = idp.request("GET", "/token");
  CHECK(get_token.status == 405);
  CHECK(get_token.header("Allow") == "POST");
  CHECK(idp.request("PUT", "/.well-known/jwks.json").header("Allow") == "GET, HEAD");
  CHECK(idp.request("GET", "/authorize").status == 404);
  // Beyond the server's request bound the connection is refused before the body is read.
  const HttpResponse huge = idp.request("POST", "/token", std::string(70 * 1024, 'x'));
  CHECK(huge.status == 413);
  CHECK(huge.header("X-Jwtgate-Dev-Idp") == marker);
}
