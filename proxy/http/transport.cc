#include "proxy/http/transport.h"

#include <algorithm>
#include <cstring>

#include "proxy/uv_util.h"

namespace jwtgate::proxy {

Transport::Transport(uv_loop_t* loop, TransportUser& user, std::shared_ptr<const TlsServerContext> tls)
    : user_(user), tls_context_(std::move(tls)) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
  if (tls_context_) session_ = TlsSession::server(tls_context_->ctx());
}

bool Transport::accept(uv_stream_t* server) {
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) return false;
  if (tls_context_ && !session_.valid()) return false;
  uv_tcp_nodelay(&tcp_, 1);
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    char ip[64] = {};
    if (addr.ss_family == AF_INET6) uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&addr), ip, sizeof ip);
    else uv_ip4_name(reinterpret_cast<sockaddr_in*>(&addr), ip, sizeof ip);
    peer_ip_ = ip;
  }
  return true;
}

void Transport::start_reading() {
  if (reading_ || closed_) return;
  reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), alloc_thread_read_buffer, on_read) == 0;
}

void Transport::stop_reading() {
  if (!reading_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  reading_ = false;
}

void Transport::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* t = static_cast<Transport*>(stream->data);
  if (nread == 0 || t->closed_) return;
  if (nread < 0) {
    t->user_.transport_ended();
    return;
  }
  t->received(buf->base, static_cast<std::size_t>(nread));
}

void Transport::received(const char* data, std::size_t len) {
  if (!tls_context_) {
    user_.transport_data(data, len);
    return;
  }
  // One plaintext buffer per thread: transport_data consumes (or copies) it before returning.
  static thread_local std::string plain;  // nothing re-enters received() during the call
  plain.clear();
  const bool was_secured = session_.handshake_complete();
  if (!was_secured && !hello_within_limit(data, len)) {
    user_.transport_handshake_failed();
    if (!closed_) user_.transport_ended();
    return;
  }
  const TlsSession::Result r = session_.receive(data, len, plain);
  if (!flush_tls_output()) {
    user_.transport_ended();
    return;
  }
  if (r == TlsSession::Result::failed) {
    if (!was_secured) user_.transport_handshake_failed();
    if (!closed_) user_.transport_ended();
    return;
  }
  if (r == TlsSession::Result::handshake_done) user_.transport_secured();
  if (closed_) return;
  if (!plain.empty()) user_.transport_data(plain.data(), plain.size());
  if (r == TlsSession::Result::closed && !closed_) user_.transport_ended();
}

bool Transport::hello_within_limit(const char* data, std::size_t len) {
  if (hello_head_len_ == sizeof hello_head_) return true;  // checked already
  const std::size_t take = std::min(len, sizeof hello_head_ - hello_head_len_);
  std::memcpy(hello_head_ + hello_head_len_, data, take);
  hello_head_len_ += take;
  if (hello_head_len_ < sizeof hello_head_) return true;  // OpenSSL cannot know the length yet either
  // A handshake record (22) whose first message is a ClientHello (1): its 24-bit length. Anything
  // else is OpenSSL's to refuse.
  if (hello_head_[0] != 22 || hello_head_[5] != 1) return true;
  const std::size_t declared = (std::size_t{hello_head_[6]} << 16) | (std::size_t{hello_head_[7]} << 8) | hello_head_[8];
  return declared <= kMaxClientHelloBytes;
}

bool Transport::flush_tls_output() {
  if (!session_.has_output() || closed_) return true;
  std::string out;
  session_.take_output(out);
  // Not the user's write: its completion is not reported (the user counts only what write()
  // queued). The queue is in order, so it is out before any later write of the user's.
  const int rc = write_or_queue(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(out), this, on_internal_written);
  return rc >= 0;
}

void Transport::on_internal_written(void* owner, int status) {
  auto* t = static_cast<Transport*>(owner);
  if (status != 0 && !t->closed_) t->user_.transport_ended();
}

int Transport::write(std::string data) {
  if (closed_) return UV_ECANCELED;
  if (tls_context_) {
    if (!session_.send(data)) return UV_EPROTO;
    data.clear();
    session_.take_output(data);
  }
  return write_or_queue(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(data), this, on_written);
}

void Transport::on_written(void* owner, int status) {
  auto* t = static_cast<Transport*>(owner);
  if (t->closed_) return;
  t->user_.transport_written(status);
}

std::size_t Transport::queue_size() const {
  return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_));
}

bool Transport::shutdown() {
  if (closed_) return false;
  if (tls_context_ && session_.handshake_complete()) {
    session_.shutdown();
    if (!flush_tls_output()) return false;
  }
  shutdown_req_.data = this;
  return uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), on_shutdown) == 0;
}

int Transport::close_notify() {
  if (closed_ || !tls_context_ || !session_.handshake_complete()) return kWrittenNow;
  session_.shutdown();
  std::string out;
  session_.take_output(out);
  if (out.empty()) return kWrittenNow;
  return write_or_queue(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(out), this, on_written);
}

void Transport::on_shutdown(uv_shutdown_t* req, int status) {
  auto* t = static_cast<Transport*>(req->data);
  if (status != 0 && !t->closed_) t->user_.transport_ended();
}

void Transport::close() {
  if (closed_) return;
  closed_ = true;
  reading_ = false;
  close_handle(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
}

void Transport::on_closed(uv_handle_t* handle) {
  static_cast<Transport*>(handle->data)->user_.transport_closed();
}

}  // namespace jwtgate::proxy
