// Command-line flags for the subcommands: "--name VALUE", "--name=VALUE", repeatable flags and
// positional arguments. Unknown flags are errors, never ignored.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace jwtgate::cli {

class Args {
 public:
  // `valued` are flags that take a value, `switches` those that do not.
  Args(int argc, char** argv, int first, std::set<std::string> valued, std::set<std::string> switches = {});

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::vector<std::string>& positional() const { return positional_; }
  bool has(const std::string& flag) const { return values_.count(flag) > 0; }
  // The last value given for `flag`, or `fallback`.
  std::string get(const std::string& flag, std::string fallback = {}) const;
  // Every value given, with comma-separated lists split.
  std::vector<std::string> all(const std::string& flag) const;

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
  std::string error_;
};

// Reads a file whole; false with `error` set when it cannot.
bool read_file(const std::string& path, std::string& out, std::string& error);

// The token argument: itself, or standard input when it is "-" (keeps tokens out of shell
// history). Surrounding whitespace is removed.
bool read_token_argument(const std::string& arg, std::string& token, std::string& error);

}  // namespace jwtgate::cli
