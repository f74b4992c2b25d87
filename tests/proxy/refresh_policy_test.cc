#include "proxy/keys/refresh_policy.h"

#include <doctest/doctest.h>

using namespace jwtgate;
using namespace jwtgate::proxy;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_CASE("Cache-Control max-age is read leniently and no-cache/no-store mean 0") {
  CHECK(cache_control_max_age("max-age=300") == seconds(300));
  CHECK(cache_control_max_age("public, Max-Age=60, must-revalidate") == seconds(60));
  CHECK(cache_control_max_age("max-age=\"90\"") == seconds(90));
  CHECK(cache_control_max_age("max-age=600, max-age=30") == seconds(30));  // the stricter one
  CHECK(cache_control_max_age("no-store") == seconds(0));
  CHECK(cache_control_max_age("max-age=600, no-cache") == seconds(0));
  CHECK_FALSE(cache_control_max_age(""));
  CHECK_FALSE(cache_control_max_age("public"));
  CHECK_FALSE(cache_control_max_age("max-age=-5"));
  CHECK_FALSE(cache_control_max_age("max-age=abc"));
  CHECK_FALSE(cache_control_max_age("max-age=99999999999999999999"));
}

TEST_CASE("periodic refreshes keep max-age within [min_refresh_interval, refresh_interval], jitter only shortens") {
  config::JwksConfig j;
  j.refresh_interval = std::chrono::minutes(5);
  j.min_refresh_interval = seconds(30);
  CHECK(refresh_delay(std::nullopt, j, 0.0) == milliseconds(300000));
  CHECK(refresh_delay(seconds(60), j, 0.0) == milliseconds(60000));
  CHECK(refresh_delay(seconds(5), j, 0.0) == milliseconds(30000));      // an IdP cannot make us hammer it
  CHECK(refresh_delay(seconds(86400), j, 0.0) == milliseconds(300000)); // nor keep removed keys for a day
  CHECK(refresh_delay(seconds(0), j, 0.0) == milliseconds(30000));
  for (double jitter : {0.0, 0.25, 0.5, 0.999}) {
    const auto d = refresh_delay(std::nullopt, j, jitter);
    CHECK(d <= milliseconds(300000));
    CHECK(d >= milliseconds(270000));
  }
  CHECK(refresh_delay(std::nullopt, j, 0.5) < refresh_delay(std::nullopt, j, 0.0));
}

TEST_CASE("retries back off exponentially from 1s up to min(refresh_interval, 1m)") {
  config::JwksConfig j;
  j.refresh_interval = std::chrono::minutes(5);
  CHECK(retry_delay(1, j, 0.0) == milliseconds(1000));
  CHECK(retry_delay(2, j, 0.0) == milliseconds(2000));
  CHECK(retry_delay(3, j, 0.0) == milliseconds(4000));
  CHECK(retry_delay(6, j, 0.0) == milliseconds(32000));
  CHECK(retry_delay(7, j, 0.0) == milliseconds(60000));
  CHECK(retry_delay(1000, j, 0.0) == milliseconds(60000));
  CHECK(retry_delay(3, j, 0.999) >= milliseconds(3200));
  j.refresh_interval = seconds(3);
  CHECK(retry_delay(10, j, 0.0) == milliseconds(3000));
}
