// The request head jwtgate sends upstream for an authorised request, from plain inputs and
// nothing of the connection it came on, so that every codec (HTTP/1, HTTP/2) builds the same
// bytes: what the upstream sees is decided here and in remove_client_set_headers alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/http/authenticator.h"
#include "proxy/http/client_certificate.h"
#include "proxy/http/http_head.h"
#include "proxy/http/request_target.h"

namespace jwtgate::proxy {

struct UpstreamRequest {
  std::string_view method;
  const RequestTarget& target;
  // The client's fields, after remove_client_set_headers.
  const HeaderList& headers;
  // Further hop-by-hop names for this message (what an HTTP/1 Connection header lists).
  const std::vector<std::string>& connection_options;
  // The verdict: its claim headers are added, its token removed from where strip_sources says.
  const AuthResult& auth;
  // The token sources of the route whose verdict `auth` is (strip_sources indexes them).
  const std::vector<config::TokenSource>& token_sources;
  // Under case folding, the other reading's token is removed too where its provider says
  // forward_token: false: `folded_strip_sources` indexes `folded_token_sources` (nullptr: none).
  const std::vector<config::TokenSource>* folded_token_sources = nullptr;
  std::uint64_t folded_strip_sources = 0;
  std::string_view peer_ip;  // appended to X-Forwarded-For
  bool tls = false;          // X-Forwarded-Proto
  const ClientCertificate& client_certificate;  // RFC 9440 headers when present
  // Framing, as the codec read it: jwtgate writes it itself.
  bool chunked = false;
  std::optional<std::uint64_t> content_length;
  bool upgrade = false;
  std::string_view upgrade_protocols;  // the request's Upgrade value, for an upgrade
  // Toward an HTTP/2 upstream: `te: trailers` passes (gRPC requires it), and :scheme.
  bool keep_te_trailers = false;
  bool upstream_tls = false;
  std::string_view upstream_authority{};  // host:port of the upstream, for a request without Host
};

// What the upstream gets, before any codec frames it: the target with stripped token
// parameters removed, and every field in order (the client's kept ones, the verdict's claim
// headers, X-Forwarded-*, RFC 9440), with no framing or hop-by-hop field.
struct UpstreamFields {
  std::string target;  // path and query
  std::string host;    // the client's Host (HTTP/2: its :authority)
  std::vector<HeaderField> fields;
};
UpstreamFields upstream_fields(const UpstreamRequest& request);

// Removes every field a client may not set, in any spelling a CGI-style upstream reads as the
// same name: the headers jwtgate sets from a token (`removed`: RuntimeConfig::removed_headers,
// which also holds Client-Cert, Client-Cert-Chain and the method/path override headers).
void remove_client_set_headers(HeaderList& headers, const std::vector<std::string>& removed);

// The HTTP/1.1 request head for the upstream, ending in the empty line.
std::string build_upstream_head(const UpstreamRequest& request);
// The HTTP/2 header list for an h2c:// upstream: pseudo-headers first, names in lower case.
std::vector<HeaderField> build_upstream_h2_headers(const UpstreamRequest& request);

}  // namespace jwtgate::proxy
