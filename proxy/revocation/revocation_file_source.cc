#include "proxy/revocation/revocation_file_source.h"

#include <ctime>

#include "config/bounded_file.h"
#include "proxy/admin/log.h"
#include "proxy/thread_pool_task.h"

namespace jwtgate::proxy {
namespace {

constexpr std::uint64_t kMaxFileBytes = 256ull * 1024 * 1024;  // a few million entries
constexpr std::chrono::milliseconds kPollInterval{10000};

}  // namespace

core::Result<std::vector<core::RevocationRecord>> parse_revocation_lines(std::string_view text) {
  std::vector<core::RevocationRecord> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    auto entry = core::parse_revocation_entry(line);
    if (!entry) {
      return core::Status(core::Reason::malformed, "line " + std::to_string(line_no) + ": " + entry.status().detail());
    }
    auto record = core::revocation_record(*entry);
    if (!record) return core::Status(core::Reason::malformed, "line " + std::to_string(line_no) + ": cannot be digested");
    out.push_back(*record);
  }
  return out;
}

RevocationFileSource::RevocationFileSource(uv_loop_t* loop, std::string path,
                                           std::function<void(std::vector<core::RevocationRecord>&&)> loaded)
    : loop_(loop), path_(std::move(path)), loaded_(std::move(loaded)), self_(std::make_shared<RevocationFileSource*>(this)) {}

RevocationFileSource::~RevocationFileSource() { close(); }

RevocationFileSource::Outcome RevocationFileSource::read(const std::string& path) {
  Outcome o;
  config::BoundedFile f = config::read_bounded_file(path, kMaxFileBytes, "256MiB");
  if (f.ok()) f.error = config::writable_by_others(path, f.mode);
  if (!f.ok()) {
    o.records = core::Status(core::Reason::malformed, f.error);
    return o;
  }
  o.records = parse_revocation_lines(f.text);
  if (!o.records) o.records = core::Status(core::Reason::malformed, path + ": " + o.records.status().detail());
  return o;
}

void RevocationFileSource::start() {
  apply(read(path_));
  watch_ = std::make_unique<FileWatch>(loop_, path_, kPollInterval, [this] { reread(); });
  std::string error;
  if (!watch_->start(error)) {
    log_event("warn", "revocation.file cannot be watched; it is checked every 10s", {{"file", path_}, {"error", error}});
  }
}

void RevocationFileSource::close() {
  if (watch_) watch_->close();
  self_.reset();
}

void RevocationFileSource::reread() {
  if (reading_) {
    reread_wanted_ = true;
    return;
  }
  reading_ = true;
  auto outcome = std::make_shared<Outcome>();
  std::weak_ptr<RevocationFileSource*> weak = self_;
  run_on_thread_pool(
      loop_, [outcome, path = path_] { *outcome = read(path); },
      [weak, outcome] {
        auto self = weak.lock();
        if (!self) return;
        RevocationFileSource& s = **self;
        s.reading_ = false;
        s.apply(std::move(*outcome));
        if (s.reread_wanted_) {
          s.reread_wanted_ = false;
          s.reread();
        }
      });
}

void RevocationFileSource::apply(Outcome&& o) {
  if (!o.records) {
    ++failures_;
    in_sync_ = false;
    if (last_error_ != o.records.status().detail()) {
      last_error_ = o.records.status().detail();
      log_event("error",
                last_load_ > 0 ? "revocation.file refused; the entries of the last good file stay in force"
                               : "revocation.file cannot be loaded",
                {{"file", path_}, {"error", last_error_}});
    }
    return;
  }
  const std::size_t n = o.records->size();
  in_sync_ = true;
  last_error_.clear();
  last_load_ = static_cast<std::int64_t>(std::time(nullptr));
  log_event("info", "revocation.file loaded", {{"file", path_}, {"entries", std::to_string(n)}});
  if (loaded_) loaded_(std::move(*o.records));
}

}  // namespace jwtgate::proxy
