#include "cli/key_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace jwtgate::cli {

bool write_new_file(const std::string& path, std::string_view content, unsigned mode, bool overwrite,
                    std::string& error) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    error = path + ": " + std::strerror(errno) + (errno == EEXIST ? " (use --force to replace it)" : "");
    return false;
  }
  // An existing file keeps its old mode under O_TRUNC; a private key must not.
  bool ok = ::fchmod(fd, mode) == 0;
  std::size_t written = 0;
  while (ok && written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ok = false;
    else written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) ok = false;
  if (!ok) error = path + ": write failed: " + std::strerror(errno);
  return ok;
}

}  // namespace jwtgate::cli
