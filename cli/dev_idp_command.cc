// `jwtgate dev-idp`: the development OpenID provider (proxy/dev/dev_idp.h) on a listener, until
// SIGTERM or SIGINT. It mints tokens for anyone who can reach it, so the banner says so loudly.
#include <openssl/rand.h>
#include <uv.h>

#include <csignal>
#include <ctime>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "config/address.h"
#include "config/duration.h"
#include "core/base64url.h"
#include "core/signer.h"
#include "proxy/admin/admin_server.h"
#include "proxy/dev/dev_idp.h"
#include "proxy/uv_util.h"

namespace jwtgate::cli {
namespace {

constexpr const char* kUsage =
    "usage: jwtgate dev-idp [--listen 127.0.0.1:9000] [--issuer URL] [--key FILE --alg ALG] [--kid K]\n"
    "                       [--audience dev-api] [--ttl 15m]\n"
    "  a DEVELOPMENT OpenID provider: serves the discovery document and JWKS and mints a token for\n"
    "  any claims at POST /token, for anyone who can reach it. Never use it in production.\n"
    "  The key is an ephemeral ES256 one (or --alg's) unless --key FILE (PEM private key) is given;\n"
    "  the issuer defaults to http://LISTEN.\n";

int usage_error(const std::string& message) {
  std::cerr << kUsage << "error: " << message << "\n";
  return kExitUsage;
}

bool wildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

// host:port as a URL authority, for the default issuer and the printed curl line.
std::string authority(const config::ListenAddress& a, bool for_local_client) {
  std::string host = a.host;
  if (wildcard(host)) host = for_local_client ? (host == "::" ? "[::1]" : "127.0.0.1") : "localhost";
  else if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(a.port);
}

struct Signals {
  uv_signal_t term{};
  uv_signal_t intr{};
  proxy::AdminServer* admin = nullptr;

