#include "core/claims.h"

#include <cmath>

#include "core/json_object.h"

namespace jwtgate::core {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::optional<element> find_in(simdjson::dom::object obj, std::string_view path) {
  element e;
  if (!obj.at_key(path).get(e)) return e;
  // Try every dot as the split point, leftmost first, so "a.b.c" finds {"a":{"b.c":..}} too.
  for (std::size_t dot = path.find('.'); dot != std::string_view::npos; dot = path.find('.', dot + 1)) {
    element head;
    if (obj.at_key(path.substr(0, dot)).get(head) || !head.is_object()) continue;
    if (auto found = find_in(as_object(head), path.substr(dot + 1))) return found;
  }
  return std::nullopt;
}

Status invalid_claim(std::string_view name, std::string_view what) {
  return {Reason::invalid_claim, quoted_detail(name, what)};
}

}  // namespace

Status read_numeric_date(const Claims& claims, std::string_view name, std::optional<double>& out) {
  out.reset();
  element e;
  if (claims.payload().at_key(name).get(e)) return Status::Ok();
  double v = 0;
  switch (e.type()) {
    case element_type::INT64: v = static_cast<double>(e.get_int64().value_unsafe()); break;
    case element_type::UINT64: v = static_cast<double>(e.get_uint64().value_unsafe()); break;
    case element_type::DOUBLE: v = e.get_double().value_unsafe(); break;
    default: return invalid_claim(name, "is not a NumericDate (a JSON number)");
  }
  if (!std::isfinite(v)) return invalid_claim(name, "is not a finite number");
  // A time no 64-bit clock can hold is not a real time: treated as one, exp: 1e300 would mean
  // "never expires", and converting it to an integer time anywhere would be undefined.
  constexpr double kLimit = 9223372036854775807.0;  // 2^63 seconds
  if (v >= kLimit || v <= -kLimit) {
    return invalid_claim(name, "is beyond any representable time");
  }
  out = v;
  return Status::Ok();
}

