#include <doctest/doctest.h>

#include <map>

#include "config/loader.h"
#include "tests/config/fixtures.h"
#include "tests/support/process.h"

using namespace jwtgate::config;
using jwtgate::testing::TempDir;
using jwtgate::testing::kMinimal;
using jwtgate::testing::options;

namespace {

LoadResult load(const std::string& yaml, const LoadOptions& o = options()) { return load_config(yaml, "test.yaml", o); }

// All diagnostics as text, for matching.
std::string text(const LoadResult& r) { return r.diagnostics.format(); }

bool has(const LoadResult& r, const std::string& needle) { return text(r).find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("a minimal config loads with every default") {
  LoadResult r = load(kMinimal);
  REQUIRE_MESSAGE(r.config, text(r));
  const Config& c = *r.config;
  CHECK(c.listen.host == "0.0.0.0");
  CHECK(c.listen.port == 8080);
  CHECK(c.admin_listen.host == "127.0.0.1");
  CHECK(c.admin_listen.port == 9901);
  CHECK(c.upstream.host == "127.0.0.1");
  CHECK(c.upstream.port == 3000);
  CHECK(c.workers == 0);
  REQUIRE(c.providers.size() == 1);
  const Provider& p = c.providers[0];
  CHECK(p.name == "main");
  CHECK(p.issuer == "https://idp.example.com/");
  CHECK(p.audiences == std::vector<std::string>{"orders-api"});
  CHECK(p.algorithms == std::vector<jwtgate::core::Alg>{jwtgate::core::Alg::RS256});
  CHECK(p.algorithm_set.contains(jwtgate::core::Alg::RS256));
  CHECK_FALSE(p.algorithm_set.contains(jwtgate::core::Alg::HS256));
  CHECK(p.jwks.uri == "https://idp.example.com/jwks.json");
  CHECK(p.jwks.refresh_interval == std::chrono::minutes(5));
  CHECK(p.jwks.min_refresh_interval == std::chrono::seconds(30));
  CHECK(p.jwks.stale_max == std::chrono::hours(24));
  CHECK(p.jwks.timeout == std::chrono::seconds(5));
  CHECK(p.jwks.max_bytes == 1024 * 1024);
  CHECK(p.clock_skew == std::chrono::seconds(30));
  CHECK_FALSE(p.max_token_lifetime);
  CHECK(p.require_claims == std::vector<std::string>{"exp"});
  REQUIRE(p.token_sources.size() == 1);
  CHECK(p.token_sources[0].kind == TokenSource::Kind::header);
  CHECK(p.token_sources[0].name == "Authorization");
  CHECK(p.token_sources[0].prefix == "Bearer ");
  CHECK(p.claims_to_headers.empty());
  CHECK(p.forward_payload_header.empty());
  CHECK(p.forward_token);
  REQUIRE(c.routes.size() == 1);
  CHECK(c.routes[0].prefix == "/");
  CHECK(c.routes[0].auth == AuthMode::required);
  CHECK(c.limits.max_header_bytes == 16 * 1024);
  CHECK(c.limits.max_token_bytes == 8 * 1024);
  CHECK(c.limits.header_timeout == std::chrono::seconds(10));
  CHECK(c.limits.idle_timeout == std::chrono::seconds(60));
  CHECK(c.limits.upstream_timeout == std::chrono::seconds(30));
  CHECK(c.limits.max_connections == 10000);
  CHECK(c.limits.body_timeout == std::chrono::seconds(60));
  CHECK(c.limits.max_response_header_bytes == 64 * 1024);
  CHECK(c.limits.drain_timeout == std::chrono::seconds(30));
  CHECK_FALSE(c.routes_case_sensitive);
  CHECK_FALSE(c.forward_override_headers);
  CHECK(c.log.format == LogConfig::Format::json);
  CHECK(c.log.level == LogConfig::Level::info);
  CHECK(r.diagnostics.items().empty());
}

TEST_CASE("every key of the full schema is read") {
  TempDir dir;
  dir.write("secret", std::string(40, 's') + "\n");
  const std::string yaml = jwtgate::testing::full_schema_yaml(dir.file("secret"));
  LoadResult r = load(yaml);
  REQUIRE_MESSAGE(r.config, text(r));
  const Config& c = *r.config;
  CHECK(c.listen.port == 18080);
  CHECK(c.admin_listen.host == "::1");
  CHECK_FALSE(c.admin.config_endpoint);
  CHECK(c.admin.max_connections == 32);
  CHECK(c.admin.max_connections_per_peer == 4);
  CHECK(c.admin.head_timeout == std::chrono::seconds(2));
  CHECK(c.admin.idle_timeout == std::chrono::minutes(1));
  CHECK(c.upstream.host == "orders");
  CHECK(c.workers == 3);
  const Provider& p = c.providers[0];
  CHECK(p.audiences.size() == 2);
  CHECK(p.algorithms.size() == 3);
  CHECK(p.jwks.refresh_interval == std::chrono::minutes(10));
  CHECK(p.jwks.min_refresh_interval == std::chrono::minutes(1));
  CHECK(p.jwks.stale_max == std::chrono::hours(12));
  CHECK(p.jwks.timeout == std::chrono::seconds(3));
  CHECK(p.jwks.max_bytes == 512 * 1024);
  CHECK(p.jwks.cache_file == "/var/lib/jwtgate/main.json");
  CHECK(p.jwks.connect_timeout == std::chrono::seconds(1));
  CHECK(p.jwks.ca_dir == "/etc/ssl/certs");
  CHECK(p.clock_skew == std::chrono::seconds(10));
  CHECK(p.max_token_lifetime == std::chrono::minutes(90));
  CHECK(p.require_claims == std::vector<std::string>{"exp", "sub"});
  REQUIRE(p.token_sources.size() == 2);
  CHECK(p.token_sources[1].kind == TokenSource::Kind::cookie);
  CHECK(p.token_sources[1].name == "access_token");
  REQUIRE(p.claims_to_headers.size() == 2);
  CHECK(p.claims_to_headers[1].claim == "realm_access.roles");
  CHECK(p.claims_to_headers[1].header == "X-Jwt-Roles");
  CHECK(p.forward_payload_header == "X-Jwt-Payload");
  CHECK_FALSE(p.forward_token);
  const Provider& q = c.providers[1];
  CHECK(q.hmac_secret_file == dir.file("secret"));
  CHECK(q.hmac_secret_kid == "partner-1");
  REQUIRE(c.routes.size() == 4);
  CHECK(c.routes[0].auth == AuthMode::none);
  CHECK(c.routes[1].methods == std::vector<std::string>{"GET", "POST"});
  CHECK(c.routes[1].require_scopes == std::vector<std::string>{"admin"});
  REQUIRE(c.routes[1].require_claims.size() == 2);
  CHECK(c.routes[1].require_claims[0].values == std::vector<std::string>{"admin", "ops"});
  CHECK(c.routes[1].require_claims[1].values == std::vector<std::string>{"gold"});
  CHECK(c.routes[1].providers == std::vector<std::string>{"main"});
  CHECK(c.routes[2].auth == AuthMode::optional);
  REQUIRE(c.routes[2].upstream);
  CHECK(c.routes[2].upstream->host == "inventory");
  CHECK(c.routes[2].upstream->port == 3001);
  CHECK_FALSE(c.routes[3].upstream);  // the top-level upstream
  CHECK(c.limits.max_header_bytes == 32 * 1024);
  CHECK(c.limits.max_token_bytes == 4 * 1024);
  CHECK(c.limits.upstream_timeout == std::chrono::milliseconds(500));
  CHECK(c.limits.max_connections == 500);
  CHECK(c.limits.body_timeout == std::chrono::seconds(45));
  CHECK(c.limits.max_response_header_bytes == 128 * 1024);
  CHECK(c.limits.drain_timeout == std::chrono::seconds(8));
  CHECK_FALSE(c.http2.enabled);
  CHECK(c.http2.max_concurrent_streams == 50);
  CHECK(c.http2.stream_window_bytes == 128 * 1024);
  CHECK(c.http2.connection_window_bytes == 2 * 1024 * 1024);
  CHECK(c.http2.reset_burst == 200);
  CHECK(c.http2.resets_per_second == 10);
  CHECK(c.routes_case_sensitive);
  CHECK(c.forward_override_headers);
  CHECK(c.log.format == LogConfig::Format::text);
  CHECK(c.log.level == LogConfig::Level::debug);
  CHECK_FALSE(c.log.access_log);
  CHECK(c.log.access_log_sample == 0.25);
}

TEST_CASE("unknown keys are errors with a did-you-mean suggestion and a location") {
  std::string yaml = kMinimal;
  yaml.replace(yaml.find("audiences"), 9, "audience");
  LoadResult r = load(yaml);
  CHECK_FALSE(r.config);
  CHECK(has(r, "test.yaml:5:5: error: providers[0].audience: unknown key \"audience\"; did you mean \"audiences\"?"));
  LoadResult top = load(kMinimal + "lsiten: 0.0.0.0:80\n");
  CHECK(has(top, "lsiten: unknown key \"lsiten\"; did you mean \"listen\"?"));
  LoadResult far = load(kMinimal + "frobnicate: 1\n");
  CHECK(has(far, "unknown key \"frobnicate\"; expected one of: listen admin_listen upstream"));
}

TEST_CASE("all errors are reported at once") {
  const std::string yaml = R"(upstream: ftp://x
workers: many
providers:
  - name: Main!
    algorithms: [none]
    jwks: {uri: https://a/, refresh_interval: 5 minutes}
routes:
  - prefix: admin
    auth: maybe
limits: {max_connections: -1}
log: {level: loud}
)";
  LoadResult r = load(yaml);
  CHECK_FALSE(r.config);
  CHECK(r.diagnostics.count(Diagnostic::Severity::error) >= 8);
  for (const char* needle : {"upstream:", "workers:", "providers[0].name:", "providers[0].algorithms[0]:",
                             "providers[0].jwks.refresh_interval:", "routes[0].prefix:", "routes[0].auth:",
                             "limits.max_connections:", "log.level:"}) {
    CHECK_MESSAGE(has(r, needle), needle);
  }
}

TEST_CASE("wrong types name what was found and what is expected") {
  auto with = [](const std::string& from, const std::string& to) {
    std::string y = kMinimal;
    y.replace(y.find(from), from.size(), to);
    return load(y);
  };
  CHECK(has(with("audiences: [orders-api]", "audiences: orders-api"),
            "providers[0].audiences: expected a list, such as [orders-api], found \"orders-api\""));
  CHECK(has(with("algorithms: [RS256]", "algorithms: {a: 1}"), "expected a non-empty list of algorithms"));
  CHECK(has(with("name: main", "name: [main]"), "providers[0].name: expected a string, found a list"));
  CHECK(has(load(kMinimal + "log: json\n"), "log: expected a mapping of keys to values, found \"json\""));
  CHECK(has(load(kMinimal + "limits: {max_connections: lots}\n"), "expected a whole number from 1 to 1000000"));
}

TEST_CASE("durations and sizes are strict") {
  for (const char* bad : {"5", "5 m", "1h30m", "1.5s", "-1s", "5M"}) {
    CAPTURE(std::string(bad));
    LoadResult r = load(kMinimal + "limits: {idle_timeout: \"" + bad + "\"}\n");
    CHECK(has(r, "limits.idle_timeout: expected a duration"));
  }
  for (const char* bad : {"16kb", "16KB", "16", "1.5MiB"}) {
    CAPTURE(std::string(bad));
    CHECK(has(load(kMinimal + "limits: {max_header_bytes: \"" + std::string(bad) + "\"}\n"),
              "limits.max_header_bytes: expected a size"));
  }
  CHECK(has(load(kMinimal + "limits: {max_header_bytes: 8KiB, max_token_bytes: 16KiB}\n"),
            "cannot be larger than limits.max_header_bytes"));
  CHECK(has(load(kMinimal + "limits: {header_timeout: 0s}\n"), "must be longer than 0s"));
}

TEST_CASE("limits.drain_timeout is a duration longer than 0s and at most 1h") {
  for (const char* bad : {"0s", "61m", "2h"}) {
    CAPTURE(std::string(bad));
    CHECK(has(load(kMinimal + "limits: {drain_timeout: " + bad + "}\n"), "limits.drain_timeout: must be longer than 0s and at most 1h"));
  }
  CHECK(has(load(kMinimal + "limits: {drain_timeout: 10}\n"), "limits.drain_timeout: expected a duration"));
  CHECK(has(load(kMinimal + "limits: {drain_timout: 10s}\n"), "did you mean \"drain_timeout\"?"));
  LoadResult r = load(kMinimal + "limits: {drain_timeout: 1h}\n");
  REQUIRE(r.config);
  CHECK(r.config->limits.drain_timeout == std::chrono::hours(1));
  r = load(kMinimal + "limits: {drain_timeout: 500ms}\n");
  REQUIRE(r.config);
  CHECK(r.config->limits.drain_timeout == std::chrono::milliseconds(500));
}

TEST_CASE("missing required keys") {
  CHECK(has(load("providers: []\n"), "upstream: missing required key"));
  CHECK(has(load("upstream: http://127.0.0.1:3000\n"), "providers: missing required key"));
  std::string no_alg = kMinimal;
  no_alg.erase(no_alg.find("    algorithms: [RS256]\n"), 24);
  CHECK(has(load(no_alg), "providers[0].algorithms: missing required key: an explicit allowlist"));
  std::string no_name = kMinimal;
  no_name.replace(no_name.find("name: main"), 10, "issuer2: x");
  CHECK(has(load(no_name), "providers[0].name: missing required key"));
  std::string no_jwks = kMinimal.substr(0, kMinimal.find("    jwks:"));
  CHECK(has(load(no_jwks), "providers[0].jwks: missing key source"));
  CHECK(has(load(kMinimal + "routes:\n  - auth: none\n"), "routes[0].prefix: missing required key"));
}

TEST_CASE("empty files, empty providers and empty routes are errors") {
  CHECK(has(load(""), "the config file is empty"));
  CHECK(has(load("upstream: http://127.0.0.1:3000\nproviders: []\n"), "providers: empty"));
  CHECK(has(load(kMinimal + "routes: []\n"), "routes: empty"));
}

TEST_CASE("duplicate provider names, duplicate issuers and duplicate keys") {
  const std::string two = kMinimal + R"(  - name: main
    issuer: https://idp.example.com/
    algorithms: [ES256]
    jwks: {uri: https://idp.example.com/other.json}
)";
  LoadResult r = load(two);
  CHECK(has(r, "providers[1].name: duplicate provider name \"main\""));
  CHECK(has(r, "providers[1].issuer: another provider has the same issuer"));
  CHECK(has(load(kMinimal + "listen: 0.0.0.0:1\nlisten: 0.0.0.0:2\n"), "listen: duplicate key"));
}

TEST_CASE("several providers each need an issuer") {
  const std::string two = kMinimal + R"(  - name: second
    algorithms: [ES256]
    jwks: {uri: https://other.example.com/jwks.json}
)";
  CHECK(has(load(two), "providers[1].issuer: required when there are several providers"));
}

TEST_CASE("bad route prefixes are refused with the reason") {
  struct Case { const char* prefix; const char* reason; };
  for (Case c : {Case{"admin", "must start with /"}, Case{"/admin/", "must not end with /"},
                 Case{"/a//b", "empty segment"}, Case{"/a/../b", ". or .. segments"}, Case{"/a/./b", ". or .. segments"},
                 Case{"/a%2e", "must not contain '%'"}, Case{"/a?x", "must not contain '?'"},
                 Case{"/a;x", "must not contain ';'"}, Case{"/a b", "spaces"}}) {
    LoadResult r = load(kMinimal + "routes:\n  - prefix: \"" + c.prefix + "\"\n  - prefix: /\n");
    CHECK_MESSAGE(has(r, "error: routes[0].prefix: "), text(r));
    CHECK_MESSAGE(has(r, c.reason), text(r));
  }
}

TEST_CASE("routes[].upstream takes the top-level upstream's syntax; errors name the route's key") {
  LoadResult ok = load(kMinimal + "routes:\n  - prefix: /a\n    upstream: http://orders:3000\n  - prefix: /\n");
  REQUIRE_MESSAGE(ok.config, text(ok));
  CHECK(ok.diagnostics.count(Diagnostic::Severity::warning) == 0);
  REQUIRE(ok.config->routes[0].upstream);
  CHECK(ok.config->routes[0].upstream->host == "orders");
  CHECK(ok.config->routes[0].upstream->port == 3000);
  CHECK(ok.config->routes[0].upstream->text == "http://orders:3000");
  CHECK_FALSE(ok.config->routes[1].upstream);
  // The same as the top-level one: allowed, nothing to warn about.
  LoadResult same = load(kMinimal + "routes:\n  - prefix: /\n    upstream: http://127.0.0.1:3000\n");
  REQUIRE_MESSAGE(same.config, text(same));
  CHECK(same.diagnostics.count(Diagnostic::Severity::warning) == 0);

  struct Case { const char* value; const char* reason; };
  for (Case c : {Case{"ftp://orders", "expected an http://, https:// or h2c:// URL"}, Case{"orders:3000", "expected an http://, https:// or h2c:// URL"},
                 Case{"http://orders:3000/v1", "paths, queries and credentials are not supported"},
                 Case{"http://orders:99999", "port from 1 to 65535"}, Case{"http://bad_host", "is not a host name"},
                 Case{"\"\"", "expected an http://, https:// or h2c:// URL"}, Case{"{url: http://orders}", "routes[1].upstream: expected"}}) {
    LoadResult r = load(kMinimal + "routes:\n  - prefix: /a\n  - prefix: /\n    upstream: " + c.value + "\n");
    CHECK_FALSE(r.config);
    CHECK_MESSAGE(has(r, "test.yaml:12:15: error: routes[1].upstream: "), text(r));
    CHECK_MESSAGE(has(r, c.reason), text(r));
  }
  CHECK(has(load(kMinimal + "routes:\n  - prefix: /\n    upstreem: http://orders\n"), "did you mean \"upstream\"?"));
}

TEST_CASE("routes that contradict themselves or each other are refused") {
  CHECK(has(load(kMinimal + "routes:\n  - prefix: /\n    auth: none\n    require_scopes: [admin]\n"),
            "routes[0].auth: require_scopes and require_claims need a verified token"));
  CHECK(has(load(kMinimal + "routes:\n  - prefix: /\n    auth: optional\n    require_claims: {role: admin}\n"),
            "they imply auth: required"));
  CHECK(has(load(kMinimal + "routes:\n  - prefix: /a\n  - prefix: /a\n    methods: [GET]\n  - prefix: /\n"),
            "routes[1]: same prefix \"/a\" and methods as routes[0]"));
  LoadResult disjoint = load(kMinimal + "routes:\n  - prefix: /a\n    methods: [POST]\n  - prefix: /a\n    methods: [GET]\n  - prefix: /\n");
  CHECK_MESSAGE(disjoint.config, text(disjoint));
  CHECK(has(load(kMinimal + "routes:\n  - prefix: /\n    providers: [nobody]\n"), "no provider is named \"nobody\""));
  CHECK(has(load(kMinimal + "routes:\n  - prefix: /\n    methods: [get]\n"), "methods are upper-case"));
}

TEST_CASE("routes_case_sensitive, forward_override_headers and limits.body_timeout are read and type-checked") {
  LoadResult on = load(kMinimal + "routes_case_sensitive: true\nforward_override_headers: true\nlimits: {body_timeout: 90s}\n");
  REQUIRE_MESSAGE(on.config, text(on));
  CHECK(on.config->routes_case_sensitive);
  CHECK(on.config->forward_override_headers);
  CHECK(on.config->limits.body_timeout == std::chrono::seconds(90));
  LoadResult off = load(kMinimal + "routes_case_sensitive: false\nforward_override_headers: false\nlimits: {body_timeout: 500ms}\n");
  REQUIRE_MESSAGE(off.config, text(off));
  CHECK_FALSE(off.config->routes_case_sensitive);
  CHECK_FALSE(off.config->forward_override_headers);
  CHECK(on.config->watch_config);  // the default
  LoadResult unwatched = load(kMinimal + "watch_config: false\n");
  REQUIRE(unwatched.config);
  CHECK_FALSE(unwatched.config->watch_config);
  CHECK(has(load(kMinimal + "watch_config: sometimes\n"), "watch_config"));
  CHECK(off.config->limits.body_timeout == std::chrono::milliseconds(500));
  CHECK(off.diagnostics.items().empty());

  LoadResult maybe = load(kMinimal + "routes_case_sensitive: maybe\n");
  CHECK_FALSE(maybe.config);
  CHECK(has(maybe, "test.yaml:9:24: error: routes_case_sensitive: expected true or false, found \"maybe\""));
  CHECK(has(load(kMinimal + "routes_case_sensitive: yes\n"), "error: routes_case_sensitive: expected true or false, found \"yes\""));
  CHECK(has(load(kMinimal + "forward_override_headers: [true]\n"),
            "error: forward_override_headers: expected true or false, found a list"));
  CHECK(has(load(kMinimal + "forward_override_headers: 1\n"), "error: forward_override_headers: expected true or false, found \"1\""));
  CHECK(has(load(kMinimal + "limits: {body_timeout: 0s}\n"), "error: limits.body_timeout: must be longer than 0s"));
  CHECK(has(load(kMinimal + "limits: {max_response_header_bytes: 512B}\n"),
            "error: limits.max_response_header_bytes: must be from 1KiB to 1MiB"));
  CHECK(has(load(kMinimal + "limits: {max_response_header_bytes: 2MiB}\n"),
            "error: limits.max_response_header_bytes: must be from 1KiB to 1MiB"));
  for (const char* bad : {"banana", "5", "1.5s", "-1s", "1m30s"}) {
    CAPTURE(std::string(bad));
    LoadResult r = load(kMinimal + "limits: {body_timeout: \"" + bad + "\"}\n");
    CHECK_FALSE(r.config);
    CHECK(has(r, "error: limits.body_timeout: expected a duration such as 500ms, 30s, 5m or 1h"));
  }

  // Misspellings are suggested, and the new keys do not take suggestions from the old ones.
  CHECK(has(load(kMinimal + "route_case_sensitive: true\n"),
            "route_case_sensitive: unknown key \"route_case_sensitive\"; did you mean \"routes_case_sensitive\"?"));
  CHECK(has(load(kMinimal + "forward_overide_headers: true\n"), "did you mean \"forward_override_headers\"?"));
  CHECK(has(load(kMinimal + "limits: {body_timout: 5s}\n"), "did you mean \"body_timeout\"?"));
  CHECK(has(load(kMinimal + "route: []\n"), "did you mean \"routes\"?"));
}

TEST_CASE("with case-insensitive routes, prefixes differing only in case are warned about or refused") {
  const std::string disjoint = kMinimal + "routes:\n  - prefix: /admin\n    methods: [GET]\n  - prefix: /Admin\n"
                                          "    methods: [POST]\n  - prefix: /\n";
  LoadResult w = load(disjoint);
  REQUIRE_MESSAGE(w.config, text(w));
  CHECK(has(w, "test.yaml:12:5: warning: routes[1]: prefix \"/Admin\" differs from routes[0]'s \"/admin\" only in case: "
               "with case-insensitive matching (routes_case_sensitive: false) they cover the same paths; write them the "
               "same, or set routes_case_sensitive: true"));
  CHECK(w.diagnostics.count(Diagnostic::Severity::warning) == 1);
  CHECK(has(load(disjoint + "routes_case_sensitive: false\n"), "warning: routes[1]: prefix \"/Admin\" differs"));
  // routes_case_sensitive is honoured wherever it appears, here after the routes.
  LoadResult sensitive = load(disjoint + "routes_case_sensitive: true\n");
  REQUIRE_MESSAGE(sensitive.config, text(sensitive));
  CHECK(sensitive.diagnostics.items().empty());
  LoadResult before = load("routes_case_sensitive: true\n" + disjoint);
  REQUIRE_MESSAGE(before.config, text(before));
  CHECK(before.diagnostics.items().empty());

  // Overlapping methods: as ambiguous as the same prefix written the same way.
  const std::string overlap = kMinimal + "routes:\n  - prefix: /api/Orders\n    methods: [GET, POST]\n  - prefix: /\n"
                                         "  - prefix: /API/orders\n    methods: [POST]\n";
  LoadResult e = load(overlap);
  CHECK_FALSE(e.config);
  CHECK(has(e, "test.yaml:13:5: error: routes[2]: prefix \"/API/orders\" differs from routes[0]'s \"/api/Orders\" only in "
               "case, and their methods overlap: with case-insensitive matching (routes_case_sensitive: false) they cover "
               "the same paths, so which one applies would be ambiguous; merge them, or set routes_case_sensitive: true"));
  CHECK_FALSE(has(e, "warning: routes[2]"));
  CHECK(has(load(kMinimal + "routes:\n  - prefix: /a\n  - prefix: /A\n    methods: [GET]\n  - prefix: /\n"),
            "error: routes[1]: prefix \"/A\" differs from routes[0]'s \"/a\" only in case, and their methods overlap"));
  LoadResult allowed = load(overlap + "routes_case_sensitive: true\n");
  REQUIRE_MESSAGE(allowed.config, text(allowed));
  CHECK(allowed.diagnostics.items().empty());
  // An invalid routes_case_sensitive is its own error; the routes are not judged by a guess.
  LoadResult invalid = load(overlap + "routes_case_sensitive: maybe\n");
  CHECK_FALSE(invalid.config);
  CHECK(invalid.diagnostics.count(Diagnostic::Severity::error) == 1);
  CHECK(has(invalid, "error: routes_case_sensitive: expected true or false"));
  // Prefixes that differ in more than case, or only within a longer prefix, are unrelated.
  LoadResult unrelated = load(kMinimal + "routes:\n  - prefix: /admin\n  - prefix: /Admin/x\n  - prefix: /admins\n  - prefix: /\n");
  REQUIRE_MESSAGE(unrelated.config, text(unrelated));
  CHECK(unrelated.diagnostics.items().empty());
}

TEST_CASE("forward_override_headers: true is warned about") {
  LoadResult r = load(kMinimal + "forward_override_headers: true\n");
  REQUIRE_MESSAGE(r.config, text(r));
  CHECK(r.config->forward_override_headers);
  CHECK(has(r, "test.yaml:9:27: warning: forward_override_headers: X-Original-URL, X-Rewrite-URL, X-HTTP-Method-Override, "
               "X-HTTP-Method and X-Method-Override will reach the upstream and let frameworks that honor them route by a "
               "path or method other than the one jwtgate authorized; leave this false unless the upstream ignores them"));
  CHECK(r.diagnostics.count(Diagnostic::Severity::warning) == 1);
  LoadResult off = load(kMinimal + "forward_override_headers: false\n");
  REQUIRE_MESSAGE(off.config, text(off));
  CHECK(off.diagnostics.items().empty());
}

TEST_CASE("admin: section: listen, config_endpoint and connection bounds, with admin_listen still accepted") {
  LoadResult defaults = load(kMinimal);
  REQUIRE_MESSAGE(defaults.config, text(defaults));
  const AdminConfig& d = defaults.config->admin;
  CHECK(d.config_endpoint);
  CHECK(d.max_connections == 64);
  CHECK(d.max_connections_per_peer == 8);
  CHECK(d.head_timeout == std::chrono::seconds(5));
  CHECK(d.idle_timeout == std::chrono::seconds(30));

  LoadResult r = load(kMinimal + "admin:\n  listen: 0.0.0.0:9902\n  config_endpoint: false\n  max_connections: 100\n"
                                 "  max_connections_per_peer: 4\n  head_timeout: 2s\n  idle_timeout: 1m\n");
  REQUIRE_MESSAGE(r.config, text(r));
  CHECK(r.diagnostics.items().empty());  // off loopback, but without /config
  const Config& c = *r.config;
  CHECK(c.admin_listen.host == "0.0.0.0");
  CHECK(c.admin_listen.port == 9902);
  CHECK_FALSE(c.admin.config_endpoint);
  CHECK(c.admin.max_connections == 100);
  CHECK(c.admin.max_connections_per_peer == 4);
  CHECK(c.admin.head_timeout == std::chrono::seconds(2));
  CHECK(c.admin.idle_timeout == std::chrono::minutes(1));

  // The top-level spelling works beside the section, but the address is set once.
  LoadResult old = load(kMinimal + "admin_listen: 127.0.0.1:9903\nadmin: {config_endpoint: false}\n");
  REQUIRE_MESSAGE(old.config, text(old));
  CHECK(old.config->admin_listen.port == 9903);
  CHECK_FALSE(old.config->admin.config_endpoint);
  LoadResult both = load(kMinimal + "admin_listen: 127.0.0.1:9903\nadmin: {listen: 127.0.0.1:9904}\n");
  CHECK_FALSE(both.config);
  CHECK(has(both, "test.yaml:10:17: error: admin.listen: the admin listener is also set by the top-level admin_listen; "
                  "keep one of the two (admin.listen is the newer spelling)"));

  CHECK(has(load(kMinimal + "admin: {config_endpoints: false}\n"),
            "admin.config_endpoints: unknown key \"config_endpoints\"; did you mean \"config_endpoint\"?"));
  CHECK(has(load(kMinimal + "admin: {config_endpoint: no}\n"), "error: admin.config_endpoint: expected true or false"));
  CHECK(has(load(kMinimal + "admin: {max_connections: 0}\n"), "error: admin.max_connections:"));
  CHECK(has(load(kMinimal + "admin: {max_connections: 4, max_connections_per_peer: 5}\n"),
            "error: admin.max_connections_per_peer: cannot be larger than admin.max_connections (4)"));
  CHECK(has(load(kMinimal + "admin: {head_timeout: 0s}\n"), "error: admin.head_timeout: must be longer than 0s"));
  CHECK(has(load(kMinimal + "admin: {idle_timeout: 0s}\n"), "error: admin.idle_timeout: must be longer than 0s"));
  CHECK(has(load(kMinimal + "admin: {listen: nowhere}\n"), "error: admin.listen:"));
  CHECK(has(load(kMinimal + "listen: 0.0.0.0:9901\nadmin: {listen: 127.0.0.1:9901}\n"),
            "error: admin.listen: must not share a port with listen (0.0.0.0:9901)"));
  CHECK(has(load(kMinimal + "admin: []\n"), "error: admin:"));
}

TEST_CASE("/config served off loopback is warned about, wherever the admin listener is set") {
  const std::string warning = "is reachable beyond this host and serves /config, which shows the whole policy";
  LoadResult top = load(kMinimal + "admin_listen: 0.0.0.0:9901\n");
  REQUIRE_MESSAGE(top.config, text(top));
  CHECK(has(top, "test.yaml:9:15: warning: admin_listen: the admin listener on 0.0.0.0:9901 " + warning));
  CHECK(has(top, "set admin.config_endpoint: false, or bind the admin listener to 127.0.0.1"));
  CHECK(top.diagnostics.count(Diagnostic::Severity::warning) == 1);
  LoadResult section = load(kMinimal + "admin:\n  listen: \"[::]:9901\"\n");
  CHECK(has(section, "test.yaml:10:11: warning: admin.listen: the admin listener on [::]:9901 " + warning));
  CHECK(has(load(kMinimal + "admin: {listen: 10.0.0.5:9901, config_endpoint: true}\n"), warning));
  for (const std::string quiet : {"admin_listen: 0.0.0.0:9901\nadmin: {config_endpoint: false}\n",
                                  "admin_listen: 127.0.0.2:9901\n", "admin: {listen: \"[::1]:9901\"}\n",
                                  "admin: {listen: localhost:9901}\n", ""}) {
    CAPTURE(quiet);
    LoadResult r = load(kMinimal + quiet);
    REQUIRE_MESSAGE(r.config, text(r));
    CHECK(r.diagnostics.items().empty());
  }
}

TEST_CASE("insecure settings are refused or warned about") {
  // none is refused outright, in any spelling.
  std::string none = kMinimal;
  none.replace(none.find("[RS256]"), 7, "[RS256, None]");
  CHECK(has(load(none), "\"None\" means unsigned tokens"));
  // HS beside public-key algorithms: a warning.
  TempDir dir;
  dir.write("secret", std::string(32, 'k'));
  std::string mixed = kMinimal;
  mixed.replace(mixed.find("[RS256]"), 7, "[RS256, HS256]\n    hmac_secret_file: " + dir.file("secret"));
  LoadResult m = load(mixed);
  CHECK_MESSAGE(m.config, text(m));
  CHECK(has(m, "warning: providers[0].algorithms: HMAC and public-key algorithms in one provider"));
  // Plain http JWKS outside loopback: a warning; on loopback: nothing.
  std::string http = kMinimal;
  http.replace(http.find("https://idp.example.com/jwks.json"), 33, "http://idp.example.com/jwks.json");
  LoadResult h = load(http);
  CHECK(h.config);
  CHECK(has(h, "warning: providers[0].jwks.uri: plain http outside loopback"));
  std::string local = kMinimal;
  local.replace(local.find("https://idp.example.com/jwks.json"), 33, "http://127.0.0.1:8081/jwks.json");
  CHECK_FALSE(has(load(local), "plain http"));
  // No exp required: a warning.
  CHECK(has(load(kMinimal + "    require_claims: [sub]\n"), "warning: providers[0].require_claims: exp is not required"));
  // Token from a query parameter: a warning.
  CHECK(has(load(kMinimal + "    token_sources: [{query: access_token}]\n"),
            "warning: providers[0].token_sources[0].query: tokens in URLs"));
  // Routes without a catch-all: a warning.
  CHECK(has(load(kMinimal + "routes:\n  - prefix: /api\n"), "warning: routes: no catch-all route"));
  // A secret written in the YAML itself: refused.
  CHECK(has(load(kMinimal + "    hmac_secret: hunter2hunter2hunter2hunter2hunter2\n"),
            "secrets are never written in the config file"));
}

TEST_CASE("HMAC secrets are checked from their file or variable, and never echoed") {
  TempDir dir;
  dir.write("short", "tooshort");
  dir.write("pem", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + std::string(40, 'A') + "\n-----END PUBLIC KEY-----\n");
  auto hs = [&](const std::string& source) {
    std::string y = kMinimal;
    y.replace(y.find("    algorithms: [RS256]\n"), 24, "    algorithms: [HS256]\n" + source);
    y = y.substr(0, y.find("    jwks:"));
    return y;
  };
  LoadResult short_file = load(hs("    hmac_secret_file: " + dir.file("short") + "\n"));
  CHECK(has(short_file, "HMAC secret is 8 bytes; at least 32 are required"));
  CHECK_FALSE(has(short_file, "tooshort"));
  CHECK(has(load(hs("    hmac_secret_file: " + dir.file("pem") + "\n")), "public key"));
  CHECK(has(load(hs("    hmac_secret_file: " + dir.file("missing") + "\n")), "cannot read"));
  CHECK(has(load(hs("    hmac_secret_env: JWT_SECRET\n")), "environment variable JWT_SECRET is not set"));
  LoadResult ok = load(hs("    hmac_secret_env: JWT_SECRET\n"), options({{"JWT_SECRET", std::string(32, 'x')}}));
  CHECK_MESSAGE(ok.config, text(ok));
  CHECK(has(load(hs("    hmac_secret_env: A\n    hmac_secret_file: /x\n")), "set only one of"));
  // A secret for a provider with no HS algorithm is a contradiction.
  std::string unused = kMinimal + "    hmac_secret_env: JWT_SECRET\n";
  CHECK(has(load(unused, options({{"JWT_SECRET", std::string(32, 'x')}})), "no HS256/HS384/HS512"));
}

TEST_CASE("${VAR} expands from the environment in string values; an unset variable is an error") {
  std::string yaml = kMinimal;
  yaml.replace(yaml.find("https://idp.example.com/jwks.json"), 33, "https://${IDP_HOST}/jwks.json");
  yaml.replace(yaml.find("http://127.0.0.1:3000"), 21, "http://127.0.0.1:${PORT}");
  LoadResult ok = load(yaml, options({{"IDP_HOST", "login.example.org"}, {"PORT", "4000"}}));
  REQUIRE_MESSAGE(ok.config, text(ok));
  CHECK(ok.config->providers[0].jwks.uri == "https://login.example.org/jwks.json");
  CHECK(ok.config->upstream.port == 4000);
  LoadResult missing = load(yaml, options({{"PORT", "4000"}}));
  CHECK_FALSE(missing.config);
  CHECK(has(missing, "providers[0].jwks.uri: environment variable IDP_HOST is not set"));
  std::string dollars = kMinimal;
  dollars.replace(dollars.find("name: main"), 10, "name: main\n    issuer: \"a$$b${X}\"");
  dollars.erase(dollars.find("    issuer: https://idp.example.com/\n"), 37);
  LoadResult d = load(dollars, options({{"X", "c"}}));
  REQUIRE_MESSAGE(d.config, text(d));
  CHECK(d.config->providers[0].issuer == "a$bc");
  CHECK(has(load(kMinimal + "listen: \"${UNTERMINATED\"\n"), "unterminated ${"));
}

TEST_CASE("listen addresses and the upstream URL are validated") {
  for (const char* bad : {"8080", "localhost", "0.0.0.0:0", "0.0.0.0:70000", "example.com:80", "::1:80", "0.0.0.0:http"}) {
    CAPTURE(std::string(bad));
    CHECK(has(load(kMinimal + "listen: \"" + bad + "\"\n"), "error: listen:"));
  }
  for (const char* bad : {"ftp://a:1", "https://a:0", "https://", "127.0.0.1:3000", "http://a:1/path", "http://user@a:1", "http://a:99999", "http://:80"}) {
    CAPTURE(std::string(bad));
    std::string y = kMinimal;
    y.replace(y.find("http://127.0.0.1:3000"), 21, bad);
    CHECK(has(load(y), "error: upstream:"));
  }
  std::string v6 = kMinimal;
  v6.replace(v6.find("http://127.0.0.1:3000"), 21, "http://[::1]:3000");
  LoadResult r = load(v6 + "listen: \"[::]:8080\"\n");
  REQUIRE_MESSAGE(r.config, text(r));
  CHECK(r.config->upstream.host == "::1");
  CHECK(has(load(kMinimal + "listen: 127.0.0.1:9901\n"), "admin_listen: must not share a port with listen"));
}

TEST_CASE("claim headers must be valid, unreserved and unique") {
  CHECK(has(load(kMinimal + "    claims_to_headers: {sub: \"X Sub\"}\n"), "not a valid HTTP header name"));
  CHECK(has(load(kMinimal + "    claims_to_headers: {sub: Host}\n"), "\"Host\" is a header jwtgate or the HTTP framing controls"));
  // Headers jwtgate sets itself, in any spelling a CGI-style upstream reads as the same name.
  for (const char* name : {"Client-Cert", "client_cert_chain", "X_Forwarded_Proto", "Forwarded", "X-Real-IP", "x.forwarded.for"}) {
    CAPTURE(name);
    CHECK(has(load(kMinimal + "    claims_to_headers: {sub: " + name + "}\n"),
              std::string("\"") + name + "\" is a header jwtgate or the HTTP framing controls"));
  }
  CHECK(has(load(kMinimal + "    claims_to_headers: {sub: X-A, email: x-a}\n"), "header \"x-a\" is already set"));
  CHECK(has(load(kMinimal + "    forward_payload_header: X-A\n    claims_to_headers: {sub: X-A}\n"), "already set"));
  CHECK(has(load(kMinimal + "    claims_to_headers: {sub: Authorization}\n"), "both a token source and a claim header"));
}

TEST_CASE("token sources take exactly one kind, and prefix only with a header") {
  CHECK(has(load(kMinimal + "    token_sources: [{header: A, cookie: b}]\n"), "set exactly one of header, cookie or query"));
  CHECK(has(load(kMinimal + "    token_sources: [{cookie: b, prefix: x}]\n"), "only a header source takes a prefix"));
  CHECK(has(load(kMinimal + "    token_sources: [{header: Authorization}, {header: authorization}]\n"), "listed twice"));
  CHECK(has(load(kMinimal + "    token_sources: []\n"), "expected a non-empty list"));
}

TEST_CASE("jwks takes exactly one source and consistent intervals") {
  std::string both = kMinimal;
  both.replace(both.find("      uri:"), 0, "      file: /etc/jwks.json\n");
  CHECK(has(load(both), "set exactly one of uri, file or discovery"));
  std::string intervals = kMinimal + "      refresh_interval: 1m\n      min_refresh_interval: 5m\n";
  CHECK(has(load(intervals), "min_refresh_interval: cannot be longer than refresh_interval"));
  std::string disc = kMinimal;
  disc.replace(disc.find("      uri: https://idp.example.com/jwks.json"), 44, "      discovery: true");
  LoadResult d = load(disc);
  REQUIRE_MESSAGE(d.config, text(d));
  CHECK(d.config->providers[0].jwks.discovery);
  std::string missing_file = kMinimal;
  missing_file.replace(missing_file.find("      uri: https://idp.example.com/jwks.json"), 44, "      file: /nonexistent/jwks.json");
  LoadResult f = load(missing_file);
  CHECK(f.config);
  CHECK(has(f, "warning: providers[0].jwks.file: \"/nonexistent/jwks.json\" does not exist (yet)"));
}

TEST_CASE("an invalid file never yields a config, however much of it was fine") {
  LoadResult r = load(kMinimal + "log: {level: verbose}\n");
  CHECK_FALSE(r.config);
  CHECK(r.diagnostics.has_errors());
  LoadResult yaml_error = load(kMinimal + "routes: [\n");
  CHECK_FALSE(yaml_error.config);
  CHECK(has(yaml_error, "not valid YAML"));
  // Warnings alone do not prevent loading.
  LoadResult warned = load(kMinimal + "routes:\n  - prefix: /api\n");
  CHECK(warned.config);
  CHECK_FALSE(warned.diagnostics.has_errors());
}

TEST_CASE("workers is auto or a bounded number") {
  CHECK(load(kMinimal + "workers: auto\n").config->workers == 0);
  CHECK(load(kMinimal + "workers: 4\n").config->workers == 4);
  CHECK(has(load(kMinimal + "workers: 0\n"), "workers: expected a whole number from 1 to 256"));
  CHECK(has(load(kMinimal + "workers: automatic\n"), "workers: expected auto or a number"));
}

TEST_CASE("a config file that cannot be read is reported with its path") {
  LoadResult r = load_config_file("/nonexistent/jwtgate.yaml");
  CHECK_FALSE(r.config);
  CHECK(has(r, "/nonexistent/jwtgate.yaml: error: cannot read the config file"));
}

TEST_CASE("JWKS fetch settings: connect_timeout, ca_dir and source-only keys") {
  const std::string head = "upstream: http://127.0.0.1:3000\nproviders:\n  - name: main\n    issuer: https://i/\n"
                           "    audiences: [api]\n    algorithms: [ES256]\n    jwks:\n";
  auto r = load(head + "      uri: https://i/keys\n      connect_timeout: 0s\n      ca_dir: /nonexistent-dir\n");
  CHECK_FALSE(r.config);
  CHECK(has(r, "jwks.connect_timeout"));
  CHECK(has(r, "must be longer than 0s"));
  CHECK(has(r, "\"/nonexistent-dir\" is not a directory"));

  auto w = load(head + "      uri: https://i/keys\n      timeout: 2s\n      connect_timeout: 5s\n");
  REQUIRE(w.config);
  CHECK(has(w, "longer than timeout"));

  auto f = load(head + "      file: /etc/hostname\n      cache_file: /tmp/x.json\n");
  REQUIRE(f.config);
  CHECK(has(f, "jwks.cache_file"));
  CHECK(has(f, "only used for uri or discovery fetches"));
}

TEST_CASE("the plain-http warning reads the host libcurl connects to") {
  const std::string head = "upstream: http://127.0.0.1:3000\nproviders:\n  - name: main\n    issuer: https://i/\n"
                           "    audiences: [api]\n    algorithms: [ES256]\n    jwks:\n      uri: ";
  // Userinfo that looks like a loopback host:port: the fetch goes to 10.1.2.3.
  for (const std::string off : {"http://127.0.0.1:80@10.1.2.3/jwks.json", "http://localhost@10.1.2.3/", "http://[::1]@10.1.2.3/",
                          "HTTP://10.1.2.3/jwks.json", "http://127.0.0.1.nip.io/jwks.json", "http://%31%30.0.0.1/",
                          "http://[fe80::1]/", "http://localhost./jwks.json"}) {
    CAPTURE(off);
    LoadResult r = load(head + off + "\n");
    REQUIRE_MESSAGE(r.config, text(r));
    CHECK(has(r, "warning: providers[0].jwks.uri: plain http outside loopback"));
  }
  CHECK(has(load(head + "http://127.0.0.1:80@10.1.2.3/jwks.json\n"), "(host 10.1.2.3)"));
  for (const std::string local : {"http://127.0.0.1:8081/jwks.json", "http://[::1]", "http://[::1]:8080/jwks.json",
                            "http://localhost/jwks.json", "http://LOCALHOST:8080/", "HTTP://127.0.0.1/", "http://0x7f.1/",
                            "http://%31%32%37.0.0.1/", "http://10.1.2.3@127.0.0.1/jwks.json"}) {
    CAPTURE(local);
    LoadResult r = load(head + local + "\n");
    REQUIRE_MESSAGE(r.config, text(r));
    CHECK_FALSE(has(r, "plain http"));
  }
  // An uppercase https scheme is https to libcurl, so it is accepted.
  CHECK(load(head + "HTTPS://idp.example.com/jwks.json\n").config);
  for (const std::string bad : {"ftp://idp.example.com/jwks.json", "idp.example.com/jwks.json", "http://idp:99999/jwks.json"}) {
    CAPTURE(bad);
    LoadResult r = load(head + bad + "\n");
    CHECK_FALSE(r.config);
    CHECK(has(r, "error: providers[0].jwks.uri: expected an https:// URL"));
  }
  // Discovery fetches from the issuer's URL: the same warning.
  const std::string disc = "upstream: http://127.0.0.1:3000\nproviders:\n  - name: main\n    audiences: [api]\n"
                           "    algorithms: [ES256]\n    jwks: {discovery: true}\n    issuer: ";
  CHECK(has(load(disc + "http://127.0.0.1:80@10.1.2.3/\n"), "warning: providers[0].jwks.discovery: plain http outside loopback"));
  CHECK_FALSE(has(load(disc + "http://127.0.0.1:8080/\n"), "plain http"));
  CHECK_FALSE(has(load(disc + "https://idp.example.com/\n"), "plain http"));
  // An issuer the fetcher could not use is an error at load, not an endless retry.
  CHECK(has(load(disc + "idp.example.com\n"), "error: providers[0].jwks.discovery: OIDC discovery needs an https:// issuer URL"));
  CHECK(has(load(disc + "urn:example:idp\n"), "error: providers[0].jwks.discovery: OIDC discovery needs an https:// issuer URL"));
}

TEST_CASE("jwks.proxy: env (the default), none, or an http, https, socks5 or socks5h proxy URL") {
  const std::string head = "upstream: http://127.0.0.1:3000\nproviders:\n  - name: main\n    issuer: https://i/\n"
                           "    audiences: [api]\n    algorithms: [ES256]\n    jwks:\n      uri: https://i/keys\n";
  LoadResult d = load(head);
  REQUIRE(d.config);
  CHECK(d.config->providers[0].jwks.proxy == JwksConfig::Proxy::env);
  LoadResult e = load(head + "      proxy: env\n");
  REQUIRE(e.config);
  CHECK(e.config->providers[0].jwks.proxy == JwksConfig::Proxy::env);
  LoadResult n = load(head + "      proxy: none\n");
  REQUIRE(n.config);
  CHECK(n.config->providers[0].jwks.proxy == JwksConfig::Proxy::none);
  for (const std::string url : {"http://proxy.internal:3128", "https://u:p@proxy.internal:3129", "socks5://127.0.0.1:1080",
                          "socks5h://proxy:1080", "HTTP://proxy:3128"}) {
    CAPTURE(url);
    LoadResult r = load(head + "      proxy: " + url + "\n");
    REQUIRE_MESSAGE(r.config, text(r));
    CHECK(r.config->providers[0].jwks.proxy == JwksConfig::Proxy::url);
    CHECK(r.config->providers[0].jwks.proxy_url == url);
    CHECK(r.diagnostics.items().empty());
  }
  for (const std::string bad : {"ftp://proxy:21", "socks4://proxy:1080", "proxy.internal:3128", "Env", "http://proxy:99999"}) {
    CAPTURE(bad);
    LoadResult r = load(head + "      proxy: " + bad + "\n");
    CHECK_FALSE(r.config);
    CHECK(has(r, "error: providers[0].jwks.proxy:"));
  }
  // Credentials in the proxy URL never reach a message.
  LoadResult creds = load(head + "      proxy: ftp://user:pr0xy-pass@proxy:21\n");
  CHECK_FALSE(has(creds, "pr0xy-pass"));
  CHECK(has(load(head + "      prox: none\n"), "did you mean \"proxy\"?"));
  // A plain-http uri is never proxied; a file is never fetched.
  const std::string http = "upstream: http://127.0.0.1:3000\nproviders:\n  - name: main\n    issuer: https://i/\n"
                           "    audiences: [api]\n    algorithms: [ES256]\n    jwks:\n      uri: http://127.0.0.1:8080/keys\n";
  CHECK(has(load(http + "      proxy: http://proxy:3128\n"), "warning: providers[0].jwks.proxy: jwks.uri is plain http, which is never fetched through a proxy"));
  CHECK_FALSE(has(load(http + "      proxy: none\n"), "warning"));
  const std::string file = "upstream: http://127.0.0.1:3000\nproviders:\n  - name: main\n    issuer: https://i/\n"
                           "    audiences: [api]\n    algorithms: [ES256]\n    jwks:\n      file: /etc/hostname\n";
  CHECK(has(load(file + "      proxy: none\n"), "warning: providers[0].jwks.proxy: only used for uri or discovery fetches"));
}

TEST_CASE("development: alone is the development default; beside any other key it is an error") {
  LoadResult r = load("development:\n");
  REQUIRE(r.config);
  REQUIRE(r.config->development);
  CHECK(r.config->development->listen.text == "127.0.0.1:8080");
  CHECK_FALSE(r.config->development->upstream);
  CHECK(has(r, "warning: development: runs the development default"));
  r = load("development: {listen: 0.0.0.0:8080, upstream: http://app:3000}\n");
  REQUIRE(r.config);
  CHECK(r.config->development->listen.host == "0.0.0.0");
  REQUIRE(r.config->development->upstream);
  CHECK(r.config->development->upstream->host == "app");
  for (const char* other : {"upstream: http://127.0.0.1:3000", "limits: {drain_timeout: 5s}", "providers: []"}) {
    CAPTURE(std::string(other));
    r = load(std::string("development: {}\n") + other + "\n");
    CHECK_FALSE(r.config);
    const std::string key = std::string(other).substr(0, std::string(other).find(':'));
    CHECK(has(r, "test.yaml:2:1: error: development: runs the development default and cannot be combined with " + key +
                     "; remove one"));
  }
  CHECK(has(load("development: {upstream: ftp://x}\n"), "development.upstream: expected an http://, https:// or h2c:// URL"));
  CHECK(has(load("development: yes\n"), "development: expected a mapping"));
  CHECK(has(load("developmnt: {}\n"), "did you mean \"development\"?"));
}

TEST_SUITE("forward_auth section") {

// kMinimal's providers without its upstream: a forward-auth-only file once `forward_auth:` is added.
std::string providers_only() { return kMinimal.substr(kMinimal.find("providers:")); }

TEST_CASE("forward_auth: listen alone takes every default, and the top-level upstream becomes optional") {
  LoadResult r = load("forward_auth:\n  listen: 127.0.0.1:9001\n" + providers_only());
  REQUIRE_MESSAGE(r.config, text(r));
  REQUIRE(r.config->forward_auth);
  const auto& fa = *r.config->forward_auth;
  CHECK(fa.listen.host == "127.0.0.1");
  CHECK(fa.listen.port == 9001);
  CHECK(fa.path_prefix == "/authz");
  CHECK(fa.trusted_proxies.empty());  // trust nobody's forwarded headers unless told
  CHECK_FALSE(fa.allow_preflight);
  CHECK_MESSAGE(!has(r, "error"), text(r));
  // Without the section nothing changes: no forward_auth, upstream still required.
  LoadResult plain = load(kMinimal);
  REQUIRE(plain.config);
  CHECK_FALSE(plain.config->forward_auth);
}

TEST_CASE("forward_auth: every key is read, beside the proxy") {
  LoadResult r = load(kMinimal +
                      "listen: 127.0.0.1:8080\nforward_auth:\n  listen: \"[::1]:9001\"\n  path_prefix: /ext/authz\n"
                      "  trusted_proxies: [127.0.0.1/32, \"::1\", 10.0.0.0/8, \"fd00::/8\", 192.168.1.7]\n"
                      "  allow_preflight: true\n");
  REQUIRE_MESSAGE(r.config, text(r));
  REQUIRE(r.config->forward_auth);
  const auto& fa = *r.config->forward_auth;
  CHECK(fa.listen.host == "::1");
  CHECK(fa.listen.port == 9001);
  CHECK(fa.path_prefix == "/ext/authz");
  CHECK(fa.trusted_proxies.size() == 5);
  CHECK(fa.allow_preflight);
  CHECK(r.config->upstream.port == 3000);
  CHECK(r.config->listen.port == 8080);
}

TEST_CASE("forward_auth: listen is required and validated") {
  CHECK(has(load("forward_auth: {}\n" + providers_only()), "error: forward_auth.listen: missing required key"));
  CHECK(has(load("forward_auth: {path_prefix: /authz}\n" + kMinimal), "error: forward_auth.listen: missing required key"));
  CHECK(has(load("forward_auth: {listen: 127.0.0.1:99999}\n" + providers_only()), "error: forward_auth.listen: "));
  CHECK(has(load("forward_auth: {listen: nowhere}\n" + providers_only()), "error: forward_auth.listen: "));
  CHECK(has(load("forward_auth: yes\n" + providers_only()), "forward_auth: expected a mapping"));
}

TEST_CASE("forward_auth.trusted_proxies: CIDRs with no host bits or bare addresses; anything else is an error") {
  for (const char* good : {"127.0.0.1/32", "127.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "\"::1\"", "\"::1/128\"", "\"fd00::/8\"",
                           "\"::/0\"", "\"2001:db8::/32\""}) {
    CAPTURE(std::string(good));
    LoadResult r = load("forward_auth:\n  listen: 127.0.0.1:9001\n  trusted_proxies: [" + std::string(good) + "]\n" +
                        providers_only());
    CHECK_MESSAGE(r.config, text(r));
  }
  for (const char* bad : {"10.0.0.1/8", "10.0.0.0/33", "\"::1/129\"", "\"fd00::1/8\"", "not-an-ip", "10.0.0.0/",
                          "10.0.0/8", "10.0.0.0/x", "10.0.0.0/-1", "\"\"", "256.0.0.1", "\"10.0.0.0/8 \"",
                          "example.com", "127.0.0.1:80"}) {
    CAPTURE(std::string(bad));
    LoadResult r = load("forward_auth:\n  listen: 127.0.0.1:9001\n  trusted_proxies: [127.0.0.1, " + std::string(bad) + "]\n" +
                        providers_only());
    CHECK_FALSE(r.config);
    CHECK_MESSAGE(has(r, "error: forward_auth.trusted_proxies[1]"), text(r));
  }
  // Host bits set: the message says which network was probably meant, so it is not silently widened or narrowed.
  LoadResult host_bits = load("forward_auth:\n  listen: 127.0.0.1:9001\n  trusted_proxies: [10.0.0.1/8]\n" + providers_only());
  CHECK_MESSAGE(has(host_bits, "10.0.0.1/8"), text(host_bits));
  CHECK(has(load("forward_auth:\n  listen: 127.0.0.1:9001\n  trusted_proxies: {a: 1}\n" + providers_only()),
            "error: forward_auth.trusted_proxies"));
}

TEST_CASE("forward_auth.trusted_proxies that trust a whole address family are warned about") {
  for (const char* all : {"0.0.0.0/0", "\"::/0\""}) {
    CAPTURE(std::string(all));
    LoadResult r = load("forward_auth:\n  listen: 127.0.0.1:9001\n  trusted_proxies: [127.0.0.1, " + std::string(all) + "]\n" +
                        providers_only());
    REQUIRE_MESSAGE(r.config, text(r));
    CHECK_MESSAGE(has(r, "warning: forward_auth.trusted_proxies[1]: trusts every peer"), text(r));
  }
  CHECK_FALSE(has(load("forward_auth:\n  listen: 127.0.0.1:9001\n  trusted_proxies: [10.0.0.0/8, \"fd00::/8\"]\n" +
                       providers_only()),
                  "warning"));
}

TEST_CASE("forward_auth.path_prefix must be an absolute path") {
  for (const char* bad : {"authz", "\"\"", "\"http://x/authz\""}) {
    CAPTURE(std::string(bad));
    LoadResult r = load("forward_auth:\n  listen: 127.0.0.1:9001\n  path_prefix: " + std::string(bad) + "\n" + providers_only());
    CHECK_FALSE(r.config);
    CHECK_MESSAGE(has(r, "error: forward_auth.path_prefix"), text(r));
  }
  CHECK(has(load("forward_auth:\n  listen: 127.0.0.1:9001\n  allow_preflight: maybe\n" + providers_only()),
            "error: forward_auth.allow_preflight"));
}

TEST_CASE("forward_auth.listen must not share a port with listen or the admin listener") {
  struct Case {
    std::string top;
    std::string fa;
  };
  for (const Case& c : {Case{"listen: 127.0.0.1:9001\n", "127.0.0.1:9001"}, Case{"listen: 0.0.0.0:9001\n", "127.0.0.1:9001"},
                        Case{"listen: 127.0.0.1:9001\n", "0.0.0.0:9001"}, Case{"", "127.0.0.1:8080"},  // the default listen
                        Case{"admin_listen: 127.0.0.1:9001\n", "127.0.0.1:9001"},
                        Case{"admin: {listen: 127.0.0.1:9001}\n", "0.0.0.0:9001"}, Case{"", "127.0.0.1:9901"}}) {  // the default admin
    CAPTURE(c.top);
    CAPTURE(c.fa);
    LoadResult r = load(kMinimal + c.top + "forward_auth:\n  listen: " + c.fa + "\n");
    CHECK_FALSE(r.config);
    CHECK_MESSAGE(has(r, "error: forward_auth.listen: "), text(r));
  }
  // Different ports, or the same port on two distinct addresses, are fine.
  CHECK(load(kMinimal + "listen: 127.0.0.1:9000\nforward_auth:\n  listen: 127.0.0.1:9001\n").config);
  // Forward-auth only: there is no proxy listener to collide with.
  LoadResult alone = load("forward_auth:\n  listen: 0.0.0.0:8080\n" + providers_only());
  CHECK_MESSAGE(alone.config, text(alone));
  CHECK(has(load("admin_listen: 127.0.0.1:9001\nforward_auth:\n  listen: 127.0.0.1:9001\n" + providers_only()),
            "error: forward_auth.listen: "));
}

TEST_CASE("without forward_auth the upstream is required; without an upstream, listen and routes[].upstream are errors") {
  CHECK(has(load(providers_only()), "error: upstream: missing required key"));
  LoadResult listen = load("listen: 127.0.0.1:8080\nforward_auth:\n  listen: 127.0.0.1:9001\n" + providers_only());
  CHECK_FALSE(listen.config);
  CHECK_MESSAGE(has(listen, "error: listen: "), text(listen));
  LoadResult route = load("forward_auth:\n  listen: 127.0.0.1:9001\n" + providers_only() +
                          "routes:\n  - prefix: /a\n    upstream: http://127.0.0.1:3001\n  - prefix: /\n");
  CHECK_FALSE(route.config);
  CHECK_MESSAGE(has(route, "error: routes[0].upstream: "), text(route));
}

TEST_CASE("forward_auth: unknown keys get a suggestion") {
  CHECK(has(load("forward_auth:\n  listen: 127.0.0.1:9001\n  trusted_proxy: []\n" + providers_only()),
            "forward_auth.trusted_proxy: unknown key \"trusted_proxy\"; did you mean \"trusted_proxies\"?"));
  CHECK(has(load("forward_auth:\n  listen: 127.0.0.1:9001\n  path_prefx: /a\n" + providers_only()),
            "did you mean \"path_prefix\"?"));
  CHECK(has(load("forward_auht:\n  listen: 127.0.0.1:9001\n" + kMinimal), "unknown key \"forward_auht\"; did you mean \"forward_auth\"?"));
}

}  // TEST_SUITE

TEST_CASE("http2: defaults, bounds, and h2c:// upstreams") {
  LoadResult d = load(kMinimal);
  REQUIRE(d.config);
  CHECK(d.config->http2.enabled);
  CHECK(d.config->http2.max_concurrent_streams == 100);
  CHECK(d.config->http2.stream_window_bytes == 256 * 1024);
  CHECK(d.config->http2.connection_window_bytes == 1024 * 1024);

  CHECK(has(load(kMinimal + "http2: {max_concurrent_streams: 0}\n"), "http2.max_concurrent_streams"));
  CHECK(has(load(kMinimal + "http2: {stream_window_bytes: 1KiB}\n"), "http2.stream_window_bytes: must be from 16KiB to 1GiB"));
  CHECK(has(load(kMinimal + "http2: {connection_window_bytes: 2GiB}\n"), "must be from 16KiB to 1GiB"));
  CHECK(has(load(kMinimal + "http2: {resets_per_second: 0}\n"), "http2.resets_per_second"));
  CHECK(has(load(kMinimal + "http2: {max_streams: 10}\n"), "http2"));  // unknown key, with a suggestion

  LoadResult h2c = load(R"(upstream: h2c://grpc.internal:50051
providers:
  - name: main
    issuer: https://idp.example.com/
    audiences: [orders-api]
    algorithms: [ES256]
    jwks: {uri: https://idp.example.com/jwks.json}
)");
  REQUIRE_MESSAGE(h2c.config, text(h2c));
  CHECK(h2c.config->upstream.h2);
  CHECK_FALSE(h2c.config->upstream.tls);
  CHECK(h2c.config->upstream.port == 50051);
}

TEST_CASE("check-config warns about gRPC that cannot work") {
  const std::string providers = R"(providers:
  - name: main
    issuer: https://idp.example.com/
    audiences: [orders-api]
    algorithms: [ES256]
    jwks: {uri: https://idp.example.com/jwks.json}
)";
  // A gRPC service route to an HTTP/1.1 upstream: trailers (grpc-status) cannot cross it.
  LoadResult r = load("upstream: http://legacy:8080\n" + providers + R"(routes:
  - prefix: /billing.v1.Invoices
  - prefix: /grpc.health.v1.Health/Check
    upstream: h2c://billing:50051
  - prefix: /
)");
  REQUIRE_MESSAGE(r.config, text(r));
  CHECK(has(r, "routes[0]: prefix /billing.v1.Invoices looks like a gRPC service"));
  CHECK_FALSE(has(r, "routes[1]: prefix"));
  CHECK_FALSE(has(r, "routes[2]: prefix"));
  // HTTP/2 off with an h2c upstream: gRPC clients cannot reach jwtgate.
  LoadResult off = load("upstream: h2c://billing:50051\nhttp2: {enabled: false}\n" + providers);
  REQUIRE_MESSAGE(off.config, text(off));
  CHECK(has(off, "http2.enabled: is false"));
}
