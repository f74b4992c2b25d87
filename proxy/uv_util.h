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
