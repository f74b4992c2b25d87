// Forward-auth: what a gateway's check request asks about, and jwtgate's answer to it. The
// check arrives on forward_auth.listen; the original request it describes is routed and
// authenticated exactly as a proxied request would be (see client_connection.h), and the
// verdict goes back as a status with the identity headers instead of being forwarded.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/http/authenticator.h"
#include "proxy/http/http_head.h"
#include "proxy/http/request_target.h"
#include "proxy/runtime_config.h"

namespace jwtgate::proxy {

// The request a check asks about.
struct CheckedRequest {
  std::string method;
  RequestTarget target;
  bool forwarded = false;  // named by a trusted peer's headers, not by the check's own method and path
};

// Finds the original request of a check whose own method and normalized target are given.
// From a trusted peer that sends X-Forwarded-Uri or X-Original-URI: that URI and the method of
// X-Forwarded-Method or X-Original-Method (every copy of either spelling must agree). Otherwise,
// from anyone: the check's own method, and its own path with forward_auth.path_prefix taken off
// (Envoy's ext_authz); an untrusted peer's forwarded headers are not looked at, and a trusted
// peer's forwarded method must then be the check's own. Returns 0 when `out` is set, else the
// status to answer (400 for forwarded headers that are missing, disagree or are not an
// origin-form URI or a method llhttp knows; 501 for CONNECT; 404 for a check path outside
// path_prefix) with why in `error`.
int find_checked_request(const config::ForwardAuth& fa, bool trusted_peer, std::string_view own_method,
                         const RequestTarget& own, const HeaderList& headers, CheckedRequest& out,
                         std::string& error);

// A CORS preflight (OPTIONS with Access-Control-Request-Method) that allow_preflight lets
// through without a token: only when a trusted peer sent it, since its method decides.
bool is_allowed_preflight(const config::ForwardAuth& fa, bool trusted_peer, const CheckedRequest& request,
                          const HeaderList& headers);

// A header in the check that makes frameworks route by another method or path (X-HTTP-Method-
// Override, X-Original-URL...: the ones the proxy removes unless forward_override_headers is
// set), in any spelling. A gateway passes it on to the service, which would run the request the
// verdict was not about. Returns the configured name it matches, or empty.
std::string_view override_header_present(const HeaderList& headers);

// A header in the check that a CGI-style service reads as one of `identity_headers` but spelled
// otherwise (X_Jwt_Sub for X-Jwt-Sub): a gateway overwrites only the exact name it copies, so
// this spelling would reach the service beside jwtgate's value. Returns the configured name it
// imitates (error descriptions carry no bytes from the request), or empty.
std::string_view identity_header_respelled(const std::vector<std::string>& identity_headers,
                                           const HeaderList& headers);

// The 200 that lets a request pass: every identity header jwtgate can set (every provider's
// claim and payload headers) is present, with the token's value or empty, so a gateway that
// copies it replaces whatever the client sent under that name.
std::string allow_response(const std::vector<std::string>& identity_headers, const AuthResult& auth, bool keep_alive);

}  // namespace jwtgate::proxy
