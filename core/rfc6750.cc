#include "core/rfc6750.h"

#include "core/json_writer.h"

namespace jwtgate::core {

HttpError http_error(Reason r) noexcept {
  switch (r) {
    case Reason::ok: return {200, ""};
    case Reason::missing_token: return {401, ""};
    case Reason::multiple_tokens: return {400, "invalid_request"};
    case Reason::insufficient_scope:
    case Reason::claim_mismatch: return {403, "insufficient_scope"};
    case Reason::keys_unavailable:
    case Reason::revocation_unavailable: return {503, ""};
    case Reason::token_too_large:
    case Reason::malformed:
    case Reason::unsecured:
    case Reason::encrypted:
    case Reason::unsupported_alg:
    case Reason::alg_not_allowed:
    case Reason::crit_unsupported:
    case Reason::unknown_kid:
    case Reason::no_matching_key:
    case Reason::bad_signature:
    case Reason::expired:
    case Reason::not_yet_valid:
    case Reason::issued_in_future:
    case Reason::lifetime_too_long:
    case Reason::bad_issuer:
    case Reason::bad_audience:
    case Reason::missing_claim:
    case Reason::invalid_claim:
    case Reason::revoked:
    // RFC 8705 §3: a bound token used without its certificate is an invalid token (401), so a
    // client learns to present the certificate, not that it lacks a scope.
    case Reason::certificate_binding: return {401, "invalid_token"};
  }
  return {401, "invalid_token"};
}

namespace {

// RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E.
std::string header_safe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u <= 0x7e && c != '"' && c != '\\' ? c : '?');
  }
  return out;
}

}  // namespace

std::string www_authenticate(const Status& status, std::string_view realm) {
  std::string out = "Bearer realm=\"";
  out += header_safe(realm);
  out += '"';
  HttpError e = http_error(status.reason());
  if (!e.error_code.empty()) {
    out += ", error=\"";
    out += e.error_code;
    out += "\", error_description=\"";
    out += header_safe(status.detail().empty() ? status.name() : std::string_view(status.detail()));
    out += '"';
  }
  return out;
}

std::string error_body(const Status& status) {
  HttpError e = http_error(status.reason());
  return error_json(e.error_code.empty() ? status.name() : e.error_code,
                    status.detail().empty() ? status.name() : std::string_view(status.detail()));
}

std::string error_json(std::string_view error, std::string_view description) {
  JsonWriter w;
  w.begin_object();
  w.key("error");
  w.string(error);
  w.key("error_description");
  w.string(description);
  w.end_object();
  return w.take();
}

}  // namespace jwtgate::core
