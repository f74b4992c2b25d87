#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/development_default.h"
#include "config/loader.h"
#include "proxy/run.h"

namespace jwtgate::cli {

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
