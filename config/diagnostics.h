// What validation found: every error and warning at once, each with file, line, column and the
// key path ("providers[0].jwks.uri"), what was found and what was expected.
#pragma once

#include <string>
#include <vector>

namespace jwtgate::config {

struct Diagnostic {
  enum class Severity { error, warning };
  Severity severity = Severity::error;
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
  std::string path;
  std::string message;

  // "jwtgate.yaml:12:7: error: providers[0].jwks.uri: ..."
  std::string format() const;
};

class Diagnostics {
 public:
  void add(Diagnostic d) { items_.push_back(std::move(d)); }
  const std::vector<Diagnostic>& items() const { return items_; }
  bool has_errors() const;
  std::size_t count(Diagnostic::Severity s) const;
  // Every diagnostic, one per line, errors first, then warnings, each in file order.
  std::string format() const;

 private:
  std::vector<Diagnostic> items_;
};

}  // namespace jwtgate::config
