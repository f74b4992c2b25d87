#include "tests/fuzz/http_fuzz_harness.h"

#include <poll.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "config/loader.h"
#include "core/jwk.h"
#include "core/signer.h"
#include "proxy/http/client_connection.h"
#include "proxy/admin/log.h"
#include "proxy/uv_util.h"

namespace jwtgate::fuzz {
namespace {

constexpr std::size_t kReadBuffer = 64 * 1024;
// An exchange on loopback settles in a few dozen loop turns; this many means it never will.
constexpr int kMaxTurns = 20000;

const std::set<std::string>& known_failures() {
  static const std::set<std::string> known = [] {
    std::set<std::string> out;
    const char* env = std::getenv("JWTGATE_FUZZ_KNOWN");
    std::string_view rest = env ? env : "";
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      if (comma != 0) out.emplace(rest.substr(0, comma));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return out;
  }();
  return known;
}

Peer* peer_of(uv_handle_t* h) { return static_cast<Peer*>(h->data); }

}  // namespace

void property_failed(const char* name, const std::string& detail) {
  if (known_failures().count(name) == 0) {
    std::fprintf(stderr, "HTTP FUZZ PROPERTY FAILED [%s]: %s\n", name, detail.c_str());
    std::abort();
  }
  static std::map<std::string, std::size_t> seen;
  if (seen[name]++ == 0) std::fprintf(stderr, "known property failed (reported once) [%s]: %s\n", name, detail.c_str());
}

std::string printable(std::string_view bytes, std::size_t max) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c == '\\') out += "\\\\";
    else if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
    else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (bytes.size() > max) out += "...";
  return out;
}

std::vector<std::string_view> split(std::string_view data, std::string_view cuts) {
  std::vector<std::size_t> at;
  for (char c : cuts) at.push_back(static_cast<unsigned char>(c) * data.size() / 256);
  std::sort(at.begin(), at.end());
  std::vector<std::string_view> out;
  std::size_t from = 0;
  for (std::size_t pos : at) {
    if (pos <= from) continue;
    out.push_back(data.substr(from, pos - from));
    from = pos;
  }
  if (from < data.size()) out.push_back(data.substr(from));
  return out;
}

std::string ProxyHarness::mint(std::string_view payload_json) {
  core::SigningKey key;
  key.secret = core::SecretBytes(kSecret);
  auto token = core::mint_token(core::Alg::HS256, key, kKid, payload_json);
  if (!token.ok()) {
    std::fprintf(stderr, "http fuzz: cannot mint a token: %s\n", token.status().detail().c_str());
    std::abort();
  }
  return token.value();
}

void ProxyHarness::listen_on(uv_tcp_t& listener, std::uint16_t& port, uv_connection_cb cb) {
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(&loop_, &listener);
  listener.data = this;
  if (uv_tcp_bind(&listener, reinterpret_cast<const sockaddr*>(&addr), 0) != 0 ||
      uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 128, cb) != 0) {
    std::fprintf(stderr, "http fuzz: cannot listen on 127.0.0.1\n");
    std::abort();
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&bound), &len);
  port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

ProxyHarness::ProxyHarness(const std::string& provider_extra, const std::string& routes)
    : ProxyHarness(provider_extra, routes, "", proxy::Mode::proxy) {}

