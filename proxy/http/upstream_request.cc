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

UpstreamFields upstream_fields(const UpstreamRequest& r) {
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
  UpstreamFields out;
  std::string query = r.target.query;
  bool query_stripped = false;
  stripped(config::TokenSource::Kind::query, [&](const config::TokenSource& s) {
    query = without_query_param(query, s.name);
    query_stripped = true;
  });
  out.target.reserve(r.target.path.size() + query.size() + 1);
  out.target += r.target.path;
  if (r.target.has_query && !(query_stripped && query.empty())) {
    out.target += '?';
    out.target += query;
  }

  out.fields.reserve(r.headers.fields().size() + auth.add_headers.size() + 5);
  std::string forwarded_for;
  for (const auto& f : r.headers.fields()) {
    if (r.keep_te_trailers && iequals(f.name, "te") && iequals(f.value, "trailers")) {
      out.fields.push_back(f);  // gRPC's: an HTTP/2 upstream must see it (RFC 9113 section 8.2.2)
      continue;
    }
    if (is_hop_by_hop_field(f.name) || names_include(r.connection_options, f.name)) continue;
    if (iequals(f.name, "http2-settings")) continue;  // h2c Upgrade's, for that hop only (RFC 7540 3.2.1)
    // jwtgate frames the message itself, from what the codec parsed; Content_Length and the like
    // are dropped too, as stacks that fold '_' into '-' would frame by them.
    if (same_header_to_cgi(f.name, "content-length") || same_header_to_cgi(f.name, "transfer-encoding") ||
        iequals(f.name, "expect")) {
      continue;
    }
    if (iequals(f.name, "x-forwarded-for")) {
      forwarded_for += (forwarded_for.empty() ? "" : ", ") + f.value;
      continue;
    }
    if (same_header_to_cgi(f.name, "x-forwarded-for")) continue;  // X_Forwarded_For: a spoof
    if (iequals(f.name, "host")) out.host = f.value;
    bool drop = false;
    stripped(config::TokenSource::Kind::header, [&](const config::TokenSource& s) { drop |= same_header_to_cgi(f.name, s.name); });
    if (drop) continue;
    if (iequals(f.name, "cookie") && any_stripped) {
      std::string rest = f.value;
      stripped(config::TokenSource::Kind::cookie, [&](const config::TokenSource& s) { rest = without_cookie(rest, s.name); });
      if (!rest.empty()) out.fields.push_back({"Cookie", std::move(rest)});
      continue;
    }
    out.fields.push_back(f);
  }
  for (const auto& h : auth.add_headers) out.fields.push_back({h.name, h.value});
  forwarded_for += (forwarded_for.empty() ? "" : ", ") + std::string(r.peer_ip);
  out.fields.push_back({"X-Forwarded-For", std::move(forwarded_for)});
  out.fields.push_back({"X-Forwarded-Proto", r.tls ? "https" : "http"});
  if (r.client_certificate.present()) {
    // RFC 9440: what the handshake verified (a client's own spellings were removed before).
    out.fields.push_back({"Client-Cert", r.client_certificate.header});
    if (!r.client_certificate.chain_header.empty()) {
      out.fields.push_back({"Client-Cert-Chain", r.client_certificate.chain_header});
    }
  }
  if (!out.host.empty()) out.fields.push_back({"X-Forwarded-Host", out.host});
  return out;
}

std::string build_upstream_head(const UpstreamRequest& r) {
  const UpstreamFields u = upstream_fields(r);
  std::size_t size_hint = 160 + u.target.size();
  for (const auto& f : u.fields) size_hint += f.name.size() + f.value.size() + 4;
  std::string head;
  head.reserve(size_hint);
  head += r.method;
  head += ' ';
  head += u.target;
  head += " HTTP/1.1\r\n";
  // An HTTP/2 client's Host is its :authority, which the codec put in a host field.
  for (const auto& f : u.fields) {
    if (f.name.empty() || f.name[0] == ':') continue;
    head += f.name;
    head += ": ";
    head += f.value;
    head += "\r\n";
  }
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

std::vector<HeaderField> build_upstream_h2_headers(const UpstreamRequest& r) {
  UpstreamFields u = upstream_fields(r);
  std::vector<HeaderField> out;
  out.reserve(u.fields.size() + 5);
  out.push_back({":method", std::string(r.method)});
  out.push_back({":scheme", r.upstream_tls ? "https" : "http"});
  // The client's authority, as an HTTP/1 upstream would get it in Host.
  // An HTTP/1.0 request may have no Host; :authority is then the upstream's own (RFC 9113
  // section 8.3.1 allows no empty one).
  out.push_back({":authority", !u.host.empty() ? u.host : std::string(r.upstream_authority)});
  out.push_back({":path", std::move(u.target)});
  for (auto& f : u.fields) {
    if (iequals(f.name, "host")) continue;  // it is :authority now
    for (char& c : f.name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);  // RFC 9113 section 8.2.1
    out.push_back(std::move(f));
  }
  if (r.content_length) out.push_back({"content-length", std::to_string(*r.content_length)});
  return out;
}

}  // namespace jwtgate::proxy
