// The end-to-end fixture of the proxy suites: the jwtgate binary on a generated config, a real
// upstream (tests/support/upstream.py, Python's http.server) and an ES256 key, all on 127.0.0.1.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/child.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace jwtgate::testing {

struct Env {
  TempDir dir;
  TestKey key = make_key(core::Alg::ES256, "k1");
  std::unique_ptr<Child> upstream;
  std::unique_ptr<Child> proxy;
  int upstream_port = 0;
  int port = 0;
  int admin_port = 0;

  // `providers_extra` is appended to the main provider, `tail` after the providers.
  explicit Env(const std::string& routes = "", const std::string& tail = "", const std::string& providers_extra = "",
               bool start_upstream = true, const std::string& limits = "") {
    dir.write("jwks.json", key.jwks_json);
    if (start_upstream) {
      upstream = std::make_unique<Child>(std::vector<std::string>{"/usr/bin/python3", JWTGATE_UPSTREAM_SCRIPT}, dir.path(), "upstream");
      upstream_port = std::atoi(upstream->first_stdout_line().c_str());
      REQUIRE(upstream_port > 0);
    } else {
      upstream_port = free_port();
    }
    port = free_port();
    admin_port = free_port();
    std::string yaml = "listen: 127.0.0.1:" + std::to_string(port) + "\nadmin_listen: 127.0.0.1:" +
                       std::to_string(admin_port) + "\nupstream: http://127.0.0.1:" + std::to_string(upstream_port) +
                       "\nworkers: 2\nproviders:\n  - name: main\n    issuer: https://idp.test/\n    audiences: [api]\n"
                       "    algorithms: [ES256]\n    jwks: {file: " + dir.file("jwks.json") + "}\n"
                       "    claims_to_headers: {sub: X-Jwt-Sub, realm_access.roles: X-Jwt-Roles}\n"
                       "    forward_payload_header: X-Jwt-Payload\n" + providers_extra +
                       (routes.empty() ? "routes:\n  - prefix: /public\n    auth: none\n  - prefix: /maybe\n    auth: optional\n"
                                         "  - prefix: /admin\n    require_scopes: [admin]\n  - prefix: /\n"
                                       : routes) +
                       "limits: {header_timeout: 1s" +
                       (limits.find("idle_timeout") == std::string::npos ? ", idle_timeout: 5s" : "") +
                       (limits.find("upstream_timeout") == std::string::npos ? ", upstream_timeout: 5s" : "") + limits +
                       "}\n" + tail;
    dir.write("jwtgate.yaml", yaml);
    // A small ASan quarantine keeps sanitizer builds' memory figures meaningful.
    proxy = std::make_unique<Child>(std::vector<std::string>{JWTGATE_BINARY, "--config", dir.file("jwtgate.yaml")}, dir.path(),
                                    "proxy", std::vector<std::string>{"ASAN_OPTIONS=quarantine_size_mb=8:thread_local_quarantine_size_kb=256"});
    REQUIRE_MESSAGE(wait_for_port(port), proxy->stderr_text());
    // wait_for_port's own probe connection counts against limits.max_connections until the
    // proxy has seen it close: start every test with none open.
    REQUIRE_MESSAGE(eventually(
                        [&] {
                          return http_request(admin_port, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 1)
                                     .body.find("\njwtgate_connections_active 0\n") != std::string::npos;
                        },
                        5),
                    proxy->stderr_text());
  }

  std::string token(const std::string& extra = "", std::int64_t exp_offset = 300) const {
    return signed_token(header_for(key), payload_now(extra, exp_offset), key);
  }
  HttpResponse get(const std::string& path, const std::string& headers = "") const {
    return http_request(port, "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + headers + "\r\n");
  }
  HttpResponse get_with_token(const std::string& path, const std::string& token, const std::string& headers = "") const {
    return get(path, "Authorization: Bearer " + token + "\r\n" + headers);
  }
};

// The upstream's echo of what it received: header values by name.
inline std::string echoed_header(const HttpResponse& r, const std::string& name) {
  const std::string needle = "[\"" + name + "\", \"";
  const auto pos = r.body.find(needle);
  if (pos == std::string::npos) return "<absent>";
  const auto start = pos + needle.size();
  return r.body.substr(start, r.body.find('"', start) - start);
}

inline std::string echoed_path(const HttpResponse& r) {
  const auto pos = r.body.find("\"path\": \"");
  if (pos == std::string::npos) return "<absent>";
  const auto start = pos + 9;
  return r.body.substr(start, r.body.find('"', start) - start);
}


// Checks the proxy's peak resident memory against a bound (in KiB) for normal builds and a
// looser one for sanitizer builds, whose shadow memory and quarantine dominate.
inline void check_peak_rss(const Env& env, const char* after, long limit_kib, long sanitized_limit_kib) {
  const long peak = env.proxy->peak_rss_kib();
  MESSAGE("proxy peak RSS " << std::string(after) << ": " << peak << " KiB");
  CHECK(peak > 0);
#ifdef JWTGATE_SANITIZED
  (void)limit_kib;
  CHECK(peak < sanitized_limit_kib);
#else
  (void)sanitized_limit_kib;
  CHECK(peak < limit_kib);
#endif
}

// The request heads the upstream has parsed since the last call, as its JSON text (cleared).
inline std::string upstream_seen(const Env& env) {
  HttpResponse r = http_request(env.upstream_port, "GET /__seen?clear=1 HTTP/1.1\r\nHost: upstream\r\n\r\n");
  REQUIRE(r.status == 200);
  return r.body;
}

}  // namespace jwtgate::testing
