#include "proxy/run.h"

#include <uv.h>

#include <csignal>
#include <ctime>

#include "config/config_json.h"
#include "config/loader.h"
#include "proxy/admin/admin_server.h"
#include "proxy/config_file_watch.h"
#include "proxy/keys/key_manager.h"
#include "proxy/admin/log.h"
#include "proxy/admin/metrics.h"
#include "proxy/admin/metrics_report.h"
#include "proxy/revocation/backchannel_logout.h"
#include "proxy/revocation/revocation_store.h"
#include "proxy/server.h"
#include "proxy/tls_certificates.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

// The control loop: signals, the admin listener, key management and reloads. Requests never
// run here.
struct Control {
  Server* server = nullptr;
  KeyManager* keys = nullptr;
  AdminServer* admin = nullptr;
  ConfigFileWatch* config_watch = nullptr;
  TlsCertificates* tls = nullptr;
  RevocationStore* revocation = nullptr;
  // Each provider's current keys, for validating logout tokens on this loop.
  std::vector<std::shared_ptr<const core::KeySet>> latest_keys;
  LogoutState logouts;
  std::shared_ptr<const RuntimeConfig> runtime;
  std::string config_path;
  ProcessCounters counters;
  bool keys_overridden = false;
  uv_signal_t term{};
  uv_signal_t intr{};
  uv_signal_t hup{};
  bool stopping = false;

  void close_signals() {
    close_handle(reinterpret_cast<uv_handle_t*>(&term), nullptr);
    close_handle(reinterpret_cast<uv_handle_t*>(&intr), nullptr);
    close_handle(reinterpret_cast<uv_handle_t*>(&hup), nullptr);
  }
  void reload();
  AdminResponse admin_route(std::string_view method, std::string_view path);
  AdminResponse admin_request(const AdminRequest& request);
};

void Control::reload() {
  if (config_path.empty()) {
    log_event("warn", "SIGHUP ignored: the configuration did not come from a file");
    return;
  }
  config::LoadResult result = config::load_config_file(config_path);
  if (!result.config) {
    ++counters.reloads_rejected;
    // The messages name keys, lines and expectations; like check-config, they never echo secrets.
    log_event("error", "config reload rejected; the running configuration stays",
              {{"file", config_path}, {"errors", result.diagnostics.format()}});
    return;
  }
  if (result.config->development) {
    ++counters.reloads_rejected;
    log_event("error", "config reload rejected: development: runs only at start; the running configuration stays",
              {{"file", config_path}});
    return;
  }
  config::Config next = std::move(*result.config);
  const config::Config& now = runtime->config;
  if (next.proxy != now.proxy || next.forward_auth.has_value() != now.forward_auth.has_value()) {
    // Which listeners run is set at start: a check must never arrive where the proxy runs, or
    // the other way round.
    ++counters.reloads_rejected;
    log_event("error",
              "config reload rejected: adding or removing upstream or forward_auth needs a restart; the running "
              "configuration stays",
              {{"file", config_path}});
    return;
  }
  if (next.tls.has_value() != now.tls.has_value()) {
    // Whether the proxy port speaks TLS is set at start: clients of one kind would break.
    ++counters.reloads_rejected;
    log_event("error", "config reload rejected: adding or removing tls needs a restart; the running configuration stays",
              {{"file", config_path}});
    return;
  }
  if (next.forward_auth && next.forward_auth->listen.text != now.forward_auth->listen.text) {
    log_event("warn", "forward_auth.listen changes only on restart; keeping the running value",
              {{"forward_auth.listen", now.forward_auth->listen.text}});
    next.forward_auth->listen = now.forward_auth->listen;
  }
  if (next.revocation != now.revocation) {
    // The store, its Redis connections and the logout endpoint are set up at start.
    log_event("warn", "revocation changes only on restart; keeping the running section");
    next.revocation = now.revocation;
  }
  // Sockets and threads are set at start; everything else applies to new requests.
  if (next.listen.text != now.listen.text || next.admin_listen.text != now.admin_listen.text ||
      next.workers != now.workers) {
    log_event("warn", "listen, admin_listen and workers change only on restart; keeping the running values",
              {{"listen", now.listen.text}, {"admin_listen", now.admin_listen.text}});
    next.listen = now.listen;
    next.admin_listen = now.admin_listen;
    next.workers = now.workers;
  }
  auto built = std::make_shared<RuntimeConfig>(std::move(next));
  std::string upstream_tls_error;
  if (!built->load_upstream_tls(upstream_tls_error)) {
    ++counters.reloads_rejected;
    log_event("error", "config reload rejected: upstream_tls cannot be applied; the running configuration stays",
              {{"file", config_path}, {"error", upstream_tls_error}});
    return;
  }
  // Last of the checks: once it succeeds the listener's new certificate is in use.
  if (tls && built->config.tls) {
    std::string tls_error;
    if (!tls->reconfigure(*built->config.tls, tls_error)) {
      ++counters.reloads_rejected;
      log_event("error", "config reload rejected: the tls section cannot be applied; the running configuration stays",
                {{"file", config_path}, {"error", tls_error}});
      return;
    }
  }
  set_log_options(built->config.log);
  if (admin) admin->set_limits(admin_limits(built->config.admin));
  runtime = std::move(built);
  auto current = keys->reconfigure(runtime, config::process_environment());
  latest_keys = current;
  server->reload(runtime, std::move(current));
  keys->start_new();
  ++counters.reloads_ok;
  log_event("info", "config reloaded", {{"file", config_path}, {"warnings", result.diagnostics.format()}});
}