ProxyHarness::ProxyHarness(const std::string& provider_extra, const std::string& routes, const std::string& top_level,
                           proxy::Mode mode)
    : mode_(mode), read_buffer_(std::make_unique<char[]>(kReadBuffer)) {
  uv_loop_init(&loop_);
  loop_.data = this;
  listen_on(upstream_listener_, upstream_port_, on_upstream_connection);
  listen_on(proxy_listener_, proxy_port_, on_proxy_connection);

  config::LoadOptions options;
  options.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "FUZZ_HMAC_SECRET") return std::string(kSecret);
    return std::nullopt;
  };
  const std::string yaml = "listen: 127.0.0.1:18080\nupstream: http://127.0.0.1:" + std::to_string(upstream_port_) +
                           "\nlog:\n  level: error\n  access_log: false\nproviders:\n  - name: fuzz\n"
                           "    issuer: https://idp.fuzz/\n    audiences: [api]\n    algorithms: [HS256]\n"
                           "    hmac_secret_env: FUZZ_HMAC_SECRET\n    hmac_secret_kid: fuzz-1\n" +
                           provider_extra + routes + top_level;
  config::LoadResult loaded = config::load_config(yaml, "fuzz.yaml", options);
  if (!loaded.config) {
    std::fprintf(stderr, "http fuzz: bad config: %s\n", loaded.diagnostics.format().c_str());
    std::abort();
  }
  proxy::set_log_options(loaded.config->log);
  runtime_ = std::make_shared<const proxy::RuntimeConfig>(std::move(*loaded.config));
  auto jwk = core::jwk_from_hmac_secret(kSecret, std::string(kKid));
  if (!jwk.ok()) std::abort();
  core::KeySet keys;
  keys.keys.push_back(std::move(jwk.value()));
  keys_ = std::make_shared<const core::KeySet>(std::move(keys));
  pool_ = std::make_shared<proxy::UpstreamPool>(&loop_, runtime_->config.upstream, 16);
  for (const auto& route : runtime_->config.routes) route_metrics_.push_back(metrics_.route(route.prefix));
  new_generation();
}

ProxyHarness::~ProxyHarness() {
  end_input();
  pool_->close_idle();
  generation_.reset();
  pool_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&proxy_listener_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&upstream_listener_), nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

void ProxyHarness::new_generation() {
  auto g = std::make_shared<proxy::Generation>();
  g->runtime = runtime_;
  // A fresh (small) verified-token cache per input: an input behaves the same whatever ran before.
  g->authenticator = std::make_unique<proxy::Authenticator>(runtime_, 64);
  for (std::size_t i = 0; i < runtime_->providers.size(); ++i) g->authenticator->set_keys(i, keys_);
  // Every upstream the config names is the harness's one upstream.
  g->pools.assign(runtime_->upstreams.size(), pool_);
  g->route_metrics = route_metrics_;
  generation_ = std::move(g);
}

void ProxyHarness::on_proxy_connection(uv_stream_t* server, int status) {
  auto* h = static_cast<ProxyHarness*>(server->data);
  if (status != 0) return;
  auto owned = std::make_unique<proxy::ClientConnection>(*h, h->mode_);
  proxy::ClientConnection* c = owned.release();  // freed in connection_closed
  ++h->connections_;
  c->accept(server);
}

void ProxyHarness::connection_closed(proxy::ClientConnection* c) {
  --connections_;
  std::unique_ptr<proxy::ClientConnection> owned(c);
}

void ProxyHarness::on_upstream_connection(uv_stream_t* server, int status) {
  auto* h = static_cast<ProxyHarness*>(server->data);
  if (status != 0) return;
  auto peer = std::make_unique<Peer>();
  uv_tcp_init(&h->loop_, &peer->tcp);
  peer->tcp.data = peer.get();
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&peer->tcp)) != 0) {
    Peer* p = peer.release();
    uv_close(reinterpret_cast<uv_handle_t*>(&p->tcp), [](uv_handle_t* handle) { std::unique_ptr<Peer> freed(peer_of(handle)); });
    return;
  }
  peer->connected = true;
  peer->index = h->upstream_.size();
  Peer& p = *peer;
  h->upstream_.push_back(std::move(peer));
  if (h->on_upstream_accept) h->on_upstream_accept(p);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&p.tcp), on_alloc, on_read);
}

void ProxyHarness::on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  auto* h = static_cast<ProxyHarness*>(handle->loop->data);
  *buf = uv_buf_init(h->read_buffer_.get(), kReadBuffer);
}

