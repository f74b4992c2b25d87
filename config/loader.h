// YAML text -> Config. All problems are reported at once; a Config is returned only when there
// are no errors (warnings do not prevent loading), so nothing ever runs on a half-built config.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/diagnostics.h"
#include "config/env_expand.h"

namespace jwtgate::config {

struct LoadOptions {
  EnvLookup env = process_environment();
  // Read hmac_secret_file / hmac_secret_env while validating, so a missing or weak secret is a
  // config error rather than a start-up surprise.
  bool check_secrets = true;
};

struct LoadResult {
  std::optional<Config> config;  // set only when diagnostics has no errors
  Diagnostics diagnostics;
};

LoadResult load_config(std::string_view yaml_text, const std::string& file_name, const LoadOptions& options = {});
LoadResult load_config_file(const std::string& path, const LoadOptions& options = {});

}  // namespace jwtgate::config
