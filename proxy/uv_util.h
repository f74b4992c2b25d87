// Small RAII helpers around libuv: writes that own their bytes, and handles that free their
// owner only after libuv has closed them.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <utility>

namespace jwtgate::proxy {

// One uv_write of bytes this request owns until libuv is done with them.
struct WriteRequest {
  uv_write_t req{};
  std::string data;
  uv_buf_t buf{};
  void* owner = nullptr;  // who to tell when the write completes
};

// Writes `data` to `stream`; `done` runs with the WriteRequest's owner and the status, after
// which the request is freed. Returns the uv_write error (0 on success).
int write_owned(uv_stream_t* stream, std::string data, void* owner, void (*done)(void* owner, int status));

// Like write_owned, but first writes what the socket takes at once (uv_try_write), so `done`
// runs only when some bytes had to be queued. Returns kWrittenNow, 0 (queued) or a libuv error.
// Every uv_write ends with libuv re-arming the descriptor in epoll (an epoll_ctl per write);
// the proxy's heads and small bodies nearly always fit in the socket buffer and skip that.
constexpr int kWrittenNow = 1;
int write_or_queue(uv_stream_t* stream, std::string data, void* owner, void (*done)(void* owner, int status));

// libuv alloc callback handing out one buffer per thread. Only for streams whose read callback
// consumes every byte before it returns (parses it, or copies what must outlive the callback):
// a worker then needs one read buffer, not one per connection, which is most of what an idle
// keep-alive connection would otherwise cost.
void alloc_thread_read_buffer(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);

// Closes `handle` unless it is closing already; `on_closed` runs once libuv has released it.
inline void close_handle(uv_handle_t* handle, uv_close_cb on_closed) {
  if (!uv_is_closing(handle)) uv_close(handle, on_closed);
}

// Closes a handle embedded in a heap object and frees the object once libuv has released the
// handle, so the owner of `owner` may go away before the loop runs again.
template <class T>
void close_and_free(std::unique_ptr<T> owner, uv_handle_t* handle) {
  handle->data = owner.release();
  uv_close(handle, [](uv_handle_t* h) { std::unique_ptr<T> freed(static_cast<T*>(h->data)); });
}

}  // namespace jwtgate::proxy
