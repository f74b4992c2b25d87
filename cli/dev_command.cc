// `jwtgate` with no config: the whole flow on one machine. An ephemeral ES256 key signs a
// ready-to-use token; the proxy listens on 127.0.0.1:8080 in front of a built-in echo upstream
// (or --upstream URL) that also serves the key's JWKS, so every request shows what jwtgate
// forwarded.
#include <ctime>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "config/address.h"
#include "core/jwk.h"
#include "core/signer.h"
#include "proxy/echo_upstream.h"
#include "proxy/run.h"

namespace jwtgate::cli {

int dev_command(int argc, char** argv) {
  Args args(argc, argv, 1, {"listen", "upstream"});
  config::Config cfg;
  std::string error;
  if (!args.ok() || !args.positional().empty() ||
      !config::parse_listen_address(args.get("listen", "127.0.0.1:8080"), cfg.listen, error)) {
    std::cerr << "usage: jwtgate [--listen 127.0.0.1:8080] [--upstream http://HOST:PORT]\n"
                 "  runs the development default: an ephemeral key, a printed token, and the proxy\n"
                 "  in front of a built-in echo upstream (or --upstream)\n";
    if (!args.ok()) std::cerr << "error: " << args.error() << "\n";
    else if (!error.empty()) std::cerr << "error: --listen: " << error << "\n";
    return kExitUsage;
  }
  const core::Alg alg = core::Alg::ES256;
  auto key = core::generate_signing_key(alg);
  if (!key) {
    std::cerr << "error: " << key.status().detail() << "\n";
    return kExitInvalid;
  }
  const std::string jwks = core::jwks_for(*key, alg, "dev-1");
  auto keys = std::make_shared<const core::KeySet>(std::move(core::parse_jwks(jwks).value()));

  proxy::EchoUpstream echo("/.well-known/jwks.json", jwks + "\n");
  if (args.has("upstream")) {
    if (!config::parse_upstream_url(args.get("upstream"), cfg.upstream, error)) {
      std::cerr << "error: --upstream: " << error << "\n";
      return kExitUsage;
    }
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
              << (args.has("upstream") ? "" : " (the built-in echo, which hides credentials but reflects the rest)")
              << ".\nWARNING: use --listen 127.0.0.1:PORT, or write a config file for anything but local development.\n\n"
              << std::flush;
  }
  config::parse_listen_address("127.0.0.1:" + std::to_string(cfg.listen.port == 9901 ? 9902 : 9901), cfg.admin_listen, error);
  const std::string issuer = "http://" + cfg.listen.text + "/";
  config::Provider dev;
  dev.name = "dev";
  dev.issuer = issuer;
  dev.audiences = {"dev-api"};
  dev.algorithms = {alg};
  dev.algorithm_set.add(alg);
  // The built-in echo serves the JWKS; with --upstream nothing does (the key lives only in this
  // process), so no URL is configured or printed.
  const bool own_upstream = args.has("upstream");
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
  const std::string base = "http://" + cfg.listen.text;
  const std::string upstream_text = cfg.upstream.text;
  const std::string jwks_uri = dev.jwks.uri;
  const std::string cfg_listen = cfg.listen.text;

  proxy::RunOptions options;
  options.key_override = [keys](std::size_t) { return keys; };
  options.on_listening = [=](std::uint16_t) {
    std::cout << "jwtgate development default (no --config given)\n\n"
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
