#include "proxy/keys/http_fetcher.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <string_view>

#include "config/url_parts.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

struct EasyDeleter {
  void operator()(CURL* e) const { curl_easy_cleanup(e); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

}  // namespace

struct HttpFetcher::Transfer {
  std::unique_ptr<CURL, EasyDeleter> easy;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  std::uint64_t max_bytes = 0;
  std::chrono::milliseconds timeout{0};
  bool too_large = false;
  std::string body;
  std::string cache_control;
  char error[CURL_ERROR_SIZE] = {};
  Done done;
};

struct HttpFetcher::Socket {
  uv_poll_t poll{};
  curl_socket_t fd = CURL_SOCKET_BAD;
  HttpFetcher* fetcher = nullptr;
};

struct HttpFetcher::Timer {
  uv_timer_t timer{};
};

HttpFetcher::HttpFetcher(uv_loop_t* loop) : loop_(loop) {
  global_init_once();
  multi_.reset(curl_multi_init());
  timer_ = std::make_unique<Timer>();
  uv_timer_init(loop_, &timer_->timer);
  timer_->timer.data = this;
  failed_timer_ = std::make_unique<Timer>();
  uv_timer_init(loop_, &failed_timer_->timer);
  failed_timer_->timer.data = this;
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, on_timeout_change);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, this);
}

HttpFetcher::~HttpFetcher() { close(); }

void HttpFetcher::close() {
  if (closed_) return;
  closed_ = true;
  // Removing a transfer makes curl report its sockets as removed, which closes their polls.
  for (auto& [easy, transfer] : transfers_) curl_multi_remove_handle(multi_.get(), easy);
  transfers_.clear();
  multi_.reset();
  uv_timer_stop(&timer_->timer);
  auto* timer = reinterpret_cast<uv_handle_t*>(&timer_->timer);
  close_and_free(std::move(timer_), timer);
  failed_.clear();
  uv_timer_stop(&failed_timer_->timer);
  auto* failed_timer = reinterpret_cast<uv_handle_t*>(&failed_timer_->timer);
  close_and_free(std::move(failed_timer_), failed_timer);
}

void HttpFetcher::get(const std::string& url, const FetchOptions& options, Done done) {
  if (closed_) return;
  // The scheme decides the proxy and the redirect policy, so it is read by libcurl's own parser:
  // a URL it would take differently from a prefix test ("HTTP://", or no scheme at all, which
  // libcurl guesses to be http) cannot slip past either.
  config::UrlParts parts;
  std::string url_error;
  if (!config::parse_url(url, parts, url_error) || (parts.scheme != "http" && parts.scheme != "https")) {
    FetchResult r;
    r.error = url_error.empty() ? "not an http or https URL" : url_error;
    fail_later(std::move(done), std::move(r));
    return;
  }
  const bool https = parts.scheme == "https";
  auto t = std::make_unique<Transfer>();
  t->easy.reset(curl_easy_init());
  t->max_bytes = options.max_bytes;
  t->timeout = options.timeout;
  t->done = std::move(done);
  CURL* e = t->easy.get();
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  if (!https || options.proxy == config::JwksConfig::Proxy::none) {
    // "" overrides http_proxy/https_proxy/all_proxy; "*" also keeps no_proxy from mattering.
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  } else if (options.proxy == config::JwksConfig::Proxy::url) {
    curl_easy_setopt(e, CURLOPT_PROXY, options.proxy_url.c_str());
    // A configured proxy is used for every https fetch: no_proxy from the environment, which
    // was written for other programs, does not quietly turn it off.
    curl_easy_setopt(e, CURLOPT_NOPROXY, "");
  }  // Proxy::env: libcurl reads https_proxy, all_proxy and no_proxy itself.
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  // Following a redirect must never downgrade a TLS fetch to plain text.
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, options.max_redirects);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min(options.connect_timeout, options.timeout).count()));
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options.ca_file.c_str());
  if (!options.ca_dir.empty()) curl_easy_setopt(e, CURLOPT_CAPATH, options.ca_dir.c_str());
  curl_easy_setopt(e, CURLOPT_USERAGENT, "jwtgate");
  t->headers.reset(curl_slist_append(nullptr, "Accept: application/json"));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers.get());
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, +[](char* data, size_t, size_t n, void* user) -> size_t {
    auto* t = static_cast<Transfer*>(user);
    if (t->body.size() + n > t->max_bytes) {
      t->too_large = true;
      return 0;  // aborts the transfer: a chunked response has no length to refuse up front
    }
    t->body.append(data, n);
    return n;
  });
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, +[](char* data, size_t, size_t n, void* user) -> size_t {
    auto* t = static_cast<Transfer*>(user);
    const std::string_view line(data, n);
    // Each response of a redirect chain starts with a status line; only the last one counts.
    if (line.rfind("HTTP/", 0) == 0) t->cache_control.clear();
    else if (starts_with_nocase(line, "cache-control:")) {
      if (!t->cache_control.empty()) t->cache_control += ", ";
      t->cache_control += trim(line.substr(14));
    }
    return n;
  });
  CURL* key = e;
  transfers_.emplace(key, std::move(t));
  if (curl_multi_add_handle(multi_.get(), key) != CURLM_OK) {
    auto node = transfers_.extract(key);
    FetchResult r;
    r.error = "cannot start the fetch";
    fail_later(std::move(node.mapped()->done), std::move(r));
  }
}

