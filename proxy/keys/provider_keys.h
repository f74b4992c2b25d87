// One provider's key set over time, on the control loop: where the keys come from (jwks.file,
// jwks.uri, OIDC discovery, an HMAC secret), when they are fetched again (periodic with jitter,
// Cache-Control, exponential backoff, a rate-limited refresh for unknown kids), how long the last
// good set may be served (stale_max), and the cache file that survives restarts during an IdP
// outage. Each new set is handed to `publish`; the workers swap it in atomically.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "config/bounded_file.h"
#include "config/config.h"
#include "core/jwk.h"
#include "core/secret_bytes.h"
#include "proxy/keys/file_watch.h"
#include "proxy/keys/http_fetcher.h"

namespace jwtgate::proxy {

struct ProviderKeysHooks {
  // The provider's new key set; nullptr when it has none it may use (not ready).
  std::function<void(std::shared_ptr<const core::KeySet>)> publish;
  // A refresh attempt ended (or an unknown-kid refresh was refused by the cooldown): requests
  // waiting for new keys can be decided now.
  std::function<void()> refreshed;
};

struct ProviderKeyStats {
  std::uint64_t fetches = 0;             // attempts: file reads, JWKS or discovery fetches
  std::uint64_t fetch_failures = 0;      // attempts that kept the previous set
  std::uint64_t unknown_kid_refreshes = 0;
  std::uint64_t unknown_kid_throttled = 0;  // refused by min_refresh_interval
  std::uint64_t key_sets_published = 0;
};

class ProviderKeys {
 public:
  ProviderKeys(uv_loop_t* loop, HttpFetcher& fetcher, config::Provider provider,
               std::optional<core::SecretBytes> secret, ProviderKeysHooks hooks);
  ~ProviderKeys();
  ProviderKeys(const ProviderKeys&) = delete;
  ProviderKeys& operator=(const ProviderKeys&) = delete;

  void start();
  void close();
  // A worker saw a token whose kid is not in the set: fetch now, unless an attempt is running
  // (its end answers) or one started less than min_refresh_interval ago (answered at once).
  void refresh_for_unknown_kid();

  bool ready() const { return ready_; }
  // "ready", "ready (stale: ...)" or why the provider has no usable keys.
  std::string status() const;
  const ProviderKeyStats& stats() const { return stats_; }
  const std::string& name() const { return provider_.name; }
  const config::Provider& provider() const { return provider_; }
  // The set last published (nullptr: none usable).
  const std::shared_ptr<const core::KeySet>& current() const { return current_; }
  std::size_t key_count() const { return current_ ? current_->keys.size() : 0; }
  // Wall-clock seconds of the last good fetch or read; 0 before the first.
  std::int64_t last_success() const { return last_success_wall_; }
  // A reload keeps this provider (its source is unchanged): it now reports through `hooks`.
  void rebind(ProviderKeysHooks hooks) { hooks_ = std::move(hooks); }
  // Reads a file source again now (a reload asks for it).
  void reread();

 private:
  enum class Source { secret_only, file, uri, discovery };
  struct Timer;

  void refresh();
  void fetch_jwks(const std::string& url);
  void on_document(const std::string& text, std::optional<std::chrono::seconds> max_age, const std::string& origin);
  void fail(const std::string& why);
  void finish_attempt(std::chrono::milliseconds next);
  void publish(core::KeySet set, const std::string& origin);
  void read_jwks_file();
  void on_jwks_file(config::BoundedFile file);
  void read_cache_file();
  void on_cache_file(config::BoundedFile file);
  void write_cache_file(const std::string& text);
  void arm_stale_timer();
  void expire_if_stale();
  FetchOptions fetch_options() const;
  double jitter();
  std::chrono::milliseconds next_retry();

  uv_loop_t* loop_;
  HttpFetcher& fetcher_;
  config::Provider provider_;
  std::optional<core::SecretBytes> secret_;
  ProviderKeysHooks hooks_;
  Source source_;
  std::unique_ptr<Timer> refresh_timer_;
  std::unique_ptr<Timer> stale_timer_;
  std::unique_ptr<FileWatch> watch_;
  // Fetch callbacks hold a weak reference: a provider closed mid-fetch ignores the result.
  std::shared_ptr<ProviderKeys*> self_;
  std::mt19937_64 rng_;

  bool ready_ = false;
  bool in_flight_ = false;
  bool attempted_ = false;
  bool cache_tried_ = false;
  bool rediscover_ = false;  // the next discovery attempt reads the discovery document again
  // File reads: the first (in start(), before the loop serves anything) is done at once, every
  // later one on the thread pool. A change noticed during a read is read again after it.
  bool read_at_once_ = false;
  bool reread_wanted_ = false;
  // One cache_file write at a time, so an older set never lands after a newer one.
  bool cache_writing_ = false;
  std::optional<std::string> cache_pending_;
  unsigned failures_ = 0;
  std::uint64_t last_attempt_ms_ = 0;  // uv_now at the start of the last attempt
  std::int64_t last_good_wall_ = 0;    // wall clock (s) of the last good set (cache file: its mtime)
  std::string current_text_;           // the document behind the published set
  std::shared_ptr<const core::KeySet> current_;
  std::vector<std::string> current_kids_;
  std::int64_t last_success_wall_ = 0;
  bool stale_logged_ = false;
  std::string cache_written_text_;
  std::string jwks_uri_;               // discovery: the document's jwks_uri once known
  std::string last_error_;
  ProviderKeyStats stats_;
};

}  // namespace jwtgate::proxy
