#include "proxy/keys/private_file_writer.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace jwtgate::proxy {
namespace {

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// 64 random bits, hex: another process cannot plant the name in advance.
std::string random_suffix() {
  unsigned char bytes[8] = {};
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  char hex[17];
  for (std::size_t i = 0; i < sizeof bytes; ++i) std::snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
  return std::string(hex) + "." + std::to_string(::getpid());
}

std::string failure(const char* what, const std::string& path, int error) {
  return std::string(what) + " " + path + ": " + std::strerror(error);
}

}  // namespace

std::string write_private_file(const std::string& path, std::string_view data) {
  constexpr int kAttempts = 8;
  std::string tmp;
  int fd = -1;
  for (int i = 0; i < kAttempts && fd < 0; ++i) {
    tmp = path + ".tmp-" + random_suffix();
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) return failure("cannot create", tmp, errno);
  }
  if (fd < 0) return "cannot create a temporary file beside " + path + ": every name tried exists";

  std::string error;
  std::size_t done = 0;
  while (error.empty() && done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) error = failure("cannot write", tmp, n < 0 ? errno : EIO);
    else done += static_cast<std::size_t>(n);
  }
  if (error.empty() && ::fsync(fd) != 0) error = failure("cannot sync", tmp, errno);
  if (::close(fd) != 0 && error.empty()) error = failure("cannot write", tmp, errno);
  if (error.empty() && ::rename(tmp.c_str(), path.c_str()) != 0) error = failure("cannot rename onto", path, errno);
  if (!error.empty()) {
    ::unlink(tmp.c_str());
    return error;
  }
  // The rename is durable only once the directory is.
  const std::string dir = directory_of(path);
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

}  // namespace jwtgate::proxy
