#include "config/secret_file.h"

#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "config/bounded_file.h"

namespace jwtgate::config {
namespace {
std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

bool in_group(gid_t gid) {
  if (gid == ::getegid()) return true;
  gid_t groups[256];
  const int n = ::getgroups(256, groups);
  for (int i = 0; i < n; ++i) {
    if (groups[i] == gid) return true;
  }
  return false;
}
}  // namespace

SecretFile read_secret_file(const std::string& path) {
  SecretFile out;
  BoundedFile f = read_bounded_file(path, kMaxSecretFileBytes, std::to_string(kMaxSecretFileBytes / 1024) + " KiB");
  if (!f.ok()) {
    out.error = f.error;
    return out;
  }
  const mode_t perm = f.mode & 07777;
  if (perm & S_IWOTH) {
    OPENSSL_cleanse(f.text.data(), f.text.size());
    out.error = path + " is writable by others (mode " + octal(perm) +
                "): anyone on this host could replace the secret; chmod it to 0400 or 0600";
    return out;
  }
  // The group's read bit is what lets jwtgate read a file another user owns through its group
  // (Kubernetes: fsGroup with defaultMode 0440, the tightest a non-root pod can have); it is
  // only warned about when jwtgate does not need it.
  const bool read_through_group = f.uid != ::geteuid() && in_group(f.gid);
  std::string who;
  for (const auto& [bit, text] : {std::pair{S_IRGRP, "readable by its group"}, std::pair{S_IWGRP, "writable by its group"},
                                  std::pair{S_IROTH, "readable by others"}}) {
    if (!(perm & bit) || (bit == S_IRGRP && read_through_group)) continue;
    if (!who.empty()) who += ", ";
    who += text;
  }
  if (!who.empty()) {
    out.warning = path + " is " + who + " (mode " + octal(perm) +
                  "); a secret should be 0400 or 0600 (on Kubernetes: defaultMode: 0400 on the Secret volume)";
  }
  std::string& s = f.text;
  std::size_t n = s.size();
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) --n;
  out.secret = core::SecretBytes(std::string_view(s).substr(0, n));
  OPENSSL_cleanse(s.data(), s.size());
  return out;
}

}  // namespace jwtgate::config
