#include "core/base64url.h"

#include <array>
#include <cstdint>

namespace jwtgate::core {
namespace {

constexpr std::uint8_t kInvalid = 0xff;

constexpr std::array<std::uint8_t, 256> make_table() {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = kInvalid;
  constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::uint8_t>(i);
  return t;
}
constexpr auto kDecode = make_table();
constexpr char kEncode[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

std::size_t base64url_decoded_size(std::size_t n) noexcept {
  if (n % 4 == 1) return std::string::npos;
  return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

bool base64url_decode(std::string_view in, std::string& out, std::size_t extra_capacity) {
  const std::size_t size = base64url_decoded_size(in.size());
  if (size == std::string::npos) return false;
  out.reserve(size + extra_capacity);
  out.resize(size);
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  const auto* src = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t full = in.size() / 4 * 4;
  std::size_t o = 0;
  for (std::size_t i = 0; i < full; i += 4) {
    std::uint32_t a = kDecode[src[i]], b = kDecode[src[i + 1]], c = kDecode[src[i + 2]], d = kDecode[src[i + 3]];
    if ((a | b | c | d) == kInvalid || ((a | b | c | d) & 0xc0)) return false;
    std::uint32_t v = a << 18 | b << 12 | c << 6 | d;
    dst[o++] = static_cast<unsigned char>(v >> 16);
    dst[o++] = static_cast<unsigned char>(v >> 8);
    dst[o++] = static_cast<unsigned char>(v);
  }
  const std::size_t rest = in.size() - full;
  if (rest == 2) {
    std::uint32_t a = kDecode[src[full]], b = kDecode[src[full + 1]];
    if ((a | b) & 0xc0) return false;
    if (b & 0x0f) return false;  // non-canonical: bits beyond the last byte must be zero
    dst[o++] = static_cast<unsigned char>(a << 2 | b >> 4);
  } else if (rest == 3) {
    std::uint32_t a = kDecode[src[full]], b = kDecode[src[full + 1]], c = kDecode[src[full + 2]];
    if ((a | b | c) & 0xc0) return false;
    if (c & 0x03) return false;
    dst[o++] = static_cast<unsigned char>(a << 2 | b >> 4);
    dst[o++] = static_cast<unsigned char>((b & 0x0f) << 4 | c >> 2);
  }
  return true;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = s[i] << 16 | s[i + 1] << 8 | s[i + 2];
    out += kEncode[v >> 18 & 63];
    out += kEncode[v >> 12 & 63];
    out += kEncode[v >> 6 & 63];
    out += kEncode[v & 63];
  }
  if (bytes.size() - i == 1) {
    std::uint32_t v = s[i] << 16;
    out += kEncode[v >> 18 & 63];
    out += kEncode[v >> 12 & 63];
  } else if (bytes.size() - i == 2) {
    std::uint32_t v = s[i] << 16 | s[i + 1] << 8;
    out += kEncode[v >> 18 & 63];
    out += kEncode[v >> 12 & 63];
    out += kEncode[v >> 6 & 63];
  }
  return out;
}

}  // namespace jwtgate::core
