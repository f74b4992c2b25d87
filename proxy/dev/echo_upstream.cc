#include "proxy/dev/echo_upstream.h"

#include <llhttp.h>
#include <uv.h>

#include <string_view>
#include <vector>

#include "core/json_writer.h"
#include "proxy/http/http_head.h"
#include "proxy/server.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {

namespace {

// `jwtgate echo` is reachable directly in a compose stack, without the proxy's max_header_bytes in
// front of it: the head it holds is bounded here (the proxy's own default is 16 KiB).
constexpr std::size_t kMaxHeadBytes = 64 * 1024;
constexpr std::size_t kMaxHeaderFields = 100;

// One connection: parse one request at a time, answer it, close after the answer (the
// development upstream does not need keep-alive).
struct EchoConnection {
  uv_tcp_t tcp{};
  llhttp_t parser{};
  std::string url;
  HeaderList headers;
  std::size_t head_bytes = 0;
  bool answered = false;
  const std::string* document_path = nullptr;
  const std::string* document = nullptr;
  const std::string* service = nullptr;
  std::vector<char> buffer = std::vector<char>(16384);
};

// False once the head is over its bound: the parser stops with an error and the connection closes.
bool within_bounds(EchoConnection* c, std::size_t len) {
  c->head_bytes += len;
  return c->head_bytes <= kMaxHeadBytes && c->headers.fields().size() <= kMaxHeaderFields;
}
int on_url(llhttp_t* p, const char* at, std::size_t len) {
  auto* c = static_cast<EchoConnection*>(p->data);
  if (!within_bounds(c, len)) return HPE_USER;
  c->url.append(at, len);
  return 0;
}
int on_field(llhttp_t* p, const char* at, std::size_t len) {
  auto* c = static_cast<EchoConnection*>(p->data);
  if (!within_bounds(c, len)) return HPE_USER;
  c->headers.append_name_piece(std::string_view(at, len));
  return 0;
}
int on_value(llhttp_t* p, const char* at, std::size_t len) {
  auto* c = static_cast<EchoConnection*>(p->data);
  if (!within_bounds(c, len)) return HPE_USER;
  c->headers.append_value_piece(std::string_view(at, len));
  return 0;
}

void on_closed(uv_handle_t* h) { std::unique_ptr<EchoConnection> owned(static_cast<EchoConnection*>(h->data)); }

void close_conn(EchoConnection* c) { close_handle(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed); }

// Credentials are never reflected, on any listener: an echo that returns the Authorization or
// Cookie it was sent hands them to any page or script that can make the browser send a request
// and read the answer, and puts them on screen and in terminal scrollback. Their presence and
// size is what a developer needs to see ("did jwtgate forward my token?"). Names are matched as
// a CGI stack would read them, so Proxy_Authorization is one too.
bool is_credential(std::string_view name) {
  for (std::string_view c : {"Authorization", "Proxy-Authorization", "Cookie"}) {
    if (same_header_to_cgi(name, c)) return true;
  }
  return false;
}

int on_complete(llhttp_t* p) {
  auto* c = static_cast<EchoConnection*>(p->data);
  std::string body, type = "application/json";
  if (!c->document_path->empty() && c->url == *c->document_path) {
    body = *c->document;
  } else {
    core::JsonWriter w;
    w.begin_object();
    w.key("upstream"); w.string("jwtgate built-in echo");
    if (!c->service->empty()) { w.key("service"); w.string(*c->service); }
    w.key("method"); w.string(llhttp_method_name(static_cast<llhttp_method_t>(p->method)));
    w.key("path"); w.string(c->url);
    w.key("headers");
    w.begin_object();
    for (const auto& f : c->headers.fields()) {
      w.key(f.name);
      w.string(is_credential(f.name) ? "[redacted, " + std::to_string(f.value.size()) + " bytes]" : f.value);
    }
    w.end_object();
    w.end_object();
    body = w.take() + "\n";
  }
  std::string response = "HTTP/1.1 200 OK\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body;
  c->answered = true;
  write_owned(reinterpret_cast<uv_stream_t*>(&c->tcp), std::move(response), c,
              [](void* owner, int) { close_conn(static_cast<EchoConnection*>(owner)); });
  return HPE_PAUSED;
}

const llhttp_settings_t& settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t x;
    llhttp_settings_init(&x);
    x.on_url = on_url;
    x.on_header_field = on_field;
    x.on_header_value = on_value;
    x.on_message_complete = on_complete;
    return x;
  }();
  return s;
}

}  // namespace

