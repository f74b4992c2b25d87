// The HTTP/2 header list jwtgate sends an h2c:// upstream, built from the same inputs as the
// HTTP/1 head (upstream_fields), and what an HTTP/1 upstream's response becomes on HTTP/2.
#include <doctest/doctest.h>

#include <string>

#include "proxy/http/h2_fields.h"
#include "proxy/http/upstream_request.h"

using namespace jwtgate;
using namespace jwtgate::proxy;

namespace {

struct Fixture {
  RequestTarget target{"/pkg.Svc/Call", "/pkg.Svc/Call", "", false};
  HeaderList headers;
  std::vector<std::string> connection_options;
  AuthResult auth;
  std::vector<config::TokenSource> sources;
  ClientCertificate certificate;
  bool keep_te = true;

  std::vector<HeaderField> build(std::optional<std::uint64_t> length = std::nullopt) {
    return build_upstream_h2_headers(UpstreamRequest{
        .method = "POST",
        .target = target,
        .headers = headers,
        .connection_options = connection_options,
        .auth = auth,
        .token_sources = sources,
        .peer_ip = "192.0.2.7",
        .tls = false,
        .client_certificate = certificate,
        .chunked = false,
        .content_length = length,
        .upgrade = false,
        .upgrade_protocols = {},
        .keep_te_trailers = keep_te,
        .upstream_tls = false,
        .upstream_authority = "billing:50051",
    });
  }
};

std::vector<std::string> values(const std::vector<HeaderField>& fields, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& f : fields) {
    if (f.name == name) out.push_back(f.value);
  }
  return out;
}

}  // namespace

TEST_CASE("h2 upstream: pseudo-headers first, from the request; Host becomes :authority") {
  Fixture f;
  f.headers.add("host", "svc.local:8443");
  f.headers.add("content-type", "application/grpc");
  const auto h = f.build();
  REQUIRE(h.size() >= 4);
  CHECK(h[0].name == ":method");
  CHECK(h[0].value == "POST");
  CHECK(h[1].name == ":scheme");
  CHECK(h[1].value == "http");
  CHECK(h[2].name == ":authority");
  CHECK(h[2].value == "svc.local:8443");
  CHECK(h[3].name == ":path");
  CHECK(h[3].value == "/pkg.Svc/Call");
  CHECK(values(h, "host").empty());
  CHECK(values(h, "x-forwarded-host") == std::vector<std::string>{"svc.local:8443"});
  for (std::size_t i = 4; i < h.size(); ++i) CHECK(h[i].name[0] != ':');
}

TEST_CASE("h2 upstream: an HTTP/1.0 request without Host gets the upstream's authority, never an empty one") {
  Fixture f;
  const auto h = f.build();
  CHECK(h[2].name == ":authority");
  CHECK(h[2].value == "billing:50051");
  CHECK(values(h, "x-forwarded-host").empty());
}

TEST_CASE("h2 upstream: HTTP2-Settings (h2c Upgrade's) is not relayed") {
  Fixture f;
  f.headers.add("host", "svc");
  f.headers.add("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA");
  CHECK(values(f.build(), "http2-settings").empty());
}

TEST_CASE("h2 upstream: every name lower case, claim headers included; forged ones gone in any spelling") {
  Fixture f;
  f.headers.add("host", "svc");
  f.headers.add("X_Jwt_Sub", "mallory");
  f.headers.add("x-jwt-SUB", "mallory");
  remove_client_set_headers(f.headers, {"X-Jwt-Sub"});
  f.auth.add_headers.push_back({"X-Jwt-Sub", "alice"});
  const auto h = f.build();
  for (const auto& field : h) {
    CHECK(field.value != "mallory");
    for (const char c : field.name) CHECK_FALSE((c >= 'A' && c <= 'Z'));
  }
  CHECK(values(h, "x-jwt-sub") == std::vector<std::string>{"alice"});
}

TEST_CASE("h2 upstream: te: trailers is kept for gRPC, other TE values and connection-specific fields are not") {
  Fixture f;
  f.headers.add("host", "svc");
  f.headers.add("te", "trailers");
  f.headers.add("connection", "keep-alive");
  f.headers.add("keep-alive", "timeout=5");
  f.headers.add("transfer-encoding", "chunked");
  f.headers.add("upgrade", "h2c");
  CHECK(values(f.build(), "te") == std::vector<std::string>{"trailers"});
  const auto h = f.build();
  CHECK(values(h, "connection").empty());
  CHECK(values(h, "keep-alive").empty());
  CHECK(values(h, "transfer-encoding").empty());
  CHECK(values(h, "upgrade").empty());

  Fixture g;
  g.headers.add("host", "svc");
  g.headers.add("te", "gzip");
  CHECK(values(g.build(), "te").empty());
  Fixture from_http1;  // an HTTP/1 client's TE is its own hop's
  from_http1.keep_te = false;
  from_http1.headers.add("host", "svc");
  from_http1.headers.add("TE", "trailers");
  CHECK(values(from_http1.build(), "te").empty());
}

TEST_CASE("h2 upstream: the client's Content-Length is not relayed, jwtgate states the one it checked") {
  Fixture f;
  f.headers.add("host", "svc");
  f.headers.add("content-length", "999");
  f.headers.add("Content_Length", "5");
  CHECK(values(f.build(12), "content-length") == std::vector<std::string>{"12"});
  CHECK(values(f.build(), "content-length").empty());
  CHECK(values(f.build(), "content_length").empty());
}

TEST_CASE("HTTP/1 response on HTTP/2: hop-by-hop and Connection-listed fields dropped, names lower case") {
  HeaderList in;
  in.add("Content-Type", "text/plain");
  in.add("Connection", "close, X-Secret-Hop");
  in.add("X-Secret-Hop", "1");
  in.add("Keep-Alive", "timeout=5");
  in.add("Transfer-Encoding", "chunked");
  in.add("Upgrade", "h2c");
  in.add("Set-Cookie", "a=1");
  const auto out = h2_response_fields(404, in);
  REQUIRE(!out.empty());
  CHECK(out[0].name == ":status");
  CHECK(out[0].value == "404");
  CHECK(values(out, "content-type") == std::vector<std::string>{"text/plain"});
  CHECK(values(out, "set-cookie") == std::vector<std::string>{"a=1"});
  CHECK(values(out, "x-secret-hop").empty());
  CHECK(values(out, "connection").empty());
  CHECK(values(out, "keep-alive").empty());
  CHECK(values(out, "transfer-encoding").empty());
  CHECK(values(out, "upgrade").empty());
}
