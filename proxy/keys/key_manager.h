// All providers' key sets, kept on the process's control loop (never on a worker): starts each
// provider's source, publishes every new set to the workers, answers workers' unknown-kid
// refresh requests, and says whether the proxy is ready (every provider a route needs has keys).
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/env_expand.h"
#include "proxy/keys/http_fetcher.h"
#include "proxy/keys/provider_keys.h"
#include "proxy/runtime_config.h"

namespace jwtgate::proxy {

struct KeyManagerHooks {
  std::function<void(std::size_t provider, std::shared_ptr<const core::KeySet> keys)> publish;
  std::function<void(std::size_t provider)> refreshed;
};

class KeyManager {
 public:
  KeyManager(uv_loop_t* loop, std::shared_ptr<const RuntimeConfig> runtime, const config::EnvLookup& env,
             KeyManagerHooks hooks);
  ~KeyManager();
  KeyManager(const KeyManager&) = delete;
  KeyManager& operator=(const KeyManager&) = delete;

  void start();
  // A reloaded configuration. Providers whose key source is unchanged (same name, jwks block,
  // issuer, no secret) are kept with their keys and timers; the others are closed, and new ones
  // started at once (files and secrets load now; fetches report later). Returns each provider's
  // current set in the new order, to install in the workers with the configuration; then call
  // start_new(), which reads kept JWKS files again.
  std::vector<std::shared_ptr<const core::KeySet>> reconfigure(std::shared_ptr<const RuntimeConfig> runtime,
                                                              const config::EnvLookup& env);
  void start_new();
  // Stops fetching and watching; waiting requests are released at once. The request inbox stays
  // open (it does not keep the loop alive) until close_inbox(), which must come after every
  // worker that may call request_refresh() has stopped.
  void close();
  void close_inbox();

  // Any thread, lock-free: a worker saw a token whose kid is not in `provider`'s set, by the
  // provider numbering of the configuration that worker has (which may be older than this one's).
  void request_refresh(std::size_t provider);

  // Everything below, like reconfigure(), runs on the control loop only.
  bool ready(std::size_t provider) const { return providers_[provider]->ready(); }
  // True when every provider some protected route accepts has usable keys; otherwise `why`
  // names them.
  bool ready_for_routes(std::string* why = nullptr) const;
  const ProviderKeys& provider(std::size_t i) const { return *providers_[i]; }
  std::size_t size() const { return providers_.size(); }

 private:
  struct Inbox;
  static void on_inbox(uv_async_t* async);
  ProviderKeysHooks hooks_for(std::size_t index);
  std::unique_ptr<ProviderKeys> create(std::size_t index, const config::EnvLookup& env);
  void compute_needed();

  uv_loop_t* loop_;
  std::shared_ptr<const RuntimeConfig> runtime_;
  KeyManagerHooks hooks_;
  HttpFetcher fetcher_;
  std::vector<std::unique_ptr<ProviderKeys>> providers_;
  std::vector<bool> needed_;  // some route with auth may use this provider
  std::vector<bool> kept_;  // after reconfigure: providers carried over, whose files start_new() re-reads
  std::unique_ptr<Inbox> inbox_;
  // What workers touch, fixed from construction until close_inbox(): the inbox's handle (not
  // inbox_ itself, which close_inbox() resets) and the flags, indexed by provider and sized for
  // the most providers a configuration may have, so a reload never moves what workers write to.
  uv_async_t* const inbox_async_;
  const std::unique_ptr<std::atomic<bool>[]> wanted_;
  bool closed_ = false;
};

}  // namespace jwtgate::proxy
