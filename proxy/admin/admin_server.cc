#include "proxy/admin/admin_server.h"

#include <llhttp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "proxy/http/error_response.h"
#include "proxy/http/http_head.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

constexpr std::size_t kMaxHeadBytes = 16 * 1024;
constexpr std::size_t kMaxRequestBytes = 64 * 1024;  // head and body together
// Stop reading requests while this much is unsent. One answer is never split, so a large /metrics
// page still goes out whole; this only bounds what a client that pipelines without reading costs.
constexpr std::size_t kHighWater = 128 * 1024;
constexpr std::size_t kLowWater = 32 * 1024;
constexpr std::uint64_t kLingerMs = 5'000;  // how long a closing connection waits for the client's FIN
// Probes that arrive during a connection flood wait here until the loop accepts them; a short
// queue overflows first, and the kernel then drops the probe's handshake (a 1 s retransmit).
constexpr int kBacklog = 1024;

bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  for (char t : std::string_view("!#$%&'*+-.^_`|~")) {
    if (c == t) return true;
  }
  return false;
}

// A handler's extra header is sent only if it cannot split the response or contradict the framing
// this server owns.
bool acceptable_extra_header(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!is_token_char(c)) return false;
  }
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return !iequals(name, "content-length") && !iequals(name, "transfer-encoding") &&
         !iequals(name, "connection");
}

using HeaderList = std::vector<std::pair<std::string, std::string>>;

std::string serialize(const AdminResponse& r, bool head_request, bool keep_alive, const HeaderList& common) {
  // RFC 9110 §8.6 and §15.3.5: no content, and so no Content-Length, on these.
  const bool bodiless_status = r.status == 204 || r.status == 304;
  std::string out;
  out.reserve(160 + r.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += status_text(r.status);
  out += "\r\n";
  if (!bodiless_status) {
    if (!r.content_type.empty() && acceptable_extra_header("Content-Type", r.content_type)) {
      out += "Content-Type: ";
      out += r.content_type;
      out += "\r\n";
    }
    out += "Content-Length: ";
    out += std::to_string(r.body.size());
    out += "\r\n";
  }
  // Health and readiness answers go stale at once; no cache in between may replay them. A
  // handler serving something that does not (a JWKS) says so with its own Cache-Control.
  const bool own_cache_control = std::any_of(r.headers.begin(), r.headers.end(), [](const auto& h) {
    return iequals(h.first, "cache-control") && acceptable_extra_header(h.first, h.second);
  });
  if (!own_cache_control) out += "Cache-Control: no-store\r\n";
  auto in_response = [&r](std::string_view name) {
    return std::any_of(r.headers.begin(), r.headers.end(), [name](const auto& h) { return iequals(h.first, name); });
  };
  for (const HeaderList* list : {&common, &r.headers}) {
    for (const auto& [name, value] : *list) {
      if (!acceptable_extra_header(name, value)) continue;
      if (list == &common && in_response(name)) continue;  // the handler's own value wins
      out += name;
      out += ": ";
      out += value;
      out += "\r\n";
    }
  }
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!head_request && !bodiless_status) out += r.body;
  return out;
}

AdminResponse plain(int status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::uint64_t ms(std::chrono::milliseconds d) { return static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 1)); }

// What the per-peer limit counts by: an IPv4 address, or an IPv6 /64 (one host commonly holds a
// whole /64, so counting single IPv6 addresses would limit nothing). "" when the peer is unknown.
std::string peer_key(const uv_tcp_t& tcp) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(&tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return {};
  if (addr.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(addr).sin_addr;
    return std::string("4") + std::string(reinterpret_cast<const char*>(&a), sizeof a);
  }
  if (addr.ss_family == AF_INET6) {
    const unsigned char* b = reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr.s6_addr;
    // An IPv4 client of a dual-stack listener ("::") arrives as ::ffff:a.b.c.d.
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(b, b + 12, kMapped)) return std::string("4") + std::string(reinterpret_cast<const char*>(b + 12), 4);
    return std::string("6") + std::string(reinterpret_cast<const char*>(b), 8);
  }
  return {};
}

