#include "proxy/error_response.h"

#include "core/json_writer.h"
#include "core/rfc6750.h"

namespace jwtgate::proxy {

std::string status_text(int code) {
  switch (code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

namespace {

std::string response(int code, const std::string& extra_headers, const std::string& body, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(code) + " " + status_text(code) + "\r\n";
  out += extra_headers;
  out += "Content-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  out += body;
  return out;
}

}  // namespace

std::string error_response(const core::Status& status, bool keep_alive) {
  const core::HttpError e = core::http_error(status.reason());
  std::string headers;
  if (e.http_status == 401 || e.http_status == 403) {
    headers += "WWW-Authenticate: " + core::www_authenticate(status) + "\r\n";
  }
  if (e.http_status == 503) headers += "Retry-After: 5\r\n";
  return response(e.http_status, headers, core::error_body(status), keep_alive);
}

std::string plain_error_response(int code, std::string_view error, std::string_view description, bool keep_alive,
                                 std::string_view extra_headers) {
  core::JsonWriter w;
  w.begin_object();
  w.key("error");
  w.string(error);
  w.key("error_description");
  w.string(description);
  w.end_object();
  std::string headers(extra_headers);
  if (code == 503) headers += "Retry-After: 5\r\n";
  return response(code, headers, w.take(), keep_alive);
}

}  // namespace jwtgate::proxy
