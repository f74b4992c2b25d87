#include "proxy/revocation/redis_revocation_source.h"

#include <hiredis/hiredis.h>

#include <ctime>

#include "proxy/admin/log.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

constexpr std::chrono::milliseconds kMaxBackoff{2000};
// A jti key outlives its token's exp by clock skews up to 5m (check-config warns above that).
constexpr std::int64_t kJtiMargin = 300;

std::int64_t wall_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

void free_timer(uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); }

}  // namespace

RedisRevocationSource::RedisRevocationSource(uv_loop_t* loop, const config::RevocationRedis& config,
                                             RedisSettings settings, RedisSourceHooks hooks)
    : loop_(loop), config_(config), settings_(std::move(settings)), hooks_(std::move(hooks)) {}

RedisRevocationSource::~RedisRevocationSource() { close(); }

std::string RedisRevocationSource::key_for(const std::string& prefix, const core::RevocationEntry& entry) {
  auto d = core::revocation_digest(entry);
  static constexpr const char* kKind[] = {"jti:", "sub:", "sid:"};
  return prefix + kKind[static_cast<int>(entry.kind)] + (d ? core::revocation_digest_hex(*d) : std::string("x"));
}

void RedisRevocationSource::start() {
  retry_timer_ = std::make_unique<uv_timer_t>();
  resync_timer_ = std::make_unique<uv_timer_t>();
  uv_timer_init(loop_, retry_timer_.get());
  uv_timer_init(loop_, resync_timer_.get());
  retry_timer_->data = this;
  resync_timer_->data = this;
  const auto every = static_cast<std::uint64_t>(config_.resync_interval.count());
  uv_timer_start(resync_timer_.get(), on_resync, every, every);
  connect();
}

void RedisRevocationSource::close() {
  if (closed_) return;
  closed_ = true;
  if (cmd_) cmd_->close();
  if (sub_) sub_->close();
  // The handles outlive this object until libuv has closed them.
  if (retry_timer_) close_handle(reinterpret_cast<uv_handle_t*>(retry_timer_.release()), free_timer);
  if (resync_timer_) close_handle(reinterpret_cast<uv_handle_t*>(resync_timer_.release()), free_timer);
}

void RedisRevocationSource::connect() {
  if (closed_) return;
  ++generation_;
  down_ = false;
  subscribed_ = false;
  loading_ = false;
  const std::uint64_t gen = generation_;
  auto down = [this, gen](std::string why) {
    if (gen == generation_) link_down(why);
  };
  RedisSettings sub_settings = settings_;
  sub_settings.command_timeout = std::chrono::milliseconds(0);  // a subscription is idle by nature
  cmd_ = std::make_unique<RedisLink>(loop_, settings_, down);
  sub_ = std::make_unique<RedisLink>(loop_, sub_settings, down);
  std::string error;
  if (!cmd_->start(error) || !sub_->start(error)) {
    link_down(error);
    return;
  }
  sub_->subscribe(
      config_.channel,
      [this, gen] {
        if (gen != generation_) return;
        subscribed_ = true;
        begin_load();
      },
      [this, gen](std::string_view message) {
        if (gen != generation_) return;
        auto entry = core::parse_revocation_entry(message);
        if (!entry) {
          log_event("warn", "revocation.redis: a published message is not a revocation entry; ignored",
                    {{"channel", config_.channel}, {"error", entry.status().detail()}});
          return;
        }
        auto record = core::revocation_record(*entry);
        if (!record) return;
        if (loading_) loading_records_.push_back(*record);  // the load's result must keep it
        if (hooks_.changed) hooks_.changed(*record);
      });
}