// Origin-form ("/p?q"), absolute-form ("http://h/p?q"), or anything else passed on as the path
// (authority-form, "*") for the handler to refuse.
void split_target(std::string_view target, std::string_view& path, std::string_view& query) {
  if (!target.empty() && target.front() != '/') {
    const std::size_t scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos) {
      target.remove_prefix(scheme_end + 3);
      const std::size_t path_start = target.find_first_of("/?#");
      target = path_start == std::string_view::npos ? std::string_view() : target.substr(path_start);
    }
  }
  target = target.substr(0, target.find('#'));
  const std::size_t q = target.find('?');
  path = target.substr(0, q);
  query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  if (path.empty()) path = "/";
}

}  // namespace

struct AdminServer::Listener {
  uv_tcp_t tcp{};
  AdminServer* server = nullptr;
};

// One admin client: parses its requests in order and answers each synchronously.
class AdminServer::Connection {
 public:
  explicit Connection(AdminServer& server) : server_(server) {}

  // A connection registered with `server` and owned by its libuv handles; nullptr if libuv refuses.
  static Connection* open(AdminServer& server);
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  const uv_tcp_t& tcp() const { return tcp_; }
  // Counts the connection in `pool` and under `peer` until it closes, and starts serving it.
  void start(Pool pool, std::string peer);
  void close();

  bool open_and_counted() const { return counted_; }
  Pool pool() const { return pool_; }
  const std::string& peer() const { return peer_; }
  // Set when accepted and at every answer: eviction takes the smallest. A connection is never
  // evicted in the loop turn (millisecond) it was accepted or answered in: a batch of new
  // connections must not close a probe accepted with them before its request has been read.
  std::uint64_t activity() const { return activity_; }
  // What the kernel holds for this connection that it has not read yet.
  enum class Waiting { nothing, part, head };
  Waiting waiting() const;
  // Nothing ever read from it and nothing waiting: a connection that has not asked for anything.
  bool silent() const { return !received_ && waiting() == Waiting::nothing; }

 private:
  enum class State { serving, finishing, closed };
  enum class Event { none, headers_complete, message_complete };

  static const llhttp_settings_t& settings();
  static int cb_message_begin(llhttp_t* p);
  static int cb_url(llhttp_t* p, const char* at, std::size_t len);
  static int cb_header_field(llhttp_t* p, const char* at, std::size_t len);
  static int cb_header_value(llhttp_t* p, const char* at, std::size_t len);
  static int cb_header_value_complete(llhttp_t* p);
  static int cb_body(llhttp_t* p, const char* at, std::size_t len);
  static int cb_headers_complete(llhttp_t* p);
  static int cb_message_complete(llhttp_t* p);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_written(void* owner, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_timer(uv_timer_t* timer);
  static void on_closed(uv_handle_t* handle);

  void feed(const char* data, std::size_t len);
  void headers_complete();
  void message_complete();
  void answer();
  void reject(int status, std::string body);
  void send(std::string bytes);
  void finish();
  void start_reading();
  void stop_reading();
  void arm(std::uint64_t ms) { uv_timer_start(&timer_, on_timer, ms, 0); }
  // The whole next request (head and any body) must arrive within this from now.
  void arm_head() {
    arm(ms(pool_ == Pool::reserve ? server_.limits_.reserve_head_timeout : server_.limits_.head_timeout));
  }
  void mark_active() { activity_ = ++server_.activity_; }
  bool reserved_path(std::string_view path) const;

  AdminServer& server_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_{};
  int open_handles_ = 0;
  llhttp_t parser_{};
  State state_ = State::serving;
  Event event_ = Event::none;
  std::string url_;
  std::string header_field_;  // the field whose value is being read
  std::string header_value_;
  std::string content_type_;
  std::string body_;
  std::size_t head_bytes_ = 0;  // raw bytes since the previous request ended, up to its head's end
  std::size_t body_bytes_ = 0;
  bool in_body_ = false;  // the current request's head is complete
  bool answered_ = false;
  bool keep_alive_ = false;
  bool reading_ = false;
  bool paused_for_backpressure_ = false;
  bool read_eof_ = false;
  bool shutdown_done_ = false;
  // Answered on keep-alive and no byte of the next request yet: the idle timeout runs, and the
  // head timeout starts with the next request's first byte.
  bool awaiting_next_ = false;
  bool counted_ = false;
  bool waiting_deferred_ = false;  // a handler answers later; nothing more is parsed
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // a deferred answer's guard
  Pool pool_ = Pool::general;
  std::string peer_;
  std::uint64_t activity_ = 0;
  bool received_ = false;  // any byte read
};

AdminServer::Connection* AdminServer::Connection::open(AdminServer& server) {
  auto c = std::make_unique<Connection>(server);
  if (uv_tcp_init(server.loop_, &c->tcp_) != 0) return nullptr;  // nothing registered with libuv yet
  uv_timer_init(server.loop_, &c->timer_);
  llhttp_init(&c->parser_, HTTP_REQUEST, &settings());
  // From here the handles own the connection; on_closed frees it once both have closed.
  Connection* raw = c.release();
  raw->parser_.data = raw;
  raw->tcp_.data = raw;
  raw->timer_.data = raw;
  raw->open_handles_ = 2;
  server.connections_.insert(raw);
  return raw;
}

const llhttp_settings_t& AdminServer::Connection::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t out;
    llhttp_settings_init(&out);
    out.on_message_begin = cb_message_begin;
    out.on_url = cb_url;
    out.on_header_field = cb_header_field;
    out.on_header_value = cb_header_value;
    out.on_header_value_complete = cb_header_value_complete;
    out.on_body = cb_body;
    out.on_headers_complete = cb_headers_complete;
    out.on_message_complete = cb_message_complete;
    return out;
  }();
  return s;
}

