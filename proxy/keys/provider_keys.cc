#include "proxy/keys/provider_keys.h"

#include <algorithm>
#include <ctime>

#include "config/config_json.h"
#include "config/url_parts.h"
#include "core/oidc_discovery.h"
#include "proxy/admin/log.h"
#include "proxy/keys/private_file_writer.h"
#include "proxy/keys/refresh_policy.h"
#include "proxy/thread_pool_task.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

using std::chrono::milliseconds;

// A file source is re-read on directory events; this periodic stat only catches filesystems
// that send none.
constexpr milliseconds kFilePollInterval{2000};
constexpr milliseconds kDefaultConnectTimeout{2000};

std::int64_t wall_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string seconds_text(std::int64_t s) { return std::to_string(s) + "s"; }

// The kids in `kids` that `other` lacks (all of them when `other` is null), comma-separated.
std::string kids_not_in(const std::vector<std::string>& kids, const std::vector<std::string>* other) {
  std::string out;
  for (const auto& k : kids) {
    if (other && std::find(other->begin(), other->end(), k) != other->end()) continue;
    if (!out.empty()) out += ",";
    out += k;
  }
  return out;
}

}  // namespace

struct ProviderKeys::Timer {
  uv_timer_t handle{};
};

ProviderKeys::ProviderKeys(uv_loop_t* loop, HttpFetcher& fetcher, config::Provider provider,
                           std::optional<core::SecretBytes> secret, ProviderKeysHooks hooks)
    : loop_(loop), fetcher_(fetcher), provider_(std::move(provider)), secret_(std::move(secret)),
      hooks_(std::move(hooks)), self_(std::make_shared<ProviderKeys*>(this)), rng_(std::random_device{}()) {
  const config::JwksConfig& j = provider_.jwks;
  source_ = !j.file.empty() ? Source::file : !j.uri.empty() ? Source::uri : j.discovery ? Source::discovery
                                                                                          : Source::secret_only;
  refresh_timer_ = std::make_unique<Timer>();
  stale_timer_ = std::make_unique<Timer>();
  uv_timer_init(loop_, &refresh_timer_->handle);
  uv_timer_init(loop_, &stale_timer_->handle);
  refresh_timer_->handle.data = this;
  stale_timer_->handle.data = this;
}

ProviderKeys::~ProviderKeys() { close(); }

void ProviderKeys::close() {
  if (!refresh_timer_) return;
  self_.reset();
  if (watch_) watch_->close();
  auto* refresh = reinterpret_cast<uv_handle_t*>(&refresh_timer_->handle);
  auto* stale = reinterpret_cast<uv_handle_t*>(&stale_timer_->handle);
  close_and_free(std::move(refresh_timer_), refresh);
  close_and_free(std::move(stale_timer_), stale);
}

void ProviderKeys::start() {
  if (source_ == Source::secret_only) {
    publish(core::KeySet{}, "hmac secret");
    return;
  }
  if (source_ == Source::file) {
    watch_ = std::make_unique<FileWatch>(loop_, provider_.jwks.file, kFilePollInterval, [this] { refresh(); });
    std::string error;
    if (!watch_->start(error)) {
      log_event("warn", "jwks.file changes are noticed only by polling", {{"provider", provider_.name}, {"error", error}});
    }
  }
  // Before start() returns: the keys of a file are there for the first request (at start-up
  // the loop is not running yet; on a reload this read is bounded and never waits on a FIFO).
  read_at_once_ = true;
  refresh();
  read_at_once_ = false;
}

FetchOptions ProviderKeys::fetch_options() const {
  const config::JwksConfig& j = provider_.jwks;
  FetchOptions o;
  o.timeout = std::chrono::duration_cast<milliseconds>(j.timeout);
  o.connect_timeout = j.connect_timeout ? std::chrono::duration_cast<milliseconds>(*j.connect_timeout)
                                        : std::min(o.timeout, kDefaultConnectTimeout);
  o.max_bytes = j.max_bytes;
  o.ca_file = j.ca_file;
  o.ca_dir = j.ca_dir;
  o.proxy = j.proxy;
  o.proxy_url = j.proxy_url;
  return o;
}

double ProviderKeys::jitter() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

void ProviderKeys::refresh_for_unknown_kid() {
  if (source_ == Source::secret_only) {
    if (hooks_.refreshed) hooks_.refreshed();
    return;
  }
  if (in_flight_) return;  // the running attempt's end answers the waiting requests
  const std::uint64_t cooldown = static_cast<std::uint64_t>(
      std::chrono::duration_cast<milliseconds>(provider_.jwks.min_refresh_interval).count());
  if (attempted_ && uv_now(loop_) - last_attempt_ms_ < cooldown) {
    ++stats_.unknown_kid_throttled;
    if (hooks_.refreshed) hooks_.refreshed();
    return;
  }
  ++stats_.unknown_kid_refreshes;
  log_event("info", "token with an unknown kid: refreshing keys", {{"provider", provider_.name}});
  refresh();
}

