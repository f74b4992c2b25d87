#include "proxy/http/request_target.h"

#include <vector>

namespace jwtgate::proxy {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// Decodes escapes of unreserved characters; keeps the rest encoded (canonical upper-case hex).
bool decode_path(std::string_view in, std::string& out, std::string& error) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c <= 0x20 || c >= 0x7f) { error = "request path contains a control, space or non-ASCII byte"; return false; }
    if (c == '\\') { error = "request path contains a backslash"; return false; }
    if (c == '#') { error = "request target contains a fragment"; return false; }
    if (c != '%') { out += static_cast<char>(c); continue; }
    if (i + 2 >= in.size()) { error = "request path has a truncated %-escape"; return false; }
    const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) { error = "request path has a malformed %-escape"; return false; }
    const auto decoded = static_cast<unsigned char>(hi * 16 + lo);
    if (decoded == '/' || decoded == '\\') { error = "request path has an encoded slash or backslash"; return false; }
    if (decoded == 0) { error = "request path has an encoded NUL"; return false; }
    if (is_unreserved(decoded)) {
      out += static_cast<char>(decoded);
    } else {
      out += '%';
      out += kHex[decoded >> 4];
      out += kHex[decoded & 15];
    }
    i += 2;
  }
  return true;
}

}  // namespace

bool normalize_request_target(std::string_view target, RequestTarget& out, std::string& error) {
  if (target.empty() || target.front() != '/') {
    error = "request target must be an absolute path (origin-form)";
    return false;
  }
  const std::size_t q = target.find('?');
  out.has_query = q != std::string_view::npos;
  out.query = out.has_query ? std::string(target.substr(q + 1)) : std::string();
  if (out.query.find('#') != std::string::npos) {
    error = "request target contains a fragment";
    return false;
  }
  for (char c : out.query) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) { error = "request query contains a control, space or non-ASCII byte"; return false; }
  }
  std::string decoded;
  if (!decode_path(target.substr(0, q), decoded, error)) return false;

  // Split into segments, dropping empty ones (merges "//") and resolving "." and "..".
  std::vector<std::string_view> segments;
  std::string_view rest = decoded;
  const bool trailing_slash = decoded.size() > 1 && decoded.back() == '/';
  bool ends_in_dir = trailing_slash;
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    // A segment is a dot segment if its name, without ;params, is "." or "..".
    const std::string_view name = seg.substr(0, seg.find(';'));
    if (seg.empty()) continue;
    // "..%3B" is ".." to a server that decodes before it strips ;params: refused, as %2F is.
    const std::string_view unescaped_name = name.substr(0, name.find("%3B"));
    if (unescaped_name != name && (unescaped_name == "." || unescaped_name == "..")) {
      error = "request path has a dot segment followed by an encoded semicolon";
      return false;
    }
    if (name == ".") { ends_in_dir = true; continue; }
    if (name == "..") {
      if (!segments.empty() && segments.back().substr(0, segments.back().find(';')).empty()) {
        // "/public/;x/../admin": ".." takes the ";x" segment away here (RFC 3986), but Tomcat,
        // Jetty and Spring drop that segment first and take "public" away, serving /admin. A
        // gateway in front of jwtgate's forward-auth passes the path on as written, so it must
        // not be read one way here and the other way there.
        error = "request path has a '..' after a segment that is only ;params, which servers resolve differently";
        return false;
      }
      if (!segments.empty()) segments.pop_back();
      ends_in_dir = true;
      continue;
    }
    ends_in_dir = trailing_slash;
    segments.push_back(seg);
  }
  out.path = "/";
  out.match_path = "/";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i) out.path += '/';
    out.path += segments[i];
    // A segment that is only ";params" vanishes for Tomcat, Jetty and Spring, which then merge
    // the slashes around it: "/;x/admin" is their "/admin", so it must be ours too.
    const std::string_view name = segments[i].substr(0, segments[i].find(';'));
    if (name.empty()) continue;
    if (out.match_path.size() > 1) out.match_path += '/';
    out.match_path += name;
  }
  if (ends_in_dir && !segments.empty()) {
    out.path += '/';
    if (out.match_path.size() > 1) out.match_path += '/';
  }
  return true;
}

}  // namespace jwtgate::proxy
