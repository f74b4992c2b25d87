// Running a real child process with standard input, capturing output and exit code.
#pragma once

#include <string>
#include <vector>

namespace jwtgate::testing {

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] a path) in `cwd` (empty: current), feeding `input` to its stdin, with
// `env` ("NAME=value") added to this process's environment.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "",
                          const std::string& cwd = "", const std::vector<std::string>& env = {});

// In a forked child: adds `env` to the environment and executes `argv` (argv[0] a path); exits
// 127 when that fails.
[[noreturn]] void exec_or_exit(const std::vector<std::string>& argv, const std::vector<std::string>& env);

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& content) const;
  std::string read(const std::string& name) const;

 private:
  std::string path_;
};

}  // namespace jwtgate::testing
