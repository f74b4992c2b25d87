// Typed reads from yaml-cpp nodes that report every problem (with file, line, column and key
// path) instead of throwing, so one pass over a file finds all of its errors.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/diagnostics.h"
#include "config/env_expand.h"

namespace jwtgate::config {

class YamlReader {
 public:
  YamlReader(std::string file, Diagnostics& diagnostics, EnvLookup env)
      : file_(std::move(file)), diagnostics_(diagnostics), env_(std::move(env)) {}

  void error(const YAML::Node& at, const std::string& path, std::string message);
  void warning(const YAML::Node& at, const std::string& path, std::string message);

  // A mapping whose keys are all in `allowed`: unknown keys (with a suggestion), duplicate keys
  // and non-scalar keys are reported. False when `node` is not a mapping.
  bool mapping(const YAML::Node& node, const std::string& path, std::initializer_list<std::string_view> allowed);

  // Scalars. Strings are ${VAR}-expanded. Each reports its own error and returns nullopt.
  std::optional<std::string> string(const YAML::Node& node, const std::string& path);
  std::optional<bool> boolean(const YAML::Node& node, const std::string& path);
  std::optional<std::uint64_t> integer(const YAML::Node& node, const std::string& path, std::uint64_t min,
                                       std::uint64_t max);
  std::optional<Duration> duration(const YAML::Node& node, const std::string& path);
  std::optional<std::uint64_t> size(const YAML::Node& node, const std::string& path);
  // One of `choices`, with a suggestion when it is not.
  std::optional<std::string> choice(const YAML::Node& node, const std::string& path,
                                    std::initializer_list<std::string_view> choices);
  // A list of strings. `example` completes "expected a list, such as ...".
  std::optional<std::vector<std::string>> string_list(const YAML::Node& node, const std::string& path,
                                                      std::string_view example);

  // "a mapping", "a list", "\"value\"", "nothing": for "found ..." in messages.
  static std::string describe(const YAML::Node& node);
  static std::string key_path(const std::string& parent, std::string_view key);
  static std::string index_path(const std::string& parent, std::size_t index);

 private:
  template <typename T, typename Parse>
  std::optional<T> parsed(const YAML::Node& node, const std::string& path, std::string_view expected, Parse parse);
  void report(Diagnostic::Severity severity, const YAML::Node& at, const std::string& path, std::string message);

  std::string file_;
  Diagnostics& diagnostics_;
  EnvLookup env_;
};

}  // namespace jwtgate::config
