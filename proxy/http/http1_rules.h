// The protocol rules of the data path that are pure functions of header names and values.
// The first group holds for every HTTP version (an HTTP/2 codec strips and validates by them
// too); the second is HTTP/1 framing only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/http_head.h"

namespace jwtgate::proxy {

// --- Any HTTP version ---

// RFC 9110 section 7.6.1: connection-specific fields a proxy must not forward, whatever version
// it received or sends the message in.
bool is_hop_by_hop_field(std::string_view name);
// Names a Connection header may not make hop-by-hop: they frame or route the message, and
// removing them would make jwtgate and the upstream read different requests from the same bytes.
bool frames_or_routes(std::string_view name);
// RFC 9110 section 7.2's uri-host [":" port] (a Host header, or an HTTP/2 :authority), narrowed
// to what real hosts use: a name or IPv4 address, or an IPv6 literal in brackets.
bool valid_host(std::string_view host);
// Whether `names` holds `name`, ASCII case ignored.
bool names_include(const std::vector<std::string>& names, std::string_view name);

// --- HTTP/1 only ---

// Header names the Connection header lists, which are hop-by-hop for this message.
std::vector<std::string> http1_connection_options(const HeaderList& headers);
// One chunk of chunked transfer coding holding `data` (not empty: an empty chunk ends the body).
std::string http1_chunk(std::string_view data);
// RFC 9110 section 7.8: a 101's Upgrade (`chosen`) names the protocol switched to, one of those
// the request's Upgrade (`offered`) listed.
bool http1_upgrade_offered(std::string_view offered, std::string_view chosen);

}  // namespace jwtgate::proxy
