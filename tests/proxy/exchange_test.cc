// The exchange's decisions with no codec around them: what an HTTP/2 stream will reuse as is.
// (Over real sockets the same decisions are checked in proxy_tests and hardening_tests.)
#include <doctest/doctest.h>

#include "config/loader.h"
#include "core/rfc6750.h"
#include "proxy/admin/worker_metrics.h"
#include "proxy/http/exchange.h"
#include "tests/support/tokens.h"

using namespace jwtgate;
using namespace jwtgate::testing;
using proxy::Answer;
using proxy::Exchange;
using proxy::ExchangeDecision;
using proxy::HeaderList;

namespace {

// The upstream and the one provider every case uses; its routes follow.
const std::string kProvider = R"(upstream: http://127.0.0.1:3000
providers:
  - name: main
    issuer: https://idp.test/
    audiences: [api]
    algorithms: [ES256]
    jwks: {file: /nonexistent}
    claims_to_headers: {sub: X-Sub}
)";

const std::string kYaml = kProvider + R"(routes:
  - prefix: /public
    auth: none
  - prefix: /reports
    upstream: http://127.0.0.1:3001
  - prefix: /orders
    methods: [GET]
  - prefix: /
    require_scopes: [admin]
)";

struct Waiter final : proxy::KeyWaiter {
  bool agree = true;
  int asked = 0;
  std::size_t provider = 99;
  bool await_keys(std::size_t p) override {
    ++asked;
    provider = p;
    return agree;
  }
};

struct Fixture {
  explicit Fixture(const std::string& yaml = kYaml) {
    config::LoadOptions o;
    o.check_secrets = false;
    auto r = config::load_config(yaml, "test.yaml", o);
    REQUIRE_MESSAGE(r.config, r.diagnostics.format());
    gen.runtime = std::make_shared<const proxy::RuntimeConfig>(std::move(*r.config));
    gen.authenticator = std::make_unique<proxy::Authenticator>(gen.runtime, 64);
    gen.authenticator->set_keys(0, std::make_shared<core::KeySet>(std::move(key.keys)));
  }
  TestKey key = make_key(core::Alg::ES256, "k1");
  proxy::Generation gen;
  proxy::WorkerMetrics metrics;
  proxy::ExchangeRecord record;
  Exchange exchange;
  HeaderList headers;

  // route() for `method` and `path`; the target normalized as a codec would.
  std::optional<Answer> route(std::string_view method, const std::string& path) {
    exchange.reset();
    std::string why;
    REQUIRE(proxy::normalize_request_target(path, exchange.target_to_normalize(), why));
    return exchange.route(*gen.runtime, Exchange::Request{.mode = proxy::Mode::proxy, .method = method}, headers, record);
  }
  ExchangeDecision authorise(proxy::KeyWaiter* waiter = nullptr) {
    return exchange.authorise(gen, headers, kNow, "", metrics, record, waiter);
  }
  std::string token(const std::string& extra = "") { return signed_token(header_for(key), payload(extra), key); }
};

}  // namespace

TEST_CASE("route: no route is a 404, a method the route excludes a 405 with Allow, never a weaker route") {
  Fixture f;
  // /orders takes only GET; the catch-all must not take the POST instead.
  std::optional<Answer> a = f.route("POST", "/orders/1");
  REQUIRE(a);
  CHECK(a->kind == Answer::Kind::plain);
  CHECK(a->code == 405);
  CHECK(a->allow_methods == "GET");
  CHECK(f.record.outcome == proxy::Outcome::no_route);
  CHECK(f.route("GET", "/orders/1") == std::nullopt);
  CHECK(f.exchange.matched_route()->prefix == "/orders");
}

TEST_CASE("route: identity headers a client set are removed before anything is authorised") {
  Fixture f;
  f.headers.add("X-Sub", "mallory");
  f.headers.add("x_sub", "mallory");
  f.headers.add("Accept", "*/*");
  REQUIRE(f.route("GET", "/public/a") == std::nullopt);
  CHECK(f.headers.get("x-sub").empty());
  CHECK(f.headers.get("x_sub").empty());
  CHECK(f.headers.get("accept") == "*/*");
}