void AdminServer::Connection::start(Pool pool, std::string peer) {
  pool_ = pool;
  peer_ = std::move(peer);
  counted_ = true;
  server_.count(*this, 1);
  mark_active();
  uv_tcp_nodelay(&tcp_, 1);
  // Not re-armed by reads: a client trickling its request a byte at a time gets no more time.
  arm_head();
  start_reading();
  if (!reading_) close();
}

bool AdminServer::Connection::reserved_path(std::string_view path) const {
  const auto& paths = server_.limits_.reserved_paths;
  return std::find(paths.begin(), paths.end(), path) != paths.end();
}

void AdminServer::Connection::start_reading() {
  if (reading_ || read_eof_ || state_ == State::closed) return;
  reading_ = uv_read_start(stream(), alloc_thread_read_buffer, on_read) == 0;
}

void AdminServer::Connection::stop_reading() {
  if (!reading_) return;
  uv_read_stop(stream());
  reading_ = false;
}

void AdminServer::Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  if (nread == 0 || c->state_ == State::closed) return;
  if (nread < 0) {
    c->reading_ = false;
    if (nread != UV_EOF) {
      c->close();
      return;
    }
    c->read_eof_ = true;
    // The client has sent everything: the answers already queued still go out before closing.
    if (c->state_ == State::serving) c->finish();
    else if (c->shutdown_done_) c->close();
    return;
  }
  if (c->state_ != State::serving) return;  // lingering: input after the last answer is discarded
  c->received_ = true;
  c->feed(buf->base, static_cast<std::size_t>(nread));
  if (c->state_ == State::serving && uv_stream_get_write_queue_size(stream) > kHighWater) {
    // A client pipelining requests without reading the answers is not buffered for without bound,
    // and one that stops reading altogether gives up its connection after the head timeout.
    c->stop_reading();
    c->paused_for_backpressure_ = true;
    c->arm(ms(c->server_.limits_.head_timeout));
  }
}