void ProviderKeys::refresh() {
  if (in_flight_ && source_ == Source::file) reread_wanted_ = true;  // the read running may predate the change
  if (in_flight_ || !refresh_timer_) return;
  in_flight_ = true;
  attempted_ = true;
  last_attempt_ms_ = uv_now(loop_);
  ++stats_.fetches;
  uv_timer_stop(&refresh_timer_->handle);
  switch (source_) {
    case Source::secret_only:
      in_flight_ = false;
      return;
    case Source::file:
      read_jwks_file();
      return;
    case Source::uri:
      fetch_jwks(provider_.jwks.uri);
      return;
    case Source::discovery:
      // Unknown-kid refreshes go straight to the known jwks_uri; periodic ones read the
      // discovery document again, in case the IdP moved its keys.
      if (!jwks_uri_.empty() && !rediscover_) {
        fetch_jwks(jwks_uri_);
        return;
      }
      rediscover_ = false;
      {
        const std::string url = core::discovery_url(provider_.issuer);
        std::weak_ptr<ProviderKeys*> weak = self_;
        fetcher_.get(url, fetch_options(), [weak, url](FetchResult r) {
          auto self = weak.lock();
          if (!self) return;
          ProviderKeys& p = **self;
          if (!r.ok && !p.jwks_uri_.empty()) {
            // The document is unreachable but the keys may not be: keep using the last jwks_uri.
            log_event("warn", "OIDC discovery failed; using the last known jwks_uri",
                      {{"provider", p.provider_.name}, {"error", r.error}});
            p.fetch_jwks(p.jwks_uri_);
            return;
          }
          if (!r.ok) {
            p.fail("OIDC discovery from " + config::redact_url(url) + ": " + r.error);
            return;
          }
          config::UrlParts issuer;
          std::string ignored;
          const bool allow_http = config::parse_url(p.provider_.issuer, issuer, ignored) && issuer.scheme == "http";
          auto uri = core::jwks_uri_from_discovery(r.body, p.provider_.issuer, allow_http);
          if (!uri) {
            p.jwks_uri_.clear();  // a document that no longer matches discredits its old jwks_uri too
            p.fail("OIDC discovery from " + config::redact_url(url) + ": " + uri.status().detail());
            return;
          }
          p.jwks_uri_ = std::move(uri.value());
          p.fetch_jwks(p.jwks_uri_);
        });
      }
      return;
  }
}

void ProviderKeys::read_jwks_file() {
  const config::JwksConfig& j = provider_.jwks;
  if (read_at_once_) {
    on_jwks_file(config::read_bounded_file(j.file, j.max_bytes, "max_bytes"));
    return;
  }
  auto file = std::make_shared<config::BoundedFile>();
  std::weak_ptr<ProviderKeys*> weak = self_;
  run_on_thread_pool(
      loop_, [file, path = j.file, max = j.max_bytes] { *file = config::read_bounded_file(path, max, "max_bytes"); },
      [weak, file] {
        if (auto self = weak.lock()) (**self).on_jwks_file(std::move(*file));
      });
}

void ProviderKeys::on_jwks_file(config::BoundedFile file) {
  if (file.ok()) file.error = config::writable_by_others(provider_.jwks.file, file.mode);
  if (file.ok()) on_document(file.text, std::nullopt, provider_.jwks.file);
  else fail(file.error);
  if (reread_wanted_ && !in_flight_) {
    reread_wanted_ = false;
    refresh();
  }
}

void ProviderKeys::fetch_jwks(const std::string& url) {
  std::weak_ptr<ProviderKeys*> weak = self_;
  fetcher_.get(url, fetch_options(), [weak, url](FetchResult r) {
    auto self = weak.lock();
    if (!self) return;
    ProviderKeys& p = **self;
    if (!r.ok) {
      // A moved jwks_uri is found again by the next discovery.
      if (p.source_ == Source::discovery) p.jwks_uri_.clear();
      p.fail("JWKS fetch from " + config::redact_url(url) + ": " + r.error);
      return;
    }
    // The origin names the source in logs and /readyz: without credentials or query values.
    p.on_document(r.body, cache_control_max_age(r.cache_control), config::redact_url(url));
  });
}

