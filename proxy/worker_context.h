// What a connection needs from the worker that owns it. Everything here belongs to one worker
// thread, so nothing is shared or locked on the request path.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>

#include "proxy/authenticator.h"
#include "proxy/runtime_config.h"
#include "proxy/upstream_pool.h"

namespace jwtgate::proxy {

class ClientConnection;

class WorkerContext {
 public:
  virtual uv_loop_t* loop() = 0;
  virtual Authenticator& authenticator() = 0;
  virtual UpstreamPool& upstream_pool() = 0;
  virtual const RuntimeConfig& runtime() = 0;
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

 protected:
  ~WorkerContext() = default;
};

}  // namespace jwtgate::proxy
