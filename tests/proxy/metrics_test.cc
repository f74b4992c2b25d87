#include "proxy/admin/metrics.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

#include <doctest/doctest.h>

#include "tests/support/process.h"

using namespace jwtgate;
using namespace jwtgate::proxy;

namespace {

// Binary fractions, so sums are exact and the rendered text can be compared byte for byte.
constexpr double kSmallBounds[] = {0.125, 0.5, 1};

std::string render_gauge(double v) {
  MetricsWriter w;
  w.gauge("g", "h", {}, v);
  std::string text = w.take();
  const auto last_line = text.rfind('\n', text.size() - 2);
  return text.substr(last_line + 3, text.size() - last_line - 4);  // after "\ng ", before "\n"
}

}  // namespace

TEST_CASE("counters and gauges hold what their single writer stored") {
  Counter c;
  CHECK(c.value() == 0);
  c.add();
  c.add(41);
  CHECK(c.value() == 42);

  Gauge g;
  CHECK(g.value() == 0);
  g.set(10);
  g.add(5);
  g.sub(20);
  CHECK(g.value() == -5);
  g.add(-1);
  CHECK(g.value() == -6);
  g.set(std::numeric_limits<std::int64_t>::min());
  g.sub(std::numeric_limits<std::int64_t>::min());
  CHECK(g.value() == 0);
}

TEST_CASE("histogram buckets are le-inclusive, cumulative in snapshots, and NaN is dropped") {
  Histogram h(kSmallBounds);
  auto empty = h.snapshot();
  CHECK(empty.bounds == std::vector<double>{0.125, 0.5, 1});
  CHECK(empty.cumulative == std::vector<std::uint64_t>{0, 0, 0});
  CHECK(empty.count == 0);
  CHECK(empty.sum == 0);

  h.observe(0.0625);
  h.observe(0.125);  // exactly on a bound: that bucket
  h.observe(0.25);
  h.observe(2);      // above every bound: only +Inf
  h.observe(-1);     // a clock step backwards: the first bucket, not lost
  h.observe(std::nan(""));
  const auto s = h.snapshot();
  CHECK(s.cumulative == std::vector<std::uint64_t>{3, 4, 4});
  CHECK(s.count == 5);
  CHECK(s.sum == 1.4375);

  Histogram latency(kLatencyBuckets);
  latency.observe(0.00005);
  latency.observe(0.0003);
  latency.observe(11);
  const auto l = latency.snapshot();
  REQUIRE(l.bounds.size() == std::size(kLatencyBuckets));
  CHECK(l.cumulative.front() == 1);
  CHECK(l.cumulative[2] == 1);   // le 0.00025
  CHECK(l.cumulative[3] == 2);   // le 0.0005
  CHECK(l.cumulative.back() == 2);
  CHECK(l.count == 3);
}

TEST_CASE("Snapshot::merge sums counts and sums; a default snapshot takes the bounds") {
  Histogram a(kSmallBounds), b(kSmallBounds);
  a.observe(0.0625);
  a.observe(0.75);
  b.observe(0.25);
  b.observe(4);
  b.observe(0.125);

  Histogram::Snapshot total;
  total.merge(a.snapshot());
  total.merge(b.snapshot());
  CHECK(total.bounds == std::vector<double>{0.125, 0.5, 1});
  CHECK(total.cumulative == std::vector<std::uint64_t>{2, 3, 4});
  CHECK(total.count == 5);
  CHECK(total.sum == 0.0625 + 0.75 + 0.25 + 4 + 0.125);

  // Merging an untouched histogram changes nothing.
  Histogram idle(kSmallBounds);
  total.merge(idle.snapshot());
  CHECK(total.cumulative == std::vector<std::uint64_t>{2, 3, 4});
  CHECK(total.count == 5);

  Histogram::Snapshot none;
  none.merge(idle.snapshot());
  CHECK(none.bounds == std::vector<double>{0.125, 0.5, 1});
  CHECK(none.cumulative == std::vector<std::uint64_t>{0, 0, 0});
}