void ProviderKeys::on_document(const std::string& text, std::optional<std::chrono::seconds> max_age,
                               const std::string& origin) {
  auto parsed = core::parse_jwks(text);
  if (!parsed) {
    fail(origin + ": " + parsed.status().detail());
    return;
  }
  if (failures_ > 0 && ready_) log_event("info", "key refresh recovered", {{"provider", provider_.name}});
  failures_ = 0;
  last_error_.clear();
  stale_logged_ = false;
  last_success_wall_ = wall_now();
  if (source_ != Source::file) {
    last_good_wall_ = wall_now();
    arm_stale_timer();
  }
  if (!ready_ || text != current_text_) {
    current_text_ = text;
    publish(std::move(parsed.value()), origin);
    if (source_ != Source::file && !provider_.jwks.cache_file.empty() && text != cache_written_text_) {
      write_cache_file(text);
    }
  }
  finish_attempt(source_ == Source::file ? milliseconds(0) : refresh_delay(max_age, provider_.jwks, jitter()));
}

void ProviderKeys::fail(const std::string& why) {
  ++stats_.fetch_failures;
  ++failures_;
  last_error_ = why;
  log_event(ready_ ? "warn" : "error", ready_ ? "key refresh failed; keeping the last good keys" : "key fetch failed; provider not ready",
            {{"provider", provider_.name}, {"error", why}, {"consecutive_failures", std::to_string(failures_)}});
  if (ready_ && !stale_logged_ && source_ != Source::file) {
    stale_logged_ = true;
    log_event("warn", "serving stale keys",
              {{"provider", provider_.name}, {"age", seconds_text(wall_now() - last_good_wall_)},
               {"stale_max", seconds_text(std::chrono::duration_cast<std::chrono::seconds>(provider_.jwks.stale_max).count())}});
  }
  if (!ready_ && !cache_tried_ && !provider_.jwks.cache_file.empty() && source_ != Source::file) {
    cache_tried_ = true;
    read_cache_file();
  }
  finish_attempt(source_ == Source::file ? milliseconds(0) : next_retry());
}

std::chrono::milliseconds ProviderKeys::next_retry() { return retry_delay(failures_, provider_.jwks, jitter()); }

void ProviderKeys::finish_attempt(std::chrono::milliseconds next) {
  in_flight_ = false;
  // File sources are re-read when they change; remote ones on a timer.
  if (next.count() > 0 && refresh_timer_) {
    uv_timer_start(
        &refresh_timer_->handle,
        [](uv_timer_t* t) {
          auto* p = static_cast<ProviderKeys*>(t->data);
          p->rediscover_ = true;
          p->refresh();
        },
        static_cast<std::uint64_t>(next.count()), 0);
  }
  if (hooks_.refreshed) hooks_.refreshed();
}

void ProviderKeys::publish(core::KeySet set, const std::string& origin) {
  for (const auto& skipped : set.skipped) {
    log_event("warn", "key skipped", {{"provider", provider_.name}, {"index", std::to_string(skipped.index)},
                                      {"kid", skipped.kid}, {"reason", skipped.reason}});
  }
  if (secret_) {
    auto key = core::jwk_from_hmac_secret(secret_->view(), provider_.hmac_secret_kid);
    if (key) set.keys.push_back(std::move(key.value()));
    else log_event("error", "HMAC secret refused", {{"provider", provider_.name}, {"error", key.status().detail()}});
  }
  if (set.keys.empty()) {
    fail("no usable key");
    return;
  }
  std::vector<std::string> now_kids;
  for (const auto& k : set.keys) now_kids.push_back(k.has_kid ? k.kid : "(no kid)");
  const bool was_ready = ready_;
  ready_ = true;
  ++stats_.key_sets_published;
  log_event("info", was_ready ? "keys refreshed" : "provider ready",
            {{"provider", provider_.name}, {"source", origin}, {"keys", std::to_string(set.keys.size())}, {"kids", kids_not_in(now_kids, nullptr)},
             {"kids_added", kids_not_in(now_kids, &current_kids_)}, {"kids_removed", kids_not_in(current_kids_, &now_kids)}});
  current_kids_ = std::move(now_kids);
  current_ = std::make_shared<const core::KeySet>(std::move(set));
  if (hooks_.publish) hooks_.publish(current_);
}

void ProviderKeys::read_cache_file() {
  auto file = std::make_shared<config::BoundedFile>();
  std::weak_ptr<ProviderKeys*> weak = self_;
  run_on_thread_pool(
      loop_,
      [file, path = provider_.jwks.cache_file, max = provider_.jwks.max_bytes] {
        *file = config::read_bounded_file(path, max, "max_bytes");
      },
      [weak, file] {
        if (auto self = weak.lock()) (**self).on_cache_file(std::move(*file));
      });
}