void HttpFetcher::fail_later(Done done, FetchResult result) {
  // Reported from the loop, like every other outcome, so callers need no re-entrancy care.
  // A timer of its own: curl's timer is curl's, and re-arming it here could lose its timeout.
  failed_.emplace_back(std::move(done), std::move(result));
  uv_timer_start(&failed_timer_->timer, on_failed_timer, 0, 0);
}

int HttpFetcher::on_socket(CURL*, curl_socket_t fd, int what, void* self, void* socket) {
  auto* f = static_cast<HttpFetcher*>(self);
  auto* s = static_cast<Socket*>(socket);
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      if (f->multi_) curl_multi_assign(f->multi_.get(), fd, nullptr);
      uv_poll_stop(&s->poll);
      auto* handle = reinterpret_cast<uv_handle_t*>(&s->poll);
      close_and_free(std::unique_ptr<Socket>(s), handle);
    }
    return 0;
  }
  if (!s) {
    auto owned = std::make_unique<Socket>();
    owned->fd = fd;
    owned->fetcher = f;
    if (uv_poll_init_socket(f->loop_, &owned->poll, fd) != 0) return -1;
    owned->poll.data = owned.get();
    s = owned.release();  // freed by close_and_free when curl removes the socket
    curl_multi_assign(f->multi_.get(), fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

int HttpFetcher::on_timeout_change(CURLM*, long timeout_ms, void* self) {
  auto* f = static_cast<HttpFetcher*>(self);
  if (!f->timer_) return 0;
  if (timeout_ms < 0) uv_timer_stop(&f->timer_->timer);
  // Even a 0 ms timeout goes through the loop: curl must not be re-entered from this callback.
  else uv_timer_start(&f->timer_->timer, on_timer, static_cast<std::uint64_t>(timeout_ms), 0);
  return 0;
}

void HttpFetcher::on_poll(uv_poll_t* poll, int status, int events) {
  auto* s = static_cast<Socket*>(poll->data);
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  s->fetcher->act(s->fd, flags);
}

void HttpFetcher::on_timer(uv_timer_t* timer) {
  static_cast<HttpFetcher*>(timer->data)->act(CURL_SOCKET_TIMEOUT, 0);
}

void HttpFetcher::on_failed_timer(uv_timer_t* timer) {
  auto* f = static_cast<HttpFetcher*>(timer->data);
  auto failed = std::move(f->failed_);
  f->failed_.clear();
  for (auto& [done, result] : failed) {
    if (f->closed_) break;
    if (done) done(std::move(result));
  }
}

void HttpFetcher::act(curl_socket_t fd, int flags) {
  if (closed_) return;
  int running = 0;
  curl_multi_socket_action(multi_.get(), fd, flags, &running);
  finish_done_transfers();
}

void HttpFetcher::finish_done_transfers() {
  int left = 0;
  while (!closed_) {
    CURLMsg* msg = curl_multi_info_read(multi_.get(), &left);
    if (!msg) break;
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode code = msg->data.result;
    curl_multi_remove_handle(multi_.get(), easy);
    auto node = transfers_.extract(easy);
    if (node.empty()) continue;
    Transfer& t = *node.mapped();
    FetchResult r;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.http_status);
    r.cache_control = std::move(t.cache_control);
    if (t.too_large || code == CURLE_FILESIZE_EXCEEDED) {
      r.error = "the response is larger than max_bytes (" + std::to_string(t.max_bytes) + " bytes)";
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
      r.error = "no complete response within " + std::to_string(t.timeout.count()) + " ms";
    } else if (code != CURLE_OK) {
      r.error = t.error[0] ? std::string(t.error) : std::string(curl_easy_strerror(code));
    } else if (r.http_status < 200 || r.http_status > 299) {
      r.error = "HTTP status " + std::to_string(r.http_status);
    } else {
      r.ok = true;
      r.body = std::move(t.body);
    }
    Done done = std::move(t.done);
    node.mapped().reset();  // the easy handle goes before the callback, which may start another
    if (done) done(std::move(r));
  }
}

}  // namespace jwtgate::proxy
