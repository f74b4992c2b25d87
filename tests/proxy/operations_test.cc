// What an operator sees, end to end: /metrics after a known sequence of requests (checked by
// promtool too), /config, the access log, the guarantee that no token or secret reaches any log,
// and SIGHUP reloads under load.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "core/base64url.h"
#include "tests/support/child.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

using namespace jwtgate;
using namespace jwtgate::testing;

namespace {

const std::string kSecret = "ops-test-hmac-secret-0123456789-abcdefghij";

// The proxy with a file-backed ES256 provider and a real upstream.
struct Ops {
  TempDir dir;
  TestKey key = make_key(core::Alg::ES256, "k1");
  std::unique_ptr<Child> upstream;
  std::unique_ptr<Child> proxy;
  int upstream_port = 0, port = 0, admin_port = 0;
  std::string top_level;  // extra top-level keys, written into every yaml()

  explicit Ops(const std::string& log = "", const std::string& extra_providers = "", const std::string& extra_top = "")
      : top_level(extra_top) {
    dir.write("jwks.json", key.jwks_json);
    dir.write("secret", kSecret + "\n");
    upstream = std::make_unique<Child>(std::vector<std::string>{"/usr/bin/python3", JWTGATE_UPSTREAM_SCRIPT}, dir.path(), "upstream");
    upstream_port = std::atoi(upstream->first_stdout_line().c_str());
    REQUIRE(upstream_port > 0);
    port = free_port();
    admin_port = free_port();
    // "DIR/" in the extra providers stands for this fixture's directory.
    std::string providers = extra_providers;
    for (auto at = providers.find("DIR/"); at != std::string::npos; at = providers.find("DIR/")) {
      providers.replace(at, 4, dir.path() + "/");
    }
    dir.write("jwtgate.yaml", yaml(log, providers));
    proxy = std::make_unique<Child>(std::vector<std::string>{JWTGATE_BINARY, "--config", dir.file("jwtgate.yaml")}, dir.path(), "proxy");
    REQUIRE_MESSAGE(wait_for_port(port), proxy->stderr_text());
    REQUIRE(wait_for_port(admin_port));
  }

  std::string yaml(const std::string& log, const std::string& extra_providers, const std::string& extra_routes = "") const {
    return "listen: 127.0.0.1:" + std::to_string(port) + "\nadmin_listen: 127.0.0.1:" + std::to_string(admin_port) +
           "\nupstream: http://127.0.0.1:" + std::to_string(upstream_port) +
           "\nworkers: 2\nproviders:\n  - name: main\n    issuer: https://idp.test/\n    audiences: [api]\n"
           "    algorithms: [ES256]\n    jwks: {file: " + dir.file("jwks.json") + "}\n"
           "    token_sources: [{header: Authorization, prefix: \"Bearer \"}, {cookie: session}, {query: access_token}]\n"
           "    claims_to_headers: {sub: X-Jwt-Sub}\n" + extra_providers +
           "routes:\n  - prefix: /public\n    auth: none\n  - prefix: /admin\n    require_scopes: [admin]\n" + extra_routes +
           "  - prefix: /\n" + (log.empty() ? "" : "log: " + log + "\n") + top_level;
  }

  std::string token(const std::string& extra = "", std::int64_t exp_offset = 300) const {
    return signed_token(header_for(key), payload_now(extra, exp_offset), key);
  }
  int get(const std::string& path, const std::string& headers = "", HttpResponse* out = nullptr) const {
    HttpResponse r = http_request(port, "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + headers + "\r\n");
    if (out) *out = r;
    return r.status;
  }
  int get_with(const std::string& path, const std::string& token) const {
    return get(path, "Authorization: Bearer " + token + "\r\n");
  }
  HttpResponse admin(const std::string& path) const {
    return http_request(admin_port, "GET " + path + " HTTP/1.1\r\nHost: admin\r\n\r\n");
  }
  // Everything the proxy wrote, after a clean stop (so every buffered line is out).
  std::string stop_and_collect() {
    proxy->signal(SIGTERM);
    CHECK(proxy->wait_exit(10) == 0);
    return proxy->stdout_text() + proxy->stderr_text();
  }
  std::string log() const { return proxy->stdout_text(); }
};

// The access-log line (a JSON object) whose path is `path`; "" when there is none.
std::string access_line(const std::string& log, const std::string& path) {
  const std::string needle = "\"msg\":\"access\",\"method\":\"GET\",\"path\":\"" + path + "\"";
  const auto at = log.find(needle);
  if (at == std::string::npos) return "";
  const auto start = log.rfind('\n', at) == std::string::npos ? 0 : log.rfind('\n', at) + 1;
  return log.substr(start, log.find('\n', at) - start);
}

bool has(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

// The value of the sample `series` (name with labels) in a /metrics page; -1 when absent.
double sample_value(const std::string& page, const std::string& series) {
  const auto at = page.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + series.size() + 2));
}

}  // namespace

