// Reading a file that someone else put at a path (a JWKS, an HMAC secret, the key cache) without
// trusting what the path turns out to be: only a regular file is read (symlinks are followed, as
// Kubernetes mounts ConfigMaps and Secrets through them), opening never waits on a FIFO or a
// device, and no more than the limit plus one byte is ever read, so an oversized file costs
// the limit, not its size.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace jwtgate::config {

struct BoundedFile {
  std::string text;
  std::string error;      // empty when read; otherwise a sentence that starts with the path
  mode_t mode = 0;        // st_mode of the file read (its permission bits matter for secrets)
  uid_t uid = 0;          // its owner and group
  gid_t gid = 0;
  std::int64_t mtime = 0; // seconds since the epoch
  bool missing = false;   // nothing is at the path (error is set too)
  bool ok() const { return error.empty(); }
};

// `limit_name` names the limit in the "larger than" message, e.g. "max_bytes".
BoundedFile read_bounded_file(const std::string& path, std::uint64_t max_bytes, std::string_view limit_name = "the limit");

// Key material (a JWKS file, the key cache) that every user on the host may write is keys handed
// to jwtgate by a side channel: such a file is refused. Returns the reason, or "" when it is not.
std::string writable_by_others(const std::string& path, mode_t mode);

}  // namespace jwtgate::config
