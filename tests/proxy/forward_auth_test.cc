// forward_auth: jwtgate as the token check behind a gateway (nginx auth_request, Traefik
// ForwardAuth, Caddy forward_auth, Envoy ext_authz), end to end: the jwtgate binary on its own
// forward-auth listener, real keys, real sockets on 127.0.0.1, probed as an attacker would.
// Peers: 127.0.0.2 is the configured trusted proxy, 127.0.0.3 (and 127.0.0.1) are not.
#include <doctest/doctest.h>

#include <sys/socket.h>

#include <cerrno>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/proxy_env.h"

using namespace jwtgate;
using namespace jwtgate::testing;

namespace {

const std::string kTrusted = "127.0.0.2";
const std::string kUntrusted = "127.0.0.3";
const std::string kSecret = "forward-auth-test-hmac-secret-0123456789";

const std::string kRoutes =
    "routes:\n"
    "  - prefix: /public\n    auth: none\n"
    "  - prefix: /maybe\n    auth: optional\n"
    "  - prefix: /admin\n    require_scopes: [admin]\n"
    "  - prefix: /write\n    methods: [POST, PUT]\n"
    "  - prefix: /gold\n    require_claims: {tier: gold}\n"
    "  - prefix: /\n";

// Every identity header configured on any provider: an allowed check must carry each of them.
const std::vector<std::string> kIdentityHeaders = {"X-Jwt-Sub", "X-Jwt-Roles", "X-Jwt-Payload", "X-Partner-Email"};

struct Options {
  bool proxy = false;              // also a proxy listener with a real upstream
  bool allow_preflight = false;
  std::string fa_host = "127.0.0.1";  // forward_auth.listen's address
  std::string trusted = "[127.0.0.2/32]";
  std::string forward_auth_extra;  // more keys of the forward_auth section, indented by 2
  std::string providers_extra;     // more providers; "DIR/" stands for the fixture's directory
  std::string routes = kRoutes;
  std::string tail;                // more top-level keys
};

// jwtgate with a forward_auth listener (and, with Options::proxy, a proxy listener in front of
// tests/support/upstream.py), a file-backed ES256 provider "main" and an HS256 provider "partner".
struct FaEnv {
  TempDir dir;
  TestKey key = make_key(core::Alg::ES256, "k1");
  std::unique_ptr<Child> upstream;
  std::unique_ptr<Child> gate;
  int upstream_port = 0, port = 0, fa_port = 0, admin_port = 0;

  explicit FaEnv(const Options& o = {}) {
    dir.write("jwks.json", key.jwks_json);
    dir.write("secret", kSecret + "\n");
    dir.write("garbage.json", "{\"keys\": [not json");  // a JWKS file that cannot be read as one
    if (o.proxy) {
      upstream = std::make_unique<Child>(std::vector<std::string>{"/usr/bin/python3", JWTGATE_UPSTREAM_SCRIPT}, dir.path(), "upstream");
      upstream_port = std::atoi(upstream->first_stdout_line().c_str());
      REQUIRE(upstream_port > 0);
      port = free_port();
    }
    fa_port = free_port();
    admin_port = free_port();
    const std::string yaml = config_text(o);
    dir.write("jwtgate.yaml", yaml);
    gate = std::make_unique<Child>(std::vector<std::string>{JWTGATE_BINARY, "--config", dir.file("jwtgate.yaml")}, dir.path(), "gate");
    REQUIRE_MESSAGE(wait_for_port(fa_port), gate->stderr_text() << "\n" << yaml);
    REQUIRE_MESSAGE(wait_for_port(admin_port), gate->stderr_text());
    if (o.proxy) REQUIRE_MESSAGE(wait_for_port(port), gate->stderr_text());
  }

  // The config file for `o`, on this fixture's ports (a reload rewrites it with other options).
  std::string config_text(const Options& o) const {
    std::string providers = o.providers_extra;
    for (auto at = providers.find("DIR/"); at != std::string::npos; at = providers.find("DIR/")) {
      providers.replace(at, 4, dir.path() + "/");
    }
    std::string yaml = "admin_listen: 127.0.0.1:" + std::to_string(admin_port) + "\n";
    if (o.proxy) {
      yaml += "listen: 127.0.0.1:" + std::to_string(port) + "\nupstream: http://127.0.0.1:" + std::to_string(upstream_port) + "\n";
    }
    yaml += "workers: 2\nforward_auth:\n  listen: \"" + o.fa_host + ":" + std::to_string(fa_port) + "\"" +
            "\n  trusted_proxies: " + o.trusted + "\n  allow_preflight: " + (o.allow_preflight ? "true" : "false") + "\n" +
            o.forward_auth_extra +
            "providers:\n  - name: main\n    issuer: https://idp.test/\n    audiences: [api]\n    algorithms: [ES256]\n"
            "    jwks: {file: " + dir.file("jwks.json") + "}\n"
            "    token_sources: [{header: Authorization, prefix: \"Bearer \"}, {cookie: session}, {query: access_token}]\n"
            "    claims_to_headers: {sub: X-Jwt-Sub, realm_access.roles: X-Jwt-Roles}\n"
            "    forward_payload_header: X-Jwt-Payload\n"
            "  - name: partner\n    issuer: https://partner.test/\n    audiences: [api]\n    algorithms: [HS256]\n"
            "    hmac_secret_file: " + dir.file("secret") + "\n    claims_to_headers: {email: X-Partner-Email}\n" +
            providers + o.routes + "limits: {header_timeout: 2s, idle_timeout: 5s, upstream_timeout: 5s}\n" + o.tail;
    return yaml;
  }

