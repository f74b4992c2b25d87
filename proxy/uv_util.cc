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
