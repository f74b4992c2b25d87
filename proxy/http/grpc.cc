#include "proxy/http/grpc.h"

namespace jwtgate::proxy {

bool is_grpc_request(const HeaderList& headers) {
  const std::string_view ct = headers.get("content-type");
  if (!istarts_with(ct, "application/grpc")) return false;
  return ct.size() == 16 || ct[16] == '+' || ct[16] == ';';
}

GrpcStatus grpc_status_for_http(int http_status) {
  switch (http_status) {
    case 401: return GrpcStatus::unauthenticated;
    case 403: return GrpcStatus::permission_denied;
    case 502:
    case 503: return GrpcStatus::unavailable;
    case 408:
    case 504: return GrpcStatus::deadline_exceeded;
    case 404:
    case 405:
    case 501: return GrpcStatus::unimplemented;
    case 413:
    case 431: return GrpcStatus::resource_exhausted;
    case 400: return GrpcStatus::internal;
    default: return GrpcStatus::unknown;
  }
}

std::string grpc_percent_encode(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (const char ch : message) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::optional<std::uint64_t> parse_grpc_timeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  std::uint64_t n = 0;
  for (const char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  switch (value.back()) {
    case 'H': return n * 3600 * 1000;
    case 'M': return n * 60 * 1000;
    case 'S': return n * 1000;
    case 'm': return n;
    case 'u': return (n + 999) / 1000;
    case 'n': return (n + 999999) / 1000000;
    default: return std::nullopt;
  }
}

int grpc_status_of(const HeaderList& fields) {
  std::size_t count = 0;
  const std::string_view v = fields.get("grpc-status", &count);
  if (count != 1 || v.empty() || v.size() > 3) return -1;
  int n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace jwtgate::proxy
