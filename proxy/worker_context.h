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

 protected:
  ~WorkerContext() = default;
};

}  // namespace jwtgate::proxy
