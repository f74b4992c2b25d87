// Metric primitives and their Prometheus text rendering (exposition format 0.0.4). Each worker
// thread owns its own counters, gauges and histograms and is their only writer, so the request
// path never executes a locked instruction; a scrape on another thread reads every worker's
// values and sums them.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace jwtgate::proxy {

// Written by one thread, read by any: a relaxed load+store (no locked instruction) keeps reads
// race-free. A reader sees some value the writer stored, never a torn one.
class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// Same single-writer rule; also usable as a gauge that goes up and down (set/add/sub).
class Gauge {
 public:
  void set(std::int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t n) noexcept { store_offset(static_cast<std::uint64_t>(n)); }
  void sub(std::int64_t n) noexcept { store_offset(0 - static_cast<std::uint64_t>(n)); }
  std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  // Unsigned arithmetic wraps where signed overflow would be undefined.
  void store_offset(std::uint64_t n) noexcept {
    const auto v = static_cast<std::uint64_t>(v_.load(std::memory_order_relaxed)) + n;
    v_.store(static_cast<std::int64_t>(v), std::memory_order_relaxed);
  }
  std::atomic<std::int64_t> v_{0};
};

// Fixed bucket upper bounds in seconds; observe() is O(log buckets), single writer.
class Histogram {
 public:
  // Copies bounds, which must be finite and strictly increasing; +Inf is implied.
  explicit Histogram(std::span<const double> upper_bounds);
  // A value falls in the first bucket whose bound is >= it (Prometheus' `le`). NaN is dropped:
  // it would turn _sum into NaN for the life of the process.
  void observe(double seconds) noexcept;

  // Snapshot for rendering: cumulative counts per bound, +Inf count, sum.
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // one per bound
    std::uint64_t count = 0;                // the +Inf bucket
    double sum = 0;
    // Adds `other`, which must have the same bounds; an empty (default) snapshot takes its bounds,
    // so per-worker snapshots can be folded into a default-constructed one.
    void merge(const Snapshot& other);
  };
  // `count` is derived from the bucket counts, so it always equals the +Inf bucket even while the
  // writer observes; `sum` may lag or lead it by the observations in flight.
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::vector<Counter> buckets_;  // bounds_.size() + 1; the last is +Inf; not cumulative
  std::atomic<double> sum_{0};
};

inline constexpr double kLatencyBuckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Label names (valid Prometheus label names, not "le") and values (any text; escaped on output).
using Labels = std::vector<std::pair<std::string_view, std::string>>;

// Prometheus text exposition format 0.0.4 writer.
class MetricsWriter {
 public:
  // One # HELP and # TYPE per family, written when the family is first used; families must not
  // interleave (all samples of a family are written before the next family starts).
  // Counter names end in `_total`.
  void counter(std::string_view name, std::string_view help, const Labels& labels, std::uint64_t value);
  void gauge(std::string_view name, std::string_view help, const Labels& labels, double value);
  // Writes name_bucket{...,le="..."} for every bound and +Inf, then name_sum and name_count.
  void histogram(std::string_view name, std::string_view help, const Labels& labels, const Histogram::Snapshot& s);
  // The text so far; the writer starts afresh.
  std::string take();

 private:
  enum class Type { counter, gauge, histogram };
  void family(std::string_view name, std::string_view help, Type type);
  void sample(std::string_view name, std::string_view suffix, const Labels& labels, std::string_view le,
              std::string_view value);

  std::string out_;
  std::string current_;  // the family being written
  // Families already written, to catch interleaving or a name reused with another type.
  std::unordered_map<std::string, Type> seen_;
};

}  // namespace jwtgate::proxy
