#include <ctime>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/development_default.h"
#include "config/loader.h"
#include "proxy/http/tls_credentials.h"
#include "proxy/run.h"

namespace jwtgate::cli {
namespace {

// A certificate that runs out this soon needs renewing before the next change window.
constexpr std::int64_t kExpiryWarningSeconds = 14 * 24 * 3600;

std::string utc_time(std::int64_t t) {
  const auto tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

void add(config::Diagnostics& d, config::Diagnostic::Severity severity, const std::string& file, const std::string& path,
         std::string message) {
  d.add(config::Diagnostic{severity, file, 0, 0, path, std::move(message)});
}

// The loader checks only the shape of the TLS keys; whether the files hold a usable pair, and for
// how long, is known only by reading them, as the proxy will at start-up.
void check_pair(config::Diagnostics& d, const std::string& file, const std::string& path, const std::string& cert_file,
                const std::string& key_file, std::int64_t now) {
  using Severity = config::Diagnostic::Severity;
  std::string error;
  auto credentials = proxy::load_tls_credentials(cert_file, key_file, error);
  if (!credentials) {
    add(d, Severity::error, file, path, error);
    return;
  }
  const std::int64_t left = credentials->not_after - now;
  if (left <= 0) {
    add(d, Severity::error, file, path + ".cert_file",
        "the certificate in " + cert_file + " expired on " + utc_time(credentials->not_after));
  } else if (left < kExpiryWarningSeconds) {
    const std::int64_t days = (left + 86399) / 86400;
    add(d, Severity::warning, file, path + ".cert_file",
        "the certificate in " + cert_file + " expires on " + utc_time(credentials->not_after) + " (within " +
            std::to_string(days) + (days == 1 ? " day" : " days") + "); renew it before then");
  }
}

void check_ca(config::Diagnostics& d, const std::string& file, const std::string& path, const std::string& ca_file) {
  std::string error;
  if (proxy::load_ca_file(ca_file, error).empty()) add(d, config::Diagnostic::Severity::error, file, path, error);
}

void check_tls_files(const config::Config& c, const std::string& file, config::Diagnostics& d) {
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  if (c.tls) {
    check_pair(d, file, "tls", c.tls->cert_file, c.tls->key_file, now);
    if (!c.tls->client_ca_file.empty()) check_ca(d, file, "tls.client_ca_file", c.tls->client_ca_file);
  }
  const config::UpstreamTls& u = c.upstream_tls;
  if (!u.ca_file.empty()) check_ca(d, file, "upstream_tls.ca_file", u.ca_file);
  if (!u.cert_file.empty()) check_pair(d, file, "upstream_tls", u.cert_file, u.key_file, now);
}

}  // namespace

int check_config_command(int argc, char** argv) {
  Args args(argc, argv, 2, {"config"});
  if (!args.ok() || !args.has("config") || !args.positional().empty()) {
    std::cerr << "usage: jwtgate check-config --config FILE\n"
                 "  exits 0 when FILE is valid (warnings are printed), 2 when it is not\n";
    if (!args.ok()) std::cerr << "error: " << args.error() << "\n";
    return kExitUsage;
  }
  const std::string path = args.get("config");
  config::LoadResult result = config::load_config_file(path);
  if (result.config) {
    check_tls_files(*result.config, path, result.diagnostics);
    if (result.diagnostics.has_errors()) result.config.reset();
  }
  std::cerr << result.diagnostics.format();
  const auto errors = result.diagnostics.count(config::Diagnostic::Severity::error);
  const auto warnings = result.diagnostics.count(config::Diagnostic::Severity::warning);
  if (!result.config) {
    std::cerr << path << ": invalid (" << errors << (errors == 1 ? " error" : " errors") << ", " << warnings
              << (warnings == 1 ? " warning" : " warnings") << ")\n";
    return kExitUsage;
  }
  std::cout << path << ": valid (" << warnings << (warnings == 1 ? " warning" : " warnings") << ")\n";
  return kExitOk;
}

int serve_command(int argc, char** argv) {
  Args args(argc, argv, 1, {"config"});
  if (!args.ok() || !args.has("config") || !args.positional().empty()) {
    std::cerr << "usage: jwtgate --config FILE\n";
    if (!args.ok()) std::cerr << "error: " << args.error() << "\n";
    return kExitUsage;
  }
  const std::string path = args.get("config");
  config::LoadResult result = config::load_config_file(path);
  std::cerr << result.diagnostics.format();
  if (!result.config) {
    std::cerr << "jwtgate: refusing to start: " << path << " is invalid\n";
    return kExitUsage;
  }
  if (result.config->development) return run_development_default(*result.config->development, "development: in " + path);
  proxy::RunOptions options;
  options.config_path = path;
  return proxy::run_proxy(std::move(*result.config), options);
}

}  // namespace jwtgate::cli
