// What jwtgate says to a gRPC client in gRPC's own terms. A gRPC client reads only grpc-status
// (an HTTP 401 is "UNKNOWN" or "UNAVAILABLE" to it, depending on the library), so a refused
// gRPC call gets a Trailers-Only response: :status 200 with grpc-status and grpc-message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/http/http_head.h"

namespace jwtgate::proxy {

// gRPC status codes (grpc/doc/statuscodes.md) jwtgate answers with.
enum class GrpcStatus : int {
  ok = 0,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  permission_denied = 7,
  resource_exhausted = 8,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  unauthenticated = 16,
};

// content-type application/grpc, application/grpc+proto, application/grpc;... (any case).
bool is_grpc_request(const HeaderList& headers);

// The gRPC status for jwtgate's own HTTP answer `http_status` (401 → 16, 403 → 7, 503/502 → 14,
// 504/408 → 4, 404/405/501 → 12, 431/413 → 8, 400 → 13), after gRPC's HTTP-to-gRPC mapping with
// the refinements: a timeout is DEADLINE_EXCEEDED, not UNAVAILABLE.
GrpcStatus grpc_status_for_http(int http_status);

// grpc-message's value: bytes outside printable ASCII, and '%', percent-encoded.
std::string grpc_percent_encode(std::string_view message);

// A grpc-timeout value ("100m", "5S": up to 8 digits and a unit H M S m u n) in milliseconds,
// rounded up; nullopt when malformed.
std::optional<std::uint64_t> parse_grpc_timeout(std::string_view value);

// The grpc-status an upstream's response reports: in its trailers or, Trailers-Only, in its
// headers (-1: none).
int grpc_status_of(const HeaderList& fields);

}  // namespace jwtgate::proxy