  void close() {
    proxy::close_handle(reinterpret_cast<uv_handle_t*>(&term), nullptr);
    proxy::close_handle(reinterpret_cast<uv_handle_t*>(&intr), nullptr);
  }
  static void on_signal(uv_signal_t* handle, int) {
    auto* s = static_cast<Signals*>(handle->data);
    // Nothing to drain: every answer is synchronous, so closing ends the loop at once.
    s->admin->close();
    s->close();
  }
};

// Eight characters, like jti values spelled with core's base64url.
std::string ephemeral_kid() {
  unsigned char bytes[6];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return "dev-idp-1";
  return "dev-idp-" + core::base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

}  // namespace

int dev_idp_command(int argc, char** argv) {
  Args args(argc, argv, 2, {"listen", "issuer", "key", "alg", "kid", "audience", "ttl"});
  if (!args.ok()) return usage_error(args.error());
  if (!args.positional().empty()) return usage_error("unexpected argument '" + args.positional().front() + "'");

  config::ListenAddress listen;
  std::string error;
  if (!config::parse_listen_address(args.get("listen", "127.0.0.1:9000"), listen, error)) {
    return usage_error("--listen: " + error);
  }
  core::Alg alg = core::Alg::ES256;
  if (args.has("alg")) {
    const auto named = core::alg_from_name(args.get("alg"));
    if (!named) return usage_error("--alg must name a supported algorithm (RS*, PS*, ES*, EdDSA)");
    if (!proxy::dev_idp_alg_supported(*named)) {
      return usage_error("--alg " + args.get("alg") +
                         ": an HMAC secret cannot be published in a JWKS; use an asymmetric algorithm "
                         "(RS256, PS256, ES256, EdDSA, ...)");
    }
    alg = *named;
  }
  if (args.has("key") && !args.has("alg")) return usage_error("--key FILE needs --alg ALG (the key's algorithm)");

  proxy::DevIdpOptions options;
  options.issuer = args.get("issuer", "http://" + authority(listen, false));
  options.audience = args.get("audience", options.audience);
  // An ephemeral key gets a kid of its own at every start: a gateway that cached the previous
  // run's key under a fixed kid would refuse new tokens (known kid, bad signature, no refetch)
  // until its next refresh; an unknown kid makes it refetch at once.
  options.kid = args.get("kid", args.has("key") ? options.kid : ephemeral_kid());
  if (!proxy::check_dev_idp_issuer(options.issuer, error)) return usage_error("--issuer: " + error);
  if (options.audience.empty()) return usage_error("--audience must not be empty");
  if (options.kid.empty()) return usage_error("--kid must not be empty");
  if (args.has("ttl")) {
    const auto ttl = config::parse_duration(args.get("ttl"));
    if (!ttl || *ttl < std::chrono::seconds(1) || *ttl > proxy::kDevIdpMaxTtl) {
      return usage_error("--ttl takes a duration from 1s to 24h, such as 15m");
    }
    options.ttl = std::chrono::duration_cast<std::chrono::seconds>(*ttl);
  }

  std::string key_text;
  if (args.has("key") && !read_file(args.get("key"), key_text, error)) return usage_error(error);
  core::Result<core::SigningKey> key = args.has("key") ? core::load_signing_key(key_text) : core::generate_signing_key(alg);
  if (!key) {
    std::cerr << "error: " << (args.has("key") ? args.get("key") + ": " : "") << key.status().detail() << "\n";
    return args.has("key") ? kExitUsage : kExitInvalid;
  }
  if (!key->private_key) {
    return usage_error("--key " + args.get("key") + " holds an HMAC secret, which cannot be published in a JWKS");
  }
  const std::string key_source = args.has("key") ? "from " + args.get("key") : "an ephemeral key (new at every start)";
  proxy::DevIdp idp(options, alg, std::move(*key));
  if (!idp.check_key(error)) return usage_error("--key " + args.get("key") + ": " + error);

  // A write to a client that has hung up must fail with EPIPE, not end the process.
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  proxy::AdminLimits limits;
  limits.reserved_paths = {"/healthz"};
  proxy::AdminServer server(
      &loop, [&idp](const proxy::AdminRequest& r) { return idp.handle(r, static_cast<std::int64_t>(std::time(nullptr))); },
      limits);
  server.set_common_headers({{std::string(proxy::kDevIdpMarkerHeader), std::string(proxy::kDevIdpMarker)}});
  Signals signals;
  signals.admin = &server;
  for (uv_signal_t* s : {&signals.term, &signals.intr}) {
    uv_signal_init(&loop, s);
    s->data = &signals;
  }
  uv_signal_start(&signals.term, Signals::on_signal, SIGTERM);
  uv_signal_start(&signals.intr, Signals::on_signal, SIGINT);

  if (!server.start(listen, error)) {
    std::cerr << "error: " << error << "\n";
    server.close();
    signals.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return kExitInvalid;
  }

  const bool exposed = !config::is_loopback_host(listen.host);
  if (exposed) {
    // On stderr as well as in the banner, so it is seen when stdout goes to a file.
    std::cerr << "\n"
                 "WARNING: jwtgate dev-idp is listening on " << listen.text << ", which is not loopback.\n"
                 "WARNING: anyone who can reach it can mint a token for any subject, scope or audience and\n"
                 "WARNING: pass every gateway that trusts issuer " << options.issuer << ".\n"
                 "WARNING: it is for development stacks only (compose on a laptop, CI); never for production.\n\n"
              << std::flush;
  }
  const std::string local_token_url = "http://" + authority(listen, true) + idp.base_path() + "/token";
  std::cout << "jwtgate dev-idp: a DEVELOPMENT identity provider, not for production.\n"
            << "It mints a signed token for any claims to anyone who can reach " << listen.text << ".\n\n"
            << "  issuer     " << idp.issuer() << "\n"
            << "  discovery  " << idp.discovery_url() << "\n"
            << "  jwks       " << idp.jwks_url() << "\n"
            << "  token      POST " << idp.token_url() << "  (JSON claims; ?format=raw, ?ttl=5m)\n"
            << "  key        " << core::alg_name(alg) << ", kid " << options.kid << ", " << key_source << "\n"
            << "  defaults   aud " << options.audience << ", sub dev-user, ttl " << options.ttl.count() << "s\n"
            << (exposed ? "  WARNING    not loopback: every token it mints is anyone's\n" : "") << "\n"
            << "Get a token:\n"
            << "  curl -s -X POST '" << local_token_url << "?format=raw' -d '{\"sub\":\"alice\",\"scope\":\"read\"}'\n\n"
            << "A gateway trusts it with: providers: [{issuer: " << idp.issuer()
            << ", audiences: [" << options.audience << "], algorithms: [" << core::alg_name(alg)
            << "], jwks: {discovery: true}}]\n"
            << "Ctrl-C stops it.\n"
            << std::flush;

  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return kExitOk;
}

}  // namespace jwtgate::cli
