// What a connection needs from the worker that owns it. Everything here belongs to one worker
// thread, so nothing is shared or locked on the request path.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>

#include "proxy/http/flush_queue.h"
#include <vector>

#include "proxy/http/authenticator.h"
#include "proxy/admin/log.h"
#include "proxy/runtime_config.h"
#include "proxy/http/upstream_pool.h"
#include "proxy/admin/worker_metrics.h"

namespace jwtgate::proxy {

class ClientConnection;

// One configuration as a worker runs it. A reload makes a new generation; a request keeps the
// generation it started with to its end, so its route, keys and upstream stay consistent.
struct Generation {
  std::shared_ptr<const RuntimeConfig> runtime;
  std::unique_ptr<Authenticator> authenticator;
  // Per entry of runtime->upstreams (the top-level upstream first).
  std::vector<std::shared_ptr<UpstreamPool>> pools;
  std::vector<RouteCounters*> route_metrics;  // per route, configured order
};

class WorkerContext {
 public:
  virtual uv_loop_t* loop() = 0;
  virtual const std::shared_ptr<Generation>& generation() = 0;
  virtual WorkerMetrics& metrics() = 0;
  virtual LogBuffer& access_log() = 0;
  virtual bool draining() const = 0;
  virtual std::int64_t now_seconds() const = 0;
  // Called once a connection has fully closed, just before it is freed.
  virtual void connection_closed(ClientConnection* c) = 0;
  // The token on `c`'s request names a kid `provider`'s set lacks. True when `c` should wait:
  // a refresh was requested (or one is running) and keys_refreshed() will be called on `c`.
  // False when none may run now (cooldown, no remote source): decide at once.
  virtual bool await_keys(std::size_t provider, ClientConnection* c) = 0;
  // `c` no longer waits (closed, or its bound ran out).
  virtual void cancel_key_wait(ClientConnection* c) = 0;
  // Where HTTP/2 sessions defer their sends to the end of the loop iteration.
  virtual FlushQueue& flush_queue() = 0;

 protected:
  ~WorkerContext() = default;
};

}  // namespace jwtgate::proxy
