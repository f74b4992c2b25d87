// A child process that keeps running while the test talks to it (a server), with its output
// captured in files, stopped (SIGTERM, then SIGKILL) when the object goes away.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace jwtgate::testing {

class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& output_dir, const std::string& name,
        const std::vector<std::string>& env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  // The first line the child writes to stdout (waits up to `seconds`); empty on timeout.
  std::string first_stdout_line(double seconds = 5);
  std::string stdout_text() const;
  std::string stderr_text() const;
  void signal(int sig);
  // Waits up to `seconds` for exit; returns the exit code, or -1 if still running.
  int wait_exit(double seconds);
  // Peak resident memory (VmHWM) in KiB, read from /proc while it runs.
  long peak_rss_kib() const;

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
  std::string out_path_, err_path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago and was not handed out before in this process.
int free_port();
// True once something accepts connections on 127.0.0.1:port (waits up to `seconds`).
bool wait_for_port(int port, double seconds = 5);

// True once `condition` holds, checked every 50 ms for up to `seconds`.
bool eventually(const std::function<bool()>& condition, double seconds);

}  // namespace jwtgate::testing
