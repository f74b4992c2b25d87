#include "core/token.h"

#include "core/base64url.h"
#include "core/json_object.h"

namespace jwtgate::core {
namespace {

Status malformed(std::string detail) { return {Reason::malformed, std::move(detail)}; }

}  // namespace

Token::Token() {
  init_json_parser(header_parser_, 512);
  init_json_parser(payload_parser_, 2048);
}

Status Token::split(std::string_view compact, std::size_t max_bytes, std::string_view parts[3]) {
  if (compact.size() > max_bytes) {
    return {Reason::token_too_large, "token is larger than " + std::to_string(max_bytes) + " bytes"};
  }
  if (compact.empty()) return malformed("token is empty");
  std::size_t dots[4];
  std::size_t count = 0;
  for (std::size_t i = 0; i < compact.size(); ++i) {
    if (compact[i] == '.') {
      if (count == 4) return malformed("token has more than five segments");
      dots[count++] = i;
    }
  }
  if (count == 4) return {Reason::encrypted, "token is a JWE (encrypted); only signed JWS tokens are accepted"};
  if (count != 2) return malformed("token does not have three dot-separated segments");
  parts[0] = compact.substr(0, dots[0]);
  parts[1] = compact.substr(dots[0] + 1, dots[1] - dots[0] - 1);
  parts[2] = compact.substr(dots[1] + 1);
  signing_input_ = compact.substr(0, dots[1]);
  if (parts[0].empty()) return malformed("token header segment is empty");
  return Status::Ok();
}

Status Token::decode_header(std::string_view segment, bool strict) {
  if (!base64url_decode(segment, header_json_, simdjson::SIMDJSON_PADDING)) {
    return malformed("token header is not valid base64url");
  }
  simdjson::dom::object header;
  if (Status s = parse_json_object(header_parser_, header_json_, true, "token header", header); !s) return s;
  header_ = JoseHeader{};

  simdjson::dom::element e;
  if (!header.at_key("enc").get(e)) {
    return {Reason::encrypted, "token header has \"enc\": a JWE; only signed JWS tokens are accepted"};
  }
  std::string_view alg;
  if (header.at_key("alg").get(e)) return malformed("token header has no \"alg\"");
  if (e.get_string().get(alg)) return malformed("token header \"alg\" is not a string");
  if (is_none_alg(alg)) return {Reason::unsecured, "unsecured token (alg \"none\") is never accepted"};
  if (auto a = alg_from_name(alg)) {
    header_.alg = *a;
  } else if (strict) {
    return {Reason::unsupported_alg, "token algorithm is not supported"};
  }
  if (!header.at_key("kid").get(e)) {
    if (e.get_string().get(header_.kid)) return malformed("token header \"kid\" is not a string");
    header_.has_kid = true;
  }
  if (!header.at_key("typ").get(e) && e.get_string().get(header_.typ)) {
    return malformed("token header \"typ\" is not a string");
  }
  if (!strict) return Status::Ok();
  // RFC 7515 §4.1.11: a recipient must reject a token whose crit lists an extension it does not
  // understand. jwtgate understands none, so any crit is refused, and so is b64 (RFC 7797),
  // which changes what the signature covers.
  if (!header.at_key("crit").get(e)) {
    return {Reason::crit_unsupported, "token header \"crit\" names extensions jwtgate does not process"};
  }
  if (!header.at_key("b64").get(e)) {
    return {Reason::crit_unsupported, "token header \"b64\" (unencoded payload) is not supported"};
  }
  // jku, x5u, jwk and x5c are deliberately ignored: keys come only from the configured JWKS.
  return Status::Ok();
}

Status Token::decode_payload(std::string_view segment) {
  if (!base64url_decode(segment, payload_json_, simdjson::SIMDJSON_PADDING)) {
    return malformed("token payload is not valid base64url");
  }
  return parse_json_object(payload_parser_, payload_json_, true, "token payload", payload_);
}

Status Token::decode(std::string_view compact, std::size_t max_bytes) {
  std::string_view parts[3];
  if (Status s = split(compact, max_bytes, parts); !s) return s;
  if (Status s = decode_header(parts[0], true); !s) return s;
  if (parts[2].empty()) return {Reason::unsecured, "token has no signature"};
  if (!base64url_decode(parts[2], signature_)) return malformed("token signature is not valid base64url");
  return decode_payload(parts[1]);
}

Status Token::decode_unverified(std::string_view compact, std::size_t max_bytes) {
  std::string_view parts[3];
  if (Status s = split(compact, max_bytes, parts); !s) return s;
  if (Status s = decode_header(parts[0], false); !s && s.reason() != Reason::unsecured) return s;
  signature_.clear();
  if (!base64url_decode(parts[2], signature_)) return malformed("token signature is not valid base64url");
  return decode_payload(parts[1]);
}

}  // namespace jwtgate::core