namespace {

bool equals_text(element e, std::string_view want) {
  switch (e.type()) {
    case element_type::STRING: return e.get_string().value_unsafe() == want;
    case element_type::INT64: return std::to_string(e.get_int64().value_unsafe()) == want;
    case element_type::UINT64: return std::to_string(e.get_uint64().value_unsafe()) == want;
    case element_type::BOOL: return (e.get_bool().value_unsafe() ? "true" : "false") == want;
    case element_type::DOUBLE: return simdjson::minify(e) == want;
    default: return false;
  }
}

void split_spaces(std::string_view s, std::vector<std::string_view>& out) {
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
}

bool header_safe(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

}  // namespace

std::optional<element> Claims::find(std::string_view path) const { return find_in(payload_, path); }

Status Claims::scopes(std::vector<std::string_view>& out) const {
  out.clear();
  element e;
  if (!payload_.at_key("scope").get(e)) {
    std::string_view s;
    if (e.get_string().get(s)) return {Reason::invalid_claim, "\"scope\" is not a space-separated string"};
    split_spaces(s, out);
  }
  if (!payload_.at_key("scp").get(e)) {
    std::string_view s;
    if (!e.get_string().get(s)) {
      split_spaces(s, out);
    } else if (e.is_array()) {
      for (element item : as_array(e)) {
        if (item.get_string().get(s)) return {Reason::invalid_claim, "\"scp\" holds a non-string"};
        out.push_back(s);
      }
    } else {
      return {Reason::invalid_claim, "\"scp\" is neither a string nor an array of strings"};
    }
  }
  return Status::Ok();
}

Status check_validity_window(std::optional<double> exp, std::optional<double> nbf, std::int64_t now_seconds,
                             std::int64_t skew_seconds) {
  const double now = static_cast<double>(now_seconds);
  const double skew = static_cast<double>(skew_seconds);
  // RFC 7519 §4.1.4: the current time must be before exp (plus the allowed skew).
  if (exp && !(now < *exp + skew)) return {Reason::expired, "the token has expired"};
  if (nbf && now + skew < *nbf) return {Reason::not_yet_valid, "the token is not valid yet (nbf)"};
  return Status::Ok();
}

Status check_claims(const Claims& claims, const ClaimPolicy& policy, std::int64_t now_seconds) {
  const double now = static_cast<double>(now_seconds);
  const double skew = static_cast<double>(policy.clock_skew_seconds);
  std::optional<double> exp, nbf, iat;
  if (Status s = read_numeric_date(claims, "exp", exp); !s) return s;
  if (Status s = read_numeric_date(claims, "nbf", nbf); !s) return s;
  if (Status s = read_numeric_date(claims, "iat", iat); !s) return s;

  if (!exp && policy.require_exp) return {Reason::missing_claim, "token has no \"exp\" claim"};
  if (Status s = check_validity_window(exp, nbf, now_seconds, policy.clock_skew_seconds); !s) return s;
  if (iat && now + skew < *iat) return {Reason::issued_in_future, "the token was issued in the future (iat)"};
  if (policy.max_lifetime_seconds) {
    if (!exp) return {Reason::missing_claim, "a maximum lifetime is set and the token has no \"exp\""};
    const double start = iat ? *iat : nbf ? *nbf : now;
    if (*exp - start > static_cast<double>(*policy.max_lifetime_seconds) + skew) {
      return {Reason::lifetime_too_long, "the token lives longer than the allowed maximum"};
    }
  }

  element e;
  if (!policy.issuer.empty()) {
    std::string_view iss;
    if (claims.payload().at_key("iss").get(e)) return {Reason::bad_issuer, "token has no \"iss\" claim"};
    if (e.get_string().get(iss)) return {Reason::invalid_claim, "\"iss\" is not a string"};
    if (iss != policy.issuer) return {Reason::bad_issuer, "token issuer is not the expected one"};
  }
  if (!policy.audiences.empty()) {
    if (claims.payload().at_key("aud").get(e)) return {Reason::bad_audience, "token has no \"aud\" claim"};
    bool match = false;
    auto consider = [&](std::string_view aud) {
      for (const auto& want : policy.audiences) match |= aud == want;
    };
    std::string_view aud;
    if (!e.get_string().get(aud)) {
      consider(aud);
    } else if (e.is_array()) {
      for (element item : as_array(e)) {
        if (item.get_string().get(aud)) return {Reason::invalid_claim, "\"aud\" holds a non-string"};
        consider(aud);
      }
    } else {
      return {Reason::invalid_claim, "\"aud\" is neither a string nor an array of strings"};
    }
    if (!match) return {Reason::bad_audience, "token audience does not include an accepted audience"};
  }
  for (const auto& name : policy.required_claims) {
    auto found = claims.find(name);
    if (!found || found->is_null()) return {Reason::missing_claim, "token has no \"" + name + "\" claim"};
  }
  return Status::Ok();
}

Status check_scopes(const Claims& claims, std::span<const std::string> required) {
  if (required.empty()) return Status::Ok();
  std::vector<std::string_view> granted;
  if (Status s = claims.scopes(granted); !s) return s;
  for (const auto& want : required) {
    bool found = false;
    for (auto g : granted) found |= g == want;
    if (!found) return {Reason::insufficient_scope, "the token lacks the \"" + want + "\" scope"};
  }
  return Status::Ok();
}

Status check_claim_values(const Claims& claims, std::string_view path, std::span<const std::string> accepted) {
  auto value = claims.find(path);
  auto matches = [&](element e) {
    for (const auto& want : accepted) {
      if (equals_text(e, want)) return true;
    }
    return false;
  };
  bool ok = false;
  if (value) {
    if (value->is_array()) {
      for (element item : as_array(*value)) ok |= matches(item);
    } else {
      ok = matches(*value);
    }
  }
  if (!ok) return {Reason::claim_mismatch, "the token's \"" + std::string(path) + "\" claim does not hold a required value"};
  return Status::Ok();
}

std::optional<std::string> claim_header_value(element value) {
  std::string out;
  switch (value.type()) {
    case element_type::NULL_VALUE: return std::nullopt;
    case element_type::STRING: out = std::string(value.get_string().value_unsafe()); break;
    case element_type::ARRAY: {
      bool first = true;
      for (element item : as_array(value)) {
        if (item.is_null()) continue;
        if (!first) out += ',';
        first = false;
        if (item.is_string()) out += item.get_string().value_unsafe();
        else out += simdjson::minify(item);
      }
      break;
    }
    default: out = simdjson::minify(value); break;
  }
  if (!header_safe(out)) return std::nullopt;
  return out;
}

}  // namespace jwtgate::core
