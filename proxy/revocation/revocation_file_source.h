// revocation.file: JSON lines of revocation entries, watched the way JWKS files are (a mounted
// ConfigMap changes by a ..data symlink swap). A file that does not read or parse whole is
// refused whole: the entries of the last good one stay in force.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/revocation.h"
#include "core/status.h"
#include "proxy/keys/file_watch.h"

namespace jwtgate::proxy {

// The file's text as records; on the first bad line, an error naming it (and nothing else).
core::Result<std::vector<core::RevocationRecord>> parse_revocation_lines(std::string_view text);

class RevocationFileSource {
 public:
  RevocationFileSource(uv_loop_t* loop, std::string path,
                       std::function<void(std::vector<core::RevocationRecord>&& records)> loaded);
  ~RevocationFileSource();
  RevocationFileSource(const RevocationFileSource&) = delete;
  RevocationFileSource& operator=(const RevocationFileSource&) = delete;

  // Reads the file now (before the proxy opens its port), then watches it.
  void start();
  void close();

  bool loaded_once() const { return last_load_ > 0; }
  bool in_sync() const { return in_sync_; }  // the last read succeeded
  std::int64_t last_load() const { return last_load_; }
  std::uint64_t failures() const { return failures_; }
  const std::string& last_error() const { return last_error_; }

 private:
  struct Outcome {
    core::Result<std::vector<core::RevocationRecord>> records{std::vector<core::RevocationRecord>{}};
  };
  static Outcome read(const std::string& path);
  void apply(Outcome&& outcome);
  void reread();

  uv_loop_t* loop_;
  std::string path_;
  std::function<void(std::vector<core::RevocationRecord>&&)> loaded_;
  std::unique_ptr<FileWatch> watch_;
  std::shared_ptr<RevocationFileSource*> self_;  // weak handles for reads in flight
  bool reading_ = false, reread_wanted_ = false, in_sync_ = false;
  std::int64_t last_load_ = 0;
  std::uint64_t failures_ = 0;
  std::string last_error_;
};

}  // namespace jwtgate::proxy
