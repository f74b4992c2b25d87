// Structured log lines (one JSON object per line on stderr). Callers pass only what is safe to
// show: never a token, a secret or a key set's bytes.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace jwtgate::proxy {

using LogFields = std::initializer_list<std::pair<std::string_view, std::string>>;

// Thread-safe: each line is written with one write(2).
void log_event(std::string_view level, std::string_view message, LogFields fields = {});

}  // namespace jwtgate::proxy
