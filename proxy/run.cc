#include "proxy/run.h"

#include <uv.h>

#include "proxy/admin_server.h"
#include "proxy/key_manager.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

// The control loop: signals, the admin listener and key management. Requests never run here.
struct Control {
  Server* server = nullptr;
  KeyManager* keys = nullptr;
  AdminServer* admin = nullptr;
  std::chrono::milliseconds deadline{0};
  uv_signal_t term{};
  uv_signal_t intr{};
  bool stopping = false;

  void close_signals() {
    close_handle(reinterpret_cast<uv_handle_t*>(&term), nullptr);
    close_handle(reinterpret_cast<uv_handle_t*>(&intr), nullptr);
  }
};

void on_signal(uv_signal_t* handle, int signum) {
  auto* c = static_cast<Control*>(handle->data);
  if (c->stopping) return;
  c->stopping = true;
  log_event("info", "draining", {{"signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"}});
  c->server->drain(c->deadline);
  // Once these close, the control loop ends; the workers finish their drain on their own.
  c->close_signals();
  if (c->admin) c->admin->close();
  if (c->keys) c->keys->close();
}

AdminResponse admin_route(const std::function<bool(std::string*)>& ready, std::string_view method, std::string_view path) {
  AdminResponse r;
  if (method != "GET" && method != "HEAD") {
    r.status = 405;
    r.headers.push_back({"Allow", "GET, HEAD"});
    r.body = "method not allowed\n";
    return r;
  }
  if (path == "/healthz") {
    r.body = "ok\n";
    return r;
  }
  if (path == "/readyz") {
    std::string why;
    if (ready(&why)) {
      r.body = "ready\n";
    } else {
      r.status = 503;
      r.headers.push_back({"Retry-After", "5"});
      r.body = "not ready\n" + why;
    }
    return r;
  }
  r.status = 404;
  r.body = "not found; try /healthz or /readyz\n";
  return r;
}

}  // namespace

int run_proxy(config::Config config, const RunOptions& options) {
  auto runtime = std::make_shared<const RuntimeConfig>(std::move(config));
  Server server(runtime);

  uv_loop_t loop;
  uv_loop_init(&loop);
  Control control;
  control.server = &server;
  control.deadline = options.drain_deadline;
  uv_signal_init(&loop, &control.term);
  uv_signal_init(&loop, &control.intr);
  control.term.data = &control;
  control.intr.data = &control;
  uv_signal_start(&control.term, on_signal, SIGTERM);
  uv_signal_start(&control.intr, on_signal, SIGINT);

  KeyManagerHooks hooks;
  hooks.publish = [&server](std::size_t provider, std::shared_ptr<const core::KeySet> keys) {
    server.publish_keys(provider, std::move(keys));
  };
  hooks.refreshed = [&server](std::size_t provider) { server.notify_refreshed(provider); };
  KeyManager keys(&loop, runtime, config::process_environment(), hooks);
  control.keys = &keys;
  server.set_key_refresh([&keys](std::size_t provider) { keys.request_refresh(provider); });

  // Keys given by the caller (the development default) are there from the start.
  std::function<bool(std::string*)> ready = [&keys](std::string* why) { return keys.ready_for_routes(why); };
  if (options.key_override) ready = [](std::string*) { return true; };
  AdminServer admin(&loop, [&ready](std::string_view method, std::string_view path, std::string_view) {
    return admin_route(ready, method, path);
  });
  control.admin = &admin;

  auto finish = [&](int code) {
    keys.close_inbox();
    uv_run(&loop, UV_RUN_DEFAULT);  // lets the closed handles go
    uv_loop_close(&loop);
    return code;
  };

  std::string error;
  if (!admin.start(runtime->config.admin_listen, error) || !server.start(error)) {
    log_event("error", "cannot start", {{"error", error}});
    control.close_signals();
    admin.close();
    keys.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    return finish(1);
  }
  if (options.key_override) {
    for (std::size_t i = 0; i < runtime->providers.size(); ++i) {
      if (auto set = options.key_override(i)) server.publish_keys(i, std::move(set));
    }
  } else {
    keys.start();
  }
  log_event("info", "listening", {{"address", runtime->config.listen.host + ":" + std::to_string(server.port())},
                                  {"admin", runtime->config.admin_listen.host + ":" + std::to_string(admin.port())},
                                  {"workers", std::to_string(server.worker_count())},
                                  {"upstream", runtime->config.upstream.text}});
  if (options.on_listening) options.on_listening(server.port());

  uv_run(&loop, UV_RUN_DEFAULT);
  server.wait();
  log_event("info", "stopped");
  return finish(0);
}

}  // namespace jwtgate::proxy
