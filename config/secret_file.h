// An HMAC secret file (hmac_secret_file): read the way every key file is (regular file, bounded),
// and judged by its permission bits. A file others can write is refused: anyone on the host could
// substitute the secret and mint tokens. A file group or others can read is used with a warning:
// Kubernetes Secret volumes are 0644 unless `defaultMode` says otherwise (and Docker secrets
// 0444), so refusing would stop working deployments over a mode their platform chose. The group's
// read bit is not warned about when jwtgate reads the file through its group (another user owns
// it), which is how a non-root pod reads a Secret volume (fsGroup, defaultMode: 0440).
#pragma once

#include <cstdint>
#include <string>

#include "core/secret_bytes.h"

namespace jwtgate::config {

// Far above any real HMAC key; a file this large is the wrong file.
constexpr std::uint64_t kMaxSecretFileBytes = 64 * 1024;

struct SecretFile {
  core::SecretBytes secret;  // without the trailing line end editors and `echo` add
  std::string error;         // refused: unreadable, not a regular file, too large, writable by others
  std::string warning;       // used, but group or others may read (or group may write) it
};

SecretFile read_secret_file(const std::string& path);

}  // namespace jwtgate::config