TEST_CASE("the writer renders HELP/TYPE once per family, escapes labels and help, and writes whole histograms") {
  Histogram h(kSmallBounds);
  for (double v : {0.0625, 0.125, 0.25, 2.0}) h.observe(v);

  MetricsWriter w;
  w.counter("jwtgate_requests_total", "Requests by \"route\" \\ outcome.\nSecond line.",
            {{"route", "/a\"b\\c\nd"}, {"outcome", "allowed"}}, 3);
  w.counter("jwtgate_requests_total", "Requests by \"route\" \\ outcome.\nSecond line.",
            {{"route", "/x"}, {"outcome", "denied"}}, 0);
  w.gauge("jwtgate_connections_active", "Open client connections.", {}, 2);
  w.histogram("jwtgate_verify_seconds", "Time to verify a token.", {{"provider", "p"}}, h.snapshot());
  w.histogram("jwtgate_verify_seconds", "Time to verify a token.", {{"provider", "q"}}, Histogram(kSmallBounds).snapshot());
  CHECK(w.take() ==
        "# HELP jwtgate_requests_total Requests by \"route\" \\\\ outcome.\\nSecond line.\n"
        "# TYPE jwtgate_requests_total counter\n"
        "jwtgate_requests_total{route=\"/a\\\"b\\\\c\\nd\",outcome=\"allowed\"} 3\n"
        "jwtgate_requests_total{route=\"/x\",outcome=\"denied\"} 0\n"
        "# HELP jwtgate_connections_active Open client connections.\n"
        "# TYPE jwtgate_connections_active gauge\n"
        "jwtgate_connections_active 2\n"
        "# HELP jwtgate_verify_seconds Time to verify a token.\n"
        "# TYPE jwtgate_verify_seconds histogram\n"
        "jwtgate_verify_seconds_bucket{provider=\"p\",le=\"0.125\"} 2\n"
        "jwtgate_verify_seconds_bucket{provider=\"p\",le=\"0.5\"} 3\n"
        "jwtgate_verify_seconds_bucket{provider=\"p\",le=\"1\"} 3\n"
        "jwtgate_verify_seconds_bucket{provider=\"p\",le=\"+Inf\"} 4\n"
        "jwtgate_verify_seconds_sum{provider=\"p\"} 2.4375\n"
        "jwtgate_verify_seconds_count{provider=\"p\"} 4\n"
        "jwtgate_verify_seconds_bucket{provider=\"q\",le=\"0.125\"} 0\n"
        "jwtgate_verify_seconds_bucket{provider=\"q\",le=\"0.5\"} 0\n"
        "jwtgate_verify_seconds_bucket{provider=\"q\",le=\"1\"} 0\n"
        "jwtgate_verify_seconds_bucket{provider=\"q\",le=\"+Inf\"} 0\n"
        "jwtgate_verify_seconds_sum{provider=\"q\"} 0\n"
        "jwtgate_verify_seconds_count{provider=\"q\"} 0\n");

  // take() starts afresh: the family gets its HELP/TYPE again in the next scrape.
  w.histogram("h_seconds", "", {}, Histogram(std::span<const double>()).snapshot());
  CHECK(w.take() ==
        "# HELP h_seconds\n"
        "# TYPE h_seconds histogram\n"
        "h_seconds_bucket{le=\"+Inf\"} 0\n"
        "h_seconds_sum 0\n"
        "h_seconds_count 0\n");
}

TEST_CASE("floats are rendered in forms Prometheus parses") {
  CHECK(render_gauge(0.00005) == "5e-05");
  CHECK(render_gauge(2.5) == "2.5");
  CHECK(render_gauge(-3) == "-3");
  CHECK(render_gauge(1e6) == "1e+06");
  CHECK(render_gauge(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(render_gauge(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(render_gauge(std::nan("")) == "NaN");
  CHECK(kMetricsContentType == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("a single-writer counter reads consistently from another thread while it is incremented") {
  constexpr std::uint64_t kIncrements = 1'000'000;
  Counter c;
  Histogram h(kSmallBounds);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < kIncrements; ++i) {
      c.add();
      if (i % 16 == 0) h.observe(static_cast<double>(i % 4) * 0.25);
    }
    done.store(true, std::memory_order_release);
  });

  std::uint64_t last = 0, reads = 0, backwards = 0, inconsistent_snapshots = 0;
  while (!done.load(std::memory_order_acquire)) {
    const std::uint64_t v = c.value();
    if (v < last) ++backwards;
    last = v;
    if (++reads % 256 == 0) {
      const auto s = h.snapshot();
      for (std::size_t i = 1; i < s.cumulative.size(); ++i)
        if (s.cumulative[i] < s.cumulative[i - 1]) ++inconsistent_snapshots;
      if (s.count < s.cumulative.back()) ++inconsistent_snapshots;
    }
  }
  writer.join();
  CHECK(backwards == 0);
  CHECK(inconsistent_snapshots == 0);
  CHECK(c.value() == kIncrements);
  CHECK(h.snapshot().count == kIncrements / 16);
}

TEST_CASE("promtool check metrics accepts the rendered text without a complaint") {
  const std::string promtool = JWTGATE_PROMTOOL;
  REQUIRE_MESSAGE(access(promtool.c_str(), X_OK) == 0,
                  promtool << " is missing: run scripts/install-deps.sh to unpack promtool into .deps/prometheus");

  Histogram fast(kLatencyBuckets), slow(kLatencyBuckets);
  for (double v : {0.00004, 0.0002, 0.003, 0.04}) fast.observe(v);
  for (double v : {0.3, 1.5, 12.0}) slow.observe(v);
  Histogram::Snapshot all;
  all.merge(fast.snapshot());
  all.merge(slow.snapshot());

  MetricsWriter w;
  const char* help = "Requests by route and outcome; \"route\" is the matched prefix \\ or empty.\nOne per request.";
  w.counter("jwtgate_requests_total", help, {{"route", "/api/\"v1\"\\x\n"}, {"outcome", "allowed"}}, 12);
  w.counter("jwtgate_requests_total", help, {{"route", "/api/\"v1\"\\x\n"}, {"outcome", "denied"}}, 0);
  w.counter("jwtgate_requests_total", help, {{"route", ""}, {"outcome", "no_route"}}, 3);
  w.gauge("jwtgate_connections_active", "Client connections currently open.", {}, 7);
  w.gauge("jwtgate_provider_keys", "Keys in each provider's published set.", {{"provider", "idp"}}, 2.5);
  w.histogram("jwtgate_upstream_seconds", "Time from forwarding a request to the upstream's response head.",
              {{"route", "/api"}}, fast.snapshot());
  w.histogram("jwtgate_upstream_seconds", "Time from forwarding a request to the upstream's response head.",
              {{"route", "/slow"}}, slow.snapshot());
  w.histogram("jwtgate_verify_seconds", "Time to verify a token's signature and claims.", {}, all);
  const std::string text = w.take();

  const auto r = testing::run_process({promtool, "check", "metrics"}, text);
  INFO("promtool said:\n", r.out, r.err, "\nabout:\n", text);
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
  CHECK(r.err.empty());
}
