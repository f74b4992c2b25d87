#include "proxy/http/flush_queue.h"

#include <algorithm>

#include "proxy/uv_util.h"

namespace jwtgate::proxy {

void FlushQueue::init(uv_loop_t* loop) {
  uv_check_init(loop, &check_);
  check_.data = this;
  initialised_ = true;
}

void FlushQueue::defer(DeferredFlush* f) {
  if (!initialised_) {
    f->deferred_flush();  // no loop to wait for (a harness): at once
    return;
  }
  if (f->flush_queued_) return;
  f->flush_queued_ = true;
  pending_.push_back(f);
  if (!running_) {
    running_ = true;
    uv_check_start(&check_, on_check);
  }
}

void FlushQueue::cancel(DeferredFlush* f) {
  if (!f->flush_queued_) return;
  f->flush_queued_ = false;
  std::erase(pending_, f);
}

void FlushQueue::close() {
  pending_.clear();
  if (initialised_) close_handle(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  initialised_ = false;
}

void FlushQueue::on_check(uv_check_t* check) {
  auto* q = static_cast<FlushQueue*>(check->data);
  // One at a time from the live queue: a flush may end another's owner (which cancels it here).
  // A flush may also defer another (a client's send crediting its upstream): those run here too,
  // up to a bound, the rest in the next iteration.
  std::size_t budget = q->pending_.size() * 8 + 8;
  while (!q->pending_.empty() && budget-- > 0) {
    DeferredFlush* f = q->pending_.front();
    q->pending_.pop_front();
    f->flush_queued_ = false;
    f->deferred_flush();
  }
  if (q->pending_.empty()) {
    q->running_ = false;
    uv_check_stop(&q->check_);
  }
}

}  // namespace jwtgate::proxy
