// Writes a file only its owner may read (0600: the key cache may hold `oct` secrets), replacing
// the old one atomically. The temporary file beside it gets a fresh, unguessable name and is
// created with O_EXCL|O_NOFOLLOW, so a symlink or file planted at a predictable name is never
// followed, truncated or written; it is fsynced, renamed over the target (rename replaces a
// symlink at the target itself, never what it points to) and removed on any failure.
#pragma once

#include <string>
#include <string_view>

namespace jwtgate::proxy {

// Empty on success; otherwise why not (the target is then unchanged). Blocks: call it off the
// loop (thread_pool_task.h).
std::string write_private_file(const std::string& path, std::string_view data);

}  // namespace jwtgate::proxy
