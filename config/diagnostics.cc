#include "config/diagnostics.h"

#include <algorithm>

namespace jwtgate::config {

std::string Diagnostic::format() const {
  std::string out = file.empty() ? "<config>" : file;
  if (line > 0) {
    out += ':' + std::to_string(line);
    if (column > 0) out += ':' + std::to_string(column);
  }
  out += severity == Severity::error ? ": error: " : ": warning: ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

bool Diagnostics::has_errors() const { return count(Diagnostic::Severity::error) > 0; }

std::size_t Diagnostics::count(Diagnostic::Severity s) const {
  return static_cast<std::size_t>(
      std::count_if(items_.begin(), items_.end(), [s](const Diagnostic& d) { return d.severity == s; }));
}

std::string Diagnostics::format() const {
  std::vector<const Diagnostic*> sorted;
  for (const auto& d : items_) sorted.push_back(&d);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic* a, const Diagnostic* b) {
    if (a->severity != b->severity) return a->severity == Diagnostic::Severity::error;
    return a->line < b->line || (a->line == b->line && a->column < b->column);
  });
  std::string out;
  for (const auto* d : sorted) out += d->format() + "\n";
  return out;
}

}  // namespace jwtgate::config