TEST_CASE("/metrics counts a known sequence of requests exactly, and promtool accepts it") {
  Ops ops;
  const std::string good = ops.token();
  CHECK(ops.get_with("/a", good) == 200);                                  // allowed, verified
  CHECK(ops.get_with("/b", good) == 200);                                  // allowed, from the cache
  CHECK(ops.get("/public/x") == 200);                                      // public
  CHECK(ops.get("/c") == 401);                                             // missing_token
  CHECK(ops.get_with("/d", ops.token("", -3600)) == 401);                  // expired
  std::string forged = good;
  forged[forged.size() - 5] = forged[forged.size() - 5] == 'A' ? 'B' : 'A';
  CHECK(ops.get_with("/e", forged) == 401);                                // bad_signature
  CHECK(ops.get_with("/admin/x", ops.token("\"scope\":\"read\"")) == 403);  // insufficient_scope
  CHECK(ops.get("/%2F") == 400);                                           // invalid path

  const HttpResponse m = ops.admin("/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  const std::string& t = m.body;
  CAPTURE(t);
  CHECK(has(t, "jwtgate_requests_total{route=\"/\",outcome=\"allowed\",mode=\"proxy\"} 2\n"));
  CHECK(has(t, "jwtgate_requests_total{route=\"/public\",outcome=\"public\",mode=\"proxy\"} 1\n"));
  CHECK(has(t, "jwtgate_requests_total{route=\"/\",outcome=\"denied\",mode=\"proxy\"} 3\n"));
  CHECK(has(t, "jwtgate_requests_total{route=\"/admin\",outcome=\"denied\",mode=\"proxy\"} 1\n"));
  CHECK(has(t, "jwtgate_requests_total{route=\"\",outcome=\"invalid\",mode=\"proxy\"} 1\n"));
  CHECK(has(t, "jwtgate_requests_total{route=\"/admin\",outcome=\"allowed\",mode=\"proxy\"} 0\n"));
  CHECK(has(t, "jwtgate_auth_failures_total{reason=\"missing_token\"} 1\n"));
  CHECK(has(t, "jwtgate_auth_failures_total{reason=\"expired\"} 1\n"));
  CHECK(has(t, "jwtgate_auth_failures_total{reason=\"bad_signature\"} 1\n"));
  CHECK(has(t, "jwtgate_auth_failures_total{reason=\"insufficient_scope\"} 1\n"));
  CHECK(has(t, "jwtgate_auth_failures_total{reason=\"unknown_kid\"} 0\n"));
  // Each worker has its own cache, so the repeat is a hit only when the same worker took it.
  const double hits = sample_value(t, "jwtgate_token_cache_hits_total");
  CHECK((hits == 0 || hits == 1));
  CHECK(hits + sample_value(t, "jwtgate_token_cache_misses_total") == 5);
  CHECK(has(t, "jwtgate_token_verification_seconds_count 5\n"));
  CHECK(has(t, "jwtgate_upstream_responses_total{class=\"2xx\"} 3\n"));
  CHECK(has(t, "jwtgate_upstream_response_seconds_count 3\n"));
  // Eight requests, plus the fixture's port probe (a connection too, whenever it was accepted).
  const double connections = sample_value(t, "jwtgate_connections_total");
  CHECK((connections == 8 || connections == 9));
  CHECK(sample_value(t, "jwtgate_connections_active") >= 0);
  CHECK(has(t, "jwtgate_jwks_keys{provider=\"main\"} 1\n"));
  CHECK(has(t, "jwtgate_provider_ready{provider=\"main\"} 1\n"));
  CHECK(has(t, "jwtgate_jwks_fetches_total{provider=\"main\",result=\"success\"} 1\n"));
  CHECK(has(t, "jwtgate_jwks_last_success_age_seconds{provider=\"main\"} "));
  CHECK(has(t, "jwtgate_build_info{version=\""));
  CHECK(has(t, "# TYPE jwtgate_token_verification_seconds histogram\n"));

  const ProcessResult check = run_process({JWTGATE_PROMTOOL, "check", "metrics"}, t);
  const std::string complaints = check.out + check.err;
  CHECK_MESSAGE(check.exit_code == 0, complaints);
  CHECK_MESSAGE(complaints.empty(), complaints);
}

TEST_CASE("one access-log line per request with the fields operators need, and never the query string") {
  Ops ops;
  const std::string with_jti = ops.token("\"jti\":\"tok-42\"");
  const std::string without_jti = ops.token();
  CHECK(ops.get_with("/orders?secret=s3cr3t", with_jti) == 200);
  CHECK(ops.get_with("/items", without_jti) == 200);
  CHECK(ops.get_with("/late", ops.token("", -3600)) == 401);
  CHECK(ops.get("/public/page") == 200);
  CHECK(ops.get("/anonymous") == 401);
  std::string forged = without_jti;
  forged[forged.size() - 4] = forged[forged.size() - 4] == 'A' ? 'B' : 'A';
  CHECK(ops.get_with("/forged", forged) == 401);
  CHECK(ops.get_with("/admin/panel", without_jti) == 403);
  CHECK(ops.get("/two", "Authorization: Bearer " + without_jti + "\r\nCookie: session=" + with_jti + "\r\n") == 400);
  TestKey stranger = make_key(core::Alg::ES256, "k-unknown");
  CHECK(ops.get_with("/stranger", signed_token(header_for(stranger), payload_now(), stranger)) == 401);
  const std::string log = ops.stop_and_collect();
  CAPTURE(log);

  const std::string allowed = access_line(log, "/orders");
  REQUIRE(allowed != "");
  CHECK(has(allowed, "\"route\":\"/\""));
  CHECK(has(allowed, "\"status\":200"));
  CHECK(has(allowed, "\"outcome\":\"allowed\""));
  CHECK(has(allowed, "\"upstream_status\":200"));
  CHECK(has(allowed, "\"duration_ms\":"));
  CHECK(has(allowed, "\"upstream_ms\":"));
  CHECK(has(allowed, "\"client\":\"127.0.0.1\""));
  CHECK(has(allowed, "\"sub\":\"alice\""));
  CHECK(has(allowed, "\"jti\":\"tok-42\""));
  CHECK_FALSE(has(allowed, "token_sha256"));
  CHECK(has(allowed, "\"time\":\""));
  CHECK_FALSE(has(log, "s3cr3t"));

  const std::string fingerprinted = access_line(log, "/items");
  REQUIRE(fingerprinted != "");
  {
    // The fingerprint is the first 8 bytes of the token's SHA-256, computed here independently.
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    REQUIRE(EVP_Digest(without_jti.data(), without_jti.size(), digest, &length, EVP_sha256(), nullptr) == 1);
    char hex[17];
    for (int i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    CHECK(has(fingerprinted, "\"token_sha256\":\"" + std::string(hex) + "\""));
  }
  CHECK_FALSE(has(fingerprinted, "\"jti\""));

  const std::string denied = access_line(log, "/late");
  REQUIRE(denied != "");
  CHECK(has(denied, "\"status\":401"));
  CHECK(has(denied, "\"outcome\":\"denied\""));
  CHECK(has(denied, "\"reason\":\"expired\""));
  CHECK_FALSE(has(denied, "\"sub\""));  // claims of a refused token are not trusted, not logged

  struct Denial {
    const char* path;
    const char* status;
    const char* reason;
    bool fingerprint;
  };
  for (const Denial& d : {Denial{"/anonymous", "401", "missing_token", false}, Denial{"/forged", "401", "bad_signature", true},
                          Denial{"/admin/panel", "403", "insufficient_scope", true},
                          Denial{"/two", "400", "multiple_tokens", false}, Denial{"/stranger", "401", "unknown_kid", true}}) {
    CAPTURE(d.path);
    const std::string line = access_line(log, d.path);
    REQUIRE(line != "");
    CHECK(has(line, std::string("\"status\":") + d.status));
    CHECK(has(line, "\"outcome\":\"denied\""));
    CHECK(has(line, std::string("\"reason\":\"") + d.reason + "\""));
    CHECK(has(line, "\"token_sha256\"") == d.fingerprint);
    CHECK_FALSE(has(line, "\"upstream_status\""));
  }

  const std::string pub = access_line(log, "/public/page");
  REQUIRE(pub != "");
  CHECK(has(pub, "\"outcome\":\"public\""));
  CHECK(has(pub, "\"route\":\"/public\""));
}

TEST_CASE("access_log: false writes no access lines; log.format text writes plain lines") {
  {
    Ops ops("{access_log: false}");
    CHECK(ops.get_with("/x", ops.token()) == 200);
    const std::string log = ops.stop_and_collect();
    CHECK_FALSE(has(log, "\"msg\":\"access\""));
    CHECK(has(log, "\"msg\":\"listening\""));
  }
  {
    Ops ops("{format: text}");
    CHECK(ops.get_with("/plain?q=1", ops.token()) == 200);
    const std::string log = ops.stop_and_collect();
    CAPTURE(log);
    CHECK(has(log, " INFO access method=GET path=/plain route=/ status=200 outcome=allowed "));
    CHECK_FALSE(has(log, "{\""));
  }
}

const std::string kSharedProvider =
    "  - name: shared\n    issuer: https://shared.test/\n    audiences: [api]\n    algorithms: [HS256]\n"
    "    hmac_secret_file: DIR/secret\n";

TEST_CASE("no token, signature, secret or cookie value ever reaches a log, at any level") {
  Ops ops("{level: debug}", kSharedProvider);
  core::SigningKey hmac;
  hmac.secret = core::SecretBytes(kSecret);
  auto hs = [&](std::int64_t exp) {
    return signed_token(R"({"alg":"HS256","typ":"JWT"})", payload_now("", exp, "https://shared.test/"), core::Alg::HS256, hmac);
  };
  std::vector<std::string> tokens = {ops.token(), ops.token("", -3600), ops.token("\"scope\":\"x\""), hs(300), hs(-3600),
                                     ops.token("\"jti\":\"j1\"")};
  std::string forged = tokens[0];
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  tokens.push_back(forged);
  tokens.push_back("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
  tokens.push_back("not-a-jwt-but-a-secret-looking-value-123");
  CHECK(ops.get_with("/x", tokens[3]) == 200);  // the HMAC provider works, so its secret was read
  for (const auto& t : tokens) {
    ops.get_with("/x", t);
    ops.get_with("/admin/x", t);
    ops.get("/x", "Cookie: session=" + t + "\r\n");
    ops.get("/x?access_token=" + t);
    ops.get("/x", "Authorization: Bearer " + t + "\r\nCookie: session=" + t + "x\r\n");  // two tokens
  }
  const std::string cookie_value = "cookie-value-that-must-stay-private";
  ops.get("/public/x", "Cookie: session=" + cookie_value + "\r\n");
  const std::string config = ops.admin("/config").body;
  const std::string log = ops.stop_and_collect();
  REQUIRE(has(log, "\"msg\":\"access\""));  // the sweep is over real logs
  for (const std::string& out : {log, config}) {
    for (const auto& t : tokens) {
      CAPTURE(t);
      CHECK_FALSE(has(out, t));
      // Each segment (header, payload, signature) on its own, where long enough to be unique.
      std::size_t from = 0;
      for (;;) {
        const std::size_t dot = t.find('.', from);
        const std::string segment = t.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
        if (segment.size() >= 16) CHECK_FALSE(has(out, segment));
        if (dot == std::string::npos) break;
        from = dot + 1;
      }
    }
    CHECK_FALSE(has(out, kSecret));
    CHECK_FALSE(has(out, core::base64url_encode(kSecret)));
    CHECK_FALSE(has(out, cookie_value));
  }
}

TEST_CASE("/config shows the effective configuration with secrets redacted") {
  Ops ops("", kSharedProvider);
  const HttpResponse r = ops.admin("/config");
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "application/json");
  CHECK(has(r.body, "\"hmac_secret\": \"[redacted]\""));
  CHECK(has(r.body, "\"hmac_secret_file\": \"" + ops.dir.file("secret") + "\""));
  CHECK(has(r.body, "\"refresh_interval\": \"5m\""));  // defaults are shown
  CHECK(has(r.body, "\"prefix\": \"/admin\""));
  CHECK_FALSE(has(r.body, kSecret));
  const ProcessResult parsed = run_process({"/usr/bin/python3", "-m", "json.tool"}, r.body);
  CHECK(parsed.exit_code == 0);
  CHECK(ops.admin("/nope").status == 404);
}

TEST_CASE("SIGHUP: a valid config applies to new requests, an invalid one is rejected; no request fails") {
  // The counts below are of SIGHUP's reloads alone; the file watch would add its own.
  Ops ops("", "", "watch_config: false\n");
  const std::string token = ops.token();
  REQUIRE(ops.get_with("/x", token) == 200);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  // A client that keeps going through both reloads: fresh connections and one kept alive.
  std::thread client([&] {
    RawConnection keep(ops.port);
    for (int i = 0; i < 5000 && !stop; ++i) {
      const std::string req = "GET /load HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " + token + "\r\n\r\n";
      const int fresh = http_request(ops.port, req).status;
      int kept = 0;
      if (keep.send(req)) kept = keep.read_response().status;
      (fresh == 200 && kept == 200 ? ok : failed)++;
    }
  });
  REQUIRE(eventually([&] { return ok > 20; }, 10));
  CHECK(ops.get("/new/x") == 401);

  // The new file also changes main's key source, so its keys are loaded anew: requests must not
  // see a moment without them.
  std::string next = ops.yaml("", "", "  - prefix: /new\n    auth: none\n");
  const std::string jwks_line = "jwks: {file: " + ops.dir.file("jwks.json") + "}";
  REQUIRE(next.find(jwks_line) != std::string::npos);
  next.replace(next.find(jwks_line), jwks_line.size(), "jwks: {file: " + ops.dir.file("jwks.json") + ", max_bytes: 512KiB}");
  ops.dir.write("jwtgate.yaml", next);
  ops.proxy->signal(SIGHUP);
  REQUIRE_MESSAGE(eventually([&] { return ops.get("/new/x") == 200; }, 5), ops.log());
  const int after_first = ok;
  REQUIRE(eventually([&] { return ok > after_first + 20; }, 10));

  ops.dir.write("jwtgate.yaml", "upstream: http://127.0.0.1:1\nproviders: [{name: x, algorithms: [none]}]\n");
  ops.proxy->signal(SIGHUP);
  REQUIRE(eventually([&] { return has(ops.log(), "config reload rejected"); }, 5));
  CHECK(ops.get("/new/x") == 200);  // the running configuration stays
  const int after_second = ok;
  REQUIRE(eventually([&] { return ok > after_second + 20; }, 10));
  stop = true;
  client.join();
  CHECK(failed == 0);
  CHECK(ok > 60);

  const std::string log = ops.log();
  CHECK(has(log, "\"msg\":\"config reloaded\""));
  CHECK(has(log, "algorithms"));  // the rejection names what is wrong
  const std::string metrics = ops.admin("/metrics").body;
  CHECK(has(metrics, "jwtgate_config_reloads_total{result=\"success\"} 1\n"));
  CHECK(has(metrics, "jwtgate_config_reloads_total{result=\"rejected\"} 1\n"));
  CHECK(has(metrics, "jwtgate_requests_total{route=\"/new\",outcome=\"public\",mode=\"proxy\"} "));
}

namespace {

// Writes `text` as `name` in `dir` the way the kubelet updates a ConfigMap volume: a new
// timestamped directory, a symlink to it renamed over `..data`, and the visible file a symlink
// through `..data`. The visible path itself is never written.
void kubelet_write(const std::filesystem::path& dir, const std::string& name, const std::string& text, int version) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const std::string stamp = "..2026_12_02_00_00_0" + std::to_string(version);
  fs::create_directory(dir / stamp);
  { std::ofstream(dir / stamp / name) << text; }
  std::error_code ignored;
  fs::remove(dir / "..data_tmp", ignored);
  fs::create_directory_symlink(stamp, dir / "..data_tmp");
  std::string old;
  if (fs::is_symlink(dir / "..data")) old = fs::read_symlink(dir / "..data").string();
  fs::rename(dir / "..data_tmp", dir / "..data");
  if (!fs::is_symlink(dir / name)) fs::create_symlink(fs::path("..data") / name, dir / name);
  if (!old.empty()) fs::remove_all(dir / old);
}

// The Ops proxy restarted on a config in a ConfigMap-style directory.
void restart_on_configmap(Ops& ops, const std::filesystem::path& cm, const std::string& top) {
  ops.proxy->signal(SIGTERM);
  REQUIRE(ops.proxy->wait_exit(10) == 0);
  ops.top_level = top;
  kubelet_write(cm, "jwtgate.yaml", ops.yaml("", ""), 1);
  ops.proxy = std::make_unique<Child>(std::vector<std::string>{JWTGATE_BINARY, "--config", (cm / "jwtgate.yaml").string()},
                                      ops.dir.path(), "proxy");
  REQUIRE_MESSAGE(wait_for_port(ops.port), ops.proxy->stderr_text());
}

}  // namespace

TEST_CASE("watch_config: a ConfigMap's ..data swap reloads the config without SIGHUP; an invalid one is rejected") {
  Ops ops;
  const std::filesystem::path cm = ops.dir.file("configmap");
  restart_on_configmap(ops, cm, "");
  REQUIRE(ops.get("/new/x") == 401);

  kubelet_write(cm, "jwtgate.yaml", ops.yaml("", "", "  - prefix: /new\n    auth: none\n"), 2);
  REQUIRE_MESSAGE(eventually([&] { return ops.get("/new/x") == 200; }, 10), ops.log());
  CHECK(::kill(ops.proxy->pid(), 0) == 0);  // the same process: reloaded, not restarted
  CHECK(has(ops.log(), "config file changed; reloading"));

  kubelet_write(cm, "jwtgate.yaml", "upstream: http://127.0.0.1:1\nproviders: [{name: x, algorithms: [none]}]\n", 3);
  REQUIRE(eventually([&] { return has(ops.log(), "config reload rejected"); }, 10));
  CHECK(ops.get("/new/x") == 200);  // the running configuration stays
  CHECK(has(ops.admin("/metrics").body, "jwtgate_config_reloads_total{result=\"success\"} 1\n"));
}

TEST_CASE("watch_config: false leaves a changed file alone until SIGHUP") {
  Ops ops;
  const std::filesystem::path cm = ops.dir.file("configmap");
  restart_on_configmap(ops, cm, "watch_config: false\n");
  kubelet_write(cm, "jwtgate.yaml", ops.yaml("", "", "  - prefix: /new\n    auth: none\n"), 2);
  // Longer than the watch's settle time and its 5 s safety-net stat.
  std::this_thread::sleep_for(std::chrono::seconds(6));
  CHECK(ops.get("/new/x") == 401);
  ops.proxy->signal(SIGHUP);
  REQUIRE_MESSAGE(eventually([&] { return ops.get("/new/x") == 200; }, 10), ops.log());
}

TEST_CASE("admin.config_endpoint: false answers /config with 404; a reload turns it back on") {
  Ops ops("", "", "admin: {config_endpoint: false}\n");
  const HttpResponse off = ops.admin("/config");
  CHECK(off.status == 404);
  CHECK_FALSE(has(off.body, "/config"));  // the hint no longer offers it
  CHECK_FALSE(has(off.body, "\"routes\""));
  CHECK(ops.admin("/healthz").status == 200);
  CHECK(ops.admin("/metrics").status == 200);

  ops.top_level = "admin: {config_endpoint: true}\n";
  ops.dir.write("jwtgate.yaml", ops.yaml("", ""));
  ops.proxy->signal(SIGHUP);
  REQUIRE_MESSAGE(eventually([&] { return ops.admin("/config").status == 200; }, 5), ops.log());
  const std::string config = ops.admin("/config").body;
  CHECK(has(config, "\"config_endpoint\": true"));
  CHECK(has(config, "\"prefix\": \"/admin\""));
}

TEST_CASE("the admin: connection bounds reach the listener: probes answer while other peers hold every slot") {
  Ops ops("", "", "admin: {max_connections: 4, max_connections_per_peer: 2, head_timeout: 1s}\n");
  // The fixture's own port check holds a slot until the listener has seen it close.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Two peers at their limit fill the general pool; a third connection from one of them takes the
  // place of its oldest.
  std::vector<std::unique_ptr<RawConnection>> held;
  for (const char* peer : {"127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"}) {
    held.push_back(std::make_unique<RawConnection>(ops.admin_port, 3, peer));
    REQUIRE(held.back()->connected());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const HttpResponse health = ops.admin("/healthz");
  CHECK(health.status == 200);
  CHECK(health.header("Connection") == "close");  // answered from the reserve
  const HttpResponse ready = ops.admin("/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");
  const HttpResponse metrics = ops.admin("/metrics");
  CHECK(metrics.status == 503);  // the reserve serves only the probes
  CHECK(has(metrics.body, "connection limit"));
  RawConnection third(ops.admin_port, 3, "127.0.0.2");
  REQUIRE(third.send("GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n"));
  CHECK(third.read_response().status == 200);
  CHECK(held[0]->closed_by_peer());  // evicted for the third
  // The silent ones go after head_timeout (1s), long before the default idle timeout.
  for (std::size_t i = 1; i < held.size(); ++i) CHECK(held[i]->closed_by_peer());
  CHECK(ops.admin("/metrics").status == 200);
}

namespace {

// The upstream has parsed a request whose target contains `needle`: it is in flight, not
// merely connected (a drain closes connections that have not sent a request yet).
bool upstream_saw(const Ops& ops, const std::string& needle) {
  return has(http_request(ops.upstream_port, "GET /__seen HTTP/1.1\r\nHost: u\r\n\r\n", 2).body, needle);
}

}  // namespace

TEST_CASE("limits.drain_timeout: SIGTERM lets short requests finish, cuts long ones at the deadline, exits 0") {
  Ops ops("", "", "limits: {drain_timeout: 2s}\n");
  RawConnection shorter(ops.port, 10), longer(ops.port, 15);
  // The upstream holds one request well inside the deadline and one far beyond it.
  REQUIRE(shorter.send("GET /public/slow?ms=600 HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(longer.send("GET /public/slow?ms=20000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(eventually([&] { return upstream_saw(ops, "ms=600") && upstream_saw(ops, "ms=20000"); }, 5));
  ops.proxy->signal(SIGTERM);
  CHECK(shorter.read_response().status == 200);
  // The deadline, not the upstream's 20 s, ends the process (bounded wait well below 20 s).
  const int code = ops.proxy->wait_exit(8);
  CHECK(code == 0);
  CHECK(longer.read_response().status == 0);  // closed without an answer
  const std::string log = ops.log();
  CHECK(has(log, "\"drain_timeout\":\"2s\""));
  CHECK(has(log, "\"level\":\"warn\",\"msg\":\"limits.drain_timeout reached: connections with requests in flight were closed\",\"connections\":\"1\""));
}

TEST_CASE("limits.drain_timeout comes from the running configuration: a SIGHUP reload changes it") {
  Ops ops;  // the default, 30 s
  CHECK(has(ops.admin("/config").body, "\"drain_timeout\": \"30s\""));
  ops.top_level = "limits: {drain_timeout: 1s}\n";
  ops.dir.write("jwtgate.yaml", ops.yaml("", ""));
  ops.proxy->signal(SIGHUP);
  REQUIRE_MESSAGE(eventually([&] { return has(ops.admin("/config").body, "\"drain_timeout\": \"1s\""); }, 5), ops.log());
  RawConnection longer(ops.port, 15);
  REQUIRE(longer.send("GET /public/slow?ms=20000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(eventually([&] { return upstream_saw(ops, "ms=20000"); }, 5));
  ops.proxy->signal(SIGTERM);
  CHECK(ops.proxy->wait_exit(8) == 0);
  CHECK(has(ops.log(), "\"connections\":\"1\""));
}
