#include "proxy/revocation/revocation_store.h"

#include <algorithm>
#include <ctime>

#include "proxy/admin/log.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

// Changes since the last full rebuild stay in the small table until there are this many; then
// one rebuild folds them into the large one.
constexpr std::size_t kMaxRecent = 4096;
// A burst of published entries costs one new set per this many milliseconds.
constexpr std::uint64_t kPublishDelayMs = 2;
constexpr std::uint64_t kExpireEveryMs = 60 * 1000;

std::int64_t wall_now() { return static_cast<std::int64_t>(std::time(nullptr)); }
void free_timer(uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); }

}  // namespace

RevocationStore::RevocationStore(uv_loop_t* loop, config::Revocation config,
                                 std::function<void(std::shared_ptr<const core::RevocationSet>)> publish)
    : loop_(loop), config_(std::move(config)), publish_(std::move(publish)) {}

RevocationStore::~RevocationStore() { close(); }

bool RevocationStore::start(std::string& error) {
  publish_timer_ = std::make_unique<uv_timer_t>();
  expire_timer_ = std::make_unique<uv_timer_t>();
  uv_timer_init(loop_, publish_timer_.get());
  uv_timer_init(loop_, expire_timer_.get());
  publish_timer_->data = this;
  expire_timer_->data = this;
  uv_timer_start(expire_timer_.get(), on_expire, kExpireEveryMs, kExpireEveryMs);

  if (config_.redis) {
    RedisSettings settings;
    settings.url = config_.redis->url;
    settings.username = config_.redis->username;
    settings.connect_timeout = config_.redis->connect_timeout;
    settings.command_timeout = std::max(config_.redis->connect_timeout * 2, std::chrono::milliseconds(2000));
    if (!read_redis_password(*config_.redis, settings.password, error)) {
      error = "revocation.redis: " + error;
      return false;
    }
    if (config_.redis->url.tls) {
      settings.tls = make_redis_tls(config_.redis->ca_file, error);
      if (!settings.tls) {
        error = "revocation.redis: " + error;
        return false;
      }
    }
    RedisSourceHooks hooks;
    hooks.loaded = [this](std::vector<core::RevocationRecord>&& all) {
      redis_records_ = std::move(all);
      rebuild();
      publish();
    };
    hooks.changed = [this](const core::RevocationRecord& r) {
      redis_records_.push_back(r);
      recent_records_.push_back(r);
      if (recent_records_.size() > kMaxRecent) rebuild();
      else recent_.reset();  // rebuilt at the publish
      schedule_publish();
    };
    hooks.state = [this] { schedule_publish(); };
    redis_ = std::make_unique<RedisRevocationSource>(loop_, *config_.redis, std::move(settings), std::move(hooks));
  }
  if (!config_.file.empty()) {
    file_ = std::make_unique<RevocationFileSource>(loop_, config_.file, [this](std::vector<core::RevocationRecord>&& records) {
      file_records_ = std::move(records);
      rebuild();
      schedule_publish();
    });
    file_->start();
  }
  if (!base_) rebuild();  // the file's load built it already
  publish();  // before the port opens: the first request is checked against it
  if (redis_) redis_->start();
  return true;
}

void RevocationStore::close() {
  if (closed_) return;
  closed_ = true;
  if (file_) file_->close();
  if (redis_) redis_->close();
  if (publish_timer_) close_handle(reinterpret_cast<uv_handle_t*>(publish_timer_.release()), free_timer);
  if (expire_timer_) close_handle(reinterpret_cast<uv_handle_t*>(expire_timer_.release()), free_timer);
}

bool RevocationStore::available() const {
  if (file_ && !file_->loaded_once()) return false;
  if (redis_ && !redis_->in_sync()) return false;
  return true;
}

void RevocationStore::rebuild() {
  const std::int64_t now = wall_now();
  // Logouts applied here are also in Redis (when configured) and come back from its loads; the
  // local copies bridge the gap and are dropped once they end.
  std::erase_if(local_records_, [now](const core::RevocationRecord& r) { return core::revocation_record_ended(r, now); });
  std::vector<core::RevocationRecord> all;
  all.reserve(file_records_.size() + redis_records_.size() + local_records_.size());
  all.insert(all.end(), file_records_.begin(), file_records_.end());
  all.insert(all.end(), redis_records_.begin(), redis_records_.end());
  all.insert(all.end(), local_records_.begin(), local_records_.end());
  base_ = std::make_shared<const core::RevocationTable>(all, now);
  // The expiry timer rebuilds only once something in the table can have ended.
  next_end_ = INT64_MAX;
  for (const core::RevocationRecord& r : all) {
    if (const std::int64_t end = core::revocation_record_end(r); end > now) next_end_ = std::min(next_end_, end);
  }
  recent_records_.clear();
  recent_.reset();
}