void AdminServer::Connection::feed(const char* data, std::size_t len) {
  if (waiting_deferred_) return;
  // The parser pauses at the end of every head and every request, so each slice of bytes is
  // known to belong to a head or a body and the limits count raw bytes, whitespace included.
  while (len > 0 && state_ == State::serving && !waiting_deferred_) {
    event_ = Event::none;
    const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    std::size_t used = len;
    if (err == HPE_PAUSED) used = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
    (in_body_ ? body_bytes_ : head_bytes_) += used;
    data += used;
    len -= used;
    if (err == HPE_PAUSED_UPGRADE) {
      finish();  // only after an upgrade request, which was answered with Connection: close
      return;
    }
    if (err != HPE_OK && err != HPE_PAUSED) {
      // Malformed framing: answer once and close, so nothing after it is interpreted.
      reject(400, "the request is not valid HTTP/1.1\n");
      return;
    }
    if (!in_body_ && head_bytes_ > kMaxHeadBytes) {
      reject(431, "the request head is larger than allowed\n");
      return;
    }
    if (head_bytes_ + body_bytes_ > kMaxRequestBytes) {
      reject(413, "the request is larger than allowed\n");
      return;
    }
    if (err == HPE_OK) return;
    llhttp_resume(&parser_);
    if (event_ == Event::headers_complete) headers_complete();
    else if (event_ == Event::message_complete) message_complete();
  }
}

int AdminServer::Connection::cb_message_begin(llhttp_t* p) {
  auto* c = static_cast<Connection*>(p->data);
  c->url_.clear();
  c->header_field_.clear();
  c->header_value_.clear();
  c->content_type_.clear();
  c->body_.clear();
  if (c->awaiting_next_) {
    c->awaiting_next_ = false;
    c->arm_head();
  }
  return 0;
}

int AdminServer::Connection::cb_url(llhttp_t* p, const char* at, std::size_t len) {
  // No bound needed here: feed() rejects a head over the limit after at most one read's worth.
  static_cast<Connection*>(p->data)->url_.append(at, len);
  return 0;
}

// Field names and values are bounded like the URL: feed() rejects a head over the limit.
int AdminServer::Connection::cb_header_field(llhttp_t* p, const char* at, std::size_t len) {
  static_cast<Connection*>(p->data)->header_field_.append(at, len);
  return 0;
}

int AdminServer::Connection::cb_header_value(llhttp_t* p, const char* at, std::size_t len) {
  auto* c = static_cast<Connection*>(p->data);
  // Only Content-Type is kept; other values need not be held.
  if (iequals(c->header_field_, "content-type")) c->header_value_.append(at, len);
  return 0;
}

int AdminServer::Connection::cb_header_value_complete(llhttp_t* p) {
  auto* c = static_cast<Connection*>(p->data);
  if (iequals(c->header_field_, "content-type")) c->content_type_ = c->header_value_;
  c->header_field_.clear();
  c->header_value_.clear();
  return 0;
}

int AdminServer::Connection::cb_body(llhttp_t* p, const char* at, std::size_t len) {
  auto* c = static_cast<Connection*>(p->data);
  // feed() refuses a request over the limit once this execute returns; nothing beyond it is kept.
  if (c->body_.size() + len <= kMaxRequestBytes) c->body_.append(at, len);
  return 0;
}

int AdminServer::Connection::cb_headers_complete(llhttp_t* p) {
  static_cast<Connection*>(p->data)->event_ = Event::headers_complete;
  return HPE_PAUSED;
}

int AdminServer::Connection::cb_message_complete(llhttp_t* p) {
  static_cast<Connection*>(p->data)->event_ = Event::message_complete;
  return HPE_PAUSED;
}

void AdminServer::Connection::headers_complete() {
  in_body_ = true;
  // A refused upgrade (or CONNECT) leaves the parser expecting another protocol: close after it.
  keep_alive_ = llhttp_should_keep_alive(&parser_) != 0 && parser_.upgrade == 0;
  const bool chunked = (parser_.flags & F_CHUNKED) != 0;
  const bool has_length = (parser_.flags & F_CONTENT_LENGTH) != 0;
  if (has_length && parser_.content_length > kMaxRequestBytes - head_bytes_) {
    reject(413, "the request is larger than allowed\n");  // refused before the body is sent
    return;
  }
  // After a pause at the end of the head, llhttp reports the end of a body-less request only with
  // the next bytes, which a client waiting for its answer will not send: answer it now.
  if (!chunked && !(has_length && parser_.content_length > 0)) answer();
}

