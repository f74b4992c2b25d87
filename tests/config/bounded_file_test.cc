// read_bounded_file and read_secret_file on real files, FIFOs, directories and devices.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/bounded_file.h"
#include "config/secret_file.h"
#include "tests/support/process.h"

using namespace jwtgate::config;
using jwtgate::testing::TempDir;

TEST_CASE("read_bounded_file reads up to the limit and refuses one byte more") {
  TempDir dir;
  dir.write("exact", std::string(1024, 'x'));
  dir.write("over", std::string(1025, 'x'));
  BoundedFile exact = read_bounded_file(dir.file("exact"), 1024, "max_bytes");
  CHECK(exact.ok());
  CHECK(exact.text.size() == 1024);
  CHECK(S_ISREG(exact.mode));
  BoundedFile over = read_bounded_file(dir.file("over"), 1024, "max_bytes");
  CHECK(over.error == dir.file("over") + " is larger than max_bytes (1024 bytes)");
  CHECK(over.text.empty());
  BoundedFile empty = read_bounded_file(dir.file("missing"), 1024);
  CHECK(empty.missing);
  CHECK(empty.error.rfind("cannot read " + dir.file("missing") + ": ", 0) == 0);
}

TEST_CASE("read_bounded_file follows symlinks but reads only regular files, without blocking") {
  TempDir dir;
  dir.write("real", "{}");
  REQUIRE(::symlink(dir.file("real").c_str(), dir.file("link").c_str()) == 0);
  CHECK(read_bounded_file(dir.file("link"), 1024).text == "{}");
  // No writer ever opens it: a blocking open would never return.
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  CHECK(read_bounded_file(dir.file("fifo"), 1024).error == dir.file("fifo") + " is a FIFO, not a regular file");
  CHECK(read_bounded_file(dir.path(), 1024).error == dir.path() + " is a directory, not a regular file");
  // Endless: reading it "to the end" would never finish.
  CHECK(read_bounded_file("/dev/zero", 1024).error == "/dev/zero is a character device, not a regular file");
}

TEST_CASE("read_secret_file strips the line end, warns about loose modes and refuses world-writable files") {
  TempDir dir;
  dir.write("secret", "0123456789abcdef0123456789abcdef\r\n");
  REQUIRE(::chmod(dir.file("secret").c_str(), 0400) == 0);
  SecretFile tight = read_secret_file(dir.file("secret"));
  CHECK(tight.error.empty());
  CHECK(tight.warning.empty());
  CHECK(tight.secret.view() == "0123456789abcdef0123456789abcdef");

  REQUIRE(::chmod(dir.file("secret").c_str(), 0664) == 0);
  SecretFile loose = read_secret_file(dir.file("secret"));
  CHECK(loose.error.empty());
  CHECK(loose.warning.rfind(dir.file("secret") + " is readable by its group, writable by its group, readable by others (mode 0664)", 0) == 0);
  CHECK(loose.secret.size() == 32);

  REQUIRE(::chmod(dir.file("secret").c_str(), 0602) == 0);
  SecretFile writable = read_secret_file(dir.file("secret"));
  CHECK(writable.error.rfind(dir.file("secret") + " is writable by others (mode 0602)", 0) == 0);
  CHECK(writable.secret.empty());

  dir.write("big", std::string(kMaxSecretFileBytes + 1, 's'));
  CHECK(read_secret_file(dir.file("big")).error == dir.file("big") + " is larger than 64 KiB (65536 bytes)");
}

TEST_CASE("read_secret_file: the group bit jwtgate reads through (a Secret volume with fsGroup) is not warned about") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: giving a file to another user needs root");
    return;
  }
  TempDir dir;
  dir.write("secret", "0123456789abcdef0123456789abcdef\n");
  // The kubelet's layout for a non-root pod: owned by someone else, group = the pod's fsGroup.
  REQUIRE(::chown(dir.file("secret").c_str(), 65534, ::getegid()) == 0);
  REQUIRE(::chmod(dir.file("secret").c_str(), 0440) == 0);
  SecretFile via_group = read_secret_file(dir.file("secret"));
  CHECK(via_group.error.empty());
  CHECK(via_group.warning.empty());
  REQUIRE(::chmod(dir.file("secret").c_str(), 0444) == 0);
  CHECK(read_secret_file(dir.file("secret")).warning.rfind(dir.file("secret") + " is readable by others (mode 0444)", 0) == 0);
}