  std::string token(const std::string& extra = "", std::int64_t exp_offset = 300) const {
    return signed_token(header_for(key), payload_now(extra, exp_offset), key);
  }
  std::string partner_token(const std::string& extra = "") const {
    core::SigningKey hmac;
    hmac.secret = core::SecretBytes(kSecret);
    return signed_token(R"({"alg":"HS256","typ":"JWT"})", payload_now(extra, 300, "https://partner.test/"), core::Alg::HS256,
                        hmac);
  }
  // One check request on a fresh connection from `peer`.
  HttpResponse check(const std::string& peer, const std::string& target, const std::string& headers = "",
                     const std::string& method = "GET") const {
    return ask(peer, method + " " + target + " HTTP/1.1\r\nHost: jwtgate\r\n" + headers + "\r\n");
  }
  HttpResponse ask(const std::string& peer, const std::string& raw) const {
    RawConnection c(fa_port, 5, peer);
    REQUIRE_MESSAGE(c.connected(), "cannot connect from " << peer);
    REQUIRE(c.send(raw));
    HttpResponse r = c.read_response(raw.rfind("HEAD ", 0) == 0);
    // Gateways follow no redirect from an auth service, and some relay it to the client.
    CHECK_MESSAGE((r.status < 300 || r.status >= 400), raw);
    return r;
  }
  // The request heads the upstream has parsed since the last call (cleared).
  std::string upstream_seen() const {
    HttpResponse r = http_request(upstream_port, "GET /__seen?clear=1 HTTP/1.1\r\nHost: upstream\r\n\r\n");
    REQUIRE(r.status == 200);
    return r.body;
  }
  HttpResponse proxy_get(const std::string& path, const std::string& headers = "", const std::string& peer = "") const {
    RawConnection c(port, 5, peer);
    REQUIRE(c.connected());
    REQUIRE(c.send("GET " + path + " HTTP/1.1\r\nHost: test\r\n" + headers + "\r\n"));
    return c.read_response();
  }
  HttpResponse admin(const std::string& path) const {
    return http_request(admin_port, "GET " + path + " HTTP/1.1\r\nHost: admin\r\n\r\n");
  }
  std::string stop_and_collect() {
    gate->signal(SIGTERM);
    CHECK(gate->wait_exit(10) == 0);
    return gate->stdout_text() + gate->stderr_text();
  }
};

std::string bearer(const std::string& token) { return "Authorization: Bearer " + token + "\r\n"; }
std::string fwd(const std::string& uri, const std::string& method = "GET") {
  return "X-Forwarded-Uri: " + uri + "\r\nX-Forwarded-Method: " + method + "\r\n";
}
std::string orig(const std::string& uri, const std::string& method = "GET") {
  return "X-Original-URI: " + uri + "\r\nX-Original-Method: " + method + "\r\n";
}

bool has(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

std::size_t count_headers(const HttpResponse& r, const std::string& name) {
  std::size_t n = 0;
  for (const auto& [k, v] : r.headers) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      ++n;
    }
  }
  return n;
}

// Every identity header present exactly once (so the gateway's copy replaces the client's), with
// the given values ("" for the rest).
void check_identity_headers(const HttpResponse& r, const std::map<std::string, std::string>& values = {}) {
  for (const std::string& h : kIdentityHeaders) {
    CAPTURE(h);
    CHECK(count_headers(r, h) == 1);
    const auto it = values.find(h);
    CHECK(r.header(h) == (it == values.end() ? "" : it->second));
  }
}

void check_allowed(const HttpResponse& r) {
  CHECK(r.status == 200);
  CHECK(r.header("Content-Length") == "0");
  CHECK(r.body.empty());
}

void check_missing_token(const HttpResponse& r) {
  CHECK(r.status == 401);
  CHECK(r.header("WWW-Authenticate") == "Bearer realm=\"jwtgate\"");
  CHECK(r.header("Content-Type") == "application/json");
  CHECK(has(r.body, "\"error\":"));
}

void check_invalid_token(const HttpResponse& r) {
  CHECK(r.status == 401);
  CHECK(r.header("WWW-Authenticate").rfind("Bearer ", 0) == 0);
  CHECK(has(r.header("WWW-Authenticate"), "error=\"invalid_token\""));
  CHECK(has(r.body, "\"error\":\"invalid_token\""));
}

void check_bad_request(const HttpResponse& r) {
  CHECK(r.status == 400);
  CHECK(has(r.body, "invalid_request"));
}

// The sum of the samples of `name` whose labels include every one of `labels`; -1 when none.
double metric(const std::string& page, const std::string& name, const std::map<std::string, std::string>& labels) {
  double sum = -1;
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + "{", 0) != 0) continue;
    const auto close = line.find("} ");
    if (close == std::string::npos) continue;
    const std::string set = line.substr(name.size() + 1, close - name.size() - 1);
    bool all = true;
    for (const auto& [k, v] : labels) all = all && has("," + set + ",", "," + k + "=\"" + v + "\",");
    if (!all) continue;
    sum = (sum < 0 ? 0 : sum) + std::stod(line.substr(close + 2));
  }
  return sum;
}

// The access-log lines (JSON) whose path is `path`.
std::vector<std::string> access_lines(const std::string& log, const std::string& path) {
  std::vector<std::string> out;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (has(line, "\"msg\":\"access\"") && has(line, "\"path\":\"" + path + "\"")) out.push_back(line);
  }
  return out;
}

// The TCP ports `pid` listens on, from its socket inodes and the kernel's socket tables.
std::set<int> listening_ports(pid_t pid) {
  std::set<std::string> inodes;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::set<int> ports;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the column names
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (state == "0A" && inodes.count(inode)) ports.insert(std::stoi(local.substr(local.find(':') + 1), nullptr, 16));
    }
  }
  return ports;
}

std::string public_key_pem(const TestKey& key) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PUBKEY(bio, key.keys.keys[0].public_key.get()) == 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return pem;
}

}  // namespace

TEST_CASE("forward-auth, Envoy style: the original request is the own method and the own path minus path_prefix") {
  FaEnv env;
  const std::string t = env.token();
  for (const std::string& peer : {kTrusted, kUntrusted}) {
    CAPTURE(peer);
    check_missing_token(env.check(peer, "/authz/admin/x?q=1"));
    CHECK(env.check(peer, "/authz/admin/x?q=1", bearer(t)).status == 403);
    CHECK(env.check(peer, "/authz/admin/x", bearer(env.token(R"("scope":"admin")"))).status == 200);
    check_allowed(env.check(peer, "/authz/public/x"));
    check_allowed(env.check(peer, "/authz/public"));
    // /authz alone (and /authz/, /authz?q) is "/": the catch-all, token required.
    for (const char* root : {"/authz", "/authz/", "/authz?x=1"}) {
      CAPTURE(std::string(root));
      check_missing_token(env.check(peer, root));
      CHECK(env.check(peer, root, bearer(t)).status == 200);
    }
    // Not under the prefix, segment-wise: 404, never a check.
    for (const char* outside : {"/authzfoo", "/authzfoo/public", "/public/x", "/", "/auth", "/x/authz/public",
                                "/authz/../public", "/authz/%2e%2e/public", "/authz/public/../../public"}) {
      CAPTURE(std::string(outside));
      HttpResponse r = env.check(peer, outside, bearer(t));
      CHECK(r.status == 404);
      CHECK(r.header("Content-Type") == "application/json");
    }
    // The own target is normalized before the prefix is taken off.
    check_missing_token(env.check(peer, "/authz/public/../admin"));
    check_missing_token(env.check(peer, "/authz//admin"));
    check_missing_token(env.check(peer, "/authz/public/%2e%2e/admin"));
    check_missing_token(env.check(peer, "/authz/PUBLIC/x"));  // case folding only makes rules stricter
    check_bad_request(env.check(peer, "/authz/a%2fb"));
    // The own method: route method lists, 405 with Allow.
    HttpResponse get = env.check(peer, "/authz/write/x");
    CHECK(get.status == 405);
    CHECK(get.header("Allow") == "POST, PUT");
    check_missing_token(env.check(peer, "/authz/write/x", "", "POST"));
    CHECK(env.check(peer, "/authz/write/x", bearer(t), "PUT").status == 200);
  }
}

