#include "cli/args.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace jwtgate::cli {

Args::Args(int argc, char** argv, int first, std::set<std::string> valued, std::set<std::string> switches) {
  bool only_positional = false;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (only_positional || arg == "-" || arg.rfind("--", 0) != 0) {
      positional_.push_back(arg);
      continue;
    }
    if (arg == "--") { only_positional = true; continue; }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    if (switches.count(name)) {
      if (has_value) { error_ = "--" + name + " takes no value"; return; }
      values_[name].push_back("true");
    } else if (valued.count(name)) {
      if (!has_value) {
        if (i + 1 >= argc) { error_ = "--" + name + " needs a value"; return; }
        value = argv[++i];
      }
      values_[name].push_back(value);
    } else {
      error_ = "unknown option --" + name;
      return;
    }
  }
}

std::string Args::get(const std::string& flag, std::string fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? fallback : it->second.back();
}

std::vector<std::string> Args::all(const std::string& flag) const {
  std::vector<std::string> out;
  auto it = values_.find(flag);
  if (it == values_.end()) return out;
  for (const auto& v : it->second) {
    std::stringstream ss(v);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (!item.empty()) out.push_back(item);
    }
  }
  return out;
}

bool read_file(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) { error = "cannot read " + path; return false; }
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) { error = "cannot read " + path; return false; }
  return true;
}

bool read_token_argument(const std::string& arg, std::string& token, std::string& error) {
  if (arg == "-") {
    token.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    token = arg;
  }
  const auto first = token.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) { error = "no token given"; return false; }
  token = token.substr(first, token.find_last_not_of(" \t\r\n") - first + 1);
  return true;
}

}  // namespace jwtgate::cli
