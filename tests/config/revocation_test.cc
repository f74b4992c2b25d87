#include <doctest/doctest.h>

#include "config/loader.h"
#include "config/redis_url.h"
#include "tests/config/fixtures.h"

using namespace jwtgate::config;
using jwtgate::testing::kMinimal;
using jwtgate::testing::options;

namespace {

LoadResult load(const std::string& yaml) { return load_config(yaml, "test.yaml", options({{"REDIS_PW", "x"}})); }
bool has(const LoadResult& r, const std::string& needle) { return r.diagnostics.format().find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("revocation: every key is read, with its defaults otherwise") {
  LoadResult r = load(kMinimal + R"(
revocation:
  file: /etc/jwtgate/revoked.jsonl
  redis:
    url: rediss://jwtgate@redis.internal:6380/2
    password_env: REDIS_PW
    ca_file: /etc/ssl/redis.pem
    key_prefix: "app:rev:"
    channel: app-revocations
    resync_interval: 10s
    connect_timeout: 500ms
  on_unavailable: deny
  ready_requires_sync: true
  backchannel_logout:
    entry_ttl: 12h
    max_token_age: 2m
)");
  REQUIRE_MESSAGE(r.config, r.diagnostics.format());
  const Revocation& v = *r.config->revocation;
  CHECK(v.file == "/etc/jwtgate/revoked.jsonl");
  REQUIRE(v.redis);
  CHECK(v.redis->url.tls);
  CHECK(v.redis->url.host == "redis.internal");
  CHECK(v.redis->url.port == 6380);
  CHECK(v.redis->url.db == 2);
  CHECK(v.redis->url.username == "jwtgate");
  CHECK(v.redis->password_env == "REDIS_PW");
  CHECK(v.redis->key_prefix == "app:rev:");
  CHECK(v.redis->channel == "app-revocations");
  CHECK(v.redis->resync_interval == std::chrono::seconds(10));
  CHECK(v.redis->connect_timeout == std::chrono::milliseconds(500));
  CHECK(v.on_unavailable == Revocation::OnUnavailable::deny);
  CHECK(v.ready_requires_sync);
  REQUIRE(v.backchannel_logout);
  CHECK(v.backchannel_logout->entry_ttl == std::chrono::hours(12));
  CHECK(v.backchannel_logout->max_token_age == std::chrono::minutes(2));

  LoadResult d = load(kMinimal + "revocation:\n  redis: {url: redis://127.0.0.1}\n");
  REQUIRE_MESSAGE(d.config, d.diagnostics.format());
  CHECK(d.config->revocation->redis->url.port == 6379);
  CHECK(d.config->revocation->redis->key_prefix == "jwtgate:revoked:");
  CHECK(d.config->revocation->redis->channel == "jwtgate:revocations");
  CHECK(d.config->revocation->on_unavailable == Revocation::OnUnavailable::keep);
  CHECK_FALSE(d.config->revocation->backchannel_logout);
  CHECK_FALSE(load(kMinimal).config->revocation);
}

TEST_CASE("revocation: bad settings are errors that say what to do") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"revocation: {}\n", "names no source"},
      {"revocation:\n  redis: {url: \"redis://user:secret@host\"}\n", "must not hold a password"},
      {"revocation:\n  redis: {url: \"http://host\"}\n", "must start with redis://"},
      {"revocation:\n  redis: {url: \"redis://host:0\"}\n", "port"},
      {"revocation:\n  redis: {url: \"redis://host/99\"}\n", "database number"},
      {"revocation:\n  redis: {}\n", "missing required key"},
      {"revocation:\n  redis: {url: \"redis://h\", password_env: NOT_SET_ANYWHERE}\n", "is not set"},
      {"revocation:\n  redis: {url: \"redis://h\", password_env: REDIS_PW, password_file: /x}\n", "only one of"},
      {"revocation:\n  redis: {url: \"redis://h\", key_prefix: \"a*\"}\n", "SCAN"},
      {"revocation:\n  redis: {url: \"redis://h\", resync_interval: 10ms}\n", "from 1s to 24h"},
      {"revocation:\n  file: /x\n  on_unavailable: drop\n", "keep"},
      {"revocation:\n  file: /x\n  backchannel_logout: {providers: [nobody]}\n", "names no provider"},
      {"revocation:\n  file: /x\n  backchannel_logout: {max_token_age: 2h}\n", "from 10s to 1h"},
      {"revocation:\n  file: /x\n  frobnicate: 1\n", "unknown key"},
  };
  for (const auto& [yaml, want] : cases) {
    LoadResult r = load(kMinimal + yaml);
    CHECK_MESSAGE(!r.config, yaml);
    CHECK_MESSAGE(has(r, want), yaml, " -> ", r.diagnostics.format());
  }
}

TEST_CASE("redis URLs: hosts, ports, users and databases") {
  RedisUrl u;
  std::string why;
  REQUIRE(parse_redis_url("redis://[::1]:7000/3", u, why));
  CHECK(u.host == "::1");
  CHECK(u.port == 7000);
  CHECK(u.db == 3);
  CHECK_FALSE(u.tls);
  REQUIRE(parse_redis_url("rediss://redis", u, why));
  CHECK(u.tls);
  CHECK(u.port == 6379);
  for (const char* bad : {"redis://", "redis://:6379", "redis://h:x", "redis://h/x", "redis://h?db=1", "redis://a:b@h",
                          "redis://h h", "redis://[::1", "redis://h:70000"}) {
    CHECK_MESSAGE(!parse_redis_url(bad, u, why), bad);
    CHECK(why.find("secret") == std::string::npos);
  }
}

TEST_CASE("revocation refuses a clock skew above 5m: a revoked jti is kept only 5m past its token's exp") {
  std::string yaml = kMinimal;
  yaml.insert(yaml.find("    jwks:"), "    clock_skew: 10m\n");
  LoadResult r = load(yaml + "revocation: {file: /x}\n");
  CHECK_FALSE(r.config);
  CHECK(has(r, "clock_skew"));
  CHECK(load(yaml).config);  // without revocation, a warning only
}
