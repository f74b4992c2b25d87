#include "config/bounded_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include <openssl/crypto.h>

namespace jwtgate::config {
namespace {

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

constexpr std::size_t kChunk = 64 * 1024;

// What was read may be a secret: wiped, not just dropped.
void discard(std::string& text) {
  if (!text.empty()) OPENSSL_cleanse(text.data(), text.size());
  text.clear();
}

}  // namespace

BoundedFile read_bounded_file(const std::string& path, std::uint64_t max_bytes, std::string_view limit_name) {
  BoundedFile out;
  const auto too_large = [&] {
    discard(out.text);
    out.error = path + " is larger than " + std::string(limit_name) + " (" + std::to_string(max_bytes) + " bytes)";
  };
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (forever); the type
  // is checked on what was opened, so a swap between a check and the open cannot slip one in.
  // O_NOCTTY: a terminal device must not become this process's controlling terminal.
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (f.fd < 0) {
    out.missing = errno == ENOENT;
    out.error = "cannot read " + path + ": " + std::strerror(errno);
    return out;
  }
  struct stat st{};
  if (::fstat(f.fd, &st) != 0) {
    out.error = "cannot read " + path + ": " + std::strerror(errno);
    return out;
  }
  out.mode = st.st_mode;
  out.uid = st.st_uid;
  out.gid = st.st_gid;
  out.mtime = static_cast<std::int64_t>(st.st_mtime);
  if (!S_ISREG(st.st_mode)) {
    out.error = path + " is " + kind_of(st.st_mode) + ", not a regular file";
    return out;
  }
  if (st.st_size < 0 || static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    too_large();
    return out;
  }
  try {
    // The size is only a hint (the file may be growing, or be a /proc-like file that says 0):
    // the read itself stops one byte past the limit.
    out.text.reserve(static_cast<std::size_t>(st.st_size) + 1);
    const std::uint64_t cap = max_bytes + 1;
    while (out.text.size() < cap) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, cap - out.text.size()));
      const std::size_t have = out.text.size();
      out.text.resize(have + want);
      const ssize_t n = ::read(f.fd, out.text.data() + have, want);
      if (n < 0 && errno == EINTR) {
        out.text.resize(have);
        continue;
      }
      if (n < 0) {
        const int e = errno;
        discard(out.text);
        out.error = "cannot read " + path + ": " + std::strerror(e);
        return out;
      }
      out.text.resize(have + static_cast<std::size_t>(n));
      if (n == 0) break;
    }
  } catch (const std::bad_alloc&) {
    discard(out.text);
    out.error = "cannot read " + path + ": out of memory";
    return out;
  }
  if (out.text.size() > max_bytes) too_large();
  return out;
}

std::string writable_by_others(const std::string& path, mode_t mode) {
  if ((mode & S_IWOTH) == 0) return {};
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode & 07777));
  return path + " is writable by others (mode " + octal + "): anyone on the host could replace the keys";
}

}  // namespace jwtgate::config
