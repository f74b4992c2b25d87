// Structured logs on stdout: one JSON object per line (or `time LEVEL message key=value...` with
// log.format: text), filtered by log.level. Lines are handed to one writer thread, so no caller
// ever blocks on a slow stdout; when that thread falls far behind, lines are dropped and counted
// rather than memory growing. Callers pass only what is safe to show: never a token, a secret
// or a cookie value.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace jwtgate::proxy {

using LogFields = std::initializer_list<std::pair<std::string_view, std::string>>;

// Process-wide settings; safe to change while threads log (a reload does).
void set_log_options(const config::LogConfig& options);
bool log_enabled(config::LogConfig::Level level);
std::uint64_t log_lines_dropped();

// An event (not an access log line): thread-safe.
void log_event(std::string_view level, std::string_view message, LogFields fields = {});

// One worker's pending access-log lines: appended without locking, handed to the writer in
// batches (flush() from a timer or when large).
class LogBuffer {
 public:
  // A line from ordered fields; values are strings, or numbers when `number` is set.
  struct Field {
    std::string_view key;
    std::string_view value;
    bool number = false;
  };
  void append(const std::vector<Field>& fields);
  bool large() const { return text_.size() >= 64 * 1024; }
  // Whether to log this request when only a `rate` (0..1] share of them is logged.
  bool sampled(double rate);
  void flush();
  ~LogBuffer() { flush(); }

 private:
  std::string text_;
  std::size_t lines_ = 0;
  std::uint64_t sample_state_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace jwtgate::proxy
