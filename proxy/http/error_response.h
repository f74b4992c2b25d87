// Rejections as HTTP responses: status from the one Reason mapping (core/rfc6750.h),
// WWW-Authenticate for 401/403, a small JSON body, Retry-After for 503.
#pragma once

#include <string>

#include "core/status.h"

namespace jwtgate::proxy {

std::string status_text(int code);

// A complete response for a rejected request.
std::string error_response(const core::Status& status, bool keep_alive);

// A complete response with a JSON error body for conditions that are not token verdicts
// (400 bad request, 404 no route, 405 with its Allow header, 408, 413, 431, 502, 504, 503
// overload). `extra_headers` are complete header lines ("Allow: GET\r\n").
std::string plain_error_response(int code, std::string_view error, std::string_view description, bool keep_alive,
                                 std::string_view extra_headers = {});

}  // namespace jwtgate::proxy