TEST_CASE("forward-auth: a path_prefix of its own is taken off segment-wise") {
  Options o;
  o.forward_auth_extra = "  path_prefix: /ext/authz\n";
  FaEnv env(o);
  check_missing_token(env.check(kUntrusted, "/ext/authz/admin"));
  check_allowed(env.check(kUntrusted, "/ext/authz/public/x"));
  check_missing_token(env.check(kUntrusted, "/ext/authz"));
  for (const char* outside : {"/authz/public", "/ext/authzfoo/public", "/ext/public", "/ext"}) {
    CAPTURE(std::string(outside));
    CHECK(env.check(kUntrusted, outside).status == 404);
  }
}

TEST_CASE("forward-auth: a trusted peer's X-Forwarded-Uri/-Method or X-Original-URI/-Method is the original request") {
  FaEnv env;
  const std::string t = env.token();
  const std::string admin = env.token(R"("scope":"admin")");
  for (auto headers : {fwd, orig}) {
    // The forwarded URI decides, whatever the check request's own path under the prefix.
    check_missing_token(env.check(kTrusted, "/authz", headers("/admin/users", "GET")));
    CHECK(env.check(kTrusted, "/authz", headers("/admin/users", "GET") + bearer(t)).status == 403);
    HttpResponse ok = env.check(kTrusted, "/authz", headers("/admin/users", "GET") + bearer(admin));
    check_allowed(ok);
    CHECK(ok.header("X-Jwt-Sub") == "alice");
    check_allowed(env.check(kTrusted, "/authz/admin", headers("/public/x", "GET")));
    check_allowed(env.check(kTrusted, "/authz/anything/else", headers("/public", "DELETE")));
    // The forwarded method decides, not the check's own.
    HttpResponse m = env.check(kTrusted, "/authz", headers("/write/x", "GET"), "POST");
    CHECK(m.status == 405);
    CHECK(m.header("Allow") == "POST, PUT");
    check_missing_token(env.check(kTrusted, "/authz", headers("/write/x", "POST")));
    check_allowed(env.check(kTrusted, "/authz", headers("/write/x", "PUT") + bearer(t)));
    CHECK(env.check(kTrusted, "/authz", headers("/write", "DELETE") + bearer(t)).status == 405);
    // The check request itself must still be under the prefix.
    CHECK(env.check(kTrusted, "/elsewhere", headers("/public/x", "GET")).status == 404);
    CHECK(env.check(kTrusted, "/authzfoo", headers("/public/x", "GET")).status == 404);
    // The query never routes.
    check_missing_token(env.check(kTrusted, "/authz", headers("/x?/public", "GET")));
  }
  // Header names in any case.
  check_allowed(env.check(kTrusted, "/authz/admin", "x-forwarded-uri: /public/x\r\nx-forwarded-method: GET\r\n"));
  check_allowed(env.check(kTrusted, "/authz/admin", "X-ORIGINAL-URI: /public/x\r\nx-original-method: GET\r\n"));
  // Both kinds present and agreeing (a gateway that sends both): that request.
  check_allowed(env.check(kTrusted, "/authz/admin", fwd("/public/x") + orig("/public/x")));
  check_missing_token(env.check(kTrusted, "/authz/public", fwd("/admin") + orig("/admin")));
  // Identical copies of one header agree with each other.
  check_allowed(env.check(kTrusted, "/authz/admin", fwd("/public/x") + "X-Forwarded-Uri: /public/x\r\n"));
}

TEST_CASE("forward-auth: forwarded headers that disagree, repeat differently, lack a method or are garbage are 400") {
  FaEnv env;
  const std::string t = env.token(R"("scope":"admin")");
  const std::vector<std::string> bad = {
      // the two kinds disagree, on the URI or the method
      fwd("/public/x") + orig("/admin"),
      fwd("/admin") + orig("/public/x"),
      fwd("/public/x", "GET") + orig("/public/x", "POST"),
      // one header twice, differently
      fwd("/public/x") + "X-Forwarded-Uri: /admin\r\n",
      "X-Forwarded-Uri: /admin\r\n" + fwd("/public/x"),
      orig("/public/x") + "X-Original-URI: /admin\r\n",
      fwd("/public/x", "GET") + "X-Forwarded-Method: POST\r\n",
      orig("/public/x", "GET") + "X-Original-Method: DELETE\r\n",
      // a URI without a method
      "X-Forwarded-Uri: /public/x\r\n",
      "X-Original-URI: /public/x\r\n",
      "X-Forwarded-Uri: /public/x\r\nX-Original-URI: /public/x\r\n",
      // absolute-form, asterisk-form, relative, empty, or what the proxy refuses in a target
      fwd("http://idp.test/public/x"),
      fwd("https://jwtgate/public"),
      orig("http://127.0.0.1/public"),
      fwd("*", "OPTIONS"),
      fwd("public/x"),
      fwd(""),
      fwd("/public/..%2Fadmin"),
      fwd("/public/%2e%2e%2fadmin"),
      fwd("/public\\..\\admin"),
      fwd("/public/%00/x"),
      fwd("/public/\xc3\xa9"),
      fwd("/public/..%3Badmin"),
      fwd("/public#/../admin"),
      fwd("/public /../admin"),
  };
  for (const std::string& headers : bad) {
    CAPTURE(headers);
    // With a valid admin token: a 400 here is the answer, never a pass on the other reading.
    check_bad_request(env.check(kTrusted, "/authz/public", headers + bearer(t)));
  }
}

TEST_CASE("forward-auth: an untrusted peer's forwarded headers are ignored entirely (GHSA-7x63-xv5r-3p2x)") {
  FaEnv env;
  const std::string t = env.token();
  for (const std::string& peer : {kUntrusted, std::string("127.0.0.1")}) {
    CAPTURE(peer);
    for (const std::string& spoof : std::vector<std::string>{fwd("/public"), orig("/public"), fwd("/public/x") + orig("/public/x"),
                                     "X-Forwarded-Uri: /public\r\n", "X-Forwarded-For: 127.0.0.2\r\n" + fwd("/public"),
                                     "Forwarded: for=127.0.0.2\r\nX-Real-IP: 127.0.0.2\r\n" + fwd("/public")}) {
      CAPTURE(spoof);
      check_missing_token(env.check(peer, "/authz/admin", spoof));
      CHECK(env.check(peer, "/authz/admin", spoof + bearer(t)).status == 403);
    }
    // Ignored also when they would be refused from a trusted peer: judged on the own request.
    check_allowed(env.check(peer, "/authz/public/x", fwd("/admin") + orig("/x")));
    check_allowed(env.check(peer, "/authz/public/x", "X-Forwarded-Uri: /admin\r\n"));
    check_allowed(env.check(peer, "/authz/public/x", fwd("http://evil/")));
    // The own method, not the forwarded one.
    CHECK(env.check(peer, "/authz/write", fwd("/write", "POST") + bearer(t)).status == 405);
  }
}

