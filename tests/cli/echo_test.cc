// `jwtgate echo` as the stand-in service of the compose stack and the pod test: a real server
// on a given address that says which service answered and stops at once on SIGTERM.
#include <doctest/doctest.h>
#include <signal.h>

#include <string>

#include "tests/support/child.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

using namespace jwtgate::testing;

TEST_CASE("jwtgate echo answers with the request as JSON, names itself, and exits 0 on SIGTERM") {
  TempDir dir;
  const int port = free_port();
  Child echo({JWTGATE_BINARY, "echo", "--listen", "127.0.0.1:" + std::to_string(port), "--name", "orders"}, dir.path(),
             "echo");
  REQUIRE_MESSAGE(wait_for_port(port), echo.stderr_text());
  HttpResponse r = http_request(port, "POST /api/items?id=7 HTTP/1.1\r\nHost: orders\r\nX-Jwt-Sub: alice\r\n"
                                      "Authorization: Bearer secret-token-value\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "application/json");
  CHECK(r.body.find("\"service\":\"orders\"") != std::string::npos);
  CHECK(r.body.find("\"method\":\"POST\"") != std::string::npos);
  CHECK(r.body.find("\"path\":\"/api/items?id=7\"") != std::string::npos);
  CHECK(r.body.find("\"X-Jwt-Sub\":\"alice\"") != std::string::npos);
  CHECK(r.body.find("secret-token-value") == std::string::npos);
  CHECK(echo.stderr_text().find("WARNING") == std::string::npos);  // loopback

  echo.signal(SIGTERM);
  CHECK(echo.wait_exit(3) == 0);
  CHECK(echo.stderr_text().empty());
}

TEST_CASE("jwtgate echo without --name reports no service; SIGINT stops it too") {
  TempDir dir;
  const int port = free_port();
  Child echo({JWTGATE_BINARY, "echo", "--listen=127.0.0.1:" + std::to_string(port)}, dir.path(), "echo");
  REQUIRE_MESSAGE(wait_for_port(port), echo.stderr_text());
  HttpResponse r = http_request(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("\"service\"") == std::string::npos);
  CHECK(r.body.find("\"upstream\":\"jwtgate built-in echo\"") != std::string::npos);
  echo.signal(SIGINT);
  CHECK(echo.wait_exit(3) == 0);
}

TEST_CASE("jwtgate echo warns on a listener that is not loopback and refuses bad usage") {
  TempDir dir;
  // 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails after the warning.
  ProcessResult r = run_process({JWTGATE_BINARY, "echo", "--listen", "192.0.2.1:" + std::to_string(free_port())}, "",
                                dir.path());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("WARNING: jwtgate echo on 192.0.2.1:") != std::string::npos);
  CHECK(r.err.find("reflects every request") != std::string::npos);
  CHECK(run_process({JWTGATE_BINARY, "echo", "--listen", "nonsense"}).exit_code == 2);
  CHECK(run_process({JWTGATE_BINARY, "echo", "--bogus"}).exit_code == 2);
  CHECK(run_process({JWTGATE_BINARY, "echo", "extra"}).exit_code == 2);
}

// `jwtgate echo` listens on 0.0.0.0 in the compose stack: whatever can reach it must not make it
// hold an unbounded request head (the proxy's own max_header_bytes does not protect a service
// that is reached directly).
TEST_CASE("jwtgate echo bounds a request head: an endless header or URL is refused, memory stays small") {
  TempDir dir;
  const int port = free_port();
  Child echo({JWTGATE_BINARY, "echo", "--listen", "127.0.0.1:" + std::to_string(port)}, dir.path(), "echo");
  REQUIRE_MESSAGE(wait_for_port(port), echo.stderr_text());
  const std::string mib(1 << 20, 'a');
  for (const std::string start : {"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ", "GET /"}) {
    RawConnection c(port);
    REQUIRE(c.send(start));
    for (int i = 0; i < 64 && c.send(mib); ++i) {
    }
  }
  // Still serving, and never held what it was sent.
  REQUIRE(http_request(port, "GET /after HTTP/1.1\r\nHost: a\r\n\r\n").status == 200);
  const long peak = echo.peak_rss_kib();
  MESSAGE("jwtgate echo peak RSS: " << peak << " KiB");
  CHECK(peak > 0);
#ifdef JWTGATE_SANITIZED
  CHECK(peak < 100 * 1024);  // shadow memory and quarantine; still far below the 128 MiB sent
#else
  CHECK(peak < 48 * 1024);
#endif
  echo.signal(SIGTERM);
  CHECK(echo.wait_exit(3) == 0);
}
