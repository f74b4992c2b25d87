#include "core/certificate_binding.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/base64url.h"
#include "core/signature.h"

namespace jwtgate::core {

std::string certificate_thumbprint(std::string_view der) {
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // HS256's digest is SHA-256, fetched once (as for token digests) rather than per call.
  if (!hash_bytes(fetched_digest(Alg::HS256), der, hash, length) || length != 32) return {};
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(hash), length));
}

Status read_certificate_binding(simdjson::dom::object payload, std::string_view& thumbprint) {
  thumbprint = {};
  simdjson::dom::element cnf;
  if (payload.at_key("cnf").get(cnf)) return Status::Ok();
  // A cnf that is not an object might bind the token in a way jwtgate cannot read: refusing it
  // fails closed instead of serving a possibly bound token as a bearer token.
  if (!cnf.is_object()) return {Reason::invalid_claim, "\"cnf\" is not a JSON object"};
  simdjson::dom::object methods = cnf.get_object().value_unsafe();
  // RFC 7800 lets cnf name other proofs of possession (jwk, jkt for DPoP, kid, jku, ...).
  // jwtgate checks none of them, and serving such a token as a bearer token would make a
  // stolen sender-constrained token replayable: it is refused, whatever else cnf holds.
  for (auto member : methods) {
    if (member.key != "x5t#S256") {
      return {Reason::certificate_binding,
              "the token is bound by a confirmation method jwtgate cannot check (cnf." + std::string(member.key) +
                  "); only cnf.x5t#S256 (RFC 8705) is supported"};
    }
  }
  simdjson::dom::element x5t;
  if (methods.at_key("x5t#S256").get(x5t)) return Status::Ok();
  std::string_view value;
  if (x5t.get_string().get(value)) return {Reason::invalid_claim, "\"cnf.x5t#S256\" is not a string"};
  // Strict decoding gives every digest one spelling, so comparing the text compares the digests.
  std::string digest;
  if (value.size() != kThumbprintLength || !base64url_decode(value, digest) || digest.size() != 32) {
    return {Reason::invalid_claim, "\"cnf.x5t#S256\" is not the base64url of a SHA-256 digest"};
  }
  thumbprint = value;
  return Status::Ok();
}

Status check_certificate_binding(std::string_view bound, std::string_view presented, bool required) {
  if (bound.empty()) {
    if (!required) return Status::Ok();
    return {Reason::certificate_binding, "the provider requires a certificate-bound token (cnf.x5t#S256)"};
  }
  if (presented.empty()) {
    return {Reason::certificate_binding, "the token is bound to a client certificate and none was presented"};
  }
  // Constant time, so a client cannot learn the bound thumbprint byte by byte; the lengths are
  // public (every thumbprint is 43 characters).
  if (bound.size() != presented.size() || CRYPTO_memcmp(bound.data(), presented.data(), bound.size()) != 0) {
    return {Reason::certificate_binding, "the token is bound to a different client certificate"};
  }
  return Status::Ok();
}

}  // namespace jwtgate::core