TEST_CASE("forward-auth: a trusted peer's forwarded URI is normalized and routed exactly as the proxy would") {
  FaEnv env;
  const std::string t = env.token();
  const std::string admin = env.token(R"("scope":"admin")");
  for (auto headers : {fwd, orig}) {
    for (const char* path : {"/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E/admin", "//admin", "/admin;x",
                             "/;x/admin", "/public/./../admin", "/ADMIN", "/Admin/users", "/%41dmin", "/public/..;/admin"}) {
      CAPTURE(std::string(path));
      HttpResponse none = env.check(kTrusted, "/authz/public", headers(path, "GET"));
      CHECK_MESSAGE(none.status == 401, none.body);
      CHECK(env.check(kTrusted, "/authz/public", headers(path, "GET") + bearer(t)).status == 403);
      CHECK(env.check(kTrusted, "/authz/public", headers(path, "GET") + bearer(admin)).status == 200);
    }
    // /PUBLIC/x is /public without case but "/" with it: it must pass both.
    check_missing_token(env.check(kTrusted, "/authz/public", headers("/PUBLIC/x", "GET")));
    check_allowed(env.check(kTrusted, "/authz/public", headers("/PUBLIC/x", "GET") + bearer(t)));
    check_allowed(env.check(kTrusted, "/authz", headers("/public/%78", "GET")));
    check_allowed(env.check(kTrusted, "/authz", headers("/x/../public/y?q=/admin", "GET")));
    // The forwarded path is not the check's: an /authz in it is an ordinary segment.
    check_missing_token(env.check(kTrusted, "/authz", headers("/authz/public", "GET")));
  }
}

TEST_CASE("forward-auth: scopes and claims; every identity header always present, empty unless the token has the claim") {
  FaEnv env;
  const std::string roles = env.token(R"("realm_access":{"roles":["a","b"]},"tier":"gold")");
  HttpResponse full = env.check(kTrusted, "/authz", fwd("/orders") + bearer(roles));
  check_allowed(full);
  CHECK(full.header("X-Jwt-Sub") == "alice");
  CHECK(full.header("X-Jwt-Roles") == "a,b");
  const std::string payload = full.header("X-Jwt-Payload");
  CHECK(payload.size() > 20);
  CHECK(payload.find('.') == std::string::npos);  // the payload, not the token
  check_identity_headers(full, {{"X-Jwt-Sub", "alice"}, {"X-Jwt-Roles", "a,b"}, {"X-Jwt-Payload", payload}});
  CHECK(env.check(kTrusted, "/authz", fwd("/gold/x") + bearer(roles)).status == 200);
  HttpResponse no_gold = env.check(kTrusted, "/authz", fwd("/gold/x") + bearer(env.token(R"("tier":"silver")")));
  CHECK(no_gold.status == 403);
  CHECK(has(no_gold.header("WWW-Authenticate"), "error=\"insufficient_scope\""));

  // No roles claim: the header is there, empty.
  HttpResponse plain = env.check(kTrusted, "/authz", fwd("/orders") + bearer(env.token()));
  check_allowed(plain);
  CHECK(count_headers(plain, "X-Jwt-Roles") == 1);
  CHECK(plain.header("X-Jwt-Roles") == "");
  CHECK(plain.header("X-Jwt-Sub") == "alice");
  // Another provider's token: main's headers empty, its own set.
  HttpResponse partner = env.check(kTrusted, "/authz", fwd("/orders") + bearer(env.partner_token(R"("email":"p@partner.test")")));
  check_allowed(partner);
  check_identity_headers(partner, {{"X-Partner-Email", "p@partner.test"}});
  // Public and optional routes without a token: all present, all empty; a token on a public
  // route is not used.
  check_identity_headers(env.check(kTrusted, "/authz", fwd("/public/x")));
  check_identity_headers(env.check(kTrusted, "/authz", fwd("/public/x") + bearer(roles)));
  check_identity_headers(env.check(kTrusted, "/authz", fwd("/maybe/x")));
  HttpResponse maybe = env.check(kTrusted, "/authz", fwd("/maybe/x") + bearer(roles));
  CHECK(maybe.header("X-Jwt-Sub") == "alice");
  check_invalid_token(env.check(kTrusted, "/authz", fwd("/maybe/x") + bearer("bad.token.here")));
  // Envoy style: the same headers.
  check_identity_headers(env.check(kUntrusted, "/authz/public"));
  CHECK(env.check(kUntrusted, "/authz/orders", bearer(roles)).header("X-Jwt-Roles") == "a,b");
}

TEST_CASE("forward-auth: the allow response is exactly 200 OK with Content-Length 0") {
  FaEnv env;
  RawConnection c(env.fa_port, 5, kTrusted);
  REQUIRE(c.send("GET /authz HTTP/1.1\r\nHost: j\r\nConnection: close\r\n" + fwd("/orders") + bearer(env.token()) + "\r\n"));
  const std::string raw = c.read_all();
  CAPTURE(raw);
  CHECK(raw.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);  // not 202: Envoy accepts only 200
  CHECK(has(raw, "\r\nContent-Length: 0\r\n"));
  CHECK(raw.size() >= 4);
  CHECK(raw.substr(raw.size() - 4) == "\r\n\r\n");  // no body
  CHECK(!has(raw, "\r\nLocation:"));
}

TEST_CASE("forward-auth: refused tokens are 401 with WWW-Authenticate and a JSON body, as in the proxy") {
  Options o;
  // A provider that allows an HMAC and a public-key algorithm over the same JWKS: the setting in
  // which algorithm confusion would matter.
  o.providers_extra = "  - name: mixed\n    issuer: https://mixed.test/\n    audiences: [api]\n    algorithms: [ES256, HS256]\n"
                      "    jwks: {file: DIR/jwks.json}\n";
  FaEnv env(o);
  for (const std::string& peer : {kTrusted, kUntrusted}) {
    CAPTURE(peer);
    auto ask = [&](const std::string& token) {
      return peer == kTrusted ? env.check(peer, "/authz", fwd("/x") + bearer(token)) : env.check(peer, "/authz/x", bearer(token));
    };
    check_missing_token(peer == kTrusted ? env.check(peer, "/authz", fwd("/x")) : env.check(peer, "/authz/x"));
    HttpResponse expired = ask(env.token("", -3600));
    check_invalid_token(expired);
    CHECK(expired.body == R"({"error":"invalid_token","error_description":"the token has expired"})");
    TestKey stranger = make_key(core::Alg::ES256, "k-unknown");
    check_invalid_token(ask(signed_token(header_for(stranger), payload_now(), stranger)));
    TestKey impostor = make_key(core::Alg::ES256, "k1");
    check_invalid_token(ask(signed_token(header_for(impostor), payload_now(), impostor)));
    check_invalid_token(ask(token_with_signature(R"({"alg":"none","typ":"JWT"})", payload_now(), "")));
    check_invalid_token(ask(token_with_signature(R"({"alg":"none","typ":"JWT","kid":"k1"})", payload_now(), "")));
    // HS256 signed with main's public key (PEM and JWKS text) as the secret.
    CHECK(ask(signed_token(header_for(env.key), payload_now("", 300, "https://mixed.test/"), env.key)).status == 200);
    for (const std::string& secret : {public_key_pem(env.key), env.key.jwks_json}) {
      core::SigningKey forged;
      forged.secret = core::SecretBytes(secret);
      for (const char* issuer : {"https://idp.test/", "https://mixed.test/"}) {
        CAPTURE(std::string(issuer));
        check_invalid_token(
            ask(signed_token(R"({"alg":"HS256","typ":"JWT","kid":"k1"})", payload_now("", 300, issuer), core::Alg::HS256, forged)));
      }
    }
    check_invalid_token(ask("not.a.token"));
    // Two different tokens.
    HttpResponse two = peer == kTrusted ? env.check(peer, "/authz", fwd("/x") + bearer(env.token()) + "Cookie: session=" +
                                                                         env.token("\"x\":1") + "\r\n")
                                        : env.check(peer, "/authz/x", bearer(env.token()) + "Cookie: session=" + env.token("\"x\":1") + "\r\n");
    check_bad_request(two);
    // The cookie source works on its own.
    CHECK((peer == kTrusted ? env.check(peer, "/authz", fwd("/x") + "Cookie: a=b; session=" + env.token() + "\r\n")
                            : env.check(peer, "/authz/x", "Cookie: session=" + env.token() + "\r\n"))
              .status == 200);
  }
}

