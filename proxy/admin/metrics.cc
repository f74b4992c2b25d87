#include "proxy/admin/metrics.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <functional>
#include <iterator>

namespace jwtgate::proxy {

namespace {

[[maybe_unused]] bool valid_metric_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':';
  });
}

[[maybe_unused]] bool valid_label_name(std::string_view s) {
  // Names starting with "__" are reserved for Prometheus itself; "le" belongs to histograms.
  return valid_metric_name(s) && s.find(':') == std::string_view::npos && !s.starts_with("__") && s != "le";
}

// Shortest text that reads back as the same double; Prometheus parses it with Go's ParseFloat,
// which accepts both "0.5" and "5e-05", but spells the special values its own way.
void append_double(std::string& out, double v) {
  if (std::isnan(v)) { out += "NaN"; return; }
  if (std::isinf(v)) { out += v > 0 ? "+Inf" : "-Inf"; return; }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void append_help(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

}  // namespace

Histogram::Histogram(std::span<const double> upper_bounds) {
  assert(std::adjacent_find(upper_bounds.begin(), upper_bounds.end(), std::greater_equal<>()) == upper_bounds.end());
  // A non-finite bound would be rendered as a second +Inf bucket (or a NaN one): keep them out
  // even when assertions are off.
  std::copy_if(upper_bounds.begin(), upper_bounds.end(), std::back_inserter(bounds_),
               [](double b) { return std::isfinite(b); });
  assert(bounds_.size() == upper_bounds.size());
  buckets_ = std::vector<Counter>(bounds_.size() + 1);
}

void Histogram::observe(double seconds) noexcept {
  if (std::isnan(seconds)) return;
  const auto i = std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin();
  buckets_[static_cast<std::size_t>(i)].add();
  sum_.store(sum_.load(std::memory_order_relaxed) + seconds, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.reserve(bounds_.size());
  // Each bucket is read once and accumulated here, so the counts are cumulative and monotonic
  // however far the writer gets meanwhile.
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    running += buckets_[i].value();
    s.cumulative.push_back(running);
  }
  s.count = running + buckets_.back().value();
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

void Histogram::Snapshot::merge(const Snapshot& other) {
  if (bounds.empty() && count == 0) {
    bounds = other.bounds;
    cumulative.assign(bounds.size(), 0);
  }
  assert(bounds == other.bounds && cumulative.size() == other.cumulative.size());
  const std::size_t n = std::min(cumulative.size(), other.cumulative.size());
  for (std::size_t i = 0; i < n; ++i) cumulative[i] += other.cumulative[i];
  count += other.count;
  sum += other.sum;
}

void MetricsWriter::family(std::string_view name, std::string_view help, Type type) {
  assert(valid_metric_name(name));
  if (name == current_) {
    assert(seen_.at(current_) == type);
    return;
  }
  assert(!seen_.contains(std::string(name)) && "families must not interleave");
  current_ = name;
  seen_.emplace(current_, type);
  out_ += "# HELP ";
  out_ += name;
  if (!help.empty()) {
    out_ += ' ';
    append_help(out_, help);
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += type == Type::counter ? " counter\n" : type == Type::gauge ? " gauge\n" : " histogram\n";
}

void MetricsWriter::sample(std::string_view name, std::string_view suffix, const Labels& labels, std::string_view le,
                           std::string_view value) {
  out_ += name;
  out_ += suffix;
  if (!labels.empty() || !le.empty()) {
    char sep = '{';
    for (const auto& [label, v] : labels) {
      assert(valid_label_name(label));
      out_ += sep;
      out_ += label;
      out_ += "=\"";
      append_label_value(out_, v);
      out_ += '"';
      sep = ',';
    }
    if (!le.empty()) {
      out_ += sep;
      out_ += "le=\"";
      out_ += le;
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

void MetricsWriter::counter(std::string_view name, std::string_view help, const Labels& labels, std::uint64_t value) {
  assert(name.ends_with("_total"));
  family(name, help, Type::counter);
  std::string v;
  append_uint(v, value);
  sample(name, {}, labels, {}, v);
}

void MetricsWriter::gauge(std::string_view name, std::string_view help, const Labels& labels, double value) {
  family(name, help, Type::gauge);
  std::string v;
  append_double(v, value);
  sample(name, {}, labels, {}, v);
}

void MetricsWriter::histogram(std::string_view name, std::string_view help, const Labels& labels,
                              const Histogram::Snapshot& s) {
  family(name, help, Type::histogram);
  assert(s.cumulative.size() == s.bounds.size());
  std::string le, v;
  const std::size_t n = std::min(s.bounds.size(), s.cumulative.size());
  for (std::size_t i = 0; i < n; ++i) {
    le.clear();
    v.clear();
    append_double(le, s.bounds[i]);
    append_uint(v, s.cumulative[i]);
    sample(name, "_bucket", labels, le, v);
  }
  v.clear();
  append_uint(v, s.count);
  sample(name, "_bucket", labels, "+Inf", v);
  std::string sum;
  append_double(sum, s.sum);
  sample(name, "_sum", labels, {}, sum);
  sample(name, "_count", labels, {}, v);
}

std::string MetricsWriter::take() {
  std::string text = std::move(out_);
  out_.clear();
  current_.clear();
  seen_.clear();
  return text;
}

}  // namespace jwtgate::proxy
