#include "proxy/keys/key_manager.h"

#include <algorithm>

#include "proxy/keys/hmac_secret.h"
#include "proxy/admin/log.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {

struct KeyManager::Inbox {
  uv_async_t async{};
};

KeyManager::KeyManager(uv_loop_t* loop, std::shared_ptr<const RuntimeConfig> runtime, const config::EnvLookup& env,
                       KeyManagerHooks hooks)
    : loop_(loop), runtime_(std::move(runtime)), hooks_(std::move(hooks)), fetcher_(loop),
      inbox_(std::make_unique<Inbox>()), inbox_async_(&inbox_->async),
      wanted_(std::make_unique<std::atomic<bool>[]>(config::kMaxProviders)) {
  compute_needed();
  for (std::size_t i = 0; i < runtime_->providers.size(); ++i) providers_.push_back(create(i, env));
  uv_async_init(loop_, &inbox_->async, on_inbox);
  inbox_->async.data = this;
  // Workers may still ask while the process drains; the inbox must not hold the loop open.
  uv_unref(reinterpret_cast<uv_handle_t*>(&inbox_->async));
}

void KeyManager::compute_needed() {
  const auto& providers = runtime_->providers;
  needed_.assign(providers.size(), false);
  for (const auto& route : runtime_->config.routes) {
    if (route.auth == config::AuthMode::none) continue;
    for (std::size_t i = 0; i < providers.size(); ++i) {
      if (route.accepts_provider(providers[i].config.name)) needed_[i] = true;
    }
  }
}

ProviderKeysHooks KeyManager::hooks_for(std::size_t i) {
  ProviderKeysHooks h;
  h.publish = [this, i](std::shared_ptr<const core::KeySet> keys) {
    if (hooks_.publish) hooks_.publish(i, std::move(keys));
  };
  h.refreshed = [this, i] {
    if (hooks_.refreshed) hooks_.refreshed(i);
  };
  return h;
}

std::unique_ptr<ProviderKeys> KeyManager::create(std::size_t i, const config::EnvLookup& env) {
  const config::Provider& p = runtime_->providers[i].config;
  std::string error;
  auto secret = read_hmac_secret(p, env, error);
  if (!error.empty()) log_event("error", "HMAC secret unavailable", {{"provider", p.name}, {"error", error}});
  return std::make_unique<ProviderKeys>(loop_, fetcher_, p, std::move(secret), hooks_for(i));
}

namespace {
bool same_key_source(const config::Provider& a, const config::Provider& b) {
  const config::JwksConfig &x = a.jwks, &y = b.jwks;
  return a.name == b.name && a.issuer == b.issuer && x.uri == y.uri && x.file == y.file && x.discovery == y.discovery &&
         x.refresh_interval == y.refresh_interval && x.min_refresh_interval == y.min_refresh_interval &&
         x.stale_max == y.stale_max && x.timeout == y.timeout && x.connect_timeout == y.connect_timeout &&
         x.max_bytes == y.max_bytes && x.cache_file == y.cache_file && x.ca_file == y.ca_file && x.ca_dir == y.ca_dir &&
         x.proxy == y.proxy && x.proxy_url == y.proxy_url &&
         // A secret is re-read on every reload (its file may have changed): such providers are rebuilt.
         a.hmac_secret_file.empty() && a.hmac_secret_env.empty() && b.hmac_secret_file.empty() &&
         b.hmac_secret_env.empty();
}
}  // namespace

std::vector<std::shared_ptr<const core::KeySet>> KeyManager::reconfigure(std::shared_ptr<const RuntimeConfig> runtime,
                                                                        const config::EnvLookup& env) {
  std::vector<std::unique_ptr<ProviderKeys>> old = std::move(providers_);
  providers_.clear();
  runtime_ = std::move(runtime);
  compute_needed();
  kept_.assign(runtime_->providers.size(), false);
  std::vector<std::shared_ptr<const core::KeySet>> current;
  for (std::size_t i = 0; i < runtime_->providers.size(); ++i) {
    const config::Provider& p = runtime_->providers[i].config;
    auto it = std::find_if(old.begin(), old.end(), [&](const auto& o) { return o && same_key_source(o->provider(), p); });
    if (it != old.end()) {
      (*it)->rebind(hooks_for(i));
      kept_[i] = true;
      providers_.push_back(std::move(*it));
      current.push_back(providers_.back()->current());
    } else {
      // Started now, silently: a file or a secret is loaded before the workers switch, so the
      // new configuration starts with its keys. A fetch reports later, under the new numbering.
      auto created = create(i, env);
      created->rebind({});
      created->start();
      created->rebind(hooks_for(i));
      current.push_back(created->current());
      providers_.push_back(std::move(created));
    }
  }
  for (auto& o : old) {
    if (o) o->close();
  }
  return current;
}

void KeyManager::start_new() {
  for (std::size_t i = 0; i < providers_.size() && i < kept_.size(); ++i) {
    if (kept_[i]) providers_[i]->reread();
  }
  kept_.clear();
}

KeyManager::~KeyManager() {
  close();
  close_inbox();
}

void KeyManager::start() {
  for (auto& p : providers_) p->start();
}

void KeyManager::close() {
  if (closed_) return;
  closed_ = true;
  fetcher_.close();
  for (auto& p : providers_) p->close();
  // Requests parked for a refresh that will not come now are decided at once.
  for (std::size_t i = 0; i < providers_.size(); ++i) {
    if (hooks_.refreshed) hooks_.refreshed(i);
  }
}

void KeyManager::close_inbox() {
  if (!inbox_) return;
  auto* handle = reinterpret_cast<uv_handle_t*>(&inbox_->async);
  close_and_free(std::move(inbox_), handle);
}

// A worker thread. providers_ belongs to the control loop, where a reload rebuilds it at any
// moment: the only state touched here is fixed for the manager's lifetime (the flags, sized for
// the most providers any configuration may have, and the inbox handle, which close_inbox() frees
// only after the workers have stopped). Whether the index names a provider is decided on the
// control loop.
void KeyManager::request_refresh(std::size_t provider) {
  if (provider >= config::kMaxProviders) return;
  wanted_[provider].store(true, std::memory_order_release);
  uv_async_send(inbox_async_);
}

void KeyManager::on_inbox(uv_async_t* async) {
  auto* m = static_cast<KeyManager*>(async->data);
  // Every flag is taken, not only those of today's providers: a request made under a longer
  // provider list before a reload must not wait to fire under a later one. A request made under
  // the old numbering but taken after a reload names whichever provider has that index now: at
  // worst one refresh nobody asked for, still bounded by its min_refresh_interval (the asking
  // worker's waiters are released by the new configuration's install, which it gets first).
  for (std::size_t i = 0; i < config::kMaxProviders; ++i) {
    if (!m->wanted_[i].exchange(false, std::memory_order_acq_rel)) continue;
    if (i >= m->providers_.size()) continue;
    if (m->closed_) {
      if (m->hooks_.refreshed) m->hooks_.refreshed(i);
    } else {
      m->providers_[i]->refresh_for_unknown_kid();
    }
  }
}

bool KeyManager::ready_for_routes(std::string* why) const {
  bool ready = true;
  for (std::size_t i = 0; i < providers_.size(); ++i) {
    if (!needed_[i] || providers_[i]->ready()) continue;
    ready = false;
    if (why) *why += providers_[i]->name() + ": " + providers_[i]->status() + "\n";
  }
  return ready;
}

}  // namespace jwtgate::proxy