AdminResponse Control::admin_request(const AdminRequest& request) {
  if (request.path == "/backchannel-logout" && revocation && runtime->config.revocation->backchannel_logout) {
    return handle_backchannel_logout(request, *runtime, latest_keys, *revocation,
                                     static_cast<std::int64_t>(std::time(nullptr)), logouts);
  }
  return admin_route(request.method, request.path);
}

AdminResponse Control::admin_route(std::string_view method, std::string_view path) {
  AdminResponse r;
  if (method != "GET" && method != "HEAD") {
    r.status = 405;
    r.headers.push_back({"Allow", "GET, HEAD"});
    r.body = "method not allowed\n";
    return r;
  }
  if (path == "/healthz") {
    r.body = "ok\n";
  } else if (path == "/readyz") {
    std::string why;
    // Keys given by the caller (the development default) are there from the start.
    const bool keys_ready = keys_overridden || keys->ready_for_routes(&why);
    if (keys_ready && (!revocation || revocation->ready(&why))) {
      r.body = "ready\n";
    } else {
      r.status = 503;
      r.headers.push_back({"Retry-After", "5"});
      r.body = "not ready\n" + why;
    }
  } else if (path == "/metrics") {
    r.content_type = std::string(kMetricsContentType);
    TlsStatus status;
    if (tls) status = {tls->not_after(), tls->reloads_ok(), tls->reloads_failed()};
    RevocationReport report;
    if (revocation) {
      report.status = revocation->status();
      report.logout = runtime->config.revocation->backchannel_logout.has_value();
      report.logouts = logouts.counters;
    }
    r.body = render_metrics(*server, *keys, counters, tls ? &status : nullptr, revocation ? &report : nullptr);
  } else if (path == "/config" && runtime->config.admin.config_endpoint) {
    r.content_type = "application/json";
    r.body = config::effective_config_json(runtime->config);
  } else {
    r.status = 404;
    r.body = runtime->config.admin.config_endpoint ? "not found; try /healthz, /readyz, /metrics or /config\n"
                                                   : "not found; try /healthz, /readyz or /metrics\n";
  }
  return r;
}

void on_signal(uv_signal_t* handle, int signum) {
  auto* c = static_cast<Control*>(handle->data);
  if (signum == SIGHUP) {
    if (c->stopping) return;
    // Certificates too: a renewal written in place, on a filesystem without events.
    if (c->tls) c->tls->reload("SIGHUP");
    c->reload();
    return;
  }
  if (c->stopping) return;
  c->stopping = true;
  const auto deadline = c->runtime->config.limits.drain_timeout;
  log_event("info", "draining", {{"signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"},
                                 {"drain_timeout", config::format_duration(deadline)}});
  c->server->drain(deadline);
  // Once these close, the control loop ends; the workers finish their drain on their own.
  c->close_signals();
  if (c->admin) c->admin->close();
  if (c->keys) c->keys->close();
  if (c->config_watch) c->config_watch->close();
  if (c->tls) c->tls->close();
  if (c->revocation) c->revocation->close();
}

}  // namespace

