#include "proxy/revocation/redis_revocation_source.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>

#include <algorithm>
#include <ctime>

#include "proxy/admin/log.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

constexpr std::chrono::milliseconds kMaxBackoff{2000};
constexpr std::uint64_t kHeartbeatMs = 1000;
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
  static constexpr const char* kKind[] = {"jti:", "sub:", "sid:", "logout:"};
  // The end (and a subject's cut-off) are part of the name: a later revocation of the same
  // subject or session with an earlier cut-off or a shorter life is a key of its own, and cannot
  // weaken one written before it. Writing the same revocation twice still writes one key.
  std::string key = prefix + kKind[static_cast<int>(entry.kind)] + (d ? core::revocation_digest_hex(*d) : std::string("x"));
  if (entry.kind == core::RevocationKind::subject) key += ":" + std::to_string(entry.before);
  key += ":" + (entry.exp ? std::to_string(*entry.exp) : std::string("-"));
  return key;
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
  heartbeat_timer_ = std::make_unique<uv_timer_t>();
  uv_timer_init(loop_, heartbeat_timer_.get());
  heartbeat_timer_->data = this;
  uv_timer_start(heartbeat_timer_.get(), on_heartbeat, kHeartbeatMs, kHeartbeatMs);
  resolve_then_connect();
}

void RedisRevocationSource::close() {
  if (closed_) return;
  closed_ = true;
  *alive_ = false;  // a lookup still running finds nobody
  if (cmd_) cmd_->close();
  if (sub_) sub_->close();
  // The handles outlive this object until libuv has closed them.
  if (retry_timer_) close_handle(reinterpret_cast<uv_handle_t*>(retry_timer_.release()), free_timer);
  if (resync_timer_) close_handle(reinterpret_cast<uv_handle_t*>(resync_timer_.release()), free_timer);
  if (heartbeat_timer_) close_handle(reinterpret_cast<uv_handle_t*>(heartbeat_timer_.release()), free_timer);
}

void RedisRevocationSource::connect() {
  if (closed_) return;
  ++generation_;
  down_ = false;
  ping_sent_ms_ = 0;
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
  ++generation_;  // replies still queued on the failed links are not believed
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
  // A name with several addresses (AAAA and A, several A records): the next one before the name
  // is looked up again.
  if (self->address_index_ + 1 < self->addresses_.size()) {
    self->settings_.address = self->addresses_[++self->address_index_];
    self->connect();
    return;
  }
  self->resolve_then_connect();
}

namespace {
struct Resolve {
  uv_getaddrinfo_t req{};
  RedisRevocationSource* source = nullptr;
  std::shared_ptr<bool> alive;
};
}  // namespace

void RedisRevocationSource::resolve_then_connect() {
  in6_addr a6;
  in_addr a4;
  const std::string& host = config_.url.host;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    settings_.address.clear();
    addresses_.clear();
    connect();
    return;
  }
  // On libuv's thread pool: a slow DNS server must not stop the control loop (the admin
  // listener, signals) at every reconnect.
  if (resolving_) return;
  resolving_ = true;
  auto r = std::make_unique<Resolve>();
  r->req.data = r.get();
  r->source = this;
  r->alive = alive_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (uv_getaddrinfo(loop_, &r->req, on_resolved, host.c_str(), nullptr, &hints) == 0) {
    r.release();  // on_resolved takes it back
  } else {
    resolving_ = false;
    down_ = false;
    link_down("cannot resolve " + host);
  }
}

void RedisRevocationSource::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  std::unique_ptr<Resolve> r(static_cast<Resolve*>(req->data));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(res, uv_freeaddrinfo);
  if (!*r->alive) return;
  RedisRevocationSource* self = r->source;
  self->resolving_ = false;
  if (self->closed_) return;
  if (status != 0 || !res) {
    self->down_ = false;  // a failed lookup is one failure like a refused connection
    self->link_down("cannot resolve " + self->config_.url.host + ": " + uv_strerror(status));
    return;
  }
  self->addresses_.clear();
  for (const addrinfo* a = res; a; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    char text[INET6_ADDRSTRLEN] = {};
    const void* addr = a->ai_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr)
                                                : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr);
    if (uv_inet_ntop(a->ai_family, addr, text, sizeof text) == 0 &&
        std::find(self->addresses_.begin(), self->addresses_.end(), text) == self->addresses_.end()) {
      self->addresses_.emplace_back(text);
    }
  }
  if (self->addresses_.empty()) {
    self->down_ = false;
    self->link_down("cannot resolve " + self->config_.url.host + ": no address");
    return;
  }
  self->address_index_ = 0;
  self->settings_.address = self->addresses_[0];
  self->connect();
}

void RedisRevocationSource::on_heartbeat(uv_timer_t* t) {
  auto* self = static_cast<RedisRevocationSource*>(t->data);
  if (self->closed_ || self->down_ || !self->cmd_) return;
  // An idle connection to a server that went silent (a partition, a frozen host) would look
  // healthy until the next resync. hiredis's command timeout restarts with every command sent,
  // so it never fires while commands keep going out: the deadline is kept here.
  const std::uint64_t now = uv_now(self->loop_);
  if (self->ping_sent_ms_ != 0) {
    if (now - self->ping_sent_ms_ > static_cast<std::uint64_t>(self->settings_.command_timeout.count())) {
      self->link_down("no answer to PING for " + std::to_string(now - self->ping_sent_ms_) + " ms");
    }
    return;
  }
  self->ping_sent_ms_ = now;
  const std::uint64_t gen = self->generation_;
  self->cmd_->command({"PING"}, [self, gen](const redisReply* r) {
    if (gen != self->generation_) return;
    if (r) self->ping_sent_ms_ = 0;
  });
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
  // The next SCAN goes out as soon as this one's cursor is known, beside the reads of its keys:
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
    // GETRANGE, not MGET: a value is read only up to the longest entry, so one huge value under
    // the prefix cannot make every sidecar buffer it. The commands go out pipelined.
    const std::string last = std::to_string(core::kMaxRevocationEntryBytes);
    for (std::size_t i = 0; i < keys->elements; ++i) {
      if (keys->element[i]->type != REDIS_REPLY_STRING) continue;
      ++pending_gets_;
      cmd_->command({"GETRANGE", std::string(keys->element[i]->str, keys->element[i]->len), "0", last},
                    [this, gen](const redisReply* e) {
                      if (gen != generation_) return;
                      --pending_gets_;
                      if (!e) {
                        link_down("GETRANGE failed");
                        return;
                      }
                      // An empty string: the key expired (or is not a string) since the SCAN.
                      if (e->type == REDIS_REPLY_STRING && e->len > 0) {
                        auto entry = core::parse_revocation_entry(std::string_view(e->str, e->len));
                        if (!entry) ++bad_values_;
                        else if (auto rec = core::revocation_record(*entry)) loading_records_.push_back(*rec);
                      } else if (e->type == REDIS_REPLY_ERROR) {
                        ++bad_values_;  // WRONGTYPE: a list or hash under the prefix
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
