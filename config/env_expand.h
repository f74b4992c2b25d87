// ${VAR} expansion in config string values. An unset variable is an error, never an empty
// string: a config that silently loses a value is worse than one that refuses to load.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace jwtgate::config {

using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment.
EnvLookup process_environment();

// Replaces each ${NAME} (NAME: letters, digits, underscore; not starting with a digit) with its
// value; "$$" is a literal "$"; any other "$" stays as it is. On failure returns nullopt and
// says why in `error`.
std::optional<std::string> expand_env(std::string_view text, const EnvLookup& lookup, std::string& error);

}  // namespace jwtgate::config
