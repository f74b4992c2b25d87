#include "config/env_expand.h"

#include <cstdlib>

namespace jwtgate::config {

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::optional<std::string> expand_env(std::string_view text, const EnvLookup& lookup, std::string& error) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (text[i + 1] != '{') {
      out += '$';
      continue;
    }
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      error = "unterminated ${ in \"" + std::string(text) + "\"";
      return std::nullopt;
    }
    const std::string name(text.substr(i + 2, close - i - 2));
    bool valid = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
    for (char c : name) {
      valid &= (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    }
    if (!valid) {
      error = "\"${" + name + "}\" is not a valid variable reference (letters, digits and _ only)";
      return std::nullopt;
    }
    auto value = lookup(name);
    if (!value) {
      error = "environment variable " + name + " is not set";
      return std::nullopt;
    }
    out += *value;
    i = close;
  }
  return out;
}

}  // namespace jwtgate::config
