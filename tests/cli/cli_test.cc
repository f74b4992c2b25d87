// The jwtgate binary as people use it: real processes, real files, standard input.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/support/child.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

#include <signal.h>
#include <thread>

using jwtgate::testing::ProcessResult;
using jwtgate::testing::run_process;
using jwtgate::testing::TempDir;

namespace {

ProcessResult run_jwtgate(std::vector<std::string> args, const std::string& input = "", const std::string& cwd = "") {
  args.insert(args.begin(), JWTGATE_BINARY);
  return run_process(args, input, cwd);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

unsigned mode_of(const std::string& path) {
  struct stat st{};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("keygen, mint and verify work together for every algorithm") {
  TempDir dir;
  for (const char* alg : {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                          "ES384", "ES512", "EdDSA"}) {
    CAPTURE(alg);
    const std::string prefix = dir.file(alg);
    ProcessResult k = run_jwtgate({"keygen", "--alg", alg, "--kid", "k1", "--out", prefix});
    REQUIRE_MESSAGE(k.exit_code == 0, k.err);
    CHECK(mode_of(prefix + ".pem") == 0600);
    ProcessResult m = run_jwtgate({"mint", "--key", prefix + ".pem", "--alg", alg, "--kid", "k1", "--claims",
                               R"({"sub":"alice","aud":"api","iss":"https://idp.test/"})", "--ttl", "5m"});
    REQUIRE_MESSAGE(m.exit_code == 0, m.err);
    const std::string token = trim(m.out);
    ProcessResult v = run_jwtgate({"verify", "--jwks", prefix + ".jwks.json", "--issuer", "https://idp.test/", "--audience",
                               "api", "--alg", alg, token});
    CHECK_MESSAGE(v.exit_code == 0, std::string(v.out + v.err));
    CHECK(v.out.find("\"valid\":true") != std::string::npos);
    CHECK(v.out.find("\"error\":null") != std::string::npos);
    CHECK(v.out.find("\"sub\":\"alice\"") != std::string::npos);
  }
}

TEST_CASE("verify explains a rejection as JSON and exits 1") {
  TempDir dir;
  REQUIRE(run_jwtgate({"keygen", "--alg", "ES256", "--kid", "k1", "--out", dir.file("k")}).exit_code == 0);
  const std::string token = trim(run_jwtgate({"mint", "--key", dir.file("k.pem"), "--alg", "ES256", "--kid", "k1",
                                          "--claims", R"({"aud":"api"})"}).out);
  ProcessResult wrong_aud = run_jwtgate({"verify", "--jwks", dir.file("k.jwks.json"), "--audience", "other", token});
  CHECK(wrong_aud.exit_code == 1);
  CHECK(wrong_aud.out.find(R"("valid":false)") != std::string::npos);
  CHECK(wrong_aud.out.find(R"("reason":"bad_audience")") != std::string::npos);
  CHECK(wrong_aud.out.find(R"("header":{"alg":"ES256")") != std::string::npos);

  ProcessResult not_allowed = run_jwtgate({"verify", "--jwks", dir.file("k.jwks.json"), "--alg", "RS256", token});
  CHECK(not_allowed.exit_code == 1);
  CHECK(not_allowed.out.find(R"("reason":"alg_not_allowed")") != std::string::npos);

  ProcessResult garbage = run_jwtgate({"verify", "--jwks", dir.file("k.jwks.json"), "not-a-token"});
  CHECK(garbage.exit_code == 1);
  CHECK(garbage.out.find(R"("header":null)") != std::string::npos);
  CHECK(garbage.out.find(R"("reason":"malformed")") != std::string::npos);
}

TEST_CASE("TOKEN '-' reads the token from standard input") {
  TempDir dir;
  REQUIRE(run_jwtgate({"keygen", "--alg", "EdDSA", "--out", dir.file("k")}).exit_code == 0);
  const std::string token = run_jwtgate({"mint", "--key", dir.file("k.pem"), "--alg", "EdDSA"}).out;
  ProcessResult v = run_jwtgate({"verify", "--jwks", dir.file("k.jwks.json"), "-"}, token);
  CHECK_MESSAGE(v.exit_code == 0, std::string(v.out + v.err));
  ProcessResult d = run_jwtgate({"decode", "-"}, token);
  CHECK(d.exit_code == 0);
  CHECK(d.out.find(R"("verified":false)") != std::string::npos);
  CHECK(d.out.find("UNVERIFIED") != std::string::npos);
  CHECK(d.out.find(R"("alg":"EdDSA")") != std::string::npos);
}

TEST_CASE("decode shows even an unsecured token, marked unverified") {
  ProcessResult d = run_jwtgate({"decode", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0."});
  CHECK(d.exit_code == 0);
  CHECK(d.out.find(R"("header":{"alg":"none"})") != std::string::npos);
  CHECK(d.out.find(R"("payload":{"sub":"mallory"})") != std::string::npos);
  CHECK(run_jwtgate({"decode", "a.b"}).exit_code == 1);
}

TEST_CASE("mint sets iat and exp from --ttl and keeps explicit claims") {
  TempDir dir;
  REQUIRE(run_jwtgate({"keygen", "--alg", "HS256", "--out", dir.file("k")}).exit_code == 0);
  const std::string token = trim(run_jwtgate({"mint", "--key", dir.file("k.pem"), "--alg", "HS256", "--claims",
                                          R"({"sub":"bob","exp":4102444800})", "--ttl", "1h"}).out);
  ProcessResult d = run_jwtgate({"decode", token});
  CHECK(d.out.find(R"("exp":4102444800)") != std::string::npos);
  CHECK(d.out.find(R"("iat":)") != std::string::npos);
  ProcessResult v = run_jwtgate({"verify", "--jwks", dir.file("k.jwks.json"), "--max-lifetime", "2h", token});
  CHECK(v.exit_code == 1);
  CHECK(v.out.find("lifetime_too_long") != std::string::npos);
}

TEST_CASE("mint refuses bad input with a clear error") {
  TempDir dir;
  REQUIRE(run_jwtgate({"keygen", "--alg", "ES256", "--out", dir.file("k")}).exit_code == 0);
  ProcessResult wrong_alg = run_jwtgate({"mint", "--key", dir.file("k.pem"), "--alg", "RS256"});
  CHECK(wrong_alg.exit_code == 2);
  CHECK(wrong_alg.err.find("does not fit") != std::string::npos);
  ProcessResult public_key = run_jwtgate({"mint", "--key", dir.file("k.jwks.json"), "--alg", "ES256"});
  CHECK(public_key.exit_code == 2);
  ProcessResult bad_claims = run_jwtgate({"mint", "--key", dir.file("k.pem"), "--alg", "ES256", "--claims", "[1]"});
  CHECK(bad_claims.exit_code == 2);
  CHECK(bad_claims.err.find("not a JSON object") != std::string::npos);
  CHECK(run_jwtgate({"mint", "--key", dir.file("k.pem"), "--alg", "ES256", "--ttl", "15"}).exit_code == 2);
}

TEST_CASE("keygen never overwrites without --force") {
  TempDir dir;
  REQUIRE(run_jwtgate({"keygen", "--alg", "ES256", "--out", dir.file("k")}).exit_code == 0);
  const std::string before = dir.read("k.pem");
  ProcessResult again = run_jwtgate({"keygen", "--alg", "ES256", "--out", dir.file("k")});
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("--force") != std::string::npos);
  CHECK(dir.read("k.pem") == before);
  CHECK(run_jwtgate({"keygen", "--alg", "ES256", "--out", dir.file("k"), "--force"}).exit_code == 0);
  CHECK(dir.read("k.pem") != before);
  CHECK(mode_of(dir.file("k.pem")) == 0600);
}

TEST_CASE("verify reports an unusable JWKS and bad flags as usage errors") {
  TempDir dir;
  dir.write("empty.json", R"({"keys":[]})");
  ProcessResult v = run_jwtgate({"verify", "--jwks", dir.file("empty.json"), "a.b.c"});
  CHECK(v.exit_code == 2);
  CHECK(v.err.find("no usable key") != std::string::npos);
  CHECK(run_jwtgate({"verify", "--jwks", dir.file("missing.json"), "a.b.c"}).exit_code == 2);
  CHECK(run_jwtgate({"verify", "a.b.c"}).exit_code == 2);
  CHECK(run_jwtgate({"verify", "--jwks", dir.file("empty.json"), "--alg", "none", "a.b.c"}).exit_code == 2);
  CHECK(run_jwtgate({"verify", "--jwks", dir.file("empty.json"), "--bogus", "a.b.c"}).exit_code == 2);
}

TEST_CASE("with no config, jwtgate runs the development default end to end") {
  TempDir dir;
  const int port = jwtgate::testing::free_port();
  jwtgate::testing::Child dev({JWTGATE_BINARY, "--listen", "127.0.0.1:" + std::to_string(port)}, dir.path(), "dev");
  REQUIRE_MESSAGE(jwtgate::testing::wait_for_port(port), dev.stderr_text());
  std::string token;
  for (int i = 0; i < 100 && token.empty(); ++i) {
    const std::string out = dev.stdout_text();
    const auto start = out.find("\n\neyJ");
    if (start != std::string::npos && out.find("Ctrl-C") != std::string::npos) {
      token = out.substr(start + 2, out.find('\n', start + 2) - start - 2);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  REQUIRE_FALSE(token.empty());
  CHECK(dev.stdout_text().find("curl -H 'Authorization: Bearer " + token + "'") != std::string::npos);
  auto ok = jwtgate::testing::http_request(port, "GET /hello HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
                                                     "\r\nX-Jwt-Sub: spoofed\r\n\r\n");
  CHECK(ok.status == 200);
  CHECK(ok.body.find("\"upstream\":\"jwtgate built-in echo\"") != std::string::npos);
  CHECK(ok.body.find("\"X-Jwt-Sub\":\"dev-user\"") != std::string::npos);
  CHECK(ok.body.find("spoofed") == std::string::npos);
  CHECK(jwtgate::testing::http_request(port, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").status == 401);
  CHECK(jwtgate::testing::http_request(port, "GET /admin HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
                                                 "\r\n\r\n").status == 403);
  CHECK(jwtgate::testing::http_request(port, "GET /public/x HTTP/1.1\r\nHost: t\r\n\r\n").status == 200);
  dev.signal(SIGTERM);
  CHECK(dev.wait_exit(10) == 0);
  CHECK(run_jwtgate({"--version"}).exit_code == 0);
  CHECK(run_jwtgate({"frobnicate"}).exit_code == 2);
}

TEST_CASE("every example under deploy/examples passes check-config") {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(JWTGATE_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    CAPTURE(entry.path().string());
    ProcessResult r = run_process({JWTGATE_BINARY, "check-config", "--config", entry.path().string()}, "", "",
                                  {"CORP_ISSUER=https://corp.example.com/",
                                   "JWTGATE_HMAC_SECRET=an-example-secret-of-more-than-32-bytes"});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.out.find(": valid (0 warnings)") != std::string::npos);
    ++checked;
  }
  CHECK(checked >= 5);
}

TEST_CASE("check-config warns when /config is served on an admin listener others can reach") {
  TempDir dir;
  const std::string base =
      "upstream: http://127.0.0.1:3000\nproviders:\n  - name: main\n    issuer: https://idp.example.com/\n"
      "    audiences: [api]\n    algorithms: [RS256]\n    jwks: {uri: https://idp.example.com/jwks.json}\n";
  dir.write("open.yaml", base + "admin_listen: 0.0.0.0:9901\n");
  dir.write("section.yaml", base + "admin: {listen: 0.0.0.0:9901, config_endpoint: true}\n");
  dir.write("closed.yaml", base + "admin: {listen: 0.0.0.0:9901, config_endpoint: false}\n");
  dir.write("loopback.yaml", base + "admin_listen: 127.0.0.1:9901\n");
  for (const char* name : {"open.yaml", "section.yaml"}) {
    CAPTURE(name);
    ProcessResult r = run_jwtgate({"check-config", "--config", dir.file(name)});
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("warning: admin") != std::string::npos);
    CHECK(r.err.find("serves /config, which shows the whole policy") != std::string::npos);
    CHECK(r.err.find("set admin.config_endpoint: false") != std::string::npos);
    CHECK(r.out.find(": valid (1 warning)") != std::string::npos);
  }
  for (const char* name : {"closed.yaml", "loopback.yaml"}) {
    CAPTURE(name);
    ProcessResult r = run_jwtgate({"check-config", "--config", dir.file(name)});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find(": valid (0 warnings)") != std::string::npos);
  }
}

TEST_CASE("check-config exits 2 and prints every error with its location") {
  TempDir dir;
  dir.write("bad.yaml", "upstream: http://127.0.0.1:3000\nprovider:\n  - name: main\nlog: {level: loud}\n");
  ProcessResult r = run_jwtgate({"check-config", "--config", dir.file("bad.yaml")});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("bad.yaml:2:1: error: provider: unknown key \"provider\"; did you mean \"providers\"?") != std::string::npos);
  CHECK(r.err.find("bad.yaml:4:14: error: log.level: expected one of debug, info, warn, error, found \"loud\"") !=
        std::string::npos);
  CHECK(r.err.find("providers: missing required key") != std::string::npos);
  CHECK(r.err.find("invalid (3 errors, 0 warnings)") != std::string::npos);
  CHECK(run_jwtgate({"check-config", "--config", dir.file("missing.yaml")}).exit_code == 2);
  CHECK(run_jwtgate({"check-config"}).exit_code == 2);
}

TEST_CASE("jwtgate --config refuses to start on an invalid file with the same messages") {
  TempDir dir;
  dir.write("bad.yaml", "upstream: http://127.0.0.1:3000\nproviders: []\n");
  ProcessResult check = run_jwtgate({"check-config", "--config", dir.file("bad.yaml")});
  ProcessResult start = run_jwtgate({"--config", dir.file("bad.yaml")});
  CHECK(start.exit_code == 2);
  CHECK(start.err.find("refusing to start") != std::string::npos);
  const std::string message = "bad.yaml:2:12: error: providers: empty: at least one identity provider is needed";
  CHECK(check.err.find(message) != std::string::npos);
  CHECK(start.err.find(message) != std::string::npos);
}

namespace {

// The token the development default prints, once its banner is complete ("" after 5 s).
std::string dev_banner_token(const jwtgate::testing::Child& dev) {
  for (int i = 0; i < 250; ++i) {
    const std::string out = dev.stdout_text();
    const auto start = out.find("\n\neyJ");
    if (start != std::string::npos && out.find("Ctrl-C") != std::string::npos) {
      return out.substr(start + 2, out.find('\n', start + 2) - start - 2);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

}  // namespace

TEST_CASE("the development echo upstream never reflects credentials") {
  TempDir dir;
  const int port = jwtgate::testing::free_port();
  jwtgate::testing::Child dev({JWTGATE_BINARY, "--listen", "127.0.0.1:" + std::to_string(port)}, dir.path(), "dev");
  REQUIRE_MESSAGE(jwtgate::testing::wait_for_port(port), dev.stderr_text());
  const std::string token = dev_banner_token(dev);
  REQUIRE_FALSE(token.empty());
  CHECK(dev.stderr_text().find("WARNING") == std::string::npos);  // loopback: nothing to warn about
  CHECK(dev.stdout_text().find("WARNING") == std::string::npos);

  const std::string cookie = "session=cookie-secret-4711; theme=dark";
  auto r = jwtgate::testing::http_request(port, "GET /hello HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
                                                    "\r\nCookie: " + cookie +
                                                    "\r\nProxy-Authorization: Basic cHJveHk6c2VjcmV0\r\n\r\n");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("\"X-Jwt-Sub\":\"dev-user\"") != std::string::npos);  // the echo still shows the rest
  // Present, with its size (so "was my token forwarded?" is answered), but not its value.
  CHECK(r.body.find("\"Authorization\":\"[redacted, " + std::to_string(7 + token.size()) + " bytes]\"") != std::string::npos);
  CHECK(r.body.find("\"Cookie\":\"[redacted, " + std::to_string(cookie.size()) + " bytes]\"") != std::string::npos);
  CHECK(r.body.find(token.substr(token.rfind('.') + 1)) == std::string::npos);
  CHECK(r.body.find("cookie-secret-4711") == std::string::npos);
  CHECK(r.body.find("cHJveHk6c2VjcmV0") == std::string::npos);

  // A public route reaches the echo with no token check at all: a credential in any spelling a
  // CGI stack reads as the same header stays hidden there too.
  r = jwtgate::testing::http_request(port, "GET /public/x HTTP/1.1\r\nHost: t\r\nauthorization: Basic dXNlcjpwYXNz\r\n"
                                           "Proxy_Authorization: Basic cHJveHk6c2VjcmV0\r\n\r\n");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("dXNlcjpwYXNz") == std::string::npos);
  CHECK(r.body.find("cHJveHk6c2VjcmV0") == std::string::npos);
  dev.signal(SIGTERM);
  CHECK(dev.wait_exit(10) == 0);
}

TEST_CASE("the development default warns on a listener that is not loopback") {
  TempDir dir;
  // 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails, so nothing listens
  // beyond loopback, but the warning must already be out, before the port would open.
  const ProcessResult r = run_jwtgate({"--listen", "192.0.2.1:" + std::to_string(jwtgate::testing::free_port())}, "", dir.path());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("WARNING: the development default is listening on 192.0.2.1:") != std::string::npos);
  CHECK(r.err.find("not loopback") != std::string::npos);
  CHECK(r.out.find("cannot start") != std::string::npos);
}

TEST_CASE("with --upstream, the development banner names no JWKS URL and tokens still work") {
  TempDir dir;
  const int port = jwtgate::testing::free_port();
  const int nothing = jwtgate::testing::free_port();  // an upstream that is down: 502 means authorized
  jwtgate::testing::Child dev({JWTGATE_BINARY, "--listen", "127.0.0.1:" + std::to_string(port), "--upstream",
                               "http://127.0.0.1:" + std::to_string(nothing)},
                              dir.path(), "dev");
  REQUIRE_MESSAGE(jwtgate::testing::wait_for_port(port), dev.stderr_text());
  const std::string token = dev_banner_token(dev);
  REQUIRE_FALSE(token.empty());
  const std::string out = dev.stdout_text();
  CHECK(out.find("127.0.0.1:0") == std::string::npos);
  CHECK(out.find("JWKS at") == std::string::npos);
  CHECK(out.find("no JWKS is served with --upstream") != std::string::npos);
  CHECK(out.find("->  http://127.0.0.1:" + std::to_string(nothing) + "\n") != std::string::npos);

  const std::string head = "GET /hello HTTP/1.1\r\nHost: t\r\n";
  CHECK(jwtgate::testing::http_request(port, head + "Authorization: Bearer " + token + "\r\n\r\n").status == 502);
  CHECK(jwtgate::testing::http_request(port, head + "\r\n").status == 401);
  dev.signal(SIGTERM);
  CHECK(dev.wait_exit(10) == 0);
}

TEST_CASE("a config file whose only key is development: runs the development default") {
  TempDir dir;
  const int port = jwtgate::testing::free_port();
  dir.write("dev.yaml", "development: {listen: 127.0.0.1:" + std::to_string(port) + "}\n");
  ProcessResult check = run_jwtgate({"check-config", "--config", dir.file("dev.yaml")});
  CHECK(check.exit_code == 0);
  CHECK(check.out.find(": valid (1 warning)") != std::string::npos);
  CHECK(check.err.find("dev.yaml:1:14: warning: development: runs the development default: an ephemeral key") !=
        std::string::npos);
  CHECK(check.err.find("for development only") != std::string::npos);

  jwtgate::testing::Child dev({JWTGATE_BINARY, "--config", dir.file("dev.yaml")}, dir.path(), "dev");
  REQUIRE_MESSAGE(jwtgate::testing::wait_for_port(port), dev.stderr_text());
  const std::string token = dev_banner_token(dev);
  REQUIRE_FALSE(token.empty());
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  CHECK(dev.stdout_text().find("jwtgate development default (development: in " + dir.file("dev.yaml") + ")") !=
        std::string::npos);
  CHECK(dev.stdout_text().find("curl -H 'Authorization: Bearer " + token + "' " + base + "/hello\n") != std::string::npos);
  auto ok = jwtgate::testing::http_request(port, "GET /hello HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token + "\r\n\r\n");
  CHECK(ok.status == 200);
  CHECK(ok.body.find("\"upstream\":\"jwtgate built-in echo\"") != std::string::npos);
  CHECK(ok.body.find("\"X-Jwt-Sub\":\"dev-user\"") != std::string::npos);
  CHECK(jwtgate::testing::http_request(port, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").status == 401);
  dev.signal(SIGTERM);
  CHECK(dev.wait_exit(10) == 0);
}

TEST_CASE("development: takes an upstream, and cannot be combined with other keys") {
  TempDir dir;
  const int port = jwtgate::testing::free_port();
  const int nothing = jwtgate::testing::free_port();  // an upstream that is down: 502 means authorized
  dir.write("dev.yaml", "development:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n  upstream: http://127.0.0.1:" +
                            std::to_string(nothing) + "\n");
  jwtgate::testing::Child dev({JWTGATE_BINARY, "--config", dir.file("dev.yaml")}, dir.path(), "dev");
  REQUIRE_MESSAGE(jwtgate::testing::wait_for_port(port), dev.stderr_text());
  const std::string token = dev_banner_token(dev);
  REQUIRE_FALSE(token.empty());
  CHECK(dev.stdout_text().find("->  http://127.0.0.1:" + std::to_string(nothing) + "\n") != std::string::npos);
  CHECK(jwtgate::testing::http_request(port, "GET /x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token + "\r\n\r\n")
            .status == 502);
  dev.signal(SIGTERM);
  CHECK(dev.wait_exit(10) == 0);

  dir.write("mixed.yaml", "development: {listen: 127.0.0.1:8080}\nupstream: http://127.0.0.1:3000\n");
  for (const char* command : {"check-config", ""}) {
    CAPTURE(command);
    std::vector<std::string> args = {"--config", dir.file("mixed.yaml")};
    if (*command) args.insert(args.begin(), command);
    ProcessResult r = run_jwtgate(args);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("mixed.yaml:2:1: error: development: runs the development default and cannot be combined with "
                     "upstream; remove one") != std::string::npos);
  }
  dir.write("typo.yaml", "development: {listn: 127.0.0.1:8080}\n");
  ProcessResult r = run_jwtgate({"check-config", "--config", dir.file("typo.yaml")});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("unknown key \"listn\"; did you mean \"listen\"?") != std::string::npos);
  dir.write("bad.yaml", "development: {listen: nowhere}\n");
  CHECK(run_jwtgate({"--config", dir.file("bad.yaml")}).exit_code == 2);
}

TEST_CASE("dev-idp refuses what it cannot serve: HMAC, a bad issuer, a key that does not fit --alg") {
  TempDir dir;
  const std::string listen = "127.0.0.1:" + std::to_string(jwtgate::testing::free_port());
  ProcessResult hs = run_jwtgate({"dev-idp", "--listen", listen, "--alg", "HS256"});
  CHECK(hs.exit_code == 2);
  CHECK(hs.err.find("an HMAC secret cannot be published in a JWKS") != std::string::npos);

  REQUIRE(run_jwtgate({"keygen", "--alg", "HS256", "--out", dir.file("hs")}).exit_code == 0);
  ProcessResult hs_key = run_jwtgate({"dev-idp", "--listen", listen, "--key", dir.file("hs.pem"), "--alg", "ES256"});
  CHECK(hs_key.exit_code == 2);
  CHECK(hs_key.err.find("cannot be published in a JWKS") != std::string::npos);

  REQUIRE(run_jwtgate({"keygen", "--alg", "ES256", "--out", dir.file("ec")}).exit_code == 0);
  ProcessResult mismatch = run_jwtgate({"dev-idp", "--listen", listen, "--key", dir.file("ec.pem"), "--alg", "RS256"});
  CHECK(mismatch.exit_code == 2);
  CHECK(mismatch.err.find("cannot sign RS256") != std::string::npos);
  CHECK(run_jwtgate({"dev-idp", "--listen", listen, "--key", dir.file("ec.pem")}).exit_code == 2);  // no --alg

  for (const char* issuer : {"http://idp:9000/?tenant=a", "http://idp:9000/#x", "idp:9000", "ftp://idp/"}) {
    CAPTURE(issuer);
    ProcessResult bad = run_jwtgate({"dev-idp", "--listen", listen, "--issuer", issuer});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--issuer") != std::string::npos);
  }
  CHECK(run_jwtgate({"dev-idp", "--listen", listen, "--ttl", "48h"}).exit_code == 2);
  CHECK(run_jwtgate({"dev-idp", "--listen", listen, "--bogus", "1"}).exit_code == 2);
  CHECK(run_jwtgate({"help"}).out.find("jwtgate dev-idp") != std::string::npos);
}

TEST_CASE("dev-idp --key serves that key's public half and signs with it; the banner says what it is") {
  TempDir dir;
  REQUIRE(run_jwtgate({"keygen", "--alg", "RS256", "--kid", "team-key", "--out", dir.file("rsa")}).exit_code == 0);
  const int port = jwtgate::testing::free_port();
  jwtgate::testing::Child idp({JWTGATE_BINARY, "dev-idp", "--listen", "127.0.0.1:" + std::to_string(port), "--key",
                               dir.file("rsa.pem"), "--alg", "RS256", "--kid", "team-key", "--audience", "orders"},
                              dir.path(), "dev-idp");
  REQUIRE_MESSAGE(jwtgate::testing::wait_for_port(port), idp.stderr_text());
  const auto jwks = jwtgate::testing::http_request(port, "GET /.well-known/jwks.json HTTP/1.1\r\nHost: i\r\n\r\n");
  REQUIRE(jwks.status == 200);
  dir.write("served.json", jwks.body);
  const auto minted = jwtgate::testing::http_request(
      port, "POST /token?format=raw HTTP/1.1\r\nHost: i\r\nContent-Length: 15\r\n\r\n{\"sub\":\"alice\"}");
  REQUIRE(minted.status == 200);
  ProcessResult v = run_jwtgate({"verify", "--jwks", dir.file("served.json"), "--issuer",
                                 "http://127.0.0.1:" + std::to_string(port), "--audience", "orders", "--alg", "RS256",
                                 trim(minted.body)});
  CHECK_MESSAGE(v.exit_code == 0, std::string(v.out + v.err));
  CHECK(v.out.find("\"kid\":\"team-key\"") != std::string::npos);
  CHECK(v.out.find("\"sub\":\"alice\"") != std::string::npos);
  // The served key is the file's: the JWKS keygen wrote verifies the same token.
  CHECK(run_jwtgate({"verify", "--jwks", dir.file("rsa.jwks.json"), "--alg", "RS256", trim(minted.body)}).exit_code == 0);
  CHECK(jwks.body.find("\"d\"") == std::string::npos);
  const std::string banner = idp.stdout_text();
  CHECK(banner.find("DEVELOPMENT identity provider") != std::string::npos);
  CHECK(banner.find("from " + dir.file("rsa.pem")) != std::string::npos);
  CHECK(banner.find("curl -s -X POST 'http://127.0.0.1:" + std::to_string(port) + "/token?format=raw'") != std::string::npos);
  idp.signal(SIGINT);
  CHECK(idp.wait_exit(3) == 0);
}

TEST_CASE("dev-idp gives each ephemeral key a kid of its own, so a gateway that cached the last one refetches") {
  TempDir dir;
  std::vector<std::string> kids;
  for (int run = 0; run < 2; ++run) {
    const int port = jwtgate::testing::free_port();
    jwtgate::testing::Child idp({JWTGATE_BINARY, "dev-idp", "--listen", "127.0.0.1:" + std::to_string(port)}, dir.path(),
                                "dev-idp");
    REQUIRE_MESSAGE(jwtgate::testing::wait_for_port(port), idp.stderr_text());
    const auto jwks = jwtgate::testing::http_request(port, "GET /.well-known/jwks.json HTTP/1.1\r\nHost: i\r\n\r\n");
    REQUIRE(jwks.status == 200);
    const auto at = jwks.body.find("\"kid\":\"dev-idp-");
    REQUIRE(at != std::string::npos);
    const auto start = at + 7;
    kids.push_back(jwks.body.substr(start, jwks.body.find('"', start) - start));
    CHECK(kids.back().size() == std::string("dev-idp-").size() + 8);
    idp.signal(SIGTERM);
    CHECK(idp.wait_exit(3) == 0);
  }
  CHECK(kids[0] != kids[1]);
  CHECK(kids[0] != "dev-idp-1");  // the fixed default is only for a --key file
}
