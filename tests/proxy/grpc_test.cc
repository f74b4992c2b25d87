#include <doctest/doctest.h>

#include "proxy/http/grpc.h"

using namespace jwtgate::proxy;

TEST_CASE("gRPC requests are told by their content-type, in any case, with or without a subtype") {
  auto with = [](const char* ct) {
    HeaderList h;
    h.add("content-type", ct);
    return is_grpc_request(h);
  };
  CHECK(with("application/grpc"));
  CHECK(with("application/grpc+proto"));
  CHECK(with("application/GRPC+json"));
  CHECK(with("application/grpc;charset=utf-8"));
  CHECK_FALSE(with("application/grpc-web"));  // gRPC-Web speaks HTTP/1 and reads status from the body
  CHECK_FALSE(with("application/grpcx"));
  CHECK_FALSE(with("application/json"));
  CHECK_FALSE(is_grpc_request(HeaderList{}));
}

TEST_CASE("jwtgate's HTTP answers map to the gRPC statuses the issue names") {
  CHECK(grpc_status_for_http(401) == GrpcStatus::unauthenticated);
  CHECK(grpc_status_for_http(403) == GrpcStatus::permission_denied);
  CHECK(grpc_status_for_http(503) == GrpcStatus::unavailable);  // keys not loaded
  CHECK(grpc_status_for_http(502) == GrpcStatus::unavailable);  // upstream unreachable
  CHECK(grpc_status_for_http(504) == GrpcStatus::deadline_exceeded);
  CHECK(grpc_status_for_http(404) == GrpcStatus::unimplemented);
  CHECK(grpc_status_for_http(431) == GrpcStatus::resource_exhausted);
  CHECK(grpc_status_for_http(400) == GrpcStatus::internal);
  CHECK(grpc_status_for_http(418) == GrpcStatus::unknown);
}

TEST_CASE("grpc-message is percent-encoded: printable ASCII stays, '%' and everything else is escaped") {
  CHECK(grpc_percent_encode("missing_token: no token") == "missing_token: no token");
  CHECK(grpc_percent_encode("100% sure") == "100%25 sure");
  CHECK(grpc_percent_encode("a\r\nb") == "a%0D%0Ab");
  CHECK(grpc_percent_encode("caf\xc3\xa9") == "caf%C3%A9");
}

TEST_CASE("grpc-timeout: up to 8 digits and a unit, rounded up to milliseconds; anything else ignored") {
  CHECK(parse_grpc_timeout("1H") == 3600000u);
  CHECK(parse_grpc_timeout("2M") == 120000u);
  CHECK(parse_grpc_timeout("5S") == 5000u);
  CHECK(parse_grpc_timeout("300m") == 300u);
  CHECK(parse_grpc_timeout("1500u") == 2u);
  CHECK(parse_grpc_timeout("1n") == 1u);
  CHECK(parse_grpc_timeout("99999999S") == 99999999000u);
  CHECK_FALSE(parse_grpc_timeout("123456789S"));  // 9 digits
  CHECK_FALSE(parse_grpc_timeout("S"));
  CHECK_FALSE(parse_grpc_timeout("10"));
  CHECK_FALSE(parse_grpc_timeout("10s"));
  CHECK_FALSE(parse_grpc_timeout("-1S"));
  CHECK_FALSE(parse_grpc_timeout(""));
}

TEST_CASE("grpc-status is read only when it is exactly one number") {
  HeaderList ok;
  ok.add("grpc-status", "16");
  CHECK(grpc_status_of(ok) == 16);
  HeaderList twice;
  twice.add("grpc-status", "0");
  twice.add("grpc-status", "16");
  CHECK(grpc_status_of(twice) == -1);
  HeaderList junk;
  junk.add("grpc-status", "0x");
  CHECK(grpc_status_of(junk) == -1);
  CHECK(grpc_status_of(HeaderList{}) == -1);
}
