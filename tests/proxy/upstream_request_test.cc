#include <doctest/doctest.h>

#include <string>

#include "proxy/http/upstream_request.h"

using namespace jwtgate;
using namespace jwtgate::proxy;

namespace {

struct Fixture {
  RequestTarget target{"/api/x", "/api/x", "a=1", true};
  HeaderList headers;
  std::vector<std::string> connection_options;
  AuthResult auth;
  std::vector<config::TokenSource> sources;
  ClientCertificate certificate;

  std::string build(bool tls = false) {
    return build_upstream_head(UpstreamRequest{
        .method = "GET",
        .target = target,
        .headers = headers,
        .connection_options = connection_options,
        .auth = auth,
        .token_sources = sources,
        .peer_ip = "192.0.2.7",
        .tls = tls,
        .client_certificate = certificate,
        .chunked = false,
        .content_length = std::nullopt,
        .upgrade = false,
        .upgrade_protocols = {},
    });
  }
};

bool has_line(const std::string& head, const std::string& line) {
  return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("claim and client-certificate headers a client sends are dropped in any spelling") {
  Fixture f;
  f.headers.add("Host", "svc");
  f.headers.add("x_JWT.sub", "admin");
  f.headers.add("CLIENT_cert", ":Zm9yZ2Vk:");
  f.headers.add("client-cert-CHAIN", ":Zm9yZ2Vk:");
  f.headers.add("X-Other", "kept");
  remove_client_set_headers(f.headers, {"X-Jwt-Sub", "Client-Cert", "Client-Cert-Chain"});
  f.auth.add_headers.push_back({"X-Jwt-Sub", "alice"});
  f.certificate.header = ":cmVhbA==:";
  const std::string head = f.build(true);
  CHECK(head.rfind("GET /api/x?a=1 HTTP/1.1\r\n", 0) == 0);
  CHECK(head.find("Zm9yZ2Vk") == std::string::npos);
  CHECK(head.find("admin") == std::string::npos);
  CHECK(has_line(head, "X-Jwt-Sub: alice"));
  CHECK(has_line(head, "Client-Cert: :cmVhbA==:"));
  CHECK(head.find("Client-Cert-Chain") == std::string::npos);  // the client sent no chain
  CHECK(has_line(head, "X-Other: kept"));
}

TEST_CASE("X-Forwarded-* say what jwtgate saw, whatever the client claims") {
  Fixture f;
  f.headers.add("Host", "svc.example");
  f.headers.add("X-Forwarded-For", "10.0.0.1");
  f.headers.add("X_Forwarded_For", "6.6.6.6");
  const std::string plain = f.build(false);
  CHECK(has_line(plain, "X-Forwarded-For: 10.0.0.1, 192.0.2.7"));
  CHECK(plain.find("6.6.6.6") == std::string::npos);
  CHECK(has_line(plain, "X-Forwarded-Proto: http"));
  CHECK(has_line(plain, "X-Forwarded-Host: svc.example"));
  CHECK(has_line(f.build(true), "X-Forwarded-Proto: https"));
}

TEST_CASE("hop-by-hop fields and the client's framing are replaced by jwtgate's") {
  Fixture f;
  f.headers.add("Host", "svc");
  f.headers.add("Connection", "X-Secret");
  f.headers.add("X-Secret", "hop");
  f.headers.add("Content_Length", "99");
  f.headers.add("Expect", "100-continue");
  f.headers.add("TE", "trailers");
  f.connection_options = {"X-Secret"};
  const std::string head = build_upstream_head(UpstreamRequest{
      .method = "POST",
      .target = f.target,
      .headers = f.headers,
      .connection_options = f.connection_options,
      .auth = f.auth,
      .token_sources = f.sources,
      .peer_ip = "192.0.2.7",
      .tls = false,
      .client_certificate = f.certificate,
      .chunked = false,
      .content_length = 5,
      .upgrade = false,
      .upgrade_protocols = {},
  });
  CHECK(head.find("X-Secret") == std::string::npos);
  CHECK(head.find("99") == std::string::npos);
  CHECK(head.find("Expect") == std::string::npos);
  CHECK(head.find("TE:") == std::string::npos);
  CHECK(has_line(head, "Content-Length: 5"));
  CHECK(has_line(head, "Connection: keep-alive"));
  CHECK(head.size() > 4);
  CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
}

TEST_CASE("a token that is not forwarded is removed from every source it came in") {
  Fixture f;
  f.sources = {{config::TokenSource::Kind::header, "X-Token", ""},
               {config::TokenSource::Kind::query, "access_token", ""},
               {config::TokenSource::Kind::cookie, "session", ""}};
  f.target.query = "access_token=secret";
  f.headers.add("x_token", "secret");
  f.headers.add("Cookie", "session=secret; theme=dark");
  f.auth.strip_sources = 0b111;
  const std::string head = f.build();
  CHECK(head.find("secret") == std::string::npos);
  CHECK(head.rfind("GET /api/x HTTP/1.1\r\n", 0) == 0);  // an emptied query loses its '?'
  CHECK(has_line(head, "Cookie: theme=dark"));
}
