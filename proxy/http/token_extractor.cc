#include "proxy/http/token_extractor.h"

#include "proxy/http/request_target.h"

namespace jwtgate::proxy {
namespace {

using detail::trim_wsp;

// Bytes some parser trims from a name: Python's str.strip() on latin-1 text (Django, Werkzeug)
// takes \x85 and \xa0 as well as ASCII white space.
bool trimmed_by_someone(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0;
}

// A query parameter or cookie name as the most lenient common server reads it: %XX and '+'
// decoded (Rack also decodes cookie names), cut at a NUL (PHP), trimmed, "name[...]" taken as
// "name" (PHP and Rack arrays), ' ', '.' and a lone '[' read as '_' (PHP), case ignored
// (ASP.NET Core). Two names alike in this form are one name to some upstream.
std::string lenient_name(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%' && i + 2 < raw.size() && hex_value(raw[i + 1]) >= 0 && hex_value(raw[i + 2]) >= 0) {
      c = static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
      i += 2;
    }
    if (c == '\0') break;
    out += c;
  }
  std::size_t a = 0, b = out.size();
  while (a < b && trimmed_by_someone(static_cast<unsigned char>(out[a]))) ++a;
  while (b > a && trimmed_by_someone(static_cast<unsigned char>(out[b - 1]))) --b;
  out = out.substr(a, b - a);
  if (const std::size_t open = out.find('['); open != std::string::npos && out.find(']', open) != std::string::npos) {
    out.resize(open);
  }
  for (char& c : out) {
    if (c == ' ' || c == '.' || c == '[') c = '_';
    else if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool same_param_name(std::string_view raw, std::string_view configured) {
  return lenient_name(raw) == lenient_name(configured);
}

// Calls `visit(pair, separator_before)` for each piece of a query string. '&' and ';' both
// separate, as Rack, Perl's CGI.pm and older Go and Python split on ';' too.
template <typename Visit>
void for_each_query_pair(std::string_view query, Visit&& visit) {
  char separator = 0;
  while (true) {
    const std::size_t at = query.find_first_of("&;");
    visit(query.substr(0, at), separator);
    if (at == std::string_view::npos) return;
    separator = query[at];
    query.remove_prefix(at + 1);
  }
}

bool find_query_param(std::string_view query, std::string_view name, std::string_view& value, std::size_t& count) {
  count = 0;
  for_each_query_pair(query, [&](std::string_view pair, char) {
    if (pair.empty()) return;
    const std::size_t eq = pair.find('=');
    if (!same_param_name(pair.substr(0, eq), name)) return;
    if (count++ == 0) value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
  });
  return count > 0;
}

core::Status invalid(std::string detail) { return {core::Reason::multiple_tokens, std::move(detail)}; }

}  // namespace

std::string without_cookie(std::string_view header, std::string_view name) {
  std::string out;
  for_each_cookie(header, [&](const CookiePair& c) {
    if (same_param_name(c.name, name)) return;  // every spelling some server reads as the token's cookie
    if (!out.empty()) out += "; ";
    out += c.text;
  });
  return out;
}

std::string without_query_param(std::string_view query, std::string_view name) {
  std::string out;
  for_each_query_pair(query, [&](std::string_view pair, char separator) {
    if (pair.empty() || same_param_name(pair.substr(0, pair.find('=')), name)) return;
    if (!out.empty()) out += separator ? separator : '&';  // the others keep the separator they had
    out += pair;
  });
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
        // X_Api_Token is X-Api-Token to a CGI-style stack, so it counts (and is stripped) too.
        std::size_t count = 0;
        std::string_view value;
        for (const auto& f : headers.fields()) {
          if (same_header_to_cgi(f.name, src.name) && count++ == 0) value = f.value;
        }
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
            // Names are case-sensitive (RFC 6265), but servers read them leniently (ASP.NET
            // Core without case, Rack decoded, PHP with arrays): a name any of them reads as
            // the token's cookie is the token's cookie to us, and two of them are ambiguous.
            if (!same_param_name(c.name, src.name)) return;
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