void ProxyHarness::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  Peer* p = peer_of(reinterpret_cast<uv_handle_t*>(stream));
  if (nread == 0) return;
  if (nread < 0) {
    p->eof = true;
    uv_read_stop(stream);
    return;
  }
  const std::string_view data(buf->base, static_cast<std::size_t>(nread));
  p->received.append(data);
  if (p->on_data) p->on_data(*p, data);
}

void ProxyHarness::on_peer_closed(uv_handle_t* handle) { peer_of(handle)->closed = true; }

Peer& ProxyHarness::connect_client() {
  auto peer = std::make_unique<Peer>();
  Peer& p = *peer;
  clients_.push_back(std::move(peer));
  uv_tcp_init(&loop_, &p.tcp);
  p.tcp.data = &p;
  p.connect.data = &p;
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", proxy_port_, &addr);
  uv_tcp_connect(&p.connect, &p.tcp, reinterpret_cast<const sockaddr*>(&addr), [](uv_connect_t* req, int status) {
    Peer* peer = static_cast<Peer*>(req->data);
    if (status != 0) return;
    peer->connected = true;
    uv_tcp_nodelay(&peer->tcp, 1);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&peer->tcp), on_alloc, on_read);
  });
  run_until_quiet();
  if (!p.connected || connections_ == 0) {
    std::fprintf(stderr, "http fuzz: the client could not connect to the proxy\n");
    std::abort();
  }
  return p;
}

void ProxyHarness::send(Peer& peer, std::string_view data) {
  if (peer.closing || peer.eof || data.empty()) return;
  proxy::write_owned(reinterpret_cast<uv_stream_t*>(&peer.tcp), std::string(data), nullptr, nullptr);
}

void ProxyHarness::close_peer(Peer& peer) {
  if (peer.closing) return;
  peer.closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&peer.tcp), on_peer_closed);
}

void ProxyHarness::shutdown_peer(Peer& peer) {
  if (peer.closing) return;
  uv_shutdown(&peer.shutdown, reinterpret_cast<uv_stream_t*>(&peer.tcp), [](uv_shutdown_t*, int) {});
}

bool ProxyHarness::quiet() {
  // Nothing pending in libuv's queues (backend timeout 0 means there is), and no descriptor
  // ready in its epoll set: loopback delivers bytes and handshakes synchronously, so this is a
  // fixed point rather than a guess.
  if (uv_backend_timeout(&loop_) == 0) return false;
  pollfd pfd{uv_backend_fd(&loop_), POLLIN, 0};
  return ::poll(&pfd, 1, 0) == 0;
}

void ProxyHarness::run_until_quiet() {
  int quiet_turns = 0;
  for (int turn = 0; turn < kMaxTurns; ++turn) {
    uv_run(&loop_, UV_RUN_NOWAIT);
    if (!quiet()) {
      quiet_turns = 0;
    } else if (++quiet_turns >= 2) {
      return;
    }
  }
  property_failed("settles", "the proxy did not settle within " + std::to_string(kMaxTurns) + " loop turns");
}

void ProxyHarness::end_input() {
  for (auto& c : clients_) close_peer(*c);
  run_until_quiet();
  pool_->close_idle();
  run_until_quiet();
  for (auto& u : upstream_) close_peer(*u);
  run_until_quiet();
  HTTP_PROPERTY(connections_ == 0, "connections_close",
                std::to_string(connections_) + " client connections still open after the client and upstream closed");
  bool all_closed = true;
  for (auto& c : clients_) all_closed &= c->closed;
  for (auto& u : upstream_) all_closed &= u->closed;
  if (!all_closed) {
    std::fprintf(stderr, "http fuzz: harness sockets did not close\n");
    std::abort();
  }
  clients_.clear();
  upstream_.clear();
  new_generation();
}

}  // namespace jwtgate::fuzz
