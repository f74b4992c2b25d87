// The revocations in force, on the control loop: merges the file's entries, Redis's and the
// back-channel logouts applied here, and hands the workers immutable sets (a full rebuild after
// a load, else only the small table of changes since), so a request reads them without a lock.
// Decides availability: with on_unavailable: deny, a set that says so refuses every token.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/revocation.h"
#include "proxy/revocation/redis_revocation_source.h"
#include "proxy/revocation/revocation_file_source.h"

namespace jwtgate::proxy {

struct RevocationStatus {
  std::array<std::size_t, core::kRevocationKinds> entries{};
  bool available = true;
  bool has_file = false, has_redis = false;
  std::int64_t file_last_sync = 0, redis_last_sync = 0;  // seconds since the epoch; 0: never
  std::uint64_t file_failures = 0, redis_failures = 0;
  std::size_t table_bytes = 0;
};

class RevocationStore {
 public:
  // `publish` hands each new set to the workers (Server::publish_revocations).
  RevocationStore(uv_loop_t* loop, config::Revocation config,
                  std::function<void(std::shared_ptr<const core::RevocationSet>)> publish);
  ~RevocationStore();
  RevocationStore(const RevocationStore&) = delete;
  RevocationStore& operator=(const RevocationStore&) = delete;

  // Loads the file (synchronously), starts Redis, and publishes the first set. False with
  // `error` when Redis settings cannot be used (a password file that does not read, a CA file).
  bool start(std::string& error);
  void close();

  // Applies `entry` here at once and, with Redis, writes it there for every sidecar. False when
  // Redis is configured but out of reach (applied here only); `error` says so.
  // `stored`, when given, later says whether Redis took the entry (SET and PUBLISH answered);
  // it is not called when this returns false, nor without Redis.
  bool revoke(const core::RevocationEntry& entry, std::string& error, std::function<void(bool)> stored = nullptr);
  // Only the write to Redis of an entry already applied here (a retried logout). True without
  // Redis.
  bool share(const core::RevocationEntry& entry, std::string& error, std::function<void(bool)> stored = nullptr);
  bool shares_through_redis() const { return redis_ != nullptr; }
  // Whether a logout entry for this issuer's logout token jti holds now (the replay check).
  bool has_logout(std::string_view iss, std::string_view jti, std::int64_t now) const;

  // ready_requires_sync: every source has synced once.
  bool ready(std::string* why) const;
  RevocationStatus status() const;
  const config::Revocation& config() const { return config_; }

 private:
  bool available() const;
  void rebuild();          // base from everything, recent emptied
  void schedule_publish(); // coalesces changes into one publish per loop turn or so
  void publish();
  static void on_publish(uv_timer_t* t);
  static void on_expire(uv_timer_t* t);

  uv_loop_t* loop_;
  config::Revocation config_;
  std::function<void(std::shared_ptr<const core::RevocationSet>)> publish_;
  std::unique_ptr<RevocationFileSource> file_;
  std::unique_ptr<RedisRevocationSource> redis_;
  std::vector<core::RevocationRecord> file_records_, redis_records_, local_records_, recent_records_;
  std::shared_ptr<const core::RevocationTable> base_, recent_;
  std::shared_ptr<const core::RevocationSet> current_;
  std::unique_ptr<uv_timer_t> publish_timer_, expire_timer_;
  bool publish_pending_ = false, closed_ = false;
  std::int64_t next_end_ = INT64_MAX;  // when the first record of the base table ends
};

}  // namespace jwtgate::proxy
