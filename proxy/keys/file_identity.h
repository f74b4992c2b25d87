// What stat(2) says of a path (through its symlinks), to tell whether the file there is another
// one, or the same one changed: the two file watches compare it before and after a burst of
// events, since events about other entries of a directory leave it unchanged.
#pragma once

#include <string>

namespace jwtgate::proxy {

struct FileIdentity {
  bool exists = false;
  unsigned long long dev = 0, ino = 0, size = 0;
  long long mtime_ns = 0, ctime_ns = 0;
  bool operator==(const FileIdentity&) const = default;

  // Another file at the path: created, or replaced by a rename or a symlink swap.
  bool replaced_by(const FileIdentity& now) const { return now.exists && (!exists || now.dev != dev || now.ino != ino); }
};

FileIdentity identify_file(const std::string& path);

}  // namespace jwtgate::proxy
