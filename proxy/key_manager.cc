#include "proxy/key_manager.h"

#include <algorithm>

#include "proxy/hmac_secret.h"
#include "proxy/log.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {

struct KeyManager::Inbox {
  uv_async_t async{};
};

KeyManager::KeyManager(uv_loop_t* loop, std::shared_ptr<const RuntimeConfig> runtime, const config::EnvLookup& env,
                       KeyManagerHooks hooks)
    : loop_(loop), runtime_(std::move(runtime)), hooks_(std::move(hooks)), fetcher_(loop),
      inbox_(std::make_unique<Inbox>()), wanted_(std::make_unique<std::atomic<bool>[]>(runtime_->providers.size())) {
  const auto& providers = runtime_->providers;
  needed_.assign(providers.size(), false);
  for (const auto& route : runtime_->config.routes) {
    if (route.auth == config::AuthMode::none) continue;
    for (std::size_t i = 0; i < providers.size(); ++i) {
      if (route.providers.empty() ||
          std::find(route.providers.begin(), route.providers.end(), providers[i].config.name) != route.providers.end()) {
        needed_[i] = true;
      }
    }
  }
  for (std::size_t i = 0; i < providers.size(); ++i) {
    std::string error;
    auto secret = read_hmac_secret(providers[i].config, env, error);
    if (!error.empty()) log_event("error", "HMAC secret unavailable", {{"provider", providers[i].config.name}, {"error", error}});
    ProviderKeysHooks h;
    h.publish = [this, i](std::shared_ptr<const core::KeySet> keys) {
      if (hooks_.publish) hooks_.publish(i, std::move(keys));
    };
    h.refreshed = [this, i] {
      if (hooks_.refreshed) hooks_.refreshed(i);
    };
    providers_.push_back(std::make_unique<ProviderKeys>(loop_, fetcher_, providers[i].config, std::move(secret), std::move(h)));
  }
  uv_async_init(loop_, &inbox_->async, on_inbox);
  inbox_->async.data = this;
  // Workers may still ask while the process drains; the inbox must not hold the loop open.
  uv_unref(reinterpret_cast<uv_handle_t*>(&inbox_->async));
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

void KeyManager::request_refresh(std::size_t provider) {
  if (provider >= providers_.size() || !inbox_) return;
  wanted_[provider].store(true, std::memory_order_release);
  uv_async_send(&inbox_->async);
}

void KeyManager::on_inbox(uv_async_t* async) {
  auto* m = static_cast<KeyManager*>(async->data);
  for (std::size_t i = 0; i < m->providers_.size(); ++i) {
    if (!m->wanted_[i].exchange(false, std::memory_order_acq_rel)) continue;
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