struct EchoUpstream::Impl {
  uv_loop_t loop{};
  uv_tcp_t listener{};
  uv_async_t stop{};
  std::thread thread;
  std::string document_path, document, service;

  static void on_connection(uv_stream_t* server, int status) {
    auto* impl = static_cast<Impl*>(server->data);
    if (status != 0) return;
    auto owned = std::make_unique<EchoConnection>();
    EchoConnection* c = owned.release();  // freed in on_closed
    uv_tcp_init(&impl->loop, &c->tcp);
    c->tcp.data = c;
    c->document_path = &impl->document_path;
    c->document = &impl->document;
    c->service = &impl->service;
    llhttp_init(&c->parser, HTTP_REQUEST, &settings());
    c->parser.data = c;
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
      close_conn(c);
      return;
    }
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
          auto* conn = static_cast<EchoConnection*>(h->data);
          *buf = uv_buf_init(conn->buffer.data(), static_cast<unsigned>(conn->buffer.size()));
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* conn = static_cast<EchoConnection*>(s->data);
          if (n < 0) {
            if (!conn->answered) close_conn(conn);
            return;
          }
          if (conn->answered || n == 0) return;
          const llhttp_errno_t err = llhttp_execute(&conn->parser, buf->base, static_cast<std::size_t>(n));
          if (err != HPE_OK && err != HPE_PAUSED) close_conn(conn);
        });
  }
};

EchoUpstream::EchoUpstream(std::string document_path, std::string document, std::string service)
    : impl_(std::make_unique<Impl>()) {
  impl_->document_path = std::move(document_path);
  impl_->document = std::move(document);
  impl_->service = std::move(service);
}

EchoUpstream::~EchoUpstream() {
  if (impl_->thread.joinable()) {
    uv_async_send(&impl_->stop);
    impl_->thread.join();
    uv_loop_close(&impl_->loop);
  }
}

bool EchoUpstream::start(const std::string& host, std::uint16_t port, std::string& error) {
  const int fd = bind_listener(host, port, &port_, error);
  if (fd < 0) return false;
  uv_loop_init(&impl_->loop);
  uv_tcp_init(&impl_->loop, &impl_->listener);
  impl_->listener.data = impl_.get();
  uv_async_init(&impl_->loop, &impl_->stop, [](uv_async_t* a) {
    auto* impl = static_cast<Impl*>(a->data);
    // The listener and this async are members; every other handle is a connection that frees
    // itself when closed.
    uv_walk(
        &impl->loop,
        [](uv_handle_t* h, void* arg) {
          auto* self = static_cast<Impl*>(arg);
          const bool member = h == reinterpret_cast<uv_handle_t*>(&self->listener) ||
                              h == reinterpret_cast<uv_handle_t*>(&self->stop);
          close_handle(h, member ? nullptr : on_closed);
        },
        impl);
  });
  impl_->stop.data = impl_.get();
  if (uv_tcp_open(&impl_->listener, fd) != 0 ||
      uv_listen(reinterpret_cast<uv_stream_t*>(&impl_->listener), 128, Impl::on_connection) != 0) {
    error = "the built-in upstream cannot listen";
    return false;
  }
  impl_->thread = std::thread([impl = impl_.get()] { uv_run(&impl->loop, UV_RUN_DEFAULT); });
  return true;
}

}  // namespace jwtgate::proxy
