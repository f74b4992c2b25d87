// One client connection: llhttp parses its requests (strictly); each request is routed,
// authorized and, when allowed, forwarded to the upstream with its body streamed both ways
// under backpressure. Keep-alive, pipelining (one exchange at a time), Expect: 100-continue
// and Upgrade tunnels are handled here.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/ip_network.h"
#include "core/fingerprint.h"
#include "proxy/http/exchange.h"
#include "proxy/http/exchange_record.h"
#include "proxy/http/h2_session.h"
#include "proxy/http/h2_upstream_session.h"
#include "proxy/http/http_head.h"
#include "proxy/http/client_certificate.h"
#include "proxy/http/request_target.h"
#include "proxy/http/transport.h"
#include "proxy/http/upstream_pool.h"
#include "proxy/worker_context.h"

namespace jwtgate::proxy {

class ClientConnection final : public UpstreamClient,
                               private H2UpstreamStreamClient,
                               private TransportUser,
                               private KeyWaiter,
                               private H2SessionHost {
 public:
  // `mode`: the listener it came in on. A forward-auth connection answers each request with the
  // verdict on the request it describes and never opens an upstream connection.
  // `tls`: the listener's TLS context (nullptr: plain TCP).
  ClientConnection(WorkerContext& worker, Mode mode, std::shared_ptr<const TlsServerContext> tls = nullptr);
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Accepts from `server` and starts reading. False when accept failed (the object then closes
  // itself).
  bool accept(uv_stream_t* server);
  // Sends `response` (a complete HTTP response) and closes: for connections over the limit.
  void refuse(std::string response);
  // Stop keeping the connection alive; close it now if it is between requests.
  void begin_drain();
  // Close now, whatever is in flight.
  void close();
  // The refresh this connection's request waited for has ended: decide the request now.
  void keys_refreshed();

  // UpstreamClient
  void upstream_connected(UpstreamConnection* up) override;
  void upstream_failed(UpstreamConnection* up, int status, bool response_started) override;
  int upstream_response_head(UpstreamConnection* up, int status_code,
                             const HeaderList& headers) override;
  void upstream_body(UpstreamConnection* up, std::string_view data) override;
  void upstream_complete(UpstreamConnection* up) override;
  void upstream_tunnel_data(UpstreamConnection* up, std::string_view data) override;
  void upstream_writable(UpstreamConnection* up) override;
  void upstream_read_begin() override { batching_ = true; }
  void upstream_read_end() override;

 private:
  enum class Phase { idle, head, awaiting_keys, forwarding, tunnel, closing };
  enum class Timer { none, handshake, idle, head, upstream, keys, body, h2 };

  static const llhttp_settings_t& request_settings();
  static int cb_message_begin(llhttp_t* p);
  static int cb_url(llhttp_t* p, const char* at, std::size_t len);
  static int cb_header_field(llhttp_t* p, const char* at, std::size_t len);
  static int cb_header_value(llhttp_t* p, const char* at, std::size_t len);
  static int cb_headers_complete(llhttp_t* p);
  static int cb_body(llhttp_t* p, const char* at, std::size_t len);
  static int cb_message_complete(llhttp_t* p);

  // An h2c:// upstream for an HTTP/1 request: one stream of the pool's shared connection.
  void start_h2_upstream();
  void cancel_h2_upstream();
  void h2_response_head(int status, const HeaderList& headers, bool end_stream) override;
  void h2_response_data(std::string_view data) override;
  void h2_response_trailers(const HeaderList&) override {}  // an HTTP/1 client reads no trailers
  void h2_stream_closed(bool complete, bool refused, std::string_view why) override;
  void h2_request_writable() override;

  // HTTP/2: the client's first bytes are the connection preface (h2c), or ALPN chose h2.
  // Returns true when the bytes were taken (by the preface check or the session).
  bool sniff_h2(const char* data, std::size_t len);
  void start_h2(std::string_view first_bytes);
  // H2SessionHost
  bool h2_await_keys(std::size_t provider) override { return worker_.await_keys(provider, this); }
  void h2_arm_timer(std::uint64_t ms) override;
  void h2_finished() override;

  // TransportUser
  void transport_data(const char* data, std::size_t len) override;
  void transport_ended() override;
  void transport_written(int status) override;
  void transport_secured() override;
  void transport_handshake_failed() override;
  void transport_closed() override;

  void on_written(int status);
  static void on_timer(uv_timer_t* timer);
  static void on_closed(uv_handle_t* handle);
  // One of the two handles (transport, timer) is released; the last frees the connection.
  void handle_closed();

  void feed(const char* data, std::size_t len);
  // Runs llhttp over `data` (from the read buffer, or pending_ at pending_pos_) and acts on how
  // it stopped. Never re-enters itself: whatever a refusal or a finished exchange makes ready
  // is parsed by resume_input's loop.
  void execute(const char* data, std::size_t len, bool from_pending);
  void handle_parse_error();
  // Parses held bytes, one request after another in a loop (not by recursion), while the parser
  // may go on and the client's unread output stays under the high-water mark; then decides
  // whether to read from the socket.
  void resume_input();
  void hold_input(const char* data, std::size_t len);
  std::size_t held_bytes() const { return pending_.size() - pending_pos_; }
  // Lets llhttp go on with the body, or with the next request.
  void resume_parser();
  // False (with why) for a head whose framing or routing is ambiguous: Host twice, missing or
  // malformed, a Transfer-Encoding not ending in chunked, or a Connection header listing a
  // header that frames or routes the request. Collects the other Connection-listed names.
  bool check_head_framing(std::string& why);
  // Framing checks, then the exchange's route decision.
  void process_head();
  // The exchange's verdict on the parsed request: forwards or refuses it, or parks the
  // connection until its provider's keys are refreshed (once per request).
  void authorize();
  // Writes the exchange's answer as HTTP/1.
  void respond_with(const Answer& answer, bool keep_alive);
  // KeyWaiter
  bool await_keys(std::size_t provider) override;
  // Answers the request from jwtgate itself (a refusal, or a forward-auth verdict) and goes on
  // with the next one, or closes.
  void respond(std::string response, bool keep_alive);
  void connect_upstream(bool allow_reuse);
  void send_upstream_head();
  void finish_exchange();
  void reset_request();
  // Sends `data` to the client; while an upstream read is being handled, collects it instead
  // (see upstream_read_begin).
  void write_client(std::string data);
  void send_client(std::string data);  // now, batching or not
  // Parsing stopped for unread output goes on once the output is below the low-water mark.
  void unblock_input_if_drained();
  void append_client(std::string_view data);
  void flush_client();
  std::size_t client_queue_size() const;
  void close_after_writes();
  // Body progress (a read either way, or client output written): postpones the body timeout.
  void body_progress() { last_body_progress_ms_ = uv_now(worker_.loop()); }
  // Answers not yet handed to the kernel: until they are, the client is being served, not idle.
  bool output_pending() const { return writes_in_flight_ > 0 || !out_.empty(); }
  void arm_between_requests();
  // Starts the timer for `kind` with its configured limit (none: stops it).
  void arm(Timer kind);
  // Adds to the request-head size; false (and head_too_large_) once over the limits.
  bool count_head_bytes(std::size_t n);
  void start_reading();
  void stop_reading();
  // Counts the request in the worker's metrics and writes its access-log line; once per request.
  void account();
  const RuntimeConfig& rt() const { return *gen_->runtime; }
  bool expects_body() const;
  // Whether jwtgate's own answer to this request leaves the connection open: only for a request
  // with no body. Bytes after a head that declares one are never parsed as a request, as the
  // declared body may never come (nginx's auth_request sends the client's Content-Length
  // with no body unless told not to) and the next request would then be read as that body.
  bool answer_keeps_alive() const;
  // After the last write of a connection closing with a request body unread: shut down the
  // sending side and drop what still arrives, bounded, before closing. Closing at once with
  // unread input makes the kernel reset the connection, which can destroy the answer in flight.
  void linger();
  // Once the queued writes are done: close, or linger first.
  void close_when_written();

  WorkerContext& worker_;
  const Mode mode_;
  std::shared_ptr<Generation> gen_;  // the configuration this request runs under
  Transport transport_;
  uv_timer_t timer_{};
  int open_handles_ = 0;
  llhttp_t parser_{};
  Phase phase_ = Phase::idle;
  Timer timer_kind_ = Timer::none;
  bool read_paused_for_backpressure_ = false;
  bool close_after_writes_ = false;
  bool linger_ = false;     // close_after_writes lingers (see linger())
  bool lingering_ = false;  // the sending side is shut down; input is dropped
  std::uint64_t lingered_bytes_ = 0;
  int writes_in_flight_ = 0;
  bool closed_ = false;
  std::string peer_ip_;
  ClientCertificate client_certificate_;  // what the TLS client presented (empty: none)
  std::optional<config::IpAddress> peer_address_;  // for forward_auth.trusted_proxies
  std::string pending_;  // received but not yet parsed (while an exchange is in flight)
  std::size_t pending_pos_ = 0;  // pending_ before this was parsed already
  bool parser_paused_ = false;   // llhttp stopped at a head or a message end, for us to act
  bool in_input_loop_ = false;
  bool input_blocked_ = false;   // refusals piled up unread: parsing waits for the client to read
  std::uint64_t last_body_progress_ms_ = 0;
  bool batching_ = false;
  std::string out_;      // collected for the client while batching_

  // The request being parsed or forwarded.
  std::string url_;
  HeaderList headers_;
  std::size_t head_bytes_ = 0;
  bool head_too_large_ = false;
  bool keep_alive_ = true;
  bool chunked_request_ = false;
  bool has_content_length_ = false;
  std::uint64_t content_length_ = 0;
  std::vector<std::string> connection_options_;  // hop-by-hop names the client's Connection lists
  bool upgrade_request_ = false;
  bool head_request_ = false;
  bool request_done_ = false;
  bool retryable_ = false;
  bool retried_ = false;
  std::string upstream_head_;
  Exchange exchange_;  // its route and authorisation decisions

  // HTTP/2: the session once the connection speaks it; until then, whether it still may (no
  // byte of HTTP/1 has been parsed) and the preface bytes seen so far.
  std::unique_ptr<H2Session> h2_;
  bool may_sniff_h2_ = false;
  std::string preface_;
  bool h2_closing_ = false;
  // The exchange's stream to an h2c:// upstream (instead of upstream_).
  H2UpstreamSession* h2up_ = nullptr;
  std::int32_t h2up_id_ = 0;
  std::vector<HeaderField> h2up_head_;
  std::size_t h2up_unconsumed_ = 0;  // response bytes not yet credited to the upstream

  ExchangeRecord record_;  // what the access log and the metrics say about the request

  // The upstream side of the exchange.
  UpstreamConnection* upstream_ = nullptr;
  // The pool of the upstream the route decision chose (owned by gen_): every connection of the
  // exchange, a retry's too, comes from it and returns to it.
  UpstreamPool* upstream_pool_ = nullptr;
  std::size_t upstream_index_ = 0;  // in rt().upstreams, for the access log
  bool response_head_sent_ = false;
  bool rechunk_response_ = false;
  bool close_delimited_response_ = false;
};

}  // namespace jwtgate::proxy