void AdminServer::Connection::message_complete() {
  if (!answered_) answer();  // a request with a body is answered once the body has been read
  url_.clear();
  body_.clear();
  head_bytes_ = 0;
  body_bytes_ = 0;
  in_body_ = false;
  answered_ = false;
}

void AdminServer::Connection::answer() {
  answered_ = true;
  mark_active();
  const auto method = static_cast<llhttp_method_t>(parser_.method);
  std::string_view path, query;
  split_target(url_, path, query);
  AdminResponse r;
  if (pool_ == Pool::reserve) keep_alive_ = false;  // a reserve slot serves one request
  if (pool_ == Pool::reserve && !reserved_path(path)) {
    r = plain(503, "the admin listener is at its connection limit; only the health and readiness probes are "
                   "answered until connections close\n");
    r.headers.emplace_back("Retry-After", "1");
  } else {
    bool deferred = false;
    auto defer = [this, &deferred, head = method == HTTP_HEAD]() -> AdminDeferredAnswer {
      deferred = true;
      return [this, alive = std::weak_ptr<bool>(alive_), head](AdminResponse later) {
        if (alive.expired() || state_ != State::serving) return;
        if (later.status < 200 || later.status > 599) later = plain(500, "internal error\n");
        send(serialize(later, head, false, server_.common_headers_));
        finish();
      };
    };
    try {
      r = server_.handler_(AdminRequest{llhttp_method_name(method), path, query, content_type_, body_, defer});
    } catch (...) {
      // Unwinding must not reach libuv's C frames; the client gets a plain failure instead.
      r = plain(500, "internal error\n");
    }
    if (deferred) {
      // Answered later, then closed: what the client sends meanwhile is not read.
      keep_alive_ = false;
      waiting_deferred_ = true;
      stop_reading();
      return;
    }
    if (r.status < 200 || r.status > 599) r = plain(500, "internal error\n");  // 1xx would break framing
  }
  send(serialize(r, method == HTTP_HEAD, keep_alive_, server_.common_headers_));
  if (state_ != State::serving) return;
  if (keep_alive_) {
    awaiting_next_ = true;
    arm(ms(server_.limits_.idle_timeout));
  } else {
    finish();
  }
}

void AdminServer::Connection::reject(int status, std::string body) {
  keep_alive_ = false;
  send(serialize(plain(status, std::move(body)), false, false, server_.common_headers_));
  finish();
}

void AdminServer::Connection::send(std::string bytes) {
  if (state_ == State::closed) return;
  if (write_owned(stream(), std::move(bytes), this, on_written) != 0) close();
}

void AdminServer::Connection::on_written(void* owner, int status) {
  auto* c = static_cast<Connection*>(owner);
  if (c->state_ == State::closed) return;
  if (status != 0) {
    c->close();
    return;
  }
  if (!c->paused_for_backpressure_ || c->state_ != State::serving) return;
  if (uv_stream_get_write_queue_size(c->stream()) >= kLowWater) {
    c->arm(ms(c->server_.limits_.head_timeout));  // the client is reading: it keeps its time
    return;
  }
  c->paused_for_backpressure_ = false;
  if (c->awaiting_next_) c->arm(ms(c->server_.limits_.idle_timeout));
  else c->arm_head();
  c->start_reading();
}

void AdminServer::Connection::finish() {
  if (state_ != State::serving) return;
  state_ = State::finishing;
  arm(kLingerMs);
  // Half-close once the answers are out (uv_shutdown waits for queued writes), then drain what the
  // client still sends: closing with unread input makes the kernel reset the connection, which can
  // destroy the answer before the client reads it.
  if (uv_shutdown(&shutdown_, stream(), on_shutdown) != 0) {
    close();
    return;
  }
  start_reading();
}

void AdminServer::Connection::on_shutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<Connection*>(req->handle->data);
  if (c->state_ == State::closed) return;
  c->shutdown_done_ = true;
  if (status != 0 || c->read_eof_) c->close();
}

