// Work that may block (file reads and writes) run on libuv's thread pool, with its result handed
// back on the loop: the control loop also answers signals and the admin listener, and a slow
// disk, a large file or a hung mount must not stop /healthz or SIGTERM.
#pragma once

#include <uv.h>

#include <functional>

namespace jwtgate::proxy {

// `work` runs on a pool thread and must touch nothing the loop owns; `done` runs on `loop`
// afterwards (share results through what both capture). The loop stays alive until `done` has
// run, so whoever `done` reports to must check it still exists (a weak_ptr, as fetches do).
void run_on_thread_pool(uv_loop_t* loop, std::function<void()> work, std::function<void()> done);

}  // namespace jwtgate::proxy
