// `jwtgate health` as a container HEALTHCHECK and an exec probe run it: against a real jwtgate
// admin listener, a closed port, and a peer that accepts and never answers.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "tests/support/child.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

using namespace jwtgate::testing;

namespace {

ProcessResult health(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
  args.insert(args.begin(), {JWTGATE_BINARY, "health"});
  return run_process(args, "", "", env);
}

std::size_t lines(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// jwtgate on free ports with one provider whose keys come from `jwks`.
struct Gateway {
  TempDir dir;
  int port = free_port();
  int admin_port = free_port();
  std::unique_ptr<Child> proxy;

  explicit Gateway(const std::string& jwks) {
    dir.write("jwks.json", make_key(jwtgate::core::Alg::ES256, "k1").jwks_json);
    dir.write("jwtgate.yaml", "listen: 127.0.0.1:" + std::to_string(port) + "\nadmin_listen: 127.0.0.1:" +
                                  std::to_string(admin_port) + "\nupstream: http://127.0.0.1:" +
                                  std::to_string(free_port()) + "\nworkers: 1\nproviders:\n  - name: main\n"
                                  "    issuer: https://idp.test/\n    audiences: [api]\n    algorithms: [ES256]\n"
                                  "    jwks: " + (jwks == "file" ? "{file: " + dir.file("jwks.json") + "}" : jwks) + "\n");
    proxy = std::make_unique<Child>(std::vector<std::string>{JWTGATE_BINARY, "--config", dir.file("jwtgate.yaml")},
                                    dir.path(), "proxy");
    REQUIRE_MESSAGE(wait_for_port(admin_port), proxy->stderr_text());
  }
  std::string readyz() const { return "http://127.0.0.1:" + std::to_string(admin_port) + "/readyz"; }
};

}  // namespace

TEST_CASE("health exits 0 on a ready jwtgate and prints nothing on stderr") {
  Gateway gw("file");
  // A proxy in the environment must not be used for a probe of this host (it would fail here:
  // nothing listens at that address).
  ProcessResult r = health({"--url", gw.readyz()}, {"http_proxy=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9",
                                                    "ALL_PROXY=http://127.0.0.1:9"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.err.empty());
  CHECK(r.out.find("answered 200") != std::string::npos);
  // /healthz answers too, with --timeout in the config's duration syntax.
  CHECK(health({"--url=http://127.0.0.1:" + std::to_string(gw.admin_port) + "/healthz", "--timeout", "500ms"}).exit_code == 0);
}

TEST_CASE("health exits 1 with the status when /readyz answers 503 (keys not loaded)") {
  // The JWKS uri is a closed port: the provider has no keys, so the gateway is not ready.
  Gateway gw("{uri: http://127.0.0.1:" + std::to_string(free_port()) + "/jwks.json}");
  ProcessResult r = health({"--url", gw.readyz()});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "jwtgate health: " + gw.readyz() + " answered 503 Service Unavailable\n");
  CHECK(r.out.empty());
  // Any path the admin listener does not serve is a 404: not healthy either.
  r = health({"--url", "http://127.0.0.1:" + std::to_string(gw.admin_port) + "/nope"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("answered 404") != std::string::npos);
}

TEST_CASE("health exits 1 with one line when nothing listens") {
  const std::string url = "http://127.0.0.1:" + std::to_string(free_port()) + "/readyz";
  ProcessResult r = health({"--url", url});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "jwtgate health: " + url + " connection refused\n");
}

TEST_CASE("health gives up after --timeout on a peer that accepts and never answers") {
  // A listening socket nobody accepts from: the kernel completes the handshake, so the request
  // goes out and no answer ever comes.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/readyz";
  ProcessResult r = health({"--url", url, "--timeout", "300ms"});
  ::close(fd);
  CHECK(r.exit_code == 1);
  CHECK(r.err == "jwtgate health: " + url + " timed out after 300ms\n");
}

TEST_CASE("health exits 2 on bad usage") {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--bogus"},
           {"--url", "ftp://127.0.0.1/readyz"},
           {"--url", "file:///etc/passwd"},
           {"--url", "not a url"},
           {"--timeout", "2"},
           {"--timeout", "0s"},
           {"--timeout"},
           {"extra"}}) {
    CAPTURE(args.front());
    ProcessResult r = health(args);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("usage: jwtgate health") != std::string::npos);
    CHECK(lines(r.err) == 3);  // the usage, what it does, and what was wrong
  }
}