TEST_CASE("forward-auth: keys unavailable (JWKS file missing or unparsable, JWKS URI failing) is 503 with Retry-After") {
  const int closed_port = free_port();
  Options o;
  o.providers_extra =
      "  - name: missing\n    issuer: https://missing.test/\n    audiences: [api]\n    algorithms: [ES256]\n"
      "    jwks: {file: DIR/no-such-jwks.json}\n"
      "  - name: unreadable\n    issuer: https://unreadable.test/\n    audiences: [api]\n    algorithms: [ES256]\n"
      "    jwks: {file: DIR/garbage.json}\n"
      "  - name: down\n    issuer: https://down.test/\n    audiences: [api]\n    algorithms: [ES256]\n"
      "    jwks: {uri: \"http://127.0.0.1:" + std::to_string(closed_port) + "/jwks.json\"}\n";
  FaEnv env(o);
  for (const char* issuer : {"https://missing.test/", "https://unreadable.test/", "https://down.test/"}) {
    CAPTURE(std::string(issuer));
    const std::string t = signed_token(header_for(env.key), payload_now("", 300, issuer), env.key);
    for (const std::string& peer : {kTrusted, kUntrusted}) {
      HttpResponse r = peer == kTrusted ? env.check(peer, "/authz", fwd("/x") + bearer(t)) : env.check(peer, "/authz/x", bearer(t));
      CHECK(r.status == 503);
      CHECK(r.header("Retry-After") != "");
      CHECK(r.header("Content-Type") == "application/json");
    }
    // A route without auth does not need keys.
    check_allowed(env.check(kTrusted, "/authz", fwd("/public/x") + bearer(t)));
  }
  CHECK(env.check(kTrusted, "/authz", fwd("/x") + bearer(env.token())).status == 200);  // main is unaffected
}

TEST_CASE("forward-auth: another spelling of an identity header is 400; an exact copy is overwritten (GHSA-7r4p-vjf4-gxv4)") {
  FaEnv env;
  const std::string t = env.token();
  for (const std::string variant : {"X_Jwt_Sub: forged\r\n", "x_jwt_sub: forged\r\n", "X-Jwt_Roles: admin\r\n",
                                     "X_JWT_PAYLOAD: e30\r\n", "X_Partner_Email: root@x\r\n", "X.Jwt.Sub: forged\r\n"}) {
    CAPTURE(variant);
    check_bad_request(env.check(kTrusted, "/authz", fwd("/x") + bearer(t) + variant));
    check_bad_request(env.check(kTrusted, "/authz", fwd("/public/x") + variant));
    check_bad_request(env.check(kUntrusted, "/authz/x", bearer(t) + variant));
  }
  // Exact copies (any case): the gateway replaces them with jwtgate's; jwtgate's never carry the client's value.
  for (const std::string copy : {"X-Jwt-Sub: forged\r\nX-Jwt-Roles: forged\r\nX-Partner-Email: forged\r\n",
                                  "x-jwt-sub: forged\r\nx-jwt-payload: forged\r\n"}) {
    CAPTURE(copy);
    HttpResponse r = env.check(kTrusted, "/authz", fwd("/x") + bearer(t) + copy);
    check_allowed(r);
    CHECK(r.header("X-Jwt-Sub") == "alice");
    check_identity_headers(r, {{"X-Jwt-Sub", "alice"}, {"X-Jwt-Payload", r.header("X-Jwt-Payload")}});
    for (const auto& [k, v] : r.headers) CHECK_MESSAGE(!has(v, "forged"), k);
    HttpResponse pub = env.check(kTrusted, "/authz", fwd("/public/x") + copy);
    check_allowed(pub);
    check_identity_headers(pub);
  }
}

TEST_CASE("forward-auth: allow_preflight answers a trusted peer's CORS preflight without a token") {
  const std::string preflight = "Access-Control-Request-Method: POST\r\nOrigin: https://app.test\r\n";
  {
    Options o;
    o.allow_preflight = true;
    FaEnv env(o);
    HttpResponse ok = env.check(kTrusted, "/authz", fwd("/admin/x", "OPTIONS") + preflight);
    check_allowed(ok);
    check_identity_headers(ok);
    check_allowed(env.check(kTrusted, "/authz", orig("/x", "OPTIONS") + preflight));
    // Not a preflight: an OPTIONS without Access-Control-Request-Method, or another method.
    check_missing_token(env.check(kTrusted, "/authz", fwd("/admin/x", "OPTIONS")));
    check_missing_token(env.check(kTrusted, "/authz", fwd("/admin/x", "GET") + preflight));
    // The original method must come from a trusted peer: an untrusted OPTIONS is judged normally.
    check_missing_token(env.check(kUntrusted, "/authz/admin/x", preflight, "OPTIONS"));
    check_missing_token(env.check(kUntrusted, "/authz/admin/x", fwd("/admin/x", "OPTIONS") + preflight));
    check_missing_token(env.check(kUntrusted, "/authz/admin/x", fwd("/admin/x", "OPTIONS") + preflight, "OPTIONS"));
    // A trusted Envoy sends the original method as its own: that is a trusted preflight too.
    check_allowed(env.check(kTrusted, "/authz/admin/x", preflight, "OPTIONS"));
  }
  {
    FaEnv env;  // allow_preflight: false
    check_missing_token(env.check(kTrusted, "/authz", fwd("/admin/x", "OPTIONS") + preflight));
    check_missing_token(env.check(kTrusted, "/authz", orig("/x", "OPTIONS") + preflight));
  }
}