void RevocationStore::schedule_publish() {
  if (closed_ || publish_pending_ || !publish_timer_) return;
  publish_pending_ = true;
  uv_timer_start(publish_timer_.get(), on_publish, kPublishDelayMs, 0);
}

void RevocationStore::on_publish(uv_timer_t* t) {
  auto* self = static_cast<RevocationStore*>(t->data);
  self->publish_pending_ = false;
  self->publish();
}

void RevocationStore::on_expire(uv_timer_t* t) {
  auto* self = static_cast<RevocationStore*>(t->data);
  // A rebuild of a million entries holds the control loop for a fraction of a second: not every
  // minute for nothing. Ended entries refuse nothing meanwhile (the check reads their end).
  if (wall_now() < self->next_end_ && self->recent_records_.empty()) return;
  self->rebuild();
  self->publish();
}

void RevocationStore::publish() {
  if (closed_) return;
  if (!recent_ && !recent_records_.empty()) {
    recent_ = std::make_shared<const core::RevocationTable>(recent_records_, wall_now());
  }
  auto set = std::make_shared<core::RevocationSet>();
  set->base = base_;
  set->recent = recent_;
  if (config_.on_unavailable == config::Revocation::OnUnavailable::deny && !available()) {
    set->deny_all = true;
    set->deny_reason = file_ && !file_->loaded_once() ? "revocation.file has not been loaded"
                                                      : "the revocation store (Redis) is out of reach";
  }
  current_ = set;
  if (publish_) publish_(current_);
}

bool RevocationStore::revoke(const core::RevocationEntry& entry, std::string& error, std::function<void(bool)> stored) {
  auto record = core::revocation_record(entry);
  if (!record) {
    error = "the entry cannot be digested";
    return false;
  }
  local_records_.push_back(*record);
  recent_records_.push_back(*record);
  if (recent_records_.size() > kMaxRecent) rebuild();
  else recent_.reset();
  publish();  // at once: the logout holds here before it is answered
  return share(entry, error, std::move(stored));
}

bool RevocationStore::share(const core::RevocationEntry& entry, std::string& error, std::function<void(bool)> stored) {
  if (!redis_) return true;
  const std::string kind(core::revocation_kind_name(entry.kind));
  if (!redis_->write(entry, [kind, stored = std::move(stored)](bool ok) {
        if (!ok) log_event("error", "revocation.redis: a revocation was not stored; other sidecars lack it", {{"kind", kind}});
        if (stored) stored(ok);
      })) {
    error = "Redis is out of reach: the revocation holds on this instance only";
    log_event("error", "revocation.redis: out of reach; a revocation holds on this instance only", {{"kind", kind}});
    return false;
  }
  return true;
}

bool RevocationStore::has_logout(std::string_view iss, std::string_view jti, std::int64_t now) const {
  if (!current_) return false;
  const auto d = core::revocation_digest(core::RevocationKind::logout, iss, jti);
  return d && current_->holds(*d, now);
}

bool RevocationStore::ready(std::string* why) const {
  if (!config_.ready_requires_sync) return true;
  if (file_ && !file_->loaded_once()) {
    if (why) *why = "revocation.file has not been loaded: " + file_->last_error() + "\n";
    return false;
  }
  if (redis_ && !redis_->synced_once()) {
    if (why) *why = "revocation.redis has not synced yet" + (redis_->last_error().empty() ? std::string() : ": " + redis_->last_error()) + "\n";
    return false;
  }
  return true;
}

RevocationStatus RevocationStore::status() const {
  RevocationStatus s;
  for (std::size_t k = 0; k < core::kRevocationKinds; ++k) {
    s.entries[k] = current_ ? current_->size(static_cast<core::RevocationKind>(k)) : 0;
  }
  s.available = available();
  s.has_file = file_ != nullptr;
  s.has_redis = redis_ != nullptr;
  if (file_) {
    s.file_last_sync = file_->last_load();
    s.file_failures = file_->failures();
  }
  if (redis_) {
    s.redis_last_sync = redis_->last_sync();
    s.redis_failures = redis_->failures();
  }
  if (base_) s.table_bytes += base_->memory_bytes();
  if (recent_) s.table_bytes += recent_->memory_bytes();
  return s;
}

}  // namespace jwtgate::proxy
