// Revocations kept in Redis and shared by every sidecar: a full load (SCAN of the key prefix,
// then GETRANGE of each key) once subscribed, so no change published meanwhile is missed, again on every
// reconnect and every resync_interval; between loads, each PUBLISHed entry applies at once.
// Two connections: a subscribed one can run no other command.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/revocation.h"
#include "proxy/revocation/redis_link.h"

namespace jwtgate::proxy {

struct RedisSourceHooks {
  std::function<void(std::vector<core::RevocationRecord>&& all)> loaded;  // a full load finished
  std::function<void(const core::RevocationRecord& r)> changed;           // one published entry
  std::function<void()> state;  // in sync or out of it
};

class RedisRevocationSource {
 public:
  RedisRevocationSource(uv_loop_t* loop, const config::RevocationRedis& config, RedisSettings settings,
                        RedisSourceHooks hooks);
  ~RedisRevocationSource();
  RedisRevocationSource(const RedisRevocationSource&) = delete;
  RedisRevocationSource& operator=(const RedisRevocationSource&) = delete;

  void start();
  void close();

  // Subscribed, and a full load finished since the last (re)connect.
  bool in_sync() const { return in_sync_; }
  bool synced_once() const { return last_sync_ > 0; }
  std::int64_t last_sync() const { return last_sync_; }  // seconds since the epoch; 0: never
  std::uint64_t failures() const { return failures_; }
  const std::string& last_error() const { return last_error_; }

  // Stores `entry` under its key with a TTL to its end and publishes it. False (nothing sent)
  // when not in sync; `done` later says whether Redis took it.
  bool write(const core::RevocationEntry& entry, std::function<void(bool ok)> done);

  // The Redis key of an entry: key_prefix, the kind, ':', the digest's hex, then ':' before (a
  // subject's) and ':' exp.
  static std::string key_for(const std::string& prefix, const core::RevocationEntry& entry);
  // SET key value [EXAT end]: the command every writer (this source, `jwtgate revoke`) stores an
  // entry with. A jti key outlives its token's exp by clock skews up to 5m.
  static std::vector<std::string> store_command(const std::string& prefix, const core::RevocationEntry& entry);

 private:
  void connect();
  void resolve_then_connect();
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
  void link_down(const std::string& why);
  void begin_load();
  void scan(std::string cursor);
  void finish_load();
  void set_in_sync(bool v);
  static void on_retry(uv_timer_t* t);
  static void on_resync(uv_timer_t* t);
  static void on_heartbeat(uv_timer_t* t);

  uv_loop_t* loop_;
  config::RevocationRedis config_;
  RedisSettings settings_;
  RedisSourceHooks hooks_;
  std::unique_ptr<RedisLink> cmd_, sub_;
  std::unique_ptr<uv_timer_t> retry_timer_, resync_timer_, heartbeat_timer_;
  bool resolving_ = false;
  std::vector<std::string> addresses_;  // url.host resolved, tried in turn
  std::size_t address_index_ = 0;
  std::uint64_t ping_sent_ms_ = 0;  // uv_now when the PING not yet answered went out; 0: none
  bool subscribed_ = false, loading_ = false, in_sync_ = false, closed_ = false, down_ = false;
  std::uint64_t generation_ = 0;  // of the links; replies of older links are ignored
  std::vector<core::RevocationRecord> loading_records_;
  std::size_t bad_values_ = 0;
  bool scan_done_ = false;        // the last SCAN of a load has answered
  std::size_t pending_gets_ = 0;  // reads of a load not answered yet
  std::int64_t last_sync_ = 0;
  std::uint64_t failures_ = 0;
  std::chrono::milliseconds backoff_{200};
  std::string last_error_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once closed
};

}  // namespace jwtgate::proxy
