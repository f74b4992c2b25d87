#include "proxy/http/response_head.h"

#include "proxy/http/error_response.h"
#include "proxy/http/http1_rules.h"

namespace jwtgate::proxy {

bool relayed_response_field(std::string_view name, const std::vector<std::string>& connection_options) {
  return !is_hop_by_hop_field(name) && !frames_or_routes(name) && !names_include(connection_options, name);
}

const char* switching_refusal(bool upgrade_request, std::string_view offered, std::string_view chosen) {
  if (!upgrade_request) return "101 Switching Protocols to a request that did not ask to upgrade";
  if (!http1_upgrade_offered(offered, chosen)) return "101 Switching Protocols to a protocol the request did not offer";
  return nullptr;
}

Http1ResponseHead http1_response_head(const Http1ResponseInput& in) {
  Http1ResponseHead out;
  const int code = in.code;
  const HeaderList& headers = in.headers;
  out.switching = code == 101;
  out.no_body = in.head_request || code == 204 || code == 304;
  out.keep_alive = in.keep_alive;
  const bool has_length = headers.has("content-length");
  const bool upstream_chunked = header_lists_token(headers.get("transfer-encoding"), "chunked");

  // Only the status code is relayed: the reason phrase is jwtgate's, so no byte the upstream
  // chose (control characters, a second status line) reaches the client in the status line.
  std::string& head = out.head;
  head = "HTTP/1.1 " + std::to_string(code) + " " + status_text(code) + "\r\n";
  const std::vector<std::string> options = http1_connection_options(headers);
  for (const auto& f : headers.fields()) {
    // The message is framed by what the upstream's parser read and jwtgate writes the framing
    // itself below.
    if (!relayed_response_field(f.name, options)) continue;
    head += f.name;
    head += ": ";
    head += f.value;
    head += "\r\n";
  }
  if (out.switching) {
    head += "Connection: Upgrade\r\nUpgrade: " + std::string(headers.get("upgrade")) + "\r\n\r\n";
    return out;
  }
  // If it sends that body anyway, perhaps after a pause, the next request on the connection
  // would read it as its response and the connection would stay one response behind.
  out.announced_forbidden_body = out.no_body && (upstream_chunked || (has_length && in.content_length > 0));
  if (upstream_chunked) {
    // A body of unknown length: re-chunked for an HTTP/1.1 client, delimited by closing for 1.0.
    // For HEAD and 304 the header only describes the resource; 204 has no framing at all.
    if (out.no_body) {
      if (code != 204 && in.client_http11) head += "Transfer-Encoding: chunked\r\n";
    } else if (in.client_http11) {
      out.rechunk = true;
      head += "Transfer-Encoding: chunked\r\n";
    } else {
      out.close_delimited = true;
      out.keep_alive = false;
    }
  } else if (has_length) {
    if (code != 204) head += "Content-Length: " + std::to_string(in.content_length) + "\r\n";
  } else if (!out.no_body) {
    if (in.client_http11) {
      out.rechunk = true;
      head += "Transfer-Encoding: chunked\r\n";
    } else {
      out.close_delimited = true;
      out.keep_alive = false;
    }
  }
  head += out.keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return out;
}

}  // namespace jwtgate::proxy
