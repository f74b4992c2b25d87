#include "proxy/token_extractor.h"

namespace jwtgate::proxy {
namespace {

using detail::trim_wsp;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether a raw query parameter name is `name` once decoded as every framework decodes it
// (%XX, and '+' as a space): access%5Ftoken is access_token to the upstream, so it is to us.
bool query_name_is(std::string_view raw, std::string_view name) {
  std::size_t j = 0;
  for (std::size_t i = 0; i < raw.size(); ++i, ++j) {
    char c = raw[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%' && i + 2 < raw.size() && hex_digit(raw[i + 1]) >= 0 && hex_digit(raw[i + 2]) >= 0) {
      c = static_cast<char>(hex_digit(raw[i + 1]) * 16 + hex_digit(raw[i + 2]));
      i += 2;
    }
    if (j >= name.size() || name[j] != c) return false;
  }
  return j == name.size();
}

bool find_query_param(std::string_view query, std::string_view name, std::string_view& value, std::size_t& count) {
  count = 0;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (query_name_is(pair.substr(0, eq), name)) {
      if (count++ == 0) value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return count > 0;
}

core::Status invalid(std::string detail) { return {core::Reason::multiple_tokens, std::move(detail)}; }

}  // namespace

std::string without_cookie(std::string_view header, std::string_view name) {
  std::string out;
  for_each_cookie(header, [&](const CookiePair& c) {
    if (iequals(c.name, name)) return;  // every spelling some server reads as the token's cookie
    if (!out.empty()) out += "; ";
    out += c.text;
  });
  return out;
}

std::string without_query_param(std::string_view query, std::string_view name) {
  std::string out;
  while (true) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (!query_name_is(pair.substr(0, pair.find('=')), name) && !pair.empty()) {
      if (!out.empty()) out += '&';
      out += pair;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

core::Status extract_token(const HeaderList& headers, std::string_view query,
                           const std::vector<config::TokenSource>& sources, ExtractedToken& out) {
  out = ExtractedToken{};
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const config::TokenSource& src = sources[i];
    auto take = [&](std::string_view token, std::string_view where) -> core::Status {
      if (out.present && out.token != token) return invalid("more than one token in the request (" + std::string(where) + ")");
      if (!out.present) out.source = src;
      out.present = true;
      out.token = std::string(token);
      out.found_in |= std::uint64_t{1} << (i < 63 ? i : 63);
      return core::Status::Ok();
    };
    switch (src.kind) {
      case config::TokenSource::Kind::header: {
        std::size_t count = 0;
        const std::string_view value = headers.get(src.name, &count);
        if (count == 0) break;
        if (count > 1) return invalid("the " + src.name + " header is sent more than once");
        if (!src.prefix.empty() && !istarts_with(value, src.prefix)) {
          // Another scheme (e.g. Basic) in a header configured for Bearer: not a token for us.
          break;
        }
        const std::string_view token = trim_wsp(value.substr(src.prefix.size()));
        if (token.empty()) break;
        if (core::Status s = take(token, src.name + " header"); !s) return s;
        break;
      }
      case config::TokenSource::Kind::cookie: {
        std::size_t count = 0;
        std::string_view value;
        for (std::string_view cookie_header : headers.all("cookie")) {
          for_each_cookie(cookie_header, [&](const CookiePair& c) {
            // Names are case-sensitive (RFC 6265), but some servers (ASP.NET Core) read them
            // without case: JWT= is the token's cookie to them, so it is to us (and JWT= beside
            // jwt= is as ambiguous as jwt= twice).
            if (!iequals(c.name, src.name)) return;
            if (count++ == 0) value = c.value;
          });
        }
        // Servers disagree on which of two same-named cookies they read (first, last, both).
        if (count > 1) return invalid("the " + src.name + " cookie is sent more than once");
        if (count == 1 && !value.empty()) {
          if (core::Status s = take(value, "cookie " + src.name); !s) return s;
        }
        break;
      }
      case config::TokenSource::Kind::query: {
        std::string_view value;
        std::size_t count = 0;
        if (find_query_param(query, src.name, value, count)) {
          if (count > 1) return invalid("the " + src.name + " query parameter is sent more than once");
          if (!value.empty()) {
            if (core::Status s = take(value, "query parameter " + src.name); !s) return s;
          }
        }
        break;
      }
    }
  }
  return core::Status::Ok();
}

}  // namespace jwtgate::proxy
