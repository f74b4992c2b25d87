#include "proxy/admin/log.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

#include "core/json_writer.h"

namespace jwtgate::proxy {
namespace {

constexpr std::size_t kMaxQueuedBytes = 8 * 1024 * 1024;

std::atomic<int> g_level{static_cast<int>(config::LogConfig::Level::info)};
std::atomic<bool> g_text{false};
std::atomic<std::uint64_t> g_dropped{0};

// The single writer. Started on first use and never stopped: it must outlive every thread that
// logs, and at exit whatever is queued is written by the destructor.
class Sink {
 public:
  Sink() : thread_([this] { run(); }) {}
  ~Sink() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  void push(std::string chunk, std::size_t lines) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (queued_ + chunk.size() > kMaxQueuedBytes) {
        g_dropped.fetch_add(lines, std::memory_order_relaxed);
        return;
      }
      queued_ += chunk.size();
      queue_.push_back(std::move(chunk));
    }
    wake_.notify_one();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) return;
      std::deque<std::string> batch;
      batch.swap(queue_);
      queued_ = 0;
      lock.unlock();
      for (const std::string& chunk : batch) write_all(chunk);
      lock.lock();
    }
  }
  static void write_all(const std::string& s) {
    const char* p = s.data();
    std::size_t left = s.size();
    while (left > 0) {
      const ssize_t n = ::write(1, p, left);
      if (n <= 0) return;  // stdout closed: nothing sensible to do with a log line
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  std::size_t queued_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

Sink& sink() {
  static Sink s;
  return s;
}

config::LogConfig::Level parse_level(std::string_view level) {
  if (level == "debug") return config::LogConfig::Level::debug;
  if (level == "warn") return config::LogConfig::Level::warn;
  if (level == "error") return config::LogConfig::Level::error;
  return config::LogConfig::Level::info;
}

void timestamp(std::string& out) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  char ms[24];
  std::snprintf(ms, sizeof ms, ".%03ldZ", ts.tv_nsec / 1000000);
  out += ms;
}

// Text values are quoted when they would otherwise be ambiguous; control characters never reach
// a terminal raw.
void text_value(std::string& out, std::string_view v) {
  const bool quote = v.empty() || v.find_first_of(" \"=\\") != std::string_view::npos;
  if (quote) out += '"';
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", u);
      out += esc;
    } else {
      out += c;
    }
  }
  if (quote) out += '"';
}

std::string render(std::string_view level, std::string_view message, const std::vector<LogBuffer::Field>& fields) {
  std::string ts;
  timestamp(ts);
  if (g_text.load(std::memory_order_relaxed)) {
    std::string out = ts;
    out += ' ';
    for (char c : level) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out += ' ';
    text_value(out, message);
    for (const auto& f : fields) {
      out += ' ';
      out += f.key;
      out += '=';
      text_value(out, f.value);
    }
    out += '\n';
    return out;
  }
  core::JsonWriter w;
  w.begin_object();
  w.key("time");
  w.string(ts);
  w.key("level");
  w.string(level);
  w.key("msg");
  w.string(message);
  for (const auto& f : fields) {
    w.key(f.key);
    if (f.number) w.raw(f.value);
    else w.string(f.value);
  }
  w.end_object();
  std::string out = w.take();
  out += '\n';
  return out;
}

}  // namespace

void set_log_options(const config::LogConfig& options) {
  g_level.store(static_cast<int>(options.level), std::memory_order_relaxed);
  g_text.store(options.format == config::LogConfig::Format::text, std::memory_order_relaxed);
}

bool log_enabled(config::LogConfig::Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

std::uint64_t log_lines_dropped() { return g_dropped.load(std::memory_order_relaxed); }

void log_event(std::string_view level, std::string_view message, LogFields fields) {
  if (!log_enabled(parse_level(level))) return;
  std::vector<LogBuffer::Field> f;
  f.reserve(fields.size());
  for (const auto& [k, v] : fields) f.push_back({k, v});
  sink().push(render(level, message, f), 1);
}

void LogBuffer::append(const std::vector<Field>& fields) {
  text_ += render("info", "access", fields);
  ++lines_;
}

bool LogBuffer::sampled(double rate) {
  if (rate >= 1.0) return true;
  // xorshift64: cheap and good enough to spread the sample evenly.
  sample_state_ ^= sample_state_ << 13;
  sample_state_ ^= sample_state_ >> 7;
  sample_state_ ^= sample_state_ << 17;
  return static_cast<double>(sample_state_ >> 11) * 0x1.0p-53 < rate;
}

void LogBuffer::flush() {
  if (text_.empty()) return;
  sink().push(std::move(text_), lines_);
  text_.clear();
  lines_ = 0;
}

}  // namespace jwtgate::proxy
