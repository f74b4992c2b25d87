#include <doctest/doctest.h>

#include "config/duration.h"

using namespace jwtgate::config;
using std::chrono::milliseconds;

TEST_CASE("durations parse with one unit") {
  CHECK(parse_duration("500ms") == milliseconds(500));
  CHECK(parse_duration("30s") == milliseconds(30'000));
  CHECK(parse_duration("5m") == milliseconds(300'000));
  CHECK(parse_duration("1h") == milliseconds(3'600'000));
  CHECK(parse_duration("0s") == milliseconds(0));
}

TEST_CASE("durations are strict") {
  for (const char* bad : {"", "5", "s", "1.5s", "-1s", " 5s", "5s ", "5 s", "1h30m", "5S", "5sec", "99999999999999999999h"}) {
    CHECK_MESSAGE(!parse_duration(bad), bad);
  }
}

TEST_CASE("sizes parse with binary units only") {
  CHECK(parse_size("16KiB") == 16u * 1024);
  CHECK(parse_size("1MiB") == 1024u * 1024);
  CHECK(parse_size("512B") == 512u);
  for (const char* bad : {"16kb", "16KB", "16", "1.5MiB", "KiB", "16 KiB"}) CHECK_MESSAGE(!parse_size(bad), bad);
}
