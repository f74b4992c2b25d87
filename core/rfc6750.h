// The one place where a Reason becomes an HTTP status and an RFC 6750 error code.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace jwtgate::core {

struct HttpError {
  int http_status;              // 400, 401, 403, 503
  std::string_view error_code;  // RFC 6750 §3.1 code; empty when the spec says to send none
};

HttpError http_error(Reason r) noexcept;

// The WWW-Authenticate value for a rejection, e.g.
//   Bearer realm="jwtgate", error="invalid_token", error_description="the token has expired"
// Per RFC 6750 §3.1 a request that carried no token gets no error attribute. The description is
// reduced to printable ASCII without quotes or backslashes so it can never break the header.
std::string www_authenticate(const Status& status, std::string_view realm = "jwtgate");

// A small JSON body: {"error":"invalid_token","error_description":"..."}.
std::string error_body(const Status& status);

// {"error": ERROR, "error_description": DESCRIPTION}: the error shape of RFC 6750 §3 and RFC 6749
// §5.2, for errors that are not a token's Status.
std::string error_json(std::string_view error, std::string_view description);

}  // namespace jwtgate::core