TEST_CASE("forward-auth: a query token source is read from the original URI only") {
  FaEnv env;
  const std::string t = env.token();
  HttpResponse r = env.check(kTrusted, "/authz", fwd("/x?a=1&access_token=" + t));
  check_allowed(r);
  CHECK(r.header("X-Jwt-Sub") == "alice");
  check_allowed(env.check(kTrusted, "/authz", orig("/x?access_token=" + t)));
  // Envoy style: the own query is the original's.
  check_allowed(env.check(kUntrusted, "/authz/x?access_token=" + t));
  // With a forwarded URI, the check request's own query is not the original request's.
  check_missing_token(env.check(kTrusted, "/authz?access_token=" + t, fwd("/x")));
  check_missing_token(env.check(kTrusted, "/authz/x?access_token=" + t, fwd("/x")));
  // Two tokens across the header and the original query.
  check_bad_request(env.check(kTrusted, "/authz", fwd("/x?access_token=" + t) + bearer(env.token("\"x\":1"))));
  check_invalid_token(env.check(kTrusted, "/authz", fwd("/x?access_token=bad.token.here")));
}

TEST_CASE("forward-auth: keep-alive, pipelined checks answered in order, HEAD without a body") {
  FaEnv env;
  const std::string t = env.token();
  {
    RawConnection c(env.fa_port, 5, kTrusted);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(c.send("GET /authz HTTP/1.1\r\nHost: j\r\n" + fwd("/k" + std::to_string(i)) + bearer(t) + "\r\n"));
      check_allowed(c.read_response());
      REQUIRE(c.send("GET /authz HTTP/1.1\r\nHost: j\r\n" + fwd("/k" + std::to_string(i)) + "\r\n"));
      CHECK(c.read_response().status == 401);  // a denial keeps the connection too
    }
  }
  {
    RawConnection p(env.fa_port, 5, kTrusted);
    const std::string head = " HTTP/1.1\r\nHost: j\r\n";
    REQUIRE(p.send("GET /authz" + head + fwd("/public/x") + "\r\n" +       // 200
                   "GET /authz" + head + fwd("/x") + "\r\n" +              // 401
                   "GET /authz" + head + fwd("/admin") + bearer(t) + "\r\n" +  // 403
                   "GET /elsewhere" + head + "\r\n" +                      // 404
                   "GET /authz" + head + fwd("/write") + "\r\n" +          // 405
                   "GET /authz" + head + fwd("/x") + "X_Jwt_Sub: x\r\n\r\n" +  // 400
                   "GET /authz" + head + fwd("/x") + bearer(t) + "\r\n"));  // 200, alice
    for (int expected : {200, 401, 403, 404, 405, 400}) {
      CAPTURE(expected);
      CHECK(p.read_response().status == expected);
    }
    HttpResponse last = p.read_response();
    CHECK(last.status == 200);
    CHECK(last.header("X-Jwt-Sub") == "alice");
  }
  {
    // HTTP/1.0: answered, then closed.
    RawConnection old(env.fa_port, 5, kTrusted);
    REQUIRE(old.send("GET /authz HTTP/1.0\r\n" + fwd("/x") + bearer(t) + "\r\n"));
    check_allowed(old.read_response());
    CHECK(old.closed_by_peer());
  }
  {
    // HEAD as the original method (Envoy style): no body on a denial, so the next answer on the
    // connection is read as what it is.
    RawConnection h(env.fa_port, 5, kUntrusted);
    REQUIRE(h.send("HEAD /authz/x HTTP/1.1\r\nHost: j\r\n\r\nGET /authz/public/x HTTP/1.1\r\nHost: j\r\n\r\n"));
    HttpResponse denied = h.read_response(true);
    CHECK(denied.status == 401);
    HttpResponse next = h.read_response();
    check_allowed(next);
    REQUIRE(h.send("HEAD /authz/x HTTP/1.1\r\nHost: j\r\n" + bearer(t) + "\r\nHEAD /authz/nope/../../x HTTP/1.1\r\nHost: j\r\n\r\n"
                   "GET /authz/public HTTP/1.1\r\nHost: j\r\n\r\n"));
    CHECK(h.read_response(true).status == 200);
    CHECK(h.read_response(true).status == 404);
    check_allowed(h.read_response());
  }
}