int run_proxy(config::Config config, const RunOptions& options) {
  // A write to a connection the peer has reset must fail with EPIPE, not end the process: clients
  // hang up mid-response all the time.
  std::signal(SIGPIPE, SIG_IGN);
  set_log_options(config.log);
  std::shared_ptr<const RuntimeConfig> runtime;
  {
    auto built = std::make_shared<RuntimeConfig>(std::move(config));
    std::string upstream_tls_error;
    if (!built->load_upstream_tls(upstream_tls_error)) {
      log_event("error", "cannot start", {{"error", upstream_tls_error}});
      return 1;
    }
    runtime = std::move(built);
  }
  Server server(runtime);

  uv_loop_t loop;
  uv_loop_init(&loop);
  Control control;
  control.server = &server;
  control.runtime = runtime;
  control.config_path = options.config_path;
  control.keys_overridden = static_cast<bool>(options.key_override);
  control.counters.started_at = static_cast<std::int64_t>(std::time(nullptr));
  for (uv_signal_t* s : {&control.term, &control.intr, &control.hup}) {
    uv_signal_init(&loop, s);
    s->data = &control;
  }
  uv_signal_start(&control.term, on_signal, SIGTERM);
  uv_signal_start(&control.intr, on_signal, SIGINT);
  uv_signal_start(&control.hup, on_signal, SIGHUP);

  KeyManagerHooks hooks;
  hooks.publish = [&server, &control](std::size_t provider, std::shared_ptr<const core::KeySet> keys) {
    if (control.latest_keys.size() <= provider) control.latest_keys.resize(provider + 1);
    control.latest_keys[provider] = keys;
    server.publish_keys(provider, std::move(keys));
  };
  hooks.refreshed = [&server](std::size_t provider) { server.notify_refreshed(provider); };
  KeyManager keys(&loop, runtime, config::process_environment(), hooks);
  control.keys = &keys;
  server.set_key_refresh([&keys](std::size_t provider) { keys.request_refresh(provider); });

  AdminServer admin(
      &loop, AdminRequestHandler([&control](const AdminRequest& request) { return control.admin_request(request); }),
      admin_limits(runtime->config.admin));
  control.admin = &admin;

  // Nobody sends SIGHUP to a container without a shell when its mounted ConfigMap changes.
  std::unique_ptr<ConfigFileWatch> config_watch;
  if (!options.config_path.empty() && runtime->config.watch_config) {
    config_watch = std::make_unique<ConfigFileWatch>(&loop, options.config_path, [&control] {
      if (control.stopping) return;
      log_event("info", "config file changed; reloading", {{"file", control.config_path}});
      control.reload();
    });
    std::string watch_error;
    if (!config_watch->start(watch_error)) {
      log_event("warn", "the config file cannot be watched; only SIGHUP reloads it",
                {{"file", options.config_path}, {"error", watch_error}});
    }
    control.config_watch = config_watch.get();
  }

  auto finish = [&](int code) {
    keys.close_inbox();
    uv_run(&loop, UV_RUN_DEFAULT);  // lets the closed handles go
    uv_loop_close(&loop);
    return code;
  };

  // Keys first: a file or secret is loaded before the port opens, so the first request finds it
  // (keys published before Server::start reach the workers as they start).
  if (options.key_override) {
    for (std::size_t i = 0; i < runtime->providers.size(); ++i) {
      if (auto set = options.key_override(i)) {
        if (control.latest_keys.size() <= i) control.latest_keys.resize(i + 1);
        control.latest_keys[i] = set;
        server.publish_keys(i, std::move(set));
      }
    }
  } else {
    keys.start();
  }
  std::string error;
  // Revocations before the port opens: the first request is checked against them.
  std::unique_ptr<RevocationStore> revocation;
  if (runtime->config.revocation) {
    revocation = std::make_unique<RevocationStore>(&loop, *runtime->config.revocation,
                                                   [&server](std::shared_ptr<const core::RevocationSet> set) {
                                                     server.publish_revocations(std::move(set));
                                                   });
    control.revocation = revocation.get();
    if (!revocation->start(error)) {
      log_event("error", "cannot start", {{"error", error}});
      control.close_signals();
      admin.close();
      keys.close();
      revocation->close();
      if (config_watch) config_watch->close();
      uv_run(&loop, UV_RUN_DEFAULT);
      return finish(1);
    }
  }
  // The certificate before the port opens: the first connection is served with it.
  std::unique_ptr<TlsCertificates> tls;
  if (runtime->config.tls && runtime->config.proxy) {
    tls = std::make_unique<TlsCertificates>(&loop, *runtime->config.tls, [&server](std::shared_ptr<const TlsServerContext> ctx) {
      server.publish_tls(std::move(ctx));
    });
    control.tls = tls.get();
  }
  if ((tls && !tls->start(error)) || !admin.start(runtime->config.admin_listen, error) || !server.start(error)) {
    log_event("error", "cannot start", {{"error", error}});
    control.close_signals();
    admin.close();
    keys.close();
    if (config_watch) config_watch->close();
    if (tls) tls->close();
    if (revocation) revocation->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    return finish(1);
  }
  const config::Config& cfg = runtime->config;
  log_event("info", "listening",
            {{"address", cfg.proxy ? cfg.listen.host + ":" + std::to_string(server.port()) : std::string("-")},
             {"forward_auth", cfg.forward_auth ? cfg.forward_auth->listen.host + ":" + std::to_string(server.check_port())
                                               : std::string("-")},
             {"admin", cfg.admin_listen.host + ":" + std::to_string(admin.port())},
             {"workers", std::to_string(server.worker_count())},
             {"upstream", cfg.proxy ? config::redact_url(cfg.upstream.text) : std::string("-")}});
  if (options.on_listening) options.on_listening(server.port());

  uv_run(&loop, UV_RUN_DEFAULT);
  server.wait();
  if (const std::size_t cut = server.connections_cut(); cut > 0) {
    log_event("warn", "limits.drain_timeout reached: connections with requests in flight were closed",
              {{"connections", std::to_string(cut)}});
  }
  log_event("info", "stopped");
  return finish(0);
}

}  // namespace jwtgate::proxy
