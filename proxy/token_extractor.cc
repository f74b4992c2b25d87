#include "proxy/token_extractor.h"

namespace jwtgate::proxy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool find_query_param(std::string_view query, std::string_view name, std::string_view& value, std::size_t& count) {
  count = 0;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      if (count++ == 0) value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return count > 0;
}

core::Status invalid(std::string detail) { return {core::Reason::multiple_tokens, std::move(detail)}; }

}  // namespace

bool find_cookie(std::string_view header, std::string_view name, std::string_view& value) {
  while (!header.empty()) {
    const std::size_t semi = header.find(';');
    const std::string_view pair = trim(header.substr(0, semi));
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      value = pair.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      return true;
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return false;
}

core::Status extract_token(const HeaderList& headers, std::string_view query,
                           const std::vector<config::TokenSource>& sources, ExtractedToken& out) {
  out = ExtractedToken{};
  for (const auto& src : sources) {
    auto take = [&](std::string_view token, std::string_view where) -> core::Status {
      if (out.present && out.token != token) return invalid("more than one token in the request (" + std::string(where) + ")");
      if (!out.present) out.source = src;
      out.present = true;
      out.token = std::string(token);
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
        const std::string_view token = trim(value.substr(src.prefix.size()));
        if (token.empty()) break;
        if (core::Status s = take(token, src.name + " header"); !s) return s;
        break;
      }
      case config::TokenSource::Kind::cookie: {
        for (std::string_view cookie_header : headers.all("cookie")) {
          std::string_view value;
          if (find_cookie(cookie_header, src.name, value) && !value.empty()) {
            if (core::Status s = take(value, "cookie " + src.name); !s) return s;
          }
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
