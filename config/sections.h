// The loader's per-section readers (internal to config/).
#pragma once

#include <yaml-cpp/yaml.h>

#include "config/config.h"
#include "config/loader.h"
#include "config/yaml_reader.h"

namespace jwtgate::config {

void read_providers(YamlReader& r, const YAML::Node& node, const LoadOptions& options, std::vector<Provider>& out);
void read_routes(YamlReader& r, const YAML::Node& node, const std::vector<Provider>& providers, std::vector<Route>& out);

// RFC 9110 field-name: a token.
bool is_header_name(std::string_view name);

}  // namespace jwtgate::config
