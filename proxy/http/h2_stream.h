// One HTTP/2 request stream from a client: the same exchange as an HTTP/1 request (route →
// authorise → forward, proxy/http/exchange.h), then forwarded to an HTTP/1 upstream (a pooled
// connection of its own) or an h2c:// upstream (a stream of a shared connection), with the body
// flowing both ways under flow control. gRPC requests that jwtgate refuses get a Trailers-Only
// answer (proxy/http/grpc.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/exchange.h"
#include "proxy/http/exchange_record.h"
#include "proxy/http/grpc.h"
#include "proxy/http/h2_fields.h"
#include "proxy/http/h2_upstream_session.h"
#include "proxy/http/http_head.h"
#include "proxy/http/upstream_pool.h"
#include "proxy/worker_context.h"

namespace jwtgate::proxy {

class H2Session;

class H2Stream final : public UpstreamClient, public H2UpstreamStreamClient, private KeyWaiter {
 public:
  H2Stream(H2Session& session, std::int32_t id);
  ~H2Stream();
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;

  // From the client, as nghttp2 decoded it (nghttp2 has checked the fields' syntax, the pseudo-
  // headers, connection-specific fields and Content-Length against DATA: RFC 9113 section 8).
  void add_field(std::string_view name, std::string_view value);
  void head_complete(bool end_stream);
  void add_trailer(std::string_view name, std::string_view value);
  void body(std::string_view data);
  void request_ended();
  // The stream is closed (answered, reset by either side, or the connection is going): the
  // upstream side is let go and the exchange is recorded.
  void closed(std::uint32_t error_code);
  void keys_refreshed();
  // The earliest time (uv_now ms) something must happen to this stream, 0 for none.
  std::uint64_t deadline() const;
  void deadline_passed(std::uint64_t now);

  // nghttp2's data provider for the response body.
  nghttp2_ssize read_response(std::uint8_t* buf, std::size_t length, std::uint32_t* flags);
  // After a send: the response bytes the client was sent are credited to the upstream.
  void settle();

  // UpstreamClient (an HTTP/1 upstream)
  void upstream_connected(UpstreamConnection* up) override;
  void upstream_failed(UpstreamConnection* up, int status, bool response_started) override;
  int upstream_response_head(UpstreamConnection* up, int status_code, const HeaderList& headers) override;
  void upstream_body(UpstreamConnection* up, std::string_view data) override;
  void upstream_complete(UpstreamConnection* up) override;
  void upstream_tunnel_data(UpstreamConnection*, std::string_view) override {}
  void upstream_writable(UpstreamConnection* up) override;
  void upstream_read_begin() override;
  void upstream_read_end() override;

  // H2UpstreamStreamClient (an h2c:// upstream)
  void h2_response_head(int status, const HeaderList& headers, bool end_stream) override;
  void h2_response_data(std::string_view data) override;
  void h2_response_trailers(const HeaderList& trailers) override;
  void h2_stream_closed(bool complete, bool refused, std::string_view why) override;
  void h2_request_writable() override;

 private:
  enum class Phase { head, awaiting_keys, forwarding, answered, done };

  bool await_keys(std::size_t provider) override;
  bool trailer_forwardable(std::string_view name) const;
  const RuntimeConfig& rt() const { return *gen_->runtime; }
  void authorise();
  void forward(const ExchangeDecision& d);
  void start_upstream();
  void send_h1_head();
  void pass_body(std::string_view data);
  // Gives the client's flow-control credit back for request bytes the upstream has taken.
  void release_request_window();
  // jwtgate's own answer: HTTP status + JSON, or for gRPC a Trailers-Only response.
  void answer(const Answer& a);
  void answer_plain(int code, std::string_view error, std::string_view description);
  void answer_grpc(GrpcStatus status, std::string_view message, int http_equivalent);
  void submit_response(std::vector<HeaderField> fields, bool has_body);
  void append_response(std::string_view data);
  void end_response();
  void upstream_gone(std::string_view why, bool timeout);
  void detach_upstream();
  void progress();

  H2Session& session_;
  const std::int32_t id_;
  std::shared_ptr<Generation> gen_;
  Phase phase_ = Phase::head;
  Exchange exchange_;
  ExchangeRecord record_;

  // The request.
  std::string method_, scheme_, authority_, path_;
  HeaderList headers_;
  std::vector<HeaderField> trailers_;
  std::size_t head_bytes_ = 0;
  bool head_too_large_ = false;
  bool request_ended_ = false;
  bool grpc_ = false;
  std::string pending_body_;     // arrived before the upstream could take it
  std::size_t unconsumed_ = 0;   // request bytes not yet credited back to the client
  std::uint64_t body_bytes_ = 0;  // request body received in all
  bool chunked_ = false;         // toward an HTTP/1 upstream without a Content-Length
  std::uint64_t grpc_deadline_ms_ = 0;
  std::uint64_t keys_deadline_ms_ = 0;
  std::uint64_t response_deadline_ms_ = 0;  // the upstream's answer is due
  std::uint64_t last_progress_ms_ = 0;

  // The upstream side: one of the two.
  std::size_t upstream_index_ = 0;
  UpstreamPool* pool_ = nullptr;
  UpstreamConnection* h1_ = nullptr;
  std::string h1_head_;
  H2UpstreamSession* h2_ = nullptr;
  std::int32_t h2_id_ = 0;
  std::vector<HeaderField> h2_head_;
  bool retried_ = false;
  int refusals_ = 0;
  bool use_h2_ = false;  // the upstream side is an HTTP/2 stream (h2c://, or gRPC to https://)

  // The response.
  bool response_submitted_ = false;
  bool head_request_ = false;
  std::string out_;
  std::size_t out_pos_ = 0;
  bool out_end_ = false;
  bool deferred_ = false;
  bool h1_paused_ = false;
  std::vector<HeaderField> response_trailers_;
  std::size_t credit_ = 0;  // sent to the client, not yet credited to the upstream (settle)
  int batch_ = 0;
};

}  // namespace jwtgate::proxy