void AdminServer::Connection::on_timer(uv_timer_t* timer) { static_cast<Connection*>(timer->data)->close(); }

void AdminServer::Connection::close() {
  if (state_ == State::closed) return;
  state_ = State::closed;
  alive_.reset();  // a deferred answer arriving later finds nobody
  reading_ = false;
  if (counted_) {
    // Its slot is free at once, though the handles finish closing on a later loop turn.
    counted_ = false;
    server_.count(*this, -1);
  }
  uv_timer_stop(&timer_);
  close_handle(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
  close_handle(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
}

void AdminServer::Connection::on_closed(uv_handle_t* handle) {
  auto* c = static_cast<Connection*>(handle->data);
  if (--c->open_handles_ > 0) return;
  std::unique_ptr<Connection> owned(c);
  c->server_.forget(c);
}

AdminLimits admin_limits(const config::AdminConfig& config) {
  AdminLimits limits;
  limits.max_connections = static_cast<std::size_t>(config.max_connections);
  limits.max_connections_per_peer = static_cast<std::size_t>(config.max_connections_per_peer);
  limits.head_timeout = config.head_timeout;
  limits.idle_timeout = config.idle_timeout;
  limits.reserve_head_timeout = std::min(limits.reserve_head_timeout, config.head_timeout);
  return limits;
}

AdminServer::AdminServer(uv_loop_t* loop, AdminHandler handler, AdminLimits limits)
    : AdminServer(
          loop,
          AdminRequestHandler([h = std::move(handler)](const AdminRequest& r) { return h(r.method, r.path, r.query); }),
          std::move(limits)) {}

AdminServer::AdminServer(uv_loop_t* loop, AdminRequestHandler handler, AdminLimits limits)
    : loop_(loop), handler_(std::move(handler)), limits_(std::move(limits)) {}

AdminServer::~AdminServer() {
  if (listener_ != nullptr || !connections_.empty()) {
    // Their callbacks would later run on freed memory; stop at the misuse instead.
    std::fprintf(stderr, "jwtgate: AdminServer destroyed before close() and the loop closing its handles\n");
    std::abort();
  }
}

bool AdminServer::start(const config::ListenAddress& address, std::string& error) {
  const std::string where =
      address.text.empty() ? address.host + ":" + std::to_string(address.port) : address.text;
  if (listener_ != nullptr || closed_) {
    error = "the admin server on " + where + " was already started";
    return false;
  }
  const std::string host = address.host == "localhost" ? "127.0.0.1" : address.host;
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), address.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), address.port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    error = "cannot listen on " + where + ": not an IP address";
    return false;
  }
  auto listener = std::make_unique<Listener>();
  listener->server = this;
  if (const int rc = uv_tcp_init(loop_, &listener->tcp); rc != 0) {
    error = "cannot listen on " + where + ": " + uv_strerror(rc);
    return false;
  }
  Listener* raw = listener.release();  // freed by on_listener_closed
  raw->tcp.data = raw;
  // uv_tcp_bind sets SO_REUSEADDR but not SO_REUSEPORT: a second process cannot silently share the
  // admin port. libuv may report a bind failure only from uv_listen.
  int rc = uv_tcp_bind(&raw->tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&raw->tcp), kBacklog, on_connection);
  if (rc != 0) {
    error = "cannot listen on " + where + ": " + uv_strerror(rc);
    close_handle(reinterpret_cast<uv_handle_t*>(&raw->tcp), on_listener_closed);
    return false;
  }
  sockaddr_storage actual{};
  int len = sizeof actual;
  if (uv_tcp_getsockname(&raw->tcp, reinterpret_cast<sockaddr*>(&actual), &len) == 0) {
    port_ = ntohs(actual.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&actual)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&actual)->sin_port);
  }
  listener_ = raw;
  return true;
}

std::uint16_t AdminServer::port() const { return port_; }