TEST_CASE("route + authorise: a case-folded path must pass the route exact-case matching gives it too") {
  Fixture f;
  // /PUBLIC folds to the public route, but a case-sensitive upstream serves it under the
  // protected catch-all: without a token, refused.
  REQUIRE(f.route("GET", "/PUBLIC/x") == std::nullopt);
  ExchangeDecision d = f.authorise();
  REQUIRE(d.kind == ExchangeDecision::Kind::answer);
  CHECK(d.answer.kind == Answer::Kind::token_refused);
  CHECK(core::http_error(d.answer.status.reason()).http_status == 401);
  // The exact-case path passes without one.
  REQUIRE(f.route("GET", "/public/x") == std::nullopt);
  CHECK(f.authorise().kind == ExchangeDecision::Kind::forward);
}

TEST_CASE("authorise: under case folding the exact route's verdict is forwarded, and the log names the folded one's") {
  Fixture f(kProvider + R"(routes:
  - prefix: /reports
    require_scopes: [admin]
  - prefix: /
    auth: none
)");
  f.headers.add("Authorization", "Bearer " + f.token(R"("scope":"admin")"));
  // /REPORTS must pass /reports' rule, and is served as exact matching reads it: the public "/".
  REQUIRE(f.route("GET", "/REPORTS/q") == std::nullopt);
  ExchangeDecision d = f.authorise();
  REQUIRE(d.kind == ExchangeDecision::Kind::forward);
  CHECK(d.auth_route->prefix == "/");
  CHECK(d.auth.add_headers.empty());
  CHECK_FALSE(d.auth.authenticated);
  CHECK(f.record.outcome == proxy::Outcome::allowed);
  CHECK(f.record.sub == "alice");
  CHECK(f.record.token_digest.has_value());
  // Without the token, /reports' rule refuses it.
  f.headers = HeaderList{};
  REQUIRE(f.route("GET", "/REPORTS/q") == std::nullopt);
  CHECK(f.authorise().kind == ExchangeDecision::Kind::answer);
}

TEST_CASE("authorise: a verified token is forwarded to its route's upstream with its claim headers") {
  Fixture f;
  f.headers.add("Authorization", "Bearer " + f.token());
  REQUIRE(f.route("GET", "/reports/q") == std::nullopt);
  ExchangeDecision d = f.authorise();
  REQUIRE(d.kind == ExchangeDecision::Kind::forward);
  CHECK(d.auth_route->prefix == "/reports");
  CHECK(f.gen.runtime->upstreams[d.upstream_index].text == "http://127.0.0.1:3001");
  REQUIRE(d.auth.add_headers.size() == 1);
  CHECK(d.auth.add_headers[0].name == "X-Sub");
  CHECK(d.auth.add_headers[0].value == "alice");
  CHECK(f.record.outcome == proxy::Outcome::allowed);
  CHECK(f.record.sub == "alice");
  CHECK(f.metrics.cache_misses.value() == 1);
  // Insufficient scope on the catch-all: 403, whatever the token's validity.
  REQUIRE(f.route("GET", "/other") == std::nullopt);
  d = f.authorise();
  REQUIRE(d.kind == ExchangeDecision::Kind::answer);
  CHECK(core::http_error(d.answer.status.reason()).http_status == 403);
  CHECK(f.record.outcome == proxy::Outcome::denied);
}

TEST_CASE("authorise: an unknown kid waits for one refresh at most, and only where a wait is possible") {
  Fixture f;
  TestKey other = make_key(core::Alg::ES256, "k2");
  f.headers.add("Authorization", "Bearer " + signed_token(header_for(other), payload(), other));
  REQUIRE(f.route("GET", "/reports/q") == std::nullopt);
  Waiter w;
  ExchangeDecision d = f.authorise(&w);
  CHECK(d.kind == ExchangeDecision::Kind::await_keys);
  CHECK(w.asked == 1);
  CHECK(w.provider == 0);
  CHECK(f.exchange.awaited_provider() == 0);
  // The refresh brought nothing: decided now, without a second wait.
  d = f.authorise(&w);
  REQUIRE(d.kind == ExchangeDecision::Kind::answer);
  CHECK(d.answer.status.reason() == core::Reason::unknown_kid);
  CHECK(w.asked == 1);
  // No refresh can run (cooldown), or no waiter (a replaced configuration): decided at once.
  w.agree = false;
  REQUIRE(f.route("GET", "/reports/q") == std::nullopt);
  CHECK(f.authorise(&w).kind == ExchangeDecision::Kind::answer);
  CHECK(w.asked == 2);
  REQUIRE(f.route("GET", "/reports/q") == std::nullopt);
  CHECK(f.authorise(nullptr).kind == ExchangeDecision::Kind::answer);
}
