// Listen addresses ("0.0.0.0:8080", "[::1]:9901") and upstream URLs ("http://orders:3000",
// "https://orders" on port 443).
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"

namespace jwtgate::config {

// On failure returns false and says what is expected in `error`.
bool parse_listen_address(std::string_view text, ListenAddress& out, std::string& error);
bool parse_upstream_url(std::string_view text, UpstreamUrl& out, std::string& error);

// A DNS name or a literal IP address (without brackets), as an upstream host or TLS server name.
bool is_host(std::string_view host);

// The http:// base a client on this machine types to reach `listen`. A wildcard (0.0.0.0, [::])
// is where a server listens, not an address to connect to: it becomes localhost, which is also
// how a port published by `docker run -p` is reached.
std::string local_base_url(const ListenAddress& listen);

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(std::string_view host);

}  // namespace jwtgate::config
