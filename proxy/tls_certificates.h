// The proxy listener's certificate over the process's life: loaded at start, reloaded when its
// files change (a cert-manager renewal, a Secret's `..data` swap) or on SIGHUP, with session
// ticket keys rotated hourly. Every new context goes to the workers for new connections; one
// that fails to build (a half-written pair, a key that does not match) leaves the running one
// in place and is counted. Control thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/http/tls_server_context.h"
#include "proxy/keys/file_watch.h"

namespace jwtgate::proxy {

class TlsCertificates {
 public:
  using Publish = std::function<void(std::shared_ptr<const TlsServerContext>)>;
  static constexpr std::chrono::hours kTicketKeyRotation{1};

  TlsCertificates(uv_loop_t* loop, config::TlsListener config, Publish publish);
  ~TlsCertificates();
  TlsCertificates(const TlsCertificates&) = delete;
  TlsCertificates& operator=(const TlsCertificates&) = delete;

  // Loads and publishes the first context, then watches the files. False with `error` when the
  // first context cannot be built (nothing is published).
  bool start(std::string& error);
  // Builds from the files again; the running context stays when that fails.
  bool reload(const char* why);
  // A reloaded configuration's tls section: false (and nothing changes) when it cannot be built.
  bool reconfigure(const config::TlsListener& next, std::string& error);
  void close();

  std::int64_t not_after() const { return current_ ? current_->not_after() : 0; }
  std::uint64_t reloads_ok() const { return reloads_ok_; }
  std::uint64_t reloads_failed() const { return reloads_failed_; }

 private:
  std::shared_ptr<const TlsServerContext> build(const config::TlsListener& config,
                                                std::shared_ptr<const TlsCredentials>& credentials,
                                                std::string& error) const;
  void install(std::shared_ptr<const TlsServerContext> ctx, std::shared_ptr<const TlsCredentials> credentials);
  void watch();
  static void on_rotate(uv_timer_t* timer);

  uv_loop_t* loop_;
  config::TlsListener config_;
  Publish publish_;
  std::shared_ptr<const SessionTicketKeys> tickets_;
  std::shared_ptr<const TlsServerContext> current_;
  // The credentials current_ was built from: a ticket-key rotation rebuilds from them, not
  // from files that may be mid-change.
  std::shared_ptr<const TlsCredentials> credentials_;
  std::vector<std::unique_ptr<FileWatch>> watches_;
  std::unique_ptr<uv_timer_t> rotate_timer_;
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_failed_ = 0;
};

}  // namespace jwtgate::proxy
