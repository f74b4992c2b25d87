// A parsed HTTP/1 request or response head, owned, with the header operations the proxy needs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace jwtgate::proxy {

struct HeaderField {
  std::string name;
  std::string value;
};

// Case-insensitive ASCII comparison for header names and auth schemes.
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view text, std::string_view prefix);
// The same header to a CGI/WSGI/PHP stack, which reads both X-Jwt-Sub and X_Jwt_Sub as
// HTTP_X_JWT_SUB: ASCII case ignored, and every byte that is not a letter or digit taken as the
// same separator (lighttpd's CGI/FastCGI/SCGI turn each of them into '_': X.Jwt.Sub too).
bool same_header_to_cgi(std::string_view a, std::string_view b);

class HeaderList {
 public:
  void add(std::string name, std::string value) { fields_.push_back({std::move(name), std::move(value)}); }
  // Removes every field with this name; returns how many were removed.
  std::size_t remove(std::string_view name);
  // The values of every field with this name, in order.
  std::vector<std::string_view> all(std::string_view name) const;
  // The only value, or empty when absent; `count` tells how many there were.
  std::string_view get(std::string_view name, std::size_t* count = nullptr) const;
  bool has(std::string_view name) const;
  const std::vector<HeaderField>& fields() const { return fields_; }
  std::vector<HeaderField>& fields() { return fields_; }
  void clear() {
    fields_.clear();
    in_value_ = false;
  }

  // llhttp hands names and values over in pieces (a field may span two reads); these put them
  // back together.
  void append_name_piece(std::string_view piece) {
    if (in_value_ || fields_.empty()) fields_.push_back({std::string(piece), std::string()});
    else fields_.back().name.append(piece);
    in_value_ = false;
  }
  void append_value_piece(std::string_view piece) {
    in_value_ = true;
    if (!fields_.empty()) fields_.back().value.append(piece);
  }

 private:
  std::vector<HeaderField> fields_;
  bool in_value_ = false;
};

// Calls `visit(item)` for each item of a comma-separated header value ("keep-alive, Upgrade"),
// with spaces and tabs trimmed; empty items are skipped.
template <typename Visit>
void for_each_list_item(std::string_view value, Visit&& visit) {
  while (true) {
    const std::size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) visit(item);
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

// True when the comma-separated header value lists `token` (case-insensitive), as in
// "Connection: keep-alive, Upgrade".
bool header_lists_token(std::string_view value, std::string_view token);
// True when the Transfer-Encoding fields, all of them together, say exactly `chunked`: any other
// coding (gzip, chunked) is one jwtgate would strip while re-framing, changing the content.
bool only_chunked(const HeaderList& headers);

}  // namespace jwtgate::proxy
