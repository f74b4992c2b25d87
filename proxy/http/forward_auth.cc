#include "proxy/http/forward_auth.h"

#include <llhttp.h>

#include <algorithm>

namespace jwtgate::proxy {
namespace {

// The one value every copy of `a` and `b` has (`present`: whether there is any). False when
// they disagree. An attacker who adds a copy under the other spelling, which the gateway
// passes on untouched beside the one it sets, gets a 400, never a choice between them.
bool agreed_value(const HeaderList& headers, std::string_view a, std::string_view b, std::string& out, bool& present) {
  present = false;
  for (std::string_view name : {a, b}) {
    for (std::string_view v : headers.all(name)) {
      if (present && v != out) return false;
      out.assign(v);
      present = true;
    }
  }
  return true;
}

// The methods llhttp parses in an HTTP request, so a forwarded method is one the proxy could
// have received itself (CONNECT aside: refused by the caller, as the proxy refuses it).
bool is_http_method(std::string_view m) {
#define JWTGATE_METHOD_NAME(num, name, string) #string,
  static constexpr std::string_view kMethods[] = {HTTP_METHOD_MAP(JWTGATE_METHOD_NAME)};
#undef JWTGATE_METHOD_NAME
  return std::find(std::begin(kMethods), std::end(kMethods), m) != std::end(kMethods);
}

bool under_prefix(std::string_view path, std::string_view prefix) {
  if (prefix == "/") return true;
  return path.size() >= prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
         (path.size() == prefix.size() || path[prefix.size()] == '/');
}

}  // namespace

int find_checked_request(const config::ForwardAuth& fa, bool trusted_peer, std::string_view own_method,
                         const RequestTarget& own, const HeaderList& headers, CheckedRequest& out,
                         std::string& error) {
  if (!under_prefix(own.path, fa.path_prefix)) {
    error = "checks are served under forward_auth.path_prefix (" + fa.path_prefix + ")";
    return 404;
  }
  std::string uri;
  bool has_uri = false;
  if (trusted_peer) {
    if (!agreed_value(headers, "x-forwarded-uri", "x-original-uri", uri, has_uri)) {
      error = "X-Forwarded-Uri and X-Original-URI name different requests";
      return 400;
    }
  }
  if (!has_uri) {
    if (trusted_peer) {
      // A trusted nginx that puts the path after the prefix may still name the method in a
      // header (its check is always a GET); a trusted Envoy sends the method itself and may pass
      // a client's header on. Which one is the original cannot be told, so they must agree.
      std::string method;
      bool has_method = false;
      if (!agreed_value(headers, "x-forwarded-method", "x-original-method", method, has_method) ||
          (has_method && method != own_method)) {
        error = "the forwarded method differs from the check's own method; send the original method as the "
                "check's method (nginx: proxy_method $request_method) or the URI too (X-Original-URI)";
        return 400;
      }
    }
    // Envoy style: the original path follows the prefix. The remainder of a normalized path is
    // normalized too, so this second pass only splits it again into path and query.
    std::string rest = fa.path_prefix == "/" ? own.path : own.path.substr(fa.path_prefix.size());
    if (rest.empty()) rest = "/";
    if (own.has_query) rest += "?" + own.query;
    out.method.assign(own_method);
    out.forwarded = false;
    if (!normalize_request_target(rest, out.target, error)) return 400;
    return 0;
  }
  std::string method;
  bool has_method = false;
  if (!agreed_value(headers, "x-forwarded-method", "x-original-method", method, has_method)) {
    error = "X-Forwarded-Method and X-Original-Method name different methods";
    return 400;
  }
  if (!has_method) {
    // Judged as the check's own GET, a POST could pass a route that lets only GET through.
    error = "a forwarded URI needs the original method too (X-Forwarded-Method or X-Original-Method)";
    return 400;
  }
  if (!is_http_method(method)) {
    error = "the forwarded method is not an HTTP method (in upper case)";
    return 400;
  }
  if (method == "CONNECT") {
    error = "CONNECT is not supported";
    return 501;
  }
  if (uri.empty() || uri[0] != '/') {
    error = "the forwarded URI must be a path (origin form), such as /orders?id=1";
    return 400;
  }
  std::string why;
  if (!normalize_request_target(uri, out.target, why)) {
    error = "the forwarded URI: " + why;
    return 400;
  }
  out.method = std::move(method);
  out.forwarded = true;
  return 0;
}

bool is_allowed_preflight(const config::ForwardAuth& fa, bool trusted_peer, const CheckedRequest& request,
                          const HeaderList& headers) {
  return fa.allow_preflight && trusted_peer && request.method == "OPTIONS" &&
         !headers.get("access-control-request-method").empty();
}

std::string_view override_header_present(const HeaderList& headers) {
  for (const HeaderField& f : headers.fields()) {
    for (std::string_view h : kOverrideHeaders) {
      if (same_header_to_cgi(f.name, h)) return h;
    }
  }
  return {};
}

std::string_view identity_header_respelled(const std::vector<std::string>& identity_headers, const HeaderList& headers) {
  for (const HeaderField& f : headers.fields()) {
    for (const std::string& h : identity_headers) {
      if (same_header_to_cgi(f.name, h) && !iequals(f.name, h)) return h;
    }
  }
  return {};
}

std::string allow_response(const std::vector<std::string>& identity_headers, const AuthResult& auth, bool keep_alive) {
  std::string out = "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\n";
  for (const std::string& h : identity_headers) {
    out += h;
    out += ": ";
    for (const HeaderField& f : auth.add_headers) {
      if (iequals(f.name, h)) {
        out += f.value;
        break;
      }
    }
    out += "\r\n";
  }
  out += keep_alive ? "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n" : "Content-Length: 0\r\nConnection: close\r\n\r\n";
  return out;
}

}  // namespace jwtgate::proxy
