#include "proxy/run.h"

#include <uv.h>

#include <iostream>

#include "core/json_writer.h"
#include "proxy/server.h"
#include "proxy/static_keys.h"
#include "proxy/uv_util.h"

namespace jwtgate::proxy {
namespace {

struct SignalState {
  Server* server;
  std::chrono::milliseconds deadline;
  uv_signal_t term{};
  uv_signal_t intr{};
  bool stopping = false;
};

void log_line(std::string_view level, std::string_view message, std::initializer_list<std::pair<std::string_view, std::string>> fields = {}) {
  core::JsonWriter w;
  w.begin_object();
  w.key("level");
  w.string(level);
  w.key("msg");
  w.string(message);
  for (const auto& [k, v] : fields) {
    w.key(k);
    w.string(v);
  }
  w.end_object();
  std::cerr << w.take() << std::endl;
}

void on_signal(uv_signal_t* handle, int signum) {
  auto* s = static_cast<SignalState*>(handle->data);
  if (s->stopping) return;
  s->stopping = true;
  log_line("info", "draining", {{"signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"}});
  s->server->drain(s->deadline);
  close_handle(reinterpret_cast<uv_handle_t*>(&s->term), nullptr);
  close_handle(reinterpret_cast<uv_handle_t*>(&s->intr), nullptr);
}

}  // namespace

int run_proxy(config::Config config, const RunOptions& options) {
  auto runtime = std::make_shared<const RuntimeConfig>(std::move(config));
  Server server(runtime);

  uv_loop_t loop;
  uv_loop_init(&loop);
  SignalState signals{&server, options.drain_deadline};
  uv_signal_init(&loop, &signals.term);
  uv_signal_init(&loop, &signals.intr);
  signals.term.data = &signals;
  signals.intr.data = &signals;
  uv_signal_start(&signals.term, on_signal, SIGTERM);
  uv_signal_start(&signals.intr, on_signal, SIGINT);

  std::string error;
  if (!server.start(error)) {
    log_line("error", "cannot start", {{"error", error}});
    close_handle(reinterpret_cast<uv_handle_t*>(&signals.term), nullptr);
    close_handle(reinterpret_cast<uv_handle_t*>(&signals.intr), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  for (std::size_t i = 0; i < runtime->providers.size(); ++i) {
    std::shared_ptr<const core::KeySet> keys;
    std::string key_error;
    if (options.key_override) keys = options.key_override(i);
    else keys = load_static_keys(runtime->providers[i].config, config::process_environment(), key_error);
    const std::string& name = runtime->providers[i].config.name;
    if (keys) {
      server.publish_keys(i, keys);
      log_line("info", "provider keys loaded", {{"provider", name}, {"keys", std::to_string(keys->keys.size())}});
    } else {
      log_line("warn", "provider has no keys yet; its routes answer 503", {{"provider", name}, {"error", key_error}});
    }
  }
  log_line("info", "listening", {{"address", runtime->config.listen.host + ":" + std::to_string(server.port())},
                                 {"workers", std::to_string(server.worker_count())},
                                 {"upstream", runtime->config.upstream.text}});
  if (options.on_listening) options.on_listening(server.port());

  // The main loop only waits for signals; the workers run their own loops. It ends once the
  // signal handles are closed, after which the workers are joined.
  uv_run(&loop, UV_RUN_DEFAULT);
  server.wait();
  uv_loop_close(&loop);
  log_line("info", "stopped");
  return 0;
}

}  // namespace jwtgate::proxy
