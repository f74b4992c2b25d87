// A minimal JSON text builder for the few documents jwtgate writes (JWKS, CLI output, error
// bodies). simdjson only reads JSON; this is the write side.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace jwtgate::core {

// Appends `s` as a JSON string literal (quotes included). Control characters, quotes and
// backslashes are escaped, so the result is always one line.
void append_json_string(std::string& out, std::string_view s);

class JsonWriter {
 public:
  void begin_object() { sep(); out_ += '{'; first_ = true; }
  void end_object() { out_ += '}'; first_ = false; }
  void begin_array() { sep(); out_ += '['; first_ = true; }
  void end_array() { out_ += ']'; first_ = false; }
  void key(std::string_view k) { sep(); append_json_string(out_, k); out_ += ':'; after_key_ = true; }
  void string(std::string_view s) { sep(); append_json_string(out_, s); }
  void number(std::int64_t n) { sep(); out_ += std::to_string(n); }
  void boolean(bool b) { sep(); out_ += b ? "true" : "false"; }
  void null() { sep(); out_ += "null"; }
  // Inserts already-serialized JSON as one value.
  void raw(std::string_view json) { sep(); out_ += json; }
  std::string take() { return std::move(out_); }

 private:
  void sep() {
    if (after_key_) { after_key_ = false; return; }
    if (!first_) out_ += ',';
    first_ = false;
  }
  std::string out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace jwtgate::core
