// What the control loop and the workers share, exercised from both sides at once: SIGHUP reloads
// that change the provider list while every worker asks the key manager for unknown-kid
// refreshes. Meant to run under ThreadSanitizer too (.ci/run's build-tsan stage), where a data
// race makes the proxy report and exit non-zero; in a normal build it checks that every request
// is still answered as the configuration of its moment says.
#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/child.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

using namespace jwtgate;
using namespace jwtgate::testing;

namespace {

constexpr int kExtraProviders = 12;

std::string issuer_of(int provider) {
  return provider == 0 ? "https://idp.test/" : "https://idp-" + std::to_string(provider) + ".test/";
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// A proxy with 4 workers whose providers (main plus some of kExtraProviders, each with its own
// JWKS file) change on every reload.
struct Reloading {
  TempDir dir;
  std::vector<TestKey> keys;  // keys[i] is provider i's
  std::unique_ptr<Child> upstream;
  std::unique_ptr<Child> proxy;
  int upstream_port = 0, port = 0, admin_port = 0;

  Reloading() {
    for (int i = 0; i <= kExtraProviders; ++i) {
      keys.push_back(make_key(core::Alg::ES256, "k" + std::to_string(i)));
      dir.write("jwks-" + std::to_string(i) + ".json", keys.back().jwks_json);
    }
    upstream = std::make_unique<Child>(std::vector<std::string>{"/usr/bin/python3", JWTGATE_UPSTREAM_SCRIPT}, dir.path(), "upstream");
    upstream_port = std::atoi(upstream->first_stdout_line().c_str());
    REQUIRE(upstream_port > 0);
    port = free_port();
    admin_port = free_port();
    write_config(kExtraProviders);
    proxy = std::make_unique<Child>(std::vector<std::string>{JWTGATE_BINARY, "--config", dir.file("jwtgate.yaml")}, dir.path(), "proxy");
    REQUIRE_MESSAGE(wait_for_port(port), proxy->stderr_text());
    REQUIRE(wait_for_port(admin_port));
  }

  // main and the first `extra` extra providers. A short min_refresh_interval lets every worker
  // ask again and again.
  void write_config(int extra) const {
    std::string yaml = "listen: 127.0.0.1:" + std::to_string(port) + "\nadmin_listen: 127.0.0.1:" + std::to_string(admin_port) +
                       "\nupstream: http://127.0.0.1:" + std::to_string(upstream_port) + "\nworkers: 4\nproviders:\n";
    for (int i = 0; i <= extra; ++i) {
      yaml += "  - name: p" + std::to_string(i) + "\n    issuer: " + issuer_of(i) +
              "\n    audiences: [api]\n    algorithms: [ES256]\n    jwks: {file: " + dir.file("jwks-" + std::to_string(i) + ".json") +
              ", refresh_interval: 10m, min_refresh_interval: 5ms}\n";
    }
    yaml += "routes:\n  - prefix: /\n";
    dir.write("jwtgate.yaml", yaml);
  }

  int get(const std::string& token) const {
    return http_request(port, "GET /x HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " + token + "\r\n\r\n").status;
  }
};

}  // namespace

TEST_CASE("SIGHUP reloads that change the number of providers, during an unknown-kid flood from every worker") {
  Reloading r;
  for (int i = 0; i <= kExtraProviders; ++i) {
    REQUIRE(r.get(signed_token(header_for(r.keys[i]), payload_now("", 300, issuer_of(i)), r.keys[i])) == 200);
  }

  // Tokens whose kid no provider has, for every provider's issuer: each one makes a worker ask
  // for a refresh of that provider, by the numbering of the configuration the worker has. Once a
  // reload drops the provider, the issuer is unknown: 401 too, never anything else.
  const TestKey attacker = make_key(core::Alg::ES256, "attacker");
  std::atomic<bool> stop{false};
  std::atomic<int> unauthorized{0};
  std::atomic<int> other{0};
  std::vector<std::thread> flood;
  for (int t = 0; t < 8; ++t) {
    flood.emplace_back([&, t] {
      for (int i = 0; i < 100000 && !stop; ++i) {
        const int provider = (t * 5 + i) % (kExtraProviders + 1);
        const std::string header = R"({"alg":"ES256","typ":"JWT","kid":"unknown-)" + std::to_string(t) + "-" +
                                   std::to_string(i) + "\"}";
        const int status = r.get(signed_token(header, payload_now("", 300, issuer_of(provider)), attacker));
        (status == 401 ? unauthorized : other)++;
      }
    });
  }
  REQUIRE(eventually([&] { return unauthorized > 50; }, 30));

  // From 13 providers to 1 and back, through sizes in between: the key manager's provider list
  // is rebuilt (and its storage moves) on every one of them.
  const int sizes[] = {0, kExtraProviders, 3, 7, 0, 1, kExtraProviders, 5, 0, 9, 2, kExtraProviders};
  std::size_t reloads = 0;
  for (int extra : sizes) {
    r.write_config(extra);
    r.proxy->signal(SIGHUP);
    ++reloads;
    REQUIRE_MESSAGE(eventually([&] { return count_of(r.proxy->stdout_text() + r.proxy->stderr_text(), "\"msg\":\"config reloaded\"") >= reloads; }, 30),
                    r.proxy->stderr_text());
    const int before = unauthorized;
    REQUIRE(eventually([&] { return unauthorized > before + 20; }, 30));
  }
  stop = true;
  for (auto& th : flood) th.join();
  CHECK(other == 0);
  CHECK(unauthorized > 200);

  // The last configuration has every provider again, each with its own keys.
  for (int i = 0; i <= kExtraProviders; ++i) {
    CHECK(r.get(signed_token(header_for(r.keys[i]), payload_now("", 300, issuer_of(i)), r.keys[i])) == 200);
  }
  r.proxy->signal(SIGTERM);
  CHECK(r.proxy->wait_exit(30) == 0);
  const std::string err = r.proxy->stderr_text();
  CHECK_MESSAGE(err.find("ThreadSanitizer") == std::string::npos, err);
}
