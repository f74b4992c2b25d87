// Sends deferred to the end of the event loop's I/O phase. An HTTP/2 session that flushed on
// every event would make a syscall per frame: one upstream read can carry the responses of many
// streams, and each would be written to its client on its own. Deferred, all that one loop
// iteration produced for a connection goes out in one write.
#pragma once

#include <uv.h>

#include <deque>

namespace jwtgate::proxy {

class DeferredFlush {
 public:
  virtual void deferred_flush() = 0;

 protected:
  ~DeferredFlush() = default;

 private:
  friend class FlushQueue;
  bool flush_queued_ = false;
};

// One per worker (a uv_check handle of its loop).
class FlushQueue {
 public:
  void init(uv_loop_t* loop);
  // Runs f->deferred_flush() once, after this loop iteration's I/O callbacks.
  void defer(DeferredFlush* f);
  // `f` is going away: its pending flush is dropped.
  void cancel(DeferredFlush* f);
  // Before the loop ends.
  void close();

 private:
  static void on_check(uv_check_t* check);

  uv_check_t check_{};
  bool initialised_ = false;
  bool running_ = false;
  std::deque<DeferredFlush*> pending_;  // cancel() removes from it, so a flush may free others
};

}  // namespace jwtgate::proxy
