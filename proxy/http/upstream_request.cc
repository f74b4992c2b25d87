#include "proxy/http/upstream_request.h"

#include <algorithm>

#include "proxy/http/http1_rules.h"
#include "proxy/http/token_extractor.h"

namespace jwtgate::proxy {
namespace {

bool source_stripped(std::uint64_t mask, std::size_t i) { return ((mask >> (i < 63 ? i : 63)) & 1) != 0; }

}  // namespace

void remove_client_set_headers(HeaderList& headers, const std::vector<std::string>& removed) {
  auto& fields = headers.fields();
  fields.erase(std::remove_if(fields.begin(), fields.end(),
                              [&](const HeaderField& f) {
                                return std::any_of(removed.begin(), removed.end(),
                                                   [&](const std::string& h) { return same_header_to_cgi(f.name, h); });
                              }),
               fields.end());
}

std::string build_upstream_head(const UpstreamRequest& r) {
  const AuthResult& auth = r.auth;
  const auto& sources = r.token_sources;
  // forward_token: false removes the token from every place it was sent in.
  const bool any_stripped = auth.strip_sources != 0 || (r.folded_token_sources && r.folded_strip_sources != 0);
  auto stripped = [&](config::TokenSource::Kind kind, auto&& visit) {
    if (!any_stripped) return;
    auto of = [&](const std::vector<config::TokenSource>& list, std::uint64_t mask) {
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (list[i].kind == kind && source_stripped(mask, i)) visit(list[i]);
      }
    };
    of(sources, auth.strip_sources);
    if (r.folded_token_sources) of(*r.folded_token_sources, r.folded_strip_sources);
  };
  std::string query = r.target.query;
  bool query_stripped = false;
  stripped(config::TokenSource::Kind::query, [&](const config::TokenSource& s) {
    query = without_query_param(query, s.name);
    query_stripped = true;
  });
  std::size_t size_hint = 512 + r.target.path.size() + query.size();
  for (const auto& f : r.headers.fields()) size_hint += f.name.size() + f.value.size() + 4;
  std::string head;
  head.reserve(size_hint);
  head += r.method;
  head += ' ';
  head += r.target.path;
  if (r.target.has_query && !(query_stripped && query.empty())) {
    head += '?';
    head += query;
  }
  head += " HTTP/1.1\r\n";

  std::string forwarded_for, host;
  for (const auto& f : r.headers.fields()) {
    if (is_hop_by_hop_field(f.name) || names_include(r.connection_options, f.name)) continue;
    // jwtgate frames the message itself (below), from what the codec parsed; Content_Length and
    // the like are dropped too, as stacks that fold '_' into '-' would frame by them.
    if (same_header_to_cgi(f.name, "content-length") || same_header_to_cgi(f.name, "transfer-encoding") ||
        iequals(f.name, "expect")) {
      continue;
    }
    if (iequals(f.name, "x-forwarded-for")) {
      forwarded_for += (forwarded_for.empty() ? "" : ", ") + f.value;
      continue;
    }
    if (same_header_to_cgi(f.name, "x-forwarded-for")) continue;  // X_Forwarded_For: a spoof
    if (iequals(f.name, "host")) host = f.value;
    bool drop = false;
    stripped(config::TokenSource::Kind::header, [&](const config::TokenSource& s) { drop |= same_header_to_cgi(f.name, s.name); });
    if (drop) continue;
    if (iequals(f.name, "cookie") && any_stripped) {
      std::string rest = f.value;
      stripped(config::TokenSource::Kind::cookie, [&](const config::TokenSource& s) { rest = without_cookie(rest, s.name); });
      if (!rest.empty()) head += "Cookie: " + rest + "\r\n";
      continue;
    }
    head += f.name;
    head += ": ";
    head += f.value;
    head += "\r\n";
  }
  for (const auto& h : auth.add_headers) {
    head += h.name;
    head += ": ";
    head += h.value;
    head += "\r\n";
  }
  forwarded_for += (forwarded_for.empty() ? "" : ", ") + std::string(r.peer_ip);
  head += "X-Forwarded-For: " + forwarded_for + "\r\n";
  head += r.tls ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n";
  if (r.client_certificate.present()) {
    // RFC 9440: what the handshake verified (a client's own spellings were removed before).
    head += "Client-Cert: " + r.client_certificate.header + "\r\n";
    if (!r.client_certificate.chain_header.empty()) {
      head += "Client-Cert-Chain: " + r.client_certificate.chain_header + "\r\n";
    }
  }
  if (!host.empty()) head += "X-Forwarded-Host: " + host + "\r\n";
  if (r.chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (r.content_length) {
    head += "Content-Length: " + std::to_string(*r.content_length) + "\r\n";
  }
  if (r.upgrade) {
    head += "Connection: Upgrade\r\nUpgrade: " + std::string(r.upgrade_protocols) + "\r\n";
  } else {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
  return head;
}

}  // namespace jwtgate::proxy
