#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

struct Pending {
  WriteRequest write;
  void (*done)(void* owner, int status);
};

void on_written(uv_write_t* req, int status) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(req->data));
  if (p->done) p->done(p->write.owner, status);
}

}  // namespace

int write_or_queue(uv_stream_t* stream, std::string data, void* owner, void (*done)(void* owner, int status)) {
  uv_buf_t buf = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
  const int n = uv_try_write(stream, &buf, 1);  // UV_EAGAIN when earlier writes are still queued
  if (n == static_cast<int>(data.size())) return kWrittenNow;
  if (n > 0) data.erase(0, static_cast<std::size_t>(n));
  else if (n != UV_EAGAIN) return n;
  return write_owned(stream, std::move(data), owner, done);
}

void alloc_thread_read_buffer(uv_handle_t*, std::size_t, uv_buf_t* buf) {
  static thread_local std::unique_ptr<char[]> buffer;
  constexpr unsigned kSize = 64 * 1024;
  if (!buffer) buffer = std::make_unique<char[]>(kSize);
  *buf = uv_buf_init(buffer.get(), kSize);
}

int write_owned(uv_stream_t* stream, std::string data, void* owner, void (*done)(void* owner, int status)) {
  auto p = std::make_unique<Pending>();
  p->write.data = std::move(data);
  p->write.owner = owner;
  p->done = done;
  p->write.buf = uv_buf_init(p->write.data.data(), static_cast<unsigned>(p->write.data.size()));
  p->write.req.data = p.get();
  const int rc = uv_write(&p->write.req, stream, &p->write.buf, 1, on_written);
  if (rc == 0) p.release();  // owned by libuv until on_written
  return rc;
}

}  // namespace jwtgate::proxy
