#include <doctest/doctest.h>

#include <string>

#include "proxy/http/response_head.h"

using namespace jwtgate::proxy;

namespace {

Http1ResponseHead respond(int code, const HeaderList& headers, std::uint64_t length = 0, bool http11 = true,
                          bool head_request = false) {
  return http1_response_head(Http1ResponseInput{.code = code,
                                                .headers = headers,
                                                .content_length = length,
                                                .head_request = head_request,
                                                .client_http11 = http11,
                                                .keep_alive = true});
}

bool has_line(const std::string& head, const std::string& line) {
  return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("the status line is jwtgate's and only end-to-end fields are relayed") {
  HeaderList h;
  h.add("Content-Length", "2");
  h.add("Connection", "X-Internal");
  h.add("X-Internal", "secret");
  h.add("Keep-Alive", "timeout=5");
  h.add("Content_Length", "99");
  h.add("X-Kept", "yes");
  const Http1ResponseHead r = respond(200, h, 2);
  CHECK(r.head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(r.head.find("secret") == std::string::npos);
  CHECK(r.head.find("timeout=5") == std::string::npos);
  CHECK(r.head.find("99") == std::string::npos);
  CHECK(has_line(r.head, "X-Kept: yes"));
  CHECK(has_line(r.head, "Content-Length: 2"));
  CHECK(has_line(r.head, "Connection: keep-alive"));
  CHECK_FALSE(r.rechunk);
  CHECK(r.keep_alive);
}

TEST_CASE("a body of unknown length is re-chunked for HTTP/1.1 and closes the connection for 1.0") {
  HeaderList h;
  const Http1ResponseHead r11 = respond(200, h);
  CHECK(r11.rechunk);
  CHECK(has_line(r11.head, "Transfer-Encoding: chunked"));
  const Http1ResponseHead r10 = respond(200, h, 0, false);
  CHECK(r10.close_delimited);
  CHECK_FALSE(r10.keep_alive);
  CHECK(has_line(r10.head, "Connection: close"));
}

TEST_CASE("a body announced where none may follow keeps the upstream connection from reuse") {
  HeaderList h;
  h.add("Content-Length", "10");
  CHECK(respond(204, h, 10).announced_forbidden_body);
  CHECK(respond(204, h, 10).head.find("Content-Length") == std::string::npos);
  CHECK(respond(200, h, 10, true, true).announced_forbidden_body);
  CHECK_FALSE(respond(200, h, 10).announced_forbidden_body);
}

TEST_CASE("a 101 needs an upgrade request offering its protocol") {
  CHECK(switching_refusal(false, "", "websocket") != nullptr);
  CHECK(switching_refusal(true, "websocket", "h2c") != nullptr);
  CHECK(switching_refusal(true, "websocket", "websocket") == nullptr);
  HeaderList h;
  h.add("Upgrade", "websocket");
  const Http1ResponseHead r = respond(101, h);
  CHECK(r.switching);
  CHECK(has_line(r.head, "Connection: Upgrade"));
  CHECK(r.head.substr(r.head.size() - 4) == "\r\n\r\n");
}
