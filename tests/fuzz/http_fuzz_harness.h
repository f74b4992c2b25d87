// An in-process jwtgate worker for the HTTP fuzz targets: one libuv loop on the fuzzing thread
// holds a real proxy listener whose connections are real ClientConnections, a fake upstream
// listener (the configured upstream) and the fake client's sockets, all on loopback. Built once
// and reused across inputs; each input gets a fresh client connection, fresh upstream
// connections and a fresh authenticator, and ends with every connection closed.
//
// Properties are named: a broken one aborts (a libFuzzer crash) unless its name is listed in
// JWTGATE_FUZZ_KNOWN (comma-separated), which lets the fuzzer go on past a bug that is known
// and being fixed elsewhere; such failures are counted and each name is reported once.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/worker_context.h"

namespace jwtgate::fuzz {

void property_failed(const char* name, const std::string& detail);
#define HTTP_PROPERTY(cond, name, detail)                      \
  do {                                                         \
    if (!(cond)) ::jwtgate::fuzz::property_failed(name, detail); \
  } while (0)

// Shown with a failed property: printable ASCII, the rest as \xNN, cut at `max` bytes.
std::string printable(std::string_view bytes, std::size_t max = 2000);

// `data` cut into pieces at the offsets `cuts` names (each cut byte is a fraction of the size
// in 256ths), so one input tells both what is sent and how it is split into writes.
std::vector<std::string_view> split(std::string_view data, std::string_view cuts);

// The fixed time the proxy runs at; the minted tokens are valid at it (or expired, on purpose).
inline constexpr std::int64_t kNow = 1'700'000'000;

// One end of a loopback TCP connection owned by the harness (the fake client, or a connection
// the fake upstream accepted).
struct Peer {
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  uv_shutdown_t shutdown{};
  std::string received;
  bool connected = false;
  bool eof = false;     // the other side closed (or reset) the connection
  bool closing = false;  // our handle is being closed
  bool closed = false;
  std::size_t index = 0;  // upstream: order of acceptance within the input
  // Called with each read (after `received` has grown).
  std::function<void(Peer&, std::string_view)> on_data;
};

class ProxyHarness final : public proxy::WorkerContext {
 public:
  // One HMAC provider (secret kSecret, kid fuzz-1) in front of the fake upstream, quiet logs;
  // `provider_extra` is YAML added inside the provider (claims_to_headers, ...), `routes` the
  // routes: block.
  ProxyHarness(const std::string& provider_extra, const std::string& routes);
  // The same, with `top_level` YAML added at the end of the config (a forward_auth: section, say),
  // and the listener's connections made in `mode`: with Mode::forward_auth every client
  // connection is a forward-auth check connection (the listener stands in for forward_auth.listen).
  ProxyHarness(const std::string& provider_extra, const std::string& routes, const std::string& top_level,
               proxy::Mode mode);
  ~ProxyHarness();
  ProxyHarness(const ProxyHarness&) = delete;
  ProxyHarness& operator=(const ProxyHarness&) = delete;

  static constexpr std::string_view kSecret = "fuzz-hmac-secret-0123456789abcdef-0123456789";
  static constexpr std::string_view kKid = "fuzz-1";
  // An HS256 token over `payload_json`, signed with kSecret under kKid.
  static std::string mint(std::string_view payload_json);

  // A new connection to the proxy, connected and accepted when this returns.
  Peer& connect_client();
  void send(Peer& peer, std::string_view data);
  // Closes our side (a FIN, or a reset when unread bytes wait).
  void close_peer(Peer& peer);
  // Ends our writing side (a FIN after what was written) and keeps reading.
  void shutdown_peer(Peer& peer);
  // Runs the loop until nothing is left to do but wait for timers (bounded; a proxy that never
  // settles is a broken property).
  void run_until_quiet();
  // Ends the input: closes the client and every upstream connection, lets the proxy close its
  // side, and starts the next input from a clean worker.
  void end_input();

  const std::vector<std::unique_ptr<Peer>>& upstream_peers() const { return upstream_; }
  // Called for each connection the fake upstream accepts, before any byte is read.
  std::function<void(Peer&)> on_upstream_accept;
  std::size_t open_client_connections() const { return connections_; }
  const proxy::RuntimeConfig& runtime() const { return *runtime_; }

  // WorkerContext
  uv_loop_t* loop() override { return &loop_; }
  const std::shared_ptr<proxy::Generation>& generation() override { return generation_; }
  proxy::WorkerMetrics& metrics() override { return metrics_; }
  proxy::LogBuffer& access_log() override { return log_; }
  bool draining() const override { return false; }
  std::int64_t now_seconds() const override { return kNow; }
  void connection_closed(proxy::ClientConnection* c) override;
  bool await_keys(std::size_t, proxy::ClientConnection*) override { return false; }
  void cancel_key_wait(proxy::ClientConnection*) override {}
  // Not initialised on the loop: HTTP/2 sessions send at once, within the input's processing.
  proxy::FlushQueue& flush_queue() override { return flush_queue_; }

 private:
  static void on_proxy_connection(uv_stream_t* server, int status);
  static void on_upstream_connection(uv_stream_t* server, int status);
  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_peer_closed(uv_handle_t* handle);
  bool quiet();
  void new_generation();
  void listen_on(uv_tcp_t& listener, std::uint16_t& port, uv_connection_cb cb);

  proxy::Mode mode_ = proxy::Mode::proxy;
  uv_loop_t loop_{};
  uv_tcp_t proxy_listener_{};
  uv_tcp_t upstream_listener_{};
  std::uint16_t proxy_port_ = 0;
  std::uint16_t upstream_port_ = 0;
  std::shared_ptr<const proxy::RuntimeConfig> runtime_;
  std::shared_ptr<const core::KeySet> keys_;
  std::shared_ptr<proxy::Generation> generation_;
  std::shared_ptr<proxy::UpstreamPool> pool_;
  std::vector<proxy::RouteCounters*> route_metrics_;
  proxy::WorkerMetrics metrics_;
  proxy::LogBuffer log_;
  proxy::FlushQueue flush_queue_;
  std::size_t connections_ = 0;
  std::vector<std::unique_ptr<Peer>> clients_;
  std::vector<std::unique_ptr<Peer>> upstream_;
  std::unique_ptr<char[]> read_buffer_;
};

}  // namespace jwtgate::fuzz
