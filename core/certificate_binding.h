// Certificate-bound access tokens (RFC 8705 §3): the thumbprint of a client certificate, the
// thumbprint a token is bound to (its cnf.x5t#S256), and the verdict on the two together.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace jwtgate::core {

// base64url of a SHA-256, unpadded.
inline constexpr std::size_t kThumbprintLength = 43;

// x5t#S256 (RFC 8705 §3.1): base64url(SHA-256(der)) without padding. `der` is the certificate's
// DER encoding as presented. Empty only when libcrypto fails; the caller then has no thumbprint,
// and every bound token is refused, which fails closed.
std::string certificate_thumbprint(std::string_view der);

// The thumbprint a verified payload binds the token to: empty when the token is unbound (no
// cnf, or a cnf without x5t#S256: other confirmation methods are not certificate binding),
// otherwise a view into the payload, valid while the parsed payload is. invalid_claim when cnf
// is not an object, or x5t#S256 is not the strict base64url of exactly 32 bytes.
Status read_certificate_binding(simdjson::dom::object payload, std::string_view& thumbprint);

// The verdict for a token bound to `bound` (empty: unbound) used on a connection whose client
// certificate has `presented` (empty: none). certificate_binding when a bound token's thumbprint
// differs from the connection's (compared in constant time) or the connection has none, and
// when `required` and the token is unbound. Allocates only to refuse.
Status check_certificate_binding(std::string_view bound, std::string_view presented, bool required);

}  // namespace jwtgate::core
