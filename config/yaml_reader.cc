#include "config/yaml_reader.h"

#include <charconv>
#include <set>

#include "config/duration.h"
#include "config/suggest.h"

namespace jwtgate::config {

void YamlReader::report(Diagnostic::Severity severity, const YAML::Node& at, const std::string& path,
                        std::string message) {
  Diagnostic d;
  d.severity = severity;
  d.file = file_;
  if (at.IsDefined()) {
    const YAML::Mark mark = at.Mark();
    if (!mark.is_null()) {
      d.line = mark.line + 1;
      d.column = mark.column + 1;
    }
  }
  d.path = path;
  d.message = std::move(message);
  diagnostics_.add(std::move(d));
}

void YamlReader::error(const YAML::Node& at, const std::string& path, std::string message) {
  report(Diagnostic::Severity::error, at, path, std::move(message));
}

void YamlReader::warning(const YAML::Node& at, const std::string& path, std::string message) {
  report(Diagnostic::Severity::warning, at, path, std::move(message));
}

std::string YamlReader::describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  std::string text = node.Scalar();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return "\"" + text + "\"";
}

std::string YamlReader::key_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string YamlReader::index_path(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

bool YamlReader::mapping(const YAML::Node& node, const std::string& path,
                         std::initializer_list<std::string_view> allowed) {
  if (!node.IsMap()) {
    error(node, path, "expected a mapping of keys to values, found " + describe(node));
    return false;
  }
  const std::vector<std::string_view> candidates(allowed);
  std::set<std::string> seen;
  for (const auto& item : node) {
    const YAML::Node& key = item.first;
    if (!key.IsScalar()) {
      error(key, path, "keys must be plain names, found " + describe(key));
      continue;
    }
    const std::string name = key.Scalar();
    const std::string where = key_path(path, name);
    if (!seen.insert(name).second) {
      error(key, where, "duplicate key; each key may appear once");
      continue;
    }
    bool known = false;
    for (auto a : allowed) known |= a == name;
    if (known) continue;
    if (name == "hmac_secret" || name == "secret" || name == "client_secret") {
      error(key, where, "secrets are never written in the config file; use hmac_secret_file or hmac_secret_env");
      continue;
    }
    std::string message = "unknown key \"" + name + "\"";
    const std::string suggestion = closest_match(name, candidates);
    if (!suggestion.empty()) message += "; did you mean \"" + suggestion + "\"?";
    else {
      message += "; expected one of:";
      for (auto a : allowed) message += " " + std::string(a);
    }
    error(key, where, std::move(message));
  }
  return true;
}

std::optional<std::string> YamlReader::string(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) {
    error(node, path, "expected a string, found " + describe(node));
    return std::nullopt;
  }
  std::string why;
  auto expanded = expand_env(node.Scalar(), env_, why);
  if (!expanded) error(node, path, why);
  return expanded;
}

std::optional<bool> YamlReader::boolean(const YAML::Node& node, const std::string& path) {
  if (node.IsScalar() && (node.Scalar() == "true" || node.Scalar() == "false")) return node.Scalar() == "true";
  error(node, path, "expected true or false, found " + describe(node));
  return std::nullopt;
}

std::optional<std::uint64_t> YamlReader::integer(const YAML::Node& node, const std::string& path, std::uint64_t min,
                                                 std::uint64_t max) {
  std::uint64_t value = 0;
  const std::string text = node.IsScalar() ? node.Scalar() : std::string();
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    error(node, path, "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
                          ", found " + describe(node));
    return std::nullopt;
  }
  return value;
}

// A scalar, ${VAR}-expanded, then parsed by `parse`; `expected` completes "expected ...".
template <typename T, typename Parse>
std::optional<T> YamlReader::parsed(const YAML::Node& node, const std::string& path, std::string_view expected,
                                    Parse parse) {
  if (!node.IsScalar()) {
    error(node, path, "expected " + std::string(expected) + ", found " + describe(node));
    return std::nullopt;
  }
  auto text = string(node, path);
  if (!text) return std::nullopt;
  std::optional<T> value = parse(*text);
  if (!value) error(node, path, "expected " + std::string(expected) + ", found " + describe(node));
  return value;
}

std::optional<Duration> YamlReader::duration(const YAML::Node& node, const std::string& path) {
  return parsed<Duration>(node, path, "a duration such as 500ms, 30s, 5m or 1h (a whole number and one unit)",
                          [](const std::string& t) { return parse_duration(t); });
}

std::optional<std::uint64_t> YamlReader::size(const YAML::Node& node, const std::string& path) {
  return parsed<std::uint64_t>(node, path, "a size such as 512B, 16KiB or 1MiB (a whole number and B, KiB, MiB or GiB)",
                               [](const std::string& t) { return parse_size(t); });
}

std::optional<std::string> YamlReader::choice(const YAML::Node& node, const std::string& path,
                                              std::initializer_list<std::string_view> choices) {
  std::string expected;
  for (auto c : choices) expected += (expected.empty() ? "" : ", ") + std::string(c);
  if (!node.IsScalar()) {
    error(node, path, "expected one of " + expected + ", found " + describe(node));
    return std::nullopt;
  }
  for (auto c : choices) {
    if (node.Scalar() == c) return std::string(c);
  }
  const std::vector<std::string_view> candidates(choices);
  const std::string suggestion = closest_match(node.Scalar(), candidates);
  error(node, path, "expected one of " + expected + ", found " + describe(node) +
                        (suggestion.empty() ? "" : "; did you mean \"" + suggestion + "\"?"));
  return std::nullopt;
}

std::optional<std::vector<std::string>> YamlReader::string_list(const YAML::Node& node, const std::string& path,
                                                                std::string_view example) {
  if (!node.IsSequence()) {
    error(node, path, "expected a list, such as " + std::string(example) + ", found " + describe(node));
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (std::size_t i = 0; i < node.size(); ++i) {
    auto s = string(node[i], index_path(path, i));
    if (s) out.push_back(*s);
    else ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace jwtgate::config
