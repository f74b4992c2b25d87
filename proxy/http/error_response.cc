#include "proxy/http/error_response.h"

#include "core/rfc6750.h"

namespace jwtgate::proxy {

// The IANA registry's reason phrases (RFC 9110 section 15 and its successors); other codes get
// their class's name, since jwtgate never relays an upstream's own phrase.
std::string status_text(int code) {
  switch (code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: break;
  }
  switch (code / 100) {
    case 1: return "Informational";
    case 2: return "Success";
    case 3: return "Redirection";
    case 4: return "Client Error";
    default: return "Server Error";
  }
}

ErrorReply error_reply(const core::Status& status) {
  const core::HttpError e = core::http_error(status.reason());
  ErrorReply r{e.http_status, {}, core::error_body(status)};
  if (e.http_status == 401 || e.http_status == 403) r.headers.push_back({"WWW-Authenticate", core::www_authenticate(status)});
  if (e.http_status == 503) r.headers.push_back({"Retry-After", "5"});
  return r;
}

ErrorReply plain_error_reply(int code, std::string_view error, std::string_view description) {
  ErrorReply r{code, {}, core::error_json(error, description)};
  if (code == 503) r.headers.push_back({"Retry-After", "5"});
  return r;
}

namespace {

std::string response(const ErrorReply& r, std::string_view extra_headers, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(r.code) + " " + status_text(r.code) + "\r\n";
  out += extra_headers;
  for (const HeaderField& h : r.headers) out += h.name + ": " + h.value + "\r\n";
  out += "Content-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  out += r.body;
  return out;
}

}  // namespace

std::string error_response(const core::Status& status, bool keep_alive) {
  return response(error_reply(status), {}, keep_alive);
}

std::string plain_error_response(int code, std::string_view error, std::string_view description, bool keep_alive,
                                 std::string_view extra_headers) {
  return response(plain_error_reply(code, error, description), extra_headers, keep_alive);
}

}  // namespace jwtgate::proxy
