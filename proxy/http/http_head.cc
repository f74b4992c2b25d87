#include "proxy/http/http_head.h"

#include <algorithm>

namespace jwtgate::proxy {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool same_header_to_cgi(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  auto cgi = [](char c) {
    const char l = lower(c);
    return (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') ? l : '_';
  };
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (cgi(a[i]) != cgi(b[i])) return false;
  }
  return true;
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

std::size_t HeaderList::remove(std::string_view name) {
  const auto before = fields_.size();
  fields_.erase(std::remove_if(fields_.begin(), fields_.end(), [&](const HeaderField& f) { return iequals(f.name, name); }),
                fields_.end());
  return before - fields_.size();
}

std::vector<std::string_view> HeaderList::all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& f : fields_) {
    if (iequals(f.name, name)) out.push_back(f.value);
  }
  return out;
}

std::string_view HeaderList::get(std::string_view name, std::size_t* count) const {
  std::string_view found;
  std::size_t n = 0;
  for (const auto& f : fields_) {
    if (iequals(f.name, name)) {
      if (n == 0) found = f.value;
      ++n;
    }
  }
  if (count) *count = n;
  return found;
}

bool HeaderList::has(std::string_view name) const {
  return std::any_of(fields_.begin(), fields_.end(), [&](const HeaderField& f) { return iequals(f.name, name); });
}

bool only_chunked(const HeaderList& headers) {
  std::size_t items = 0;
  bool other = false;
  for (std::string_view v : headers.all("transfer-encoding")) {
    for_each_list_item(v, [&](std::string_view item) {
      ++items;
      other |= !iequals(item, "chunked");
    });
  }
  return items == 1 && !other;
}

bool header_lists_token(std::string_view value, std::string_view token) {
  bool found = false;
  for_each_list_item(value, [&](std::string_view item) { found |= iequals(item, token); });
  return found;
}

}  // namespace jwtgate::proxy
