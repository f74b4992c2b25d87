#include "cli/development_default.h"

#include <ctime>
#include <iostream>

#include "cli/commands.h"
#include "config/address.h"
#include "core/jwk.h"
#include "core/signer.h"
#include "proxy/dev/echo_upstream.h"
#include "proxy/run.h"

namespace jwtgate::cli {

int run_development_default(const config::Development& dev_options, const std::string& origin) {
  config::Config cfg;
  cfg.listen = dev_options.listen;
  std::string error;
  const core::Alg alg = core::Alg::ES256;
  auto key = core::generate_signing_key(alg);
  if (!key) {
    std::cerr << "error: " << key.status().detail() << "\n";
    return kExitInvalid;
  }
  const std::string jwks = core::jwks_for(*key, alg, "dev-1");
  auto keys = std::make_shared<const core::KeySet>(std::move(core::parse_jwks(jwks).value()));

  const bool own_upstream = dev_options.upstream.has_value();
  proxy::EchoUpstream echo("/.well-known/jwks.json", jwks + "\n");
  if (own_upstream) {
    cfg.upstream = *dev_options.upstream;
  } else {
    if (!echo.start(error)) {
      std::cerr << "error: " << error << "\n";
      return kExitInvalid;
    }
    config::parse_upstream_url("http://127.0.0.1:" + std::to_string(echo.port()), cfg.upstream, error);
  }
  // The printed token is valid for an hour and the echo shows what jwtgate forwarded: on a
  // listener others can reach, both are theirs too. Said before the port opens, on stderr, so it
  // is seen even when stdout goes to a file.
  const bool exposed = !config::is_loopback_host(cfg.listen.host);
  if (exposed) {
    std::cerr << "\n"
                 "WARNING: the development default is listening on " << cfg.listen.text << ", which is not loopback.\n"
                 "WARNING: anyone who can reach it can use the printed token (valid for 1 hour) to reach\n"
                 "WARNING: the upstream"
              << (own_upstream ? "" : " (the built-in echo, which hides credentials but reflects the rest)")
              << ".\nWARNING: use --listen 127.0.0.1:PORT, or write a config file for anything but local development.\n\n"
              << std::flush;
  }
  // Loopback even when the proxy is not: in a container the HEALTHCHECK (`jwtgate health`) runs
  // inside it, and nothing outside needs the admin listener of a development proxy.
  config::parse_listen_address("127.0.0.1:" + std::to_string(cfg.listen.port == 9901 ? 9902 : 9901), cfg.admin_listen, error);
  const std::string base = config::local_base_url(cfg.listen);
  const std::string issuer = base + "/";
  config::Provider dev;
  dev.name = "dev";
  dev.issuer = issuer;
  dev.audiences = {"dev-api"};
  dev.algorithms = {alg};
  dev.algorithm_set.add(alg);
  // The built-in echo serves the JWKS; with --upstream nothing does (the key lives only in this
  // process), so no URL is configured or printed.
  if (!own_upstream) dev.jwks.uri = "http://127.0.0.1:" + std::to_string(echo.port()) + "/.well-known/jwks.json";
  dev.token_sources = {{config::TokenSource::Kind::header, "Authorization", "Bearer "}};
  dev.claims_to_headers = {{"sub", "X-Jwt-Sub"}, {"scope", "X-Jwt-Scope"}};
  cfg.providers = {dev};
  cfg.routes = {config::Route{"/public", {}, config::AuthMode::none, {}, {}, {}},
                config::Route{"/admin", {}, config::AuthMode::required, {"admin"}, {}, {}},
                config::Route{"/", {}, config::AuthMode::required, {}, {}, {}}};
  cfg.workers = 1;

  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  const std::string claims = "{\"iss\":\"" + issuer + "\",\"aud\":\"dev-api\",\"sub\":\"dev-user\",\"scope\":\"read write\","
                             "\"iat\":" + std::to_string(now) + ",\"exp\":" + std::to_string(now + 3600) + "}";
  const std::string token = core::mint_token(alg, *key, "dev-1", claims).value();
  const std::string upstream_text = cfg.upstream.text;
  const std::string jwks_uri = dev.jwks.uri;
  const std::string cfg_listen = cfg.listen.text;

  proxy::RunOptions options;
  options.key_override = [keys](std::size_t) { return keys; };
  options.on_listening = [=](std::uint16_t) {
    std::cout << "jwtgate development default (" << origin << ")\n\n"
              << "  proxy     " << base << "  ->  " << upstream_text
              << (own_upstream ? "" : " (built-in echo: shows what jwtgate forwarded)") << "\n"
              << "  routes    /public (no token)  /admin (scope admin)  / (valid token)\n"
              << "  keys      an ephemeral ES256 key, kid dev-1, "
              << (own_upstream ? "held in memory only (no JWKS is served with --upstream)" : "JWKS at " + jwks_uri) << "\n"
              << (exposed ? "  WARNING   listening on " + cfg_listen + ", not loopback: this token works for anyone who can reach it\n" : "")
              << "\n"
              << "A token for sub=dev-user, scope \"read write\", valid for 1 hour (development only):\n\n"
              << token << "\n\n"
              << "Try:\n"
              << "  curl -H 'Authorization: Bearer " << token << "' " << base << "/hello\n"
              << "  curl -i " << base << "/hello          # 401: no token\n"
              << "  curl -i -H 'Authorization: Bearer " << token << "' " << base << "/admin   # 403: no admin scope\n"
              << "  curl " << base << "/public/anything   # no token needed\n\n"
              << "Ctrl-C stops it.\n"
              << std::flush;
  };
  return proxy::run_proxy(std::move(cfg), options);
}

}  // namespace jwtgate::cli
