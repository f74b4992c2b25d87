#include "proxy/thread_pool_task.h"

#include <memory>

namespace jwtgate::proxy {
namespace {
struct Task {
  uv_work_t req{};
  std::function<void()> work;
  std::function<void()> done;
};
}  // namespace

void run_on_thread_pool(uv_loop_t* loop, std::function<void()> work, std::function<void()> done) {
  auto task = std::make_unique<Task>();
  task->work = std::move(work);
  task->done = std::move(done);
  task->req.data = task.get();
  const int rc = uv_queue_work(
      loop, &task->req, [](uv_work_t* req) { static_cast<Task*>(req->data)->work(); },
      [](uv_work_t* req, int) {
        // Never cancelled, so `work` has run.
        std::unique_ptr<Task> t(static_cast<Task*>(req->data));
        if (t->done) t->done();
      });
  if (rc == 0) {
    task.release();
    return;
  }
  // uv_queue_work refuses only a null callback; done inline rather than dropped.
  task->work();
  if (task->done) task->done();
}

}  // namespace jwtgate::proxy
