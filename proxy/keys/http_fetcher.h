// HTTP GETs for key material (JWKS documents, OIDC discovery), made with libcurl's multi
// interface on a libuv loop: curl's sockets are watched with uv_poll and its timeouts with a
// uv_timer, so fetches never block the loop and many can run at once.
#pragma once

#include <curl/curl.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/config.h"

namespace jwtgate::proxy {

struct FetchOptions {
  std::chrono::milliseconds timeout{5000};          // the whole fetch, redirects included
  std::chrono::milliseconds connect_timeout{5000};  // each TCP+TLS connect
  std::uint64_t max_bytes = 1024 * 1024;            // response body limit
  std::string ca_file;                              // PEM bundle to trust instead of the system's
  std::string ca_dir;                               // hashed CA directory (c_rehash layout)
  long max_redirects = 3;
  // Applies to https fetches only: a plain-http one, and every redirect it follows, always goes
  // direct, so no proxy can hand out the keys of an unauthenticated fetch.
  config::JwksConfig::Proxy proxy = config::JwksConfig::Proxy::env;
  std::string proxy_url;  // with Proxy::url
};

struct FetchResult {
  bool ok = false;            // a complete 2xx response within the limits
  long http_status = 0;       // 0 when no response arrived
  std::string body;           // only when ok
  std::string cache_control;  // the final response's Cache-Control, if any
  std::string error;          // why not ok; never contains the body
};

class HttpFetcher {
 public:
  using Done = std::function<void(FetchResult)>;

  explicit HttpFetcher(uv_loop_t* loop);
  ~HttpFetcher();
  HttpFetcher(const HttpFetcher&) = delete;
  HttpFetcher& operator=(const HttpFetcher&) = delete;

  // Starts a GET of `url` (http or https, as libcurl parses it; a redirect from https may not go
  // to http). `done` runs later on the loop thread, exactly once, unless close() comes first.
  void get(const std::string& url, const FetchOptions& options, Done done);
  // Abandons every transfer (their callbacks never run) and closes the loop handles; the object
  // may be destroyed right after.
  void close();
  std::size_t in_flight() const { return transfers_.size(); }

 private:
  struct Transfer;
  struct Socket;
  struct Timer;
  struct MultiDeleter {
    void operator()(CURLM* m) const { curl_multi_cleanup(m); }
  };

  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket);
  static int on_timeout_change(CURLM* multi, long timeout_ms, void* self);
  static void on_poll(uv_poll_t* poll, int status, int events);
  static void on_timer(uv_timer_t* timer);
  static void on_failed_timer(uv_timer_t* timer);
  void act(curl_socket_t fd, int flags);
  void finish_done_transfers();
  void fail_later(Done done, FetchResult result);

  uv_loop_t* loop_;
  std::unique_ptr<CURLM, MultiDeleter> multi_;
  std::unique_ptr<Timer> timer_;         // curl's timeouts; handed to libuv to free on close()
  std::unique_ptr<Timer> failed_timer_;  // reports fetches that could not start; likewise
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> transfers_;
  std::vector<std::pair<Done, FetchResult>> failed_;  // could not start; reported by failed_timer_
  bool closed_ = false;
};

}  // namespace jwtgate::proxy
