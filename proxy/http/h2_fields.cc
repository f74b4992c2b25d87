#include "proxy/http/h2_fields.h"

#include <string>

#include "proxy/http/http1_rules.h"

namespace jwtgate::proxy {

std::vector<nghttp2_nv> to_nv(const std::vector<HeaderField>& fields) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(fields.size());
  for (const HeaderField& f : fields) {
    nv.push_back(nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(f.name.data())),
                            reinterpret_cast<std::uint8_t*>(const_cast<char*>(f.value.data())), f.name.size(),
                            f.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

std::vector<HeaderField> h2_response_fields(int status, const HeaderList& http1_fields) {
  std::vector<HeaderField> out;
  out.reserve(http1_fields.fields().size() + 1);
  out.push_back({":status", std::to_string(status)});
  std::vector<std::string> listed;
  for (const std::string_view v : http1_fields.all("connection")) {
    for_each_list_item(v, [&](std::string_view item) { listed.emplace_back(item); });
  }
  for (const HeaderField& f : http1_fields.fields()) {
    if (is_hop_by_hop_field(f.name) || names_include(listed, f.name)) continue;
    HeaderField lower{f.name, f.value};
    for (char& c : lower.name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    out.push_back(std::move(lower));
  }
  return out;
}

}  // namespace jwtgate::proxy