void RedisRevocationSource::link_down(const std::string& why) {
  if (closed_ || down_) return;
  down_ = true;
  ++failures_;
  last_error_ = why;
  if (in_sync_ || failures_ == 1 || backoff_ >= kMaxBackoff) {
    log_event(in_sync_ ? "warn" : "info", "revocation.redis: out of reach; the last synced revocations stay in force",
              {{"url", config_.url.text}, {"error", why}});
  }
  set_in_sync(false);
  // The links are replaced from the timer, never from inside their own callbacks.
  uv_timer_start(retry_timer_.get(), on_retry, static_cast<std::uint64_t>(backoff_.count()), 0);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void RedisRevocationSource::on_retry(uv_timer_t* t) {
  auto* self = static_cast<RedisRevocationSource*>(t->data);
  if (self->closed_) return;
  if (self->cmd_) self->cmd_->close();
  if (self->sub_) self->sub_->close();
  self->cmd_.reset();
  self->sub_.reset();
  self->connect();
}

void RedisRevocationSource::on_resync(uv_timer_t* t) {
  auto* self = static_cast<RedisRevocationSource*>(t->data);
  if (self->closed_ || self->down_ || !self->subscribed_ || self->loading_) return;
  self->begin_load();
}

void RedisRevocationSource::begin_load() {
  loading_ = true;
  scan_done_ = false;
  pending_gets_ = 0;
  loading_records_.clear();
  bad_values_ = 0;
  scan("0");
}

void RedisRevocationSource::scan(std::string cursor) {
  const std::uint64_t gen = generation_;
  // The next SCAN goes out as soon as this one's cursor is known, beside the MGET of its keys:
  // a load costs about one round trip per batch, not two.
  cmd_->command({"SCAN", cursor, "MATCH", config_.key_prefix + "*", "COUNT", "5000"}, [this, gen](const redisReply* r) {
    if (gen != generation_) return;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
      link_down(r && r->type == REDIS_REPLY_ERROR ? "SCAN refused: " + std::string(r->str, r->len).substr(0, 200)
                                                  : std::string("SCAN failed"));
      return;
    }
    std::string next(r->element[0]->str, r->element[0]->len);
    const redisReply* keys = r->element[1];
    std::vector<std::string> argv{"MGET"};
    for (std::size_t i = 0; i < keys->elements; ++i) {
      if (keys->element[i]->type == REDIS_REPLY_STRING) argv.emplace_back(keys->element[i]->str, keys->element[i]->len);
    }
    if (argv.size() > 1) {
      ++pending_gets_;
      cmd_->command(argv, [this, gen](const redisReply* v) {
        if (gen != generation_) return;
        --pending_gets_;
        if (!v || v->type != REDIS_REPLY_ARRAY) {
          link_down("MGET failed");
          return;
        }
        for (std::size_t i = 0; i < v->elements; ++i) {
          const redisReply* e = v->element[i];
          if (e->type == REDIS_REPLY_NIL) continue;  // expired between SCAN and MGET
          if (e->type != REDIS_REPLY_STRING) {
            ++bad_values_;
            continue;
          }
          auto entry = core::parse_revocation_entry(std::string_view(e->str, e->len));
          if (!entry) {
            ++bad_values_;
            continue;
          }
          if (auto rec = core::revocation_record(*entry)) loading_records_.push_back(*rec);
        }
        if (scan_done_ && pending_gets_ == 0) finish_load();
      });
    }
    if (next != "0") {
      scan(std::move(next));
    } else {
      scan_done_ = true;
      if (pending_gets_ == 0) finish_load();
    }
  });
}

void RedisRevocationSource::finish_load() {
  loading_ = false;
  if (bad_values_ > 0) {
    log_event("warn", "revocation.redis: values under the key prefix that are not revocation entries were ignored",
              {{"key_prefix", config_.key_prefix}, {"count", std::to_string(bad_values_)}});
  }
  last_sync_ = wall_now();
  backoff_ = std::chrono::milliseconds(200);
  if (hooks_.loaded) hooks_.loaded(std::move(loading_records_));
  loading_records_.clear();
  set_in_sync(true);
}

void RedisRevocationSource::set_in_sync(bool v) {
  if (in_sync_ == v) return;
  in_sync_ = v;
  if (v) log_event("info", "revocation.redis: in sync", {{"url", config_.url.text}});
  if (hooks_.state) hooks_.state();
}

std::vector<std::string> RedisRevocationSource::store_command(const std::string& prefix, const core::RevocationEntry& entry) {
  std::vector<std::string> set{"SET", key_for(prefix, entry), core::revocation_entry_json(entry)};
  if (entry.exp) {
    set.push_back("EXAT");
    set.push_back(std::to_string(*entry.exp + (entry.kind == core::RevocationKind::jti ? kJtiMargin : 0)));
  }
  return set;
}

bool RedisRevocationSource::write(const core::RevocationEntry& entry, std::function<void(bool ok)> done) {
  if (!in_sync_ || !cmd_) return false;
  const std::vector<std::string> set = store_command(config_.key_prefix, entry);
  const std::string& value = set[2];
  auto ok = std::make_shared<bool>(true);
  cmd_->command(set, [ok](const redisReply* r) { *ok = r && r->type != REDIS_REPLY_ERROR; });
  cmd_->command({"PUBLISH", config_.channel, value}, [ok, done = std::move(done)](const redisReply* r) {
    if (done) done(*ok && r && r->type == REDIS_REPLY_INTEGER);
  });
  return true;
}

}  // namespace jwtgate::proxy
