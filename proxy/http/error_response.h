// Rejections as HTTP responses: status from the one Reason mapping (core/rfc6750.h),
// WWW-Authenticate for 401/403, a small JSON body, Retry-After for 503.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "proxy/http/http_head.h"

namespace jwtgate::proxy {

std::string status_text(int code);

// A refusal before any codec frames it: HTTP/1 writes it as a response, HTTP/2 as a HEADERS and
// DATA frame, gRPC as a Trailers-Only response.
struct ErrorReply {
  int code = 0;
  std::vector<HeaderField> headers;  // WWW-Authenticate, Retry-After, Allow; never framing
  std::string body;                  // JSON, Content-Type application/json
};
ErrorReply error_reply(const core::Status& status);
ErrorReply plain_error_reply(int code, std::string_view error, std::string_view description);

// A complete response for a rejected request.
std::string error_response(const core::Status& status, bool keep_alive);

// A complete response with a JSON error body for conditions that are not token verdicts
// (400 bad request, 404 no route, 405 with its Allow header, 408, 413, 431, 502, 504, 503
// overload). `extra_headers` are complete header lines ("Allow: GET\r\n").
std::string plain_error_response(int code, std::string_view error, std::string_view description, bool keep_alive,
                                 std::string_view extra_headers = {});

}  // namespace jwtgate::proxy
