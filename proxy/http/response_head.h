// The upstream's response head turned into the client's: which fields are relayed (the same
// for every HTTP version), whether a 101 is acceptable, and the HTTP/1 framing jwtgate writes
// itself. Pure functions of their inputs, so an HTTP/2 codec reuses the version-neutral ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/http_head.h"

namespace jwtgate::proxy {

// Whether the client receives this field of the upstream's response: never a hop-by-hop field,
// the framing (Content-Length, Transfer-Encoding in any spelling: the codec writes its own) or a
// name the response's Connection header lists (`connection_options`).
bool relayed_response_field(std::string_view name, const std::vector<std::string>& connection_options);

// Why a 101 Switching Protocols from the upstream is refused, or nullptr when it is acceptable:
// the request must have asked to upgrade, to a protocol it offered.
const char* switching_refusal(bool upgrade_request, std::string_view offered, std::string_view chosen);

struct Http1ResponseInput {
  int code = 0;
  const HeaderList& headers;          // the upstream's response fields
  std::uint64_t content_length = 0;   // the upstream's Content-Length as its parser read it
  bool head_request = false;          // the request was HEAD: no body follows
  bool client_http11 = false;         // the client spoke HTTP/1.1 (else 1.0)
  bool keep_alive = false;            // whether the connection may stay open, so far
};

struct Http1ResponseHead {
  std::string head;                   // ends in the empty line
  bool switching = false;             // a 101: the exchange becomes a tunnel
  bool no_body = false;               // HEAD, 204 or 304
  bool rechunk = false;               // the body is sent chunked
  bool close_delimited = false;       // the body ends with the connection
  bool keep_alive = false;            // the input's, or false for a close-delimited body
  // The upstream announced a body it must not send: its connection must not be reused, or a
  // body sent anyway would be read as the next request's response.
  bool announced_forbidden_body = false;
};

// The status line is jwtgate's (only the code is relayed), the fields those
// relayed_response_field lets through, then jwtgate's own framing and Connection header.
Http1ResponseHead http1_response_head(const Http1ResponseInput& in);

}  // namespace jwtgate::proxy