TEST_CASE("forward-auth: a check with a body is answered, its connection closed cleanly; the body is never a request") {
  FaEnv env;
  const std::string inner = "GET /authz/admin HTTP/1.1\r\nHost: j\r\n\r\n";  // would be a 401
  const std::string after = "GET /authz/public/after HTTP/1.1\r\nHost: j\r\n\r\n";
  std::ostringstream hex;
  hex << std::hex << inner.size();
  for (const std::string& request :
       {"POST /authz/public/x HTTP/1.1\r\nHost: j\r\nContent-Length: " + std::to_string(inner.size()) + "\r\n\r\n" + inner + after,
        "POST /authz/public/x HTTP/1.1\r\nHost: j\r\nTransfer-Encoding: chunked\r\n\r\n" + hex.str() + "\r\n" + inner +
            "\r\n0\r\n\r\n" + after,
        "POST /authz/public/y HTTP/1.1\r\nHost: j\r\n" + fwd("/public/x", "POST") + "Content-Length: " + std::to_string(inner.size()) +
            "\r\n\r\n" + inner + after,
        // nginx without proxy_set_header Content-Length "": the client's length, and no body.
        "GET /authz/public/x HTTP/1.1\r\nHost: j\r\n" + fwd("/public/x", "GET") + "Content-Length: 11\r\n\r\n" + after}) {
    for (const std::string& peer : {kTrusted, kUntrusted}) {
      CAPTURE(request);
      CAPTURE(peer);
      RawConnection c(env.fa_port, 5, peer);
      REQUIRE(c.send(request));
      const std::string all = c.read_all();  // until the close (or the timeout, which fails below)
      CHECK(all.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
      CHECK(has(all, "\r\nConnection: close\r\n"));
      std::size_t responses = 0;
      for (auto at = all.find("HTTP/1."); at != std::string::npos; at = all.find("HTTP/1.", at + 1)) ++responses;
      CHECK(responses == 1);
    }
  }
  {
    // The body keeps coming after the answer: drained, and the close is a FIN, not a reset
    // (which could destroy the answer before the client reads it).
    RawConnection c(env.fa_port, 5, kUntrusted);
    REQUIRE(c.send("POST /authz/public/x HTTP/1.1\r\nHost: j\r\nContent-Length: 600000\r\n\r\n"));
    CHECK(c.read_response().status == 200);
    REQUIRE(c.send(std::string(300000, 'a')));
    REQUIRE(c.send(std::string(300000, 'a')));
    char byte;
    CHECK(::recv(c.fd(), &byte, 1, 0) == 0);
  }
  {
    // A body over 1 MiB is not drained for ever: the connection goes once it passes that.
    RawConnection c(env.fa_port, 5, kUntrusted);
    REQUIRE(c.send("POST /authz/public/x HTTP/1.1\r\nHost: j\r\nContent-Length: 3000000\r\n\r\n"));
    CHECK(c.read_response().status == 200);
    c.send(std::string(1100 * 1024, 'a'));
    char byte;
    const ssize_t n = ::recv(c.fd(), &byte, 1, 0);
    CHECK((n == 0 || (n < 0 && errno == ECONNRESET)));
  }
  // A body whose length is unknowable is refused as by the proxy.
  RawConnection bad(env.fa_port, 5, kUntrusted);
  REQUIRE(bad.send("POST /authz/public HTTP/1.1\r\nHost: j\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + after));
  CHECK(bad.read_response().status == 400);
  CHECK(bad.closed_by_peer());
}

TEST_CASE("forward-auth only: no upstream, no proxy listener, checks work") {
  FaEnv env;  // no listen, no upstream
  std::set<int> ports = listening_ports(env.gate->pid());
  CHECK(ports == std::set<int>{env.fa_port, env.admin_port});
  check_missing_token(env.check(kTrusted, "/authz", fwd("/x")));
  check_allowed(env.check(kTrusted, "/authz", fwd("/x") + bearer(env.token())));
  check_allowed(env.check(kUntrusted, "/authz/public"));
  CHECK(env.admin("/healthz").status == 200);
  CHECK(env.admin("/readyz").status == 200);
  // Nothing behind it to tunnel to or proxy for.
  HttpResponse ws = env.check(kUntrusted, "/authz/public/ws",
                              "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n");
  CHECK(ws.status != 101);
  CHECK(env.gate->wait_exit(0) == -1);
  CHECK(ports == listening_ports(env.gate->pid()));
}

TEST_CASE("forward-auth beside the proxy: the proxy still proxies, the forward-auth port never does") {
  Options o;
  o.proxy = true;
  FaEnv env(o);
  const std::string t = env.token();
  CHECK(listening_ports(env.gate->pid()) == std::set<int>{env.port, env.fa_port, env.admin_port});
  env.upstream_seen();
  const std::string ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n";
  check_allowed(env.check(kTrusted, "/authz", fwd("/public/x")));
  check_allowed(env.check(kTrusted, "/authz", fwd("/x") + bearer(t)));
  check_allowed(env.check(kUntrusted, "/authz/public/x"));
  check_allowed(env.check(kUntrusted, "/authz/public/download?size=100"));
  CHECK(env.check(kUntrusted, "/public/x").status == 404);
  CHECK(env.check(kUntrusted, "/x", bearer(t)).status == 404);
  CHECK(env.check(kUntrusted, "http://127.0.0.1:" + std::to_string(env.upstream_port) + "/authz/public/x").status == 400);
  CHECK(env.check(kUntrusted, "/authz/public/ws", ws).status != 101);
  CHECK(env.check(kTrusted, "/authz", fwd("/public/ws") + ws).status != 101);
  {
    RawConnection c(env.fa_port, 5, kUntrusted);
    REQUIRE(c.send("POST /authz/public/upload HTTP/1.1\r\nHost: j\r\nContent-Length: 5\r\n\r\nhello"));
    CHECK(c.read_response().status == 200);
  }
  CHECK(env.upstream_seen() == "[]");

  // The proxy listener: forward-auth's prefix means nothing there, nor do forwarded headers,
  // even from the address forward_auth trusts.
  HttpResponse proxied = env.proxy_get("/public/x");
  REQUIRE(proxied.status == 200);
  CHECK(echoed_path(proxied) == "/public/x");
  CHECK(env.proxy_get("/authz/public/x").status == 401);
  CHECK(env.proxy_get("/admin", fwd("/public") + orig("/public"), kTrusted).status == 401);
  HttpResponse with = env.proxy_get("/orders", bearer(t), kTrusted);
  REQUIRE(with.status == 200);
  CHECK(echoed_header(with, "X-Jwt-Sub") == "alice");
  CHECK(has(env.upstream_seen(), "/orders"));
}

TEST_CASE("forward-auth: metrics count with mode=\"forward_auth\", proxied requests with mode=\"proxy\"") {
  Options o;
  o.proxy = true;
  FaEnv env(o);
  const std::string t = env.token();
  check_allowed(env.check(kTrusted, "/authz", fwd("/a") + bearer(t)));
  check_allowed(env.check(kUntrusted, "/authz/b", bearer(t)));
  check_allowed(env.check(kTrusted, "/authz", fwd("/public/x")));
  CHECK(env.check(kTrusted, "/authz", fwd("/c")).status == 401);
  CHECK(env.check(kTrusted, "/authz", fwd("/admin/x") + bearer(t)).status == 403);
  CHECK(env.check(kTrusted, "/authz", fwd("/public/x") + "X-Forwarded-Uri: /admin\r\n").status == 400);
  CHECK(env.proxy_get("/public/y").status == 200);
  CHECK(env.proxy_get("/p", bearer(t)).status == 200);
  CHECK(env.proxy_get("/q").status == 401);

  const HttpResponse m = env.admin("/metrics");
  REQUIRE(m.status == 200);
  const std::string& page = m.body;
  CAPTURE(page);
  const std::string name = "jwtgate_requests_total";
  CHECK(metric(page, name, {{"mode", "forward_auth"}, {"route", "/"}, {"outcome", "allowed"}}) == 2);
  CHECK(metric(page, name, {{"mode", "forward_auth"}, {"route", "/public"}, {"outcome", "public"}}) == 1);
  CHECK(metric(page, name, {{"mode", "forward_auth"}, {"route", "/"}, {"outcome", "denied"}}) == 1);
  CHECK(metric(page, name, {{"mode", "forward_auth"}, {"route", "/admin"}, {"outcome", "denied"}}) == 1);
  CHECK(metric(page, name, {{"mode", "forward_auth"}}) == 6);
  CHECK(metric(page, name, {{"mode", "proxy"}, {"route", "/public"}, {"outcome", "public"}}) == 1);
  CHECK(metric(page, name, {{"mode", "proxy"}, {"route", "/"}, {"outcome", "allowed"}}) == 1);
  CHECK(metric(page, name, {{"mode", "proxy"}, {"route", "/"}, {"outcome", "denied"}}) == 1);
  CHECK(metric(page, name, {{"mode", "proxy"}}) == 3);
  CHECK(metric(page, name, {}) == 9);  // every sample has a mode
  // Forward-auth checks are not upstream exchanges.
  CHECK(has(page, "\njwtgate_upstream_responses_total{class=\"2xx\"} 2\n"));
  const ProcessResult promtool = run_process({JWTGATE_PROMTOOL, "check", "metrics"}, page);
  CHECK_MESSAGE(promtool.exit_code == 0, promtool.out << promtool.err);
}

TEST_CASE("forward-auth: access log lines carry mode, the original method and path, the peer, and never the token") {
  Options o;
  o.proxy = true;
  FaEnv env(o);
  const std::string t = env.token(R"("scope":"admin","jti":"fa-jti-7")");
  check_allowed(env.check(kTrusted, "/authz", fwd("/orders/7?secret=s3cr3t", "POST") + bearer(t)));
  check_allowed(env.check(kTrusted, "/authz", orig("/nginx/path?access_token=" + t, "DELETE")));
  CHECK(env.check(kUntrusted, "/authz/envoy/path", "", "PUT").status == 401);
  check_allowed(env.check(kUntrusted, "/authz/public/x", fwd("/spoofed", "PATCH")));
  CHECK(env.proxy_get("/proxied", bearer(t)).status == 200);
  const std::string log = env.stop_and_collect();
  CAPTURE(log);

  struct Expect {
    const char* path;
    const char* method;
    const char* mode;
    const char* client;
    const char* status;
  };
  for (const Expect& e : {Expect{"/orders/7", "POST", "forward_auth", "127.0.0.2", "200"},
                          Expect{"/nginx/path", "DELETE", "forward_auth", "127.0.0.2", "200"},
                          Expect{"/envoy/path", "PUT", "forward_auth", "127.0.0.3", "401"},
                          Expect{"/public/x", "GET", "forward_auth", "127.0.0.3", "200"},
                          Expect{"/proxied", "GET", "proxy", "127.0.0.1", "200"}}) {
    CAPTURE(e.path);
    const std::vector<std::string> lines = access_lines(log, e.path);
    REQUIRE(lines.size() == 1);
    const std::string& line = lines[0];
    CHECK(has(line, std::string("\"mode\":\"") + e.mode + "\""));
    CHECK(has(line, std::string("\"method\":\"") + e.method + "\""));
    CHECK(has(line, std::string("\"client\":\"") + e.client + "\""));
    CHECK(has(line, std::string("\"status\":") + e.status));
  }
  CHECK(has(access_lines(log, "/orders/7")[0], "\"sub\":\"alice\""));
  CHECK(has(access_lines(log, "/orders/7")[0], "\"jti\":\"fa-jti-7\""));
  CHECK(access_lines(log, "/spoofed").empty());
  CHECK(access_lines(log, "/authz/envoy/path").empty());
  CHECK(access_lines(log, "/authz").empty());
  CHECK(!has(log, t));
  CHECK(!has(log, t.substr(t.rfind('.') + 1)));  // not even the signature
  CHECK(!has(log, "s3cr3t"));
}

TEST_CASE("forward-auth: a header two providers set is answered once, with the verifying provider's value") {
  Options o;
  o.providers_extra = "  - name: third\n    issuer: https://third.test/\n    audiences: [api]\n    algorithms: [ES256]\n"
                      "    jwks: {file: DIR/jwks.json}\n    claims_to_headers: {sub: x-jwt-sub, email: X-Partner-Email}\n";
  FaEnv env(o);
  const std::string third =
      signed_token(header_for(env.key), payload_now(R"("email":"t@third.test")", 300, "https://third.test/"), env.key);
  HttpResponse r = env.check(kTrusted, "/authz", fwd("/x") + bearer(third));
  check_allowed(r);
  check_identity_headers(r, {{"X-Jwt-Sub", "alice"}, {"X-Partner-Email", "t@third.test"}});
  HttpResponse main = env.check(kTrusted, "/authz", fwd("/x") + bearer(env.token()));
  check_allowed(main);
  CHECK(count_headers(main, "X-Jwt-Sub") == 1);
  CHECK(count_headers(main, "X-Partner-Email") == 1);
  CHECK(main.header("X-Partner-Email") == "");
}

TEST_CASE("forward-auth: on an IPv6 socket, IPv4 peers (::ffff:a.b.c.d) are matched against IPv4 trusted_proxies") {
  Options o;
  o.fa_host = "[::ffff:127.0.0.1]";  // IPv4 clients arrive as v4-mapped IPv6 peers; still loopback only
  FaEnv env(o);
  check_allowed(env.check(kTrusted, "/authz/admin", fwd("/public/x")));
  check_missing_token(env.check(kUntrusted, "/authz/admin", fwd("/public/x")));
  check_bad_request(env.check(kTrusted, "/authz/public", "X-Forwarded-Uri: /public\r\n"));
}

TEST_CASE("forward-auth: a preflight passes only where some route covers its path") {
  Options o;
  o.allow_preflight = true;
  o.routes = "routes:\n  - prefix: /api\n    methods: [POST]\n";
  FaEnv env(o);
  const std::string preflight = "Access-Control-Request-Method: POST\r\n";
  check_allowed(env.check(kTrusted, "/authz", fwd("/api/x", "OPTIONS") + preflight));  // OPTIONS is not listed: still a preflight
  CHECK(env.check(kTrusted, "/authz", fwd("/other", "OPTIONS") + preflight).status == 404);
  CHECK(env.check(kTrusted, "/authz", fwd("/api/x", "OPTIONS")).status == 405);
}

TEST_CASE("forward-auth: a reload applies trusted_proxies, path_prefix and allow_preflight; adding the proxy is refused") {
  Options o;
  o.tail = "watch_config: false\n";  // reloads by SIGHUP only, counted below
  FaEnv env(o);
  const std::string preflight = "Access-Control-Request-Method: POST\r\n";
  check_allowed(env.check(kTrusted, "/authz/admin", fwd("/public/x")));
  check_missing_token(env.check(kUntrusted, "/authz/admin", fwd("/public/x")));
  RawConnection kept(env.fa_port, 5, kTrusted);  // a gateway's long-lived connection
  REQUIRE(kept.send("GET /authz/admin HTTP/1.1\r\nHost: j\r\n" + fwd("/public/x") + "\r\n"));
  check_allowed(kept.read_response());

  Options changed = o;
  changed.trusted = "[127.0.0.3]";
  changed.forward_auth_extra = "  path_prefix: /check\n";
  changed.allow_preflight = true;
  env.dir.write("jwtgate.yaml", env.config_text(changed));
  env.gate->signal(SIGHUP);
  REQUIRE_MESSAGE(eventually([&] { return has(env.gate->stdout_text(), "\"msg\":\"config reloaded\""); }, 5),
                  env.gate->stdout_text());
  // The peer trusted before is not any more, on a new connection or a kept one.
  check_missing_token(env.check(kTrusted, "/check/admin", fwd("/public/x")));
  REQUIRE(kept.send("GET /check/admin HTTP/1.1\r\nHost: j\r\n" + fwd("/public/x") + "\r\n"));
  check_missing_token(kept.read_response());
  check_allowed(env.check(kUntrusted, "/check/admin", fwd("/public/x")));
  check_allowed(env.check(kUntrusted, "/check", fwd("/admin", "OPTIONS") + preflight));
  check_missing_token(env.check(kTrusted, "/check", fwd("/admin", "OPTIONS") + preflight));
  CHECK(env.check(kUntrusted, "/authz/public").status == 404);
  check_allowed(env.check(kTrusted, "/check/public"));

  // Adding an upstream (and so the proxy) needs a restart: rejected, the running config stays.
  Options proxy = changed;
  proxy.tail += "listen: 127.0.0.1:" + std::to_string(free_port()) + "\nupstream: http://127.0.0.1:9\n";
  env.dir.write("jwtgate.yaml", env.config_text(proxy));
  env.gate->signal(SIGHUP);
  REQUIRE_MESSAGE(eventually([&] { return has(env.gate->stdout_text() + env.gate->stderr_text(), "config reload rejected"); }, 5),
                  env.gate->stdout_text());
  check_allowed(env.check(kUntrusted, "/check/admin", fwd("/public/x")));
  check_missing_token(env.check(kTrusted, "/check/admin", fwd("/public/x")));
}
