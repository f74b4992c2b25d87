#include "proxy/log.h"

#include <unistd.h>

#include <ctime>

#include "core/json_writer.h"

namespace jwtgate::proxy {

void log_event(std::string_view level, std::string_view message, LogFields fields) {
  char ts[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  core::JsonWriter w;
  w.begin_object();
  w.key("ts");
  w.string(ts);
  w.key("level");
  w.string(level);
  w.key("msg");
  w.string(message);
  for (const auto& [k, v] : fields) {
    w.key(k);
    w.string(v);
  }
  w.end_object();
  std::string line = w.take();
  line += '\n';
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(2, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace jwtgate::proxy