void AdminServer::close() {
  closed_ = true;
  if (listener_ != nullptr) {
    close_handle(reinterpret_cast<uv_handle_t*>(&listener_->tcp), on_listener_closed);
    listener_ = nullptr;
  }
  // Connections leave the set only from their close callbacks, so iterating here is safe.
  for (Connection* c : connections_) c->close();
}

void AdminServer::on_connection(uv_stream_t* stream, int status) {
  AdminServer* server = static_cast<Listener*>(stream->data)->server;
  if (status < 0 || server->closed_) return;
  Connection* c = Connection::open(*server);
  if (c == nullptr) return;
  if (uv_accept(stream, c->stream()) != 0) {
    c->close();
    return;
  }
  std::string peer = peer_key(c->tcp());
  // A refused connection is accepted and closed at once rather than left in the backlog, where it
  // would wait unanswered.
  const std::optional<Pool> pool = peer.empty() ? std::nullopt : server->place(peer);
  if (!pool) {
    c->close();
    return;
  }
  c->start(*pool, std::move(peer));
}

std::optional<AdminServer::Pool> AdminServer::place(const std::string& peer) {
  // A peer at its limit makes room among its own connections, so clients behind one address (a
  // NAT, the node's kubelet beside a noisy neighbour) are not locked out by its idle ones.
  if (const auto it = per_peer_open_.find(peer);
      it != per_peer_open_.end() && it->second >= limits_.max_connections_per_peer) {
    Connection* victim = eviction_candidate(&peer);
    if (victim == nullptr) return std::nullopt;
    victim->close();
  }
  if (general_open_ >= limits_.max_connections && reserve_open_ >= limits_.reserve_connections) {
    Connection* victim = eviction_candidate(nullptr);
    if (victim == nullptr) return std::nullopt;
    victim->close();
  }
  if (general_open_ < limits_.max_connections) return Pool::general;
  if (reserve_open_ < limits_.reserve_connections) return Pool::reserve;
  return std::nullopt;  // the limits were lowered by a reload below what is open
}

AdminServer::Connection::Waiting AdminServer::Connection::waiting() const {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0) return Waiting::nothing;
  char peek[4096];
  const ssize_t n = ::recv(fd, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
  if (n <= 0) return Waiting::nothing;
  return std::string_view(peek, static_cast<std::size_t>(n)).find("\r\n\r\n") != std::string_view::npos ? Waiting::head
                                                                                                      : Waiting::part;
}

// A connection whose whole request head is already waiting in the kernel is never evicted: a
// burst of connections accepted in one loop turn (libuv takes the backlog at once, before reading
// any of them) must not push out the kubelet's probe, which sent its request right after
// connecting. Of the others, one that has not sent a byte goes first, then the one whose last
// answer or accept lies furthest back: whatever state it is in (part of a request, idle keep-alive,
// lingering, not reading its answers), it is doing least for its slot.
AdminServer::Connection* AdminServer::eviction_candidate(const std::string* peer) const {
  Connection* best = nullptr;
  bool best_silent = false;
  for (Connection* c : connections_) {
    if (!c->open_and_counted()) continue;
    if (peer != nullptr && c->peer() != *peer) continue;
    if (c->waiting() == Connection::Waiting::head) continue;
    const bool silent = c->silent();
    if (best == nullptr || (silent && !best_silent) ||
        (silent == best_silent && c->activity() < best->activity())) {
      best = c;
      best_silent = silent;
    }
  }
  return best;
}

void AdminServer::count(const Connection& c, int delta) {
  std::size_t& pool = c.pool() == Pool::general ? general_open_ : reserve_open_;
  pool = delta > 0 ? pool + 1 : pool - 1;
  if (delta > 0) {
    ++per_peer_open_[c.peer()];
  } else if (const auto it = per_peer_open_.find(c.peer()); it != per_peer_open_.end() && --it->second == 0) {
    per_peer_open_.erase(it);
  }
}

void AdminServer::on_listener_closed(uv_handle_t* handle) {
  std::unique_ptr<Listener> owned(static_cast<Listener*>(handle->data));
}

void AdminServer::forget(Connection* connection) { connections_.erase(connection); }

}  // namespace jwtgate::proxy
