#include "proxy/tls_certificates.h"

#include "proxy/admin/log.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

// How often a watched certificate file is stat'ed when its filesystem sends no events.
constexpr std::chrono::seconds kPollInterval{30};

}  // namespace

TlsCertificates::TlsCertificates(uv_loop_t* loop, config::TlsListener config, Publish publish)
    : loop_(loop), config_(std::move(config)), publish_(std::move(publish)) {}

TlsCertificates::~TlsCertificates() { close(); }

std::shared_ptr<const TlsServerContext> TlsCertificates::build(const config::TlsListener& config,
                                                                std::shared_ptr<const TlsCredentials>& credentials,
                                                                std::string& error) const {
  auto loaded = load_tls_credentials(config.cert_file, config.key_file, error);
  if (!loaded) return nullptr;
  auto ctx = TlsServerContext::build(config, *loaded, tickets_, error);
  if (ctx) credentials = std::make_shared<const TlsCredentials>(std::move(*loaded));
  return ctx;
}

void TlsCertificates::install(std::shared_ptr<const TlsServerContext> ctx,
                              std::shared_ptr<const TlsCredentials> credentials) {
  current_ = std::move(ctx);
  credentials_ = std::move(credentials);
  publish_(current_);
}

bool TlsCertificates::start(std::string& error) {
  tickets_ = SessionTicketKeys::generate();
  if (!tickets_) {
    error = "cannot generate TLS session ticket keys";
    return false;
  }
  std::shared_ptr<const TlsCredentials> credentials;
  auto ctx = build(config_, credentials, error);
  if (!ctx) return false;
  install(std::move(ctx), std::move(credentials));
  watch();
  rotate_timer_ = std::make_unique<uv_timer_t>();
  uv_timer_init(loop_, rotate_timer_.get());
  rotate_timer_->data = this;
  const auto every = static_cast<std::uint64_t>(std::chrono::milliseconds(kTicketKeyRotation).count());
  uv_timer_start(rotate_timer_.get(), on_rotate, every, every);
  return true;
}

void TlsCertificates::watch() {
  for (auto& w : watches_) w->close();
  watches_.clear();
  std::vector<std::string> files{config_.cert_file, config_.key_file};
  if (!config_.client_ca_file.empty()) files.push_back(config_.client_ca_file);
  for (const std::string& file : files) {
    auto w = std::make_unique<FileWatch>(loop_, file, kPollInterval, [this] { reload("a certificate file changed"); });
    std::string error;
    if (!w->start(error)) {
      log_event("warn", "a TLS file cannot be watched; it is still checked periodically and on SIGHUP",
                {{"file", file}, {"error", error}});
    }
    watches_.push_back(std::move(w));
  }
}

bool TlsCertificates::reload(const char* why) {
  std::string error;
  std::shared_ptr<const TlsCredentials> credentials;
  auto next = build(config_, credentials, error);
  if (!next) {
    ++reloads_failed_;
    log_event("warn", "tls certificate reload failed; the running certificate stays", {{"reason", why}, {"error", error}});
    return false;
  }
  ++reloads_ok_;
  install(std::move(next), std::move(credentials));
  log_event("info", "tls certificate reloaded", {{"reason", why}, {"file", config_.cert_file}});
  return true;
}

bool TlsCertificates::reconfigure(const config::TlsListener& next, std::string& error) {
  std::shared_ptr<const TlsCredentials> credentials;
  auto ctx = build(next, credentials, error);
  if (!ctx) return false;
  config_ = next;
  install(std::move(ctx), std::move(credentials));
  watch();
  return true;
}

void TlsCertificates::on_rotate(uv_timer_t* timer) {
  auto* self = static_cast<TlsCertificates*>(timer->data);
  auto rotated = self->tickets_ ? self->tickets_->rotated() : nullptr;
  if (!rotated || !self->credentials_) return;
  std::string error;
  auto ctx = TlsServerContext::build(self->config_, *self->credentials_, rotated, error);
  if (!ctx) {
    log_event("warn", "tls session ticket key rotation failed; the running keys stay", {{"error", error}});
    return;
  }
  self->tickets_ = std::move(rotated);
  self->install(std::move(ctx), self->credentials_);
}

void TlsCertificates::close() {
  for (auto& w : watches_) w->close();
  watches_.clear();
  if (rotate_timer_) {
    auto* handle = reinterpret_cast<uv_handle_t*>(rotate_timer_.get());
    close_and_free(std::move(rotate_timer_), handle);
  }
}

}  // namespace jwtgate::proxy
