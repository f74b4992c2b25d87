// `jwtgate echo`: the development default's built-in echo upstream on its own, as a stand-in
// service (the sample services of the compose stack, the app in the Kubernetes pod test).
#include <pthread.h>
#include <signal.h>

#include <csignal>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "config/address.h"
#include "proxy/dev/echo_upstream.h"

namespace jwtgate::cli {

int echo_command(int argc, char** argv) {
  Args args(argc, argv, 2, {"listen", "name"});
  config::ListenAddress listen;
  std::string error;
  if (!args.ok() || !args.positional().empty() ||
      !config::parse_listen_address(args.get("listen", "127.0.0.1:3000"), listen, error)) {
    std::cerr << "usage: jwtgate echo [--listen 127.0.0.1:3000] [--name NAME]\n"
                 "  answers every request with a JSON description of it (method, path, headers),\n"
                 "  credentials hidden; --name is reported as \"service\"\n";
    if (!args.ok()) std::cerr << "error: " << args.error() << "\n";
    else if (!args.positional().empty()) std::cerr << "error: unexpected argument '" << args.positional().front() << "'\n";
    else std::cerr << "error: --listen: " << error << "\n";
    return kExitUsage;
  }
  if (!config::is_loopback_host(listen.host)) {
    std::cerr << "WARNING: jwtgate echo on " << listen.text
              << " reflects every request's headers (credentials hidden) to anyone who can reach it\n"
              << std::flush;
  }
  // A peer that resets mid-answer must cost a write error, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  // Blocked before the echo's thread starts, so it inherits the mask and this thread alone
  // takes the signal: SIGTERM ends the process promptly and cleanly (docker stop would otherwise
  // wait out its 10 s and kill it).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  proxy::EchoUpstream echo("", "", args.get("name"));
  if (!echo.start(listen.host, listen.port, error)) {
    std::cerr << "jwtgate echo: " << error << "\n";
    return kExitInvalid;
  }
  std::cout << "jwtgate echo listening on " << listen.text << (args.has("name") ? " as " + args.get("name") : "")
            << "\n" << std::flush;
  int signum = 0;
  sigwait(&stop_signals, &signum);
  return kExitOk;  // ~EchoUpstream stops its loop and joins its thread
}

}  // namespace jwtgate::cli