void ProviderKeys::on_cache_file(config::BoundedFile file) {
  if (ready_) return;  // a fetch succeeded while the cache was being read: it is newer
  const std::string& path = provider_.jwks.cache_file;
  if (file.ok()) file.error = config::writable_by_others(path, file.mode);
  if (!file.ok()) {
    // A cache that was never written is the normal first start, not worth a warning.
    if (!file.missing) {
      log_event("warn", "cache_file unreadable", {{"provider", provider_.name}, {"error", file.error}});
    }
    return;
  }
  const std::int64_t age = wall_now() - file.mtime;
  const std::int64_t stale_max = std::chrono::duration_cast<std::chrono::seconds>(provider_.jwks.stale_max).count();
  if (age > stale_max) {
    log_event("warn", "cache_file is older than stale_max; not used",
              {{"provider", provider_.name}, {"cache_file", path}, {"age", seconds_text(age)}});
    return;
  }
  auto parsed = core::parse_jwks(file.text);
  if (!parsed) {
    log_event("warn", "cache_file holds no usable key set",
              {{"provider", provider_.name}, {"cache_file", path}, {"error", parsed.status().detail()}});
    return;
  }
  log_event("warn", "identity provider unreachable: serving keys from cache_file",
            {{"provider", provider_.name}, {"cache_file", path}, {"age", seconds_text(age)}});
  last_good_wall_ = file.mtime;
  current_text_ = file.text;
  cache_written_text_ = std::move(file.text);
  publish(std::move(parsed.value()), path);
  arm_stale_timer();
}

void ProviderKeys::write_cache_file(const std::string& text) {
  if (cache_writing_) {
    cache_pending_ = text;
    return;
  }
  cache_writing_ = true;
  auto data = std::make_shared<const std::string>(text);
  auto error = std::make_shared<std::string>();
  std::weak_ptr<ProviderKeys*> weak = self_;
  run_on_thread_pool(
      loop_, [data, error, path = provider_.jwks.cache_file] { *error = write_private_file(path, *data); },
      [weak, data, error] {
        auto self = weak.lock();
        if (!self) return;
        ProviderKeys& p = **self;
        p.cache_writing_ = false;
        if (error->empty()) {
          p.cache_written_text_ = *data;
        } else {
          log_event("warn", "cannot write cache_file",
                    {{"provider", p.provider_.name}, {"cache_file", p.provider_.jwks.cache_file}, {"error", *error}});
        }
        if (p.cache_pending_) {
          std::string next = std::move(*p.cache_pending_);
          p.cache_pending_.reset();
          if (next != p.cache_written_text_) p.write_cache_file(next);
        }
      });
}

void ProviderKeys::arm_stale_timer() {
  if (!stale_timer_) return;
  const std::int64_t stale_max = std::chrono::duration_cast<std::chrono::seconds>(provider_.jwks.stale_max).count();
  const std::int64_t left = std::max<std::int64_t>(0, last_good_wall_ + stale_max - wall_now());
  uv_timer_start(
      &stale_timer_->handle, [](uv_timer_t* t) { static_cast<ProviderKeys*>(t->data)->expire_if_stale(); },
      static_cast<std::uint64_t>(left) * 1000 + 1, 0);
}

void ProviderKeys::expire_if_stale() {
  if (!ready_) return;
  const std::int64_t stale_max = std::chrono::duration_cast<std::chrono::seconds>(provider_.jwks.stale_max).count();
  if (wall_now() - last_good_wall_ < stale_max) {
    arm_stale_timer();
    return;
  }
  ready_ = false;
  current_text_.clear();
  current_.reset();
  current_kids_.clear();
  log_event("error", "keys are older than stale_max and could not be refreshed: provider not ready",
            {{"provider", provider_.name}, {"stale_max", seconds_text(stale_max)}, {"last_error", last_error_}});
  if (hooks_.publish) hooks_.publish(nullptr);
}

void ProviderKeys::reread() {
  if (source_ == Source::file) refresh();
}

std::string ProviderKeys::status() const {
  if (ready_) {
    if (!last_error_.empty()) {
      return "ready (serving the last good keys, " + seconds_text(wall_now() - last_good_wall_) +
             " old; last refresh failed: " + last_error_ + ")";
    }
    return "ready";
  }
  if (!attempted_) return "not ready: starting";
  if (last_error_.empty()) return "not ready: fetching keys";
  return "not ready: " + last_error_;
}

}  // namespace jwtgate::proxy
