// A compact-serialized JWS (RFC 7515 §7.1) taken apart: segments split, base64url decoded,
// JOSE header and payload parsed. Nothing here says the token is valid; see verifier.h.
#pragma once

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/alg.h"
#include "core/status.h"

namespace jwtgate::core {

inline constexpr std::size_t kDefaultMaxTokenBytes = 8192;

struct JoseHeader {
  Alg alg = Alg::HS256;
  std::string_view kid;       // empty when absent
  bool has_kid = false;
  std::string_view typ;
};

// Reusable: decode() overwrites the previous token and keeps its buffers, so a worker holding
// one Token decodes without allocating once the buffers have grown. Views returned by the
// accessors point into this object (and signing_input() into the caller's token text) and are
// valid until the next decode().
class Token {
 public:
  Token();
  Token(const Token&) = delete;
  Token& operator=(const Token&) = delete;

  // Splits and decodes `compact`. Checks, in this order: size limit (before any decoding),
  // segment count (JWE is reported as such), header (alg present, known, not "none"; no crit;
  // no b64), signature present, payload a JSON object. Member names must be unique at every
  // level and nesting is bounded.
  Status decode(std::string_view compact, std::size_t max_bytes = kDefaultMaxTokenBytes);

  // Like decode(), but stops after the JOSE header and payload, for showing tokens whose
  // algorithm is not usable (the CLI's decode). Never use the result to make a decision.
  Status decode_unverified(std::string_view compact, std::size_t max_bytes = kDefaultMaxTokenBytes);

  const JoseHeader& header() const noexcept { return header_; }
  simdjson::dom::object payload() const noexcept { return payload_; }
  std::string_view signing_input() const noexcept { return signing_input_; }
  std::string_view signature() const noexcept { return signature_; }
  std::string_view header_json() const noexcept { return header_json_; }
  std::string_view payload_json() const noexcept { return payload_json_; }

 private:
  Status split(std::string_view compact, std::size_t max_bytes, std::string_view parts[3]);
  Status decode_header(std::string_view segment, bool strict);
  Status decode_payload(std::string_view segment);

  simdjson::dom::parser header_parser_;
  simdjson::dom::parser payload_parser_;
  std::string header_json_;
  std::string payload_json_;
  std::string signature_;
  std::string_view signing_input_;
  JoseHeader header_;
  simdjson::dom::object payload_;
};

}  // namespace jwtgate::core
