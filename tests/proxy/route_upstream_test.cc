// routes[].upstream: one jwtgate in front of several services. The oracle is each upstream's own
// record of the request heads it parsed (/__seen) and the X-Upstream name it stamps on its
// responses, never jwtgate's view of where it sent something.
#include <doctest/doctest.h>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/proxy_env.h"

using namespace jwtgate::testing;

namespace {

// A tests/support/upstream.py that names itself in every response (X-Upstream).
struct NamedUpstream {
  TempDir dir;
  std::unique_ptr<Child> child;
  int port = 0;
  explicit NamedUpstream(const std::string& name) {
    child = std::make_unique<Child>(std::vector<std::string>{"/usr/bin/python3", JWTGATE_UPSTREAM_SCRIPT, "--name", name},
                                    dir.path(), "upstream-" + name);
    port = std::atoi(child->first_stdout_line().c_str());
    REQUIRE(port > 0);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

std::string seen_at(int port) {
  HttpResponse r = http_request(port, "GET /__seen?clear=1 HTTP/1.1\r\nHost: upstream\r\n\r\n");
  REQUIRE(r.status == 200);
  return r.body;
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// The upstream.py JSON for one request path: "path": "/a/x".
std::string seen_path(const std::string& path) { return "\"path\": \"" + path + "\""; }

std::string routes_for(const NamedUpstream& a, const NamedUpstream& b) {
  return "routes:\n"
         "  - prefix: /a\n    auth: none\n    upstream: " + a.url() + "\n"
         "  - prefix: /b\n    auth: none\n    upstream: " + b.url() + "/\n"
         // A route without upstream: the top-level one, even under /b (no inheritance).
         "  - prefix: /b/admin\n    require_scopes: [admin]\n"
         "  - prefix: /b/ro\n    methods: [GET]\n    auth: none\n    upstream: " + b.url() + "\n"
         "  - prefix: /\n    auth: none\n";
}

// The service's name, "main" for the top-level upstream (Env's, which names nothing).
std::string served_by(const HttpResponse& r) {
  const std::string name = r.header("X-Upstream");
  return name.empty() ? "main" : name;
}

}  // namespace

TEST_CASE("routes[].upstream: each route's requests reach its own upstream, the rest the top-level one") {
  NamedUpstream a("A"), b("B");
  Env env(routes_for(a, b));
  struct Case { const char* path; const char* upstream; };
  for (Case c : {Case{"/a", "A"}, Case{"/a/x", "A"}, Case{"/b/y?q=1", "B"}, Case{"/c/z", "main"},
                 Case{"/ab", "main"},             // prefixes match whole segments
                 Case{"/b/admin/x", "main"},      // the longer route names no upstream
                 Case{"/b/ro/r", "B"},
                 // The path forwarded is the normalized one the route was chosen by.
                 Case{"/a/../b/n", "B"}, Case{"/b/%2e%2e/a/n2", "A"}, Case{"//a//d", "A"}, Case{"/%61/e", "A"},
                 Case{"/a;x/p", "A"},
                 // Case folding only adds rules: /A/x is served as exact matching reads it (route "/").
                 Case{"/A/f", "main"}, Case{"/B/g", "main"}}) {
    const std::string headers = std::string(c.path).rfind("/b/admin", 0) == 0
                                    ? "Authorization: Bearer " + env.token(R"("scope":"admin")") + "\r\n"
                                    : "";
    HttpResponse r = env.get(c.path, headers);
    REQUIRE_MESSAGE(r.status == 200, c.path, " ", r.body);
    CHECK_MESSAGE(served_by(r) == c.upstream, c.path);
  }
  // The Host header names nothing jwtgate routes by.
  CHECK(served_by(env.get("/a/h", "X-Forwarded-Host: b\r\n")) == "A");
  RawConnection host(env.port);
  REQUIRE(host.send("GET /a/host HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(b.port) + "\r\n\r\n"));
  CHECK(served_by(host.read_response()) == "A");

  const std::string at_a = seen_at(a.port), at_b = seen_at(b.port), at_main = upstream_seen(env);
  for (const char* p : {"/a", "/a/x", "/a/n2", "/a/d", "/a/e", "/a;x/p", "/a/h", "/a/host"}) {
    CHECK_MESSAGE(count(at_a, seen_path(p)) == 1, p);
    CHECK_MESSAGE(!contains(at_b, seen_path(p)), p);
    CHECK_MESSAGE(!contains(at_main, seen_path(p)), p);
  }
  for (const char* p : {"/b/y?q=1", "/b/ro/r", "/b/n"}) {
    CHECK_MESSAGE(count(at_b, seen_path(p)) == 1, p);
    CHECK_MESSAGE(!contains(at_a, seen_path(p)), p);
    CHECK_MESSAGE(!contains(at_main, seen_path(p)), p);
  }
  for (const char* p : {"/c/z", "/ab", "/b/admin/x", "/A/f", "/B/g"}) {
    CHECK_MESSAGE(count(at_main, seen_path(p)) == 1, p);
    CHECK_MESSAGE(!contains(at_a, seen_path(p)), p);
    CHECK_MESSAGE(!contains(at_b, seen_path(p)), p);
  }

  // /config shows each route's upstream (null: the top-level one); the access log names it.
  const std::string config = http_request(env.admin_port, "GET /config HTTP/1.1\r\nHost: a\r\n\r\n").body;
  CHECK(contains(config, "\"url\": \"" + a.url() + "\""));
  CHECK(contains(config, "\"url\": \"" + b.url() + "/\""));
  CHECK(contains(config, "\"upstream\": null"));
  auto access_line = [&](const std::string& path) {
    const std::string log = env.proxy->stdout_text();
    const auto at = log.find("\"path\":\"" + path + "\"");
    if (at == std::string::npos) return std::string();
    const auto begin = log.rfind('\n', at) == std::string::npos ? 0 : log.rfind('\n', at) + 1;
    return log.substr(begin, log.find('\n', at) - begin);
  };
  REQUIRE(eventually([&] { return !access_line("/c/z").empty(); }, 5));
  CHECK(contains(access_line("/a/x"), "\"upstream\":\"" + a.url() + "\""));
  CHECK(contains(access_line("/b/n"), "\"upstream\":\"" + b.url() + "/\""));
  CHECK(contains(access_line("/c/z"), "\"upstream\":\"http://127.0.0.1:" + std::to_string(env.upstream_port) + "\""));
}

TEST_CASE("routes[].upstream: pipelined requests for different routes each reach their own upstream, in order") {
  NamedUpstream a("A"), b("B");
  Env env(routes_for(a, b));
  const std::string admin = "Authorization: Bearer " + env.token(R"("scope":"admin")") + "\r\n";
  struct Step { std::string request; int status; const char* upstream; std::string path; };
  std::vector<Step> steps;
  for (int round = 0; round < 3; ++round) {
    const std::string n = std::to_string(round);
    steps.push_back({"GET /a/p" + n + " HTTP/1.1\r\nHost: t\r\n\r\n", 200, "A", "/a/p" + n});
    steps.push_back({"GET /b/p" + n + " HTTP/1.1\r\nHost: t\r\n\r\n", 200, "B", "/b/p" + n});
    steps.push_back({"GET /m/p" + n + " HTTP/1.1\r\nHost: t\r\n\r\n", 200, "main", "/m/p" + n});
    // Refused by jwtgate itself, never forwarded: 405 (B's route excludes the method), 401.
    steps.push_back({"DELETE /b/ro/p" + n + " HTTP/1.1\r\nHost: t\r\n\r\n", 405, "", ""});
    steps.push_back({"GET /b/admin/p" + n + " HTTP/1.1\r\nHost: t\r\n\r\n", 401, "", ""});
    steps.push_back({"GET /b/admin/ok" + n + " HTTP/1.1\r\nHost: t\r\n" + admin + "\r\n", 200, "main", "/b/admin/ok" + n});
    steps.push_back({"HEAD /a/h" + n + " HTTP/1.1\r\nHost: t\r\n\r\n", 200, "A", ""});
  }
  RawConnection c(env.port);
  std::string burst;
  for (const auto& s : steps) burst += s.request;
  REQUIRE(c.send(burst));
  for (const auto& s : steps) {
    const bool head = s.request.rfind("HEAD", 0) == 0;
    HttpResponse r = c.read_response(head);
    REQUIRE_MESSAGE(r.status == s.status, s.request);
    if (s.status != 200) continue;
    CHECK_MESSAGE(served_by(r) == s.upstream, s.request);
    if (!s.path.empty()) CHECK_MESSAGE(echoed_path(r) == s.path, s.request);
  }
  const std::string at_a = seen_at(a.port), at_b = seen_at(b.port), at_main = upstream_seen(env);
  CHECK(count(at_a, "\"path\": ") == 6);
  CHECK(count(at_b, "\"path\": ") == 3);
  CHECK(count(at_main, "\"path\": ") == 6);
  CHECK(!contains(at_b + at_a + at_main, "/b/ro/p"));
  CHECK(!contains(at_main, "/b/admin/p"));
}

TEST_CASE("routes[].upstream: a stale pooled connection is retried on the same route's upstream") {
  NamedUpstream a("A"), b("B");
  Env env(routes_for(a, b));
  RawConnection c(env.port);
  // B's pooled connection closes, unanswered, at the next request it is given. A request for A
  // in between must not be handed it (pools are per upstream); the next one for B is retried on
  // a fresh connection to B.
  REQUIRE(c.send("GET /b/close-next HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(c.read_response().status == 200);
  REQUIRE(c.send("GET /a/between HTTP/1.1\r\nHost: t\r\n\r\nGET /b/after HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpResponse between = c.read_response();
  REQUIRE(between.status == 200);
  CHECK(served_by(between) == "A");
  HttpResponse after = c.read_response();
  REQUIRE(after.status == 200);
  CHECK(served_by(after) == "B");
  CHECK(echoed_path(after) == "/b/after");
  const std::string at_a = seen_at(a.port), at_b = seen_at(b.port), at_main = upstream_seen(env);
  CHECK(count(at_a, seen_path("/a/between")) == 1);
  CHECK(count(at_b, seen_path("/b/after")) == 2);  // the stale connection read it, then the retry
  CHECK(!contains(at_a + at_main, "/b/after"));
}

TEST_CASE("routes[].upstream: case folding never sends a path to a route's upstream that exact matching does not") {
  NamedUpstream a("A"), b("B");
  // No catch-all: /A/x matches /a only without case, exact matching finds nothing (404).
  Env env("routes:\n  - prefix: /a\n    auth: none\n    upstream: " + a.url() +
          "\n  - prefix: /b\n    auth: none\n    upstream: " + b.url() + "\n");
  CHECK(served_by(env.get("/a/x")) == "A");
  CHECK(env.get("/A/x").status == 404);
  CHECK(env.get("/B/x").status == 404);
  CHECK(env.get("/c").status == 404);
  const std::string at_a = seen_at(a.port), at_b = seen_at(b.port), at_main = upstream_seen(env);
  CHECK(count(at_a, "\"path\": ") == 1);
  CHECK(count(at_b + at_main, "\"path\": ") == 0);
}

TEST_CASE("routes[].upstream: a reload that moves a route to another upstream takes effect") {
  NamedUpstream a("A"), b("B");
  Env env(routes_for(a, b));
  RawConnection kept(env.port);
  REQUIRE(kept.send("GET /a/before HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpResponse before = kept.read_response();
  REQUIRE(before.status == 200);
  CHECK(served_by(before) == "A");

  // /a now goes to B, /b to the top-level upstream, and a new route to A.
  std::string yaml = env.dir.read("jwtgate.yaml");
  const std::string a_line = "  - prefix: /a\n    auth: none\n    upstream: " + a.url() + "\n";
  const std::string b_line = "  - prefix: /b\n    auth: none\n    upstream: " + b.url() + "/\n";
  REQUIRE(contains(yaml, a_line));
  REQUIRE(contains(yaml, b_line));
  yaml.replace(yaml.find(a_line), a_line.size(), "  - prefix: /a\n    auth: none\n    upstream: " + b.url() + "\n");
  yaml.replace(yaml.find(b_line), b_line.size(),
               "  - prefix: /b\n    auth: none\n  - prefix: /n\n    auth: none\n    upstream: " + a.url() + "\n");
  env.dir.write("jwtgate.yaml", yaml);
  env.proxy->signal(SIGHUP);
  REQUIRE_MESSAGE(eventually([&] { return served_by(env.get("/n/probe")) == "A"; }, 5), env.proxy->stderr_text());

  // New connections and the one kept alive across the reload alike (the pooled connection to A
  // from before is not used for /a any more).
  auto on_kept = [&](const std::string& path) {
    REQUIRE(kept.send("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    return kept.read_response();
  };
  for (bool reuse : {true, false}) {
    for (const char* p : {"/a/after", "/b/after", "/n/after"}) {
      HttpResponse r = reuse ? on_kept(p) : env.get(p);
      REQUIRE_MESSAGE(r.status == 200, p);
      const std::string want = p[1] == 'a' ? "B" : p[1] == 'b' ? "main" : "A";
      CHECK_MESSAGE(served_by(r) == want, p, reuse ? " (kept alive)" : " (new connection)");
    }
  }
  const std::string at_a = seen_at(a.port), at_b = seen_at(b.port), at_main = upstream_seen(env);
  CHECK(count(at_a, seen_path("/a/before")) == 1);
  CHECK(count(at_b, seen_path("/a/after")) == 2);
  CHECK(count(at_main, seen_path("/b/after")) == 2);
  CHECK(count(at_a, seen_path("/n/after")) == 2);
  CHECK(!contains(at_a, "/a/after"));
  CHECK(!contains(at_b, "/b/after"));
  CHECK(contains(env.proxy->stdout_text(), "config reloaded"));
}

TEST_CASE("check-config: an invalid routes[].upstream is an error naming it, with its position") {
  TempDir dir;
  const std::string head = "upstream: http://127.0.0.1:3000\nproviders:\n  - name: main\n    issuer: https://idp.test/\n"
                           "    algorithms: [ES256]\n    jwks: {uri: https://idp.test/jwks.json}\nroutes:\n"
                           "  - prefix: /a\n    upstream: http://orders:3000\n  - prefix: /\n    upstream: ";
  struct Case { const char* value; const char* reason; };
  for (Case c : {Case{"ftp://orders:3000", "expected an http://, https:// or h2c:// URL"},
                 Case{"orders:3000", "expected an http://, https:// or h2c:// URL"},
                 Case{"http://orders:3000/api", "paths, queries and credentials are not supported"},
                 Case{"http://user:pw@orders:3000", "paths, queries and credentials are not supported"},
                 Case{"http://orders:0", "port from 1 to 65535"},
                 Case{"[http://orders:3000]", "routes[1].upstream: expected"}}) {
    dir.write("bad.yaml", head + c.value + "\n");
    ProcessResult r = run_process({JWTGATE_BINARY, "check-config", "--config", dir.file("bad.yaml")});
    CHECK_MESSAGE(r.exit_code != 0, c.value);
    CHECK_MESSAGE(contains(r.err + r.out, "bad.yaml:11:15: error: routes[1].upstream: "), c.value, "\n", r.err, r.out);
    CHECK_MESSAGE(contains(r.err + r.out, c.reason), c.value, "\n", r.err, r.out);
    CHECK(!contains(r.err + r.out, "routes[0]"));  // the valid route upstream is not blamed
  }
  dir.write("good.yaml", head + "http://inventory:3000/\n");
  ProcessResult ok = run_process({JWTGATE_BINARY, "check-config", "--config", dir.file("good.yaml")});
  CHECK_MESSAGE(ok.exit_code == 0, ok.err, ok.out);
  CHECK_MESSAGE(!contains(ok.err + ok.out, "upstream"), ok.err, ok.out);  // no warning either
  dir.write("typo.yaml", head + "http://inventory:3000\n    upstrem: http://x:1\n");
  ProcessResult typo = run_process({JWTGATE_BINARY, "check-config", "--config", dir.file("typo.yaml")});
  CHECK(typo.exit_code != 0);
  CHECK_MESSAGE(contains(typo.err + typo.out, "did you mean \"upstream\"?"), typo.err, typo.out);
}

TEST_CASE("case folding: a route's service only ever gets an identity from a provider that route trusts") {
  // Found by the attack review of the exchange split: /PARTNER/x passed both readings, the folded
  // one (/partner, partner IdP) and the exact one (/, main IdP), and the main service got the
  // partner token's identity: any partner-IdP subject, chosen by whoever holds a main account.
  NamedUpstream partner_service("P");
  TempDir keys;
  TestKey partner = make_key(jwtgate::core::Alg::ES256, "p1");
  keys.write("partner.json", partner.jwks_json);
  Env env("routes:\n  - prefix: /partner\n    providers: [partner]\n    upstream: " + partner_service.url() +
              "\n  - prefix: /\n    providers: [main]\n",
          "",
          "  - name: partner\n    issuer: https://partner.test/\n    audiences: [api]\n    algorithms: [ES256]\n"
          "    jwks: {file: " + keys.file("partner.json") + "}\n    token_sources: [{header: X-Partner-Token}]\n"
          "    claims_to_headers: {name: X-Jwt-Sub}\n    forward_token: false\n");
  const std::string main_token = env.token();  // main maps sub ("alice") to X-Jwt-Sub
  const std::string partner_token =
      signed_token(header_for(partner), payload_now(R"("name":"ceo")", 300, "https://partner.test/"), partner);
  const std::string both = "Authorization: Bearer " + main_token + "\r\nX-Partner-Token: " + partner_token + "\r\n";

  HttpResponse r = env.get("/PARTNER/x", both);
  REQUIRE(r.status == 200);
  CHECK(served_by(r) == "main");
  CHECK(echoed_header(r, "X-Jwt-Sub") == "alice");
  // The partner token passed the folded reading; its provider's forward_token: false still holds.
  const std::string folded_seen = upstream_seen(env);
  CHECK_MESSAGE(!contains(folded_seen, partner_token), folded_seen);
  CHECK(contains(folded_seen, main_token));
  CHECK(env.get("/PARTNER/x", "X-Partner-Token: " + partner_token + "\r\n").status == 401);  // / needs main
  CHECK(env.get("/PARTNER/x", "Authorization: Bearer " + main_token + "\r\n").status == 401);  // /partner needs partner
  // Controls: each exact path gets its own route's identity.
  r = env.get("/partner/x", both);
  CHECK(served_by(r) == "P");
  CHECK(echoed_header(r, "X-Jwt-Sub") == "ceo");
  r = env.get("/x", both);
  CHECK(served_by(r) == "main");
  CHECK(echoed_header(r, "X-Jwt-Sub") == "alice");
  const std::string at_main = upstream_seen(env);
  CHECK_MESSAGE(!contains(at_main, "\"ceo\""), at_main);
}
