#include <doctest/doctest.h>

#include <map>
#include <string>

#include "config/config_json.h"
#include "config/loader.h"
#include "core/json_object.h"
#include "tests/config/fixtures.h"
#include "tests/support/process.h"

using namespace jwtgate::config;
using jwtgate::testing::TempDir;
using jwtgate::testing::kMinimal;
using jwtgate::testing::options;

namespace {

// Recognisable, exactly 40 bytes, and made of pieces no other part of any config contains.
const std::string kSecret = "QZXW-secret-7f3a9c21-JWTGATE-do-not-leak";

Config load_ok(const std::string& yaml, const LoadOptions& o = options()) {
  LoadResult r = load_config(yaml, "test.yaml", o);
  if (!r.config) FAIL(r.diagnostics.format());
  return *r.config;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

// Valid JSON by simdjson, with unique member names at every level (what clients of /config see).
void check_valid_json(const std::string& json) {
  simdjson::dom::parser parser;
  REQUIRE(jwtgate::core::init_json_parser(parser));
  simdjson::dom::object obj;
  auto status = jwtgate::core::parse_json_object(parser, json, false, "/config", obj);
  CHECK_MESSAGE(status.ok(), status.detail());
}

// Python's json.tool must accept it and, with the same indentation, print it back unchanged: a
// second, independent parser, and a check that the layout is the canonical pretty form.
void check_python_round_trip(const std::string& json) {
  // Strict UTF-8: under a C locale Python would otherwise round-trip invalid bytes silently.
  auto r = jwtgate::testing::run_process({"/usr/bin/python3", "-m", "json.tool", "--indent", "2", "--no-ensure-ascii"}, json,
                                         "", {"PYTHONIOENCODING=utf-8:strict"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out == json);
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("durations are written with the largest units first") {
  using namespace std::chrono;
  CHECK(format_duration(milliseconds(0)) == "0s");
  CHECK(format_duration(milliseconds(250)) == "250ms");
  CHECK(format_duration(seconds(30)) == "30s");
  CHECK(format_duration(minutes(5)) == "5m");
  CHECK(format_duration(minutes(90)) == "1h30m");
  CHECK(format_duration(hours(24)) == "24h");
  CHECK(format_duration(milliseconds(1500)) == "1s500ms");
  CHECK(format_duration(hours(1) + seconds(1) + milliseconds(1)) == "1h1s1ms");
  CHECK(format_duration(milliseconds(-1500)) == "-1s500ms");
}

TEST_CASE("URLs lose credentials, query values and fragments, and keep everything else") {
  struct Case { const char* in; const char* out; };
  for (Case c : {
           Case{"https://idp.example.com/jwks.json", "https://idp.example.com/jwks.json"},
           Case{"http://orders:3000/", "http://orders:3000/"},
           Case{"http://[::1]:8081/keys", "http://[::1]:8081/keys"},
           Case{"https://user:pa55w0rd@idp.example.com/jwks", "https://[redacted]@idp.example.com/jwks"},
           Case{"https://token@idp.example.com", "https://[redacted]@idp.example.com"},
           Case{"https://u:p@ss@idp.example.com/", "https://[redacted]@idp.example.com/"},
           Case{"https://idp/jwks?api_key=K3Y&tenant=t1", "https://idp/jwks?api_key=[redacted]&tenant=[redacted]"},
           Case{"https://idp/jwks?a=&b=x=y", "https://idp/jwks?a=[redacted]&b=[redacted]"},
           Case{"https://idp/jwks?S3CRET", "https://idp/jwks?[redacted]"},
           Case{"https://idp/jwks?S3CRET;a=1&b=2;c", "https://idp/jwks?[redacted];a=[redacted]&b=[redacted];[redacted]"},
           Case{"https://idp/jwks?", "https://idp/jwks?"},
           Case{"https://idp/jwks?a=1&&b", "https://idp/jwks?a=[redacted]&&[redacted]"},
           Case{"https://idp/cb#access_token=abc", "https://idp/cb#[redacted]"},
           Case{"https://u:p@idp:8443/x?k=v#f", "https://[redacted]@idp:8443/x?k=[redacted]#[redacted]"},
           // Passwords with delimiters in them: nothing of the secret may survive.
           Case{"https://user:pa/ss@idp.example.com/jwks", "https://[redacted]"},
           Case{"https://user:pa?ss@idp.example.com/jwks", "https://[redacted]"},
           Case{"https://user:pa#ss@idp.example.com/jwks", "https://[redacted]"},
           Case{"https://user:12/ss@idp.example.com/jwks", "https://[redacted]"},
           Case{"https://user:12?x=1@idp.example.com/", "https://[redacted]"},
           Case{"https:///nohost", "https://[redacted]"},
           // Not URLs (issuers may be any string): only query values and fragments go.
           Case{"my-issuer", "my-issuer"},
           Case{"urn:example:issuer?key=v", "urn:example:issuer?key=[redacted]"},
       }) {
    CAPTURE(std::string(c.in));
    CHECK(redact_url(c.in) == c.out);
  }
}

TEST_CASE("a minimal config shows every default") {
  const std::string json = effective_config_json(load_ok(kMinimal));
  CHECK(json == R"({
  "listen": {
    "address": "0.0.0.0:8080",
    "host": "0.0.0.0",
    "port": 8080
  },
  "tls": null,
  "admin_listen": {
    "address": "127.0.0.1:9901",
    "host": "127.0.0.1",
    "port": 9901
  },
  "admin": {
    "config_endpoint": true,
    "max_connections": 64,
    "max_connections_per_peer": 8,
    "head_timeout": "5s",
    "idle_timeout": "30s"
  },
  "upstream": {
    "url": "http://127.0.0.1:3000",
    "scheme": "http",
    "host": "127.0.0.1",
    "port": 3000
  },
  "upstream_tls": {
    "ca_file": null,
    "server_name": null,
    "cert_file": null,
    "key_file": null
  },
  "forward_auth": null,
  "workers": "auto",
  "providers": [
    {
      "name": "main",
      "issuer": "https://idp.example.com/",
      "audiences": [
        "orders-api"
      ],
      "algorithms": [
        "RS256"
      ],
      "jwks": {
        "uri": "https://idp.example.com/jwks.json",
        "file": null,
        "discovery": false,
        "refresh_interval": "5m",
        "min_refresh_interval": "30s",
        "stale_max": "24h",
        "timeout": "5s",
        "connect_timeout": "2s",
        "max_bytes": 1048576,
        "cache_file": null,
        "ca_file": null,
        "ca_dir": null,
        "proxy": "env"
      },
      "hmac_secret_file": null,
      "hmac_secret_env": null,
      "hmac_secret": null,
      "hmac_secret_kid": null,
      "clock_skew": "30s",
      "max_token_lifetime": null,
      "require_claims": [
        "exp"
      ],
      "token_sources": [
        {
          "kind": "header",
          "name": "Authorization",
          "prefix": "Bearer "
        }
      ],
      "claims_to_headers": [],
      "forward_payload_header": null,
      "forward_token": true,
      "require_certificate_binding": false
    }
  ],
  "routes": [
    {
      "prefix": "/",
      "methods": null,
      "auth": "required",
      "require_scopes": [],
      "require_claims": [],
      "providers": null,
      "upstream": null
    }
  ],
  "routes_case_sensitive": false,
  "forward_override_headers": false,
  "watch_config": true,
  "limits": {
    "max_header_bytes": 16384,
    "max_token_bytes": 8192,
    "header_timeout": "10s",
    "idle_timeout": "1m",
    "upstream_timeout": "30s",
    "max_connections": 10000,
    "body_timeout": "1m",
    "max_response_header_bytes": 65536,
    "drain_timeout": "30s"
  },
  "http2": {
    "enabled": true,
    "max_concurrent_streams": 100,
    "stream_window_bytes": 262144,
    "connection_window_bytes": 1048576,
    "reset_burst": 1000,
    "resets_per_second": 33
  },
  "log": {
    "format": "json",
    "level": "info",
    "access_log": true,
    "access_log_sample": 1
  }
}
)");
  check_valid_json(json);
  check_python_round_trip(json);
}

TEST_CASE("the full schema renders every field in the configured order") {
  TempDir dir;
  dir.write("secret", kSecret + "\n");
  const std::string yaml = jwtgate::testing::full_schema_yaml(dir.file("secret"));
  const std::string json = effective_config_json(load_ok(yaml));
  std::string expected = R"({
  "listen": {
    "address": "127.0.0.1:18080",
    "host": "127.0.0.1",
    "port": 18080
  },
  "tls": null,
  "admin_listen": {
    "address": "[::1]:19901",
    "host": "::1",
    "port": 19901
  },
  "admin": {
    "config_endpoint": false,
    "max_connections": 32,
    "max_connections_per_peer": 4,
    "head_timeout": "2s",
    "idle_timeout": "1m"
  },
  "upstream": {
    "url": "http://orders:3000/",
    "scheme": "http",
    "host": "orders",
    "port": 3000
  },
  "upstream_tls": {
    "ca_file": null,
    "server_name": null,
    "cert_file": null,
    "key_file": null
  },
  "forward_auth": null,
  "workers": 3,
  "providers": [
    {
      "name": "main",
      "issuer": "https://idp.example.com/",
      "audiences": [
        "orders-api",
        "billing"
      ],
      "algorithms": [
        "RS256",
        "ES256",
        "EdDSA"
      ],
      "jwks": {
        "uri": "https://idp.example.com/.well-known/jwks.json",
        "file": null,
        "discovery": false,
        "refresh_interval": "10m",
        "min_refresh_interval": "1m",
        "stale_max": "12h",
        "timeout": "3s",
        "connect_timeout": "1s",
        "max_bytes": 524288,
        "cache_file": "/var/lib/jwtgate/main.json",
        "ca_file": null,
        "ca_dir": "/etc/ssl/certs",
        "proxy": "http://[redacted]@proxy.internal:3128"
      },
      "hmac_secret_file": null,
      "hmac_secret_env": null,
      "hmac_secret": null,
      "hmac_secret_kid": null,
      "clock_skew": "10s",
      "max_token_lifetime": "1h30m",
      "require_claims": [
        "exp",
        "sub"
      ],
      "token_sources": [
        {
          "kind": "header",
          "name": "Authorization",
          "prefix": "Bearer "
        },
        {
          "kind": "cookie",
          "name": "access_token",
          "prefix": null
        }
      ],
      "claims_to_headers": [
        {
          "claim": "sub",
          "header": "X-Jwt-Sub"
        },
        {
          "claim": "realm_access.roles",
          "header": "X-Jwt-Roles"
        }
      ],
      "forward_payload_header": "X-Jwt-Payload",
      "forward_token": false,
      "require_certificate_binding": false
    },
    {
      "name": "partner",
      "issuer": "https://partner.example.com",
      "audiences": [
        "orders-api"
      ],
      "algorithms": [
        "HS256"
      ],
      "jwks": {
        "uri": null,
        "file": null,
        "discovery": false,
        "refresh_interval": "5m",
        "min_refresh_interval": "30s",
        "stale_max": "24h",
        "timeout": "5s",
        "connect_timeout": "2s",
        "max_bytes": 1048576,
        "cache_file": null,
        "ca_file": null,
        "ca_dir": null,
        "proxy": null
      },
      "hmac_secret_file": "SECRET_PATH",
      "hmac_secret_env": null,
      "hmac_secret": "[redacted]",
      "hmac_secret_kid": "partner-1",
      "clock_skew": "30s",
      "max_token_lifetime": null,
      "require_claims": [
        "exp"
      ],
      "token_sources": [
        {
          "kind": "header",
          "name": "Authorization",
          "prefix": "Bearer "
        }
      ],
      "claims_to_headers": [],
      "forward_payload_header": null,
      "forward_token": true,
      "require_certificate_binding": false
    }
  ],
  "routes": [
    {
      "prefix": "/healthz",
      "methods": null,
      "auth": "none",
      "require_scopes": [],
      "require_claims": [],
      "providers": null,
      "upstream": null
    },
    {
      "prefix": "/admin",
      "methods": [
        "GET",
        "POST"
      ],
      "auth": "required",
      "require_scopes": [
        "admin"
      ],
      "require_claims": [
        {
          "claim": "realm_access.roles",
          "values": [
            "admin",
            "ops"
          ]
        },
        {
          "claim": "tier",
          "values": [
            "gold"
          ]
        }
      ],
      "providers": [
        "main"
      ],
      "upstream": null
    },
    {
      "prefix": "/public",
      "methods": null,
      "auth": "optional",
      "require_scopes": [],
      "require_claims": [],
      "providers": null,
      "upstream": {
        "url": "http://inventory:3001/",
        "scheme": "http",
        "host": "inventory",
        "port": 3001
      }
    },
    {
      "prefix": "/",
      "methods": null,
      "auth": "required",
      "require_scopes": [],
      "require_claims": [],
      "providers": null,
      "upstream": null
    }
  ],
  "routes_case_sensitive": true,
  "forward_override_headers": true,
  "watch_config": true,
  "limits": {
    "max_header_bytes": 32768,
    "max_token_bytes": 4096,
    "header_timeout": "5s",
    "idle_timeout": "2m",
    "upstream_timeout": "500ms",
    "max_connections": 500,
    "body_timeout": "45s",
    "max_response_header_bytes": 131072,
    "drain_timeout": "8s"
  },
  "http2": {
    "enabled": false,
    "max_concurrent_streams": 50,
    "stream_window_bytes": 131072,
    "connection_window_bytes": 2097152,
    "reset_burst": 200,
    "resets_per_second": 10
  },
  "log": {
    "format": "text",
    "level": "debug",
    "access_log": false,
    "access_log_sample": 0.25
  }
}
)";
  replace_all(expected, "SECRET_PATH", dir.file("secret"));
  CHECK(json == expected);
  CHECK_FALSE(contains(json, kSecret));
  check_valid_json(json);
  check_python_round_trip(json);
}

TEST_CASE("credentials and query values in URLs never reach the output") {
  std::string yaml = kMinimal;
  replace_all(yaml, "https://idp.example.com/jwks.json",
              "https://jwks-user:Pa55-in-url@idp.example.com/jwks.json?api_key=${JWKS_KEY}&tenant=acme");
  replace_all(yaml, "issuer: https://idp.example.com/", "issuer: https://idp.example.com/?client_secret=IssuerQuerySecret#frag-secret");
  const std::string json = effective_config_json(load_ok(yaml, options({{"JWKS_KEY", "EnvExpandedKey"}})));
  for (const char* leak : {"jwks-user", "Pa55-in-url", "EnvExpandedKey", "acme", "IssuerQuerySecret", "frag-secret"}) {
    CHECK_MESSAGE(!contains(json, leak), leak);
  }
  CHECK(contains(json, R"("uri": "https://[redacted]@idp.example.com/jwks.json?api_key=[redacted]&tenant=[redacted]")"));
  CHECK(contains(json, R"("issuer": "https://idp.example.com/?client_secret=[redacted]#[redacted]")"));
  check_valid_json(json);
  check_python_round_trip(json);
}

TEST_CASE("jwks.proxy shows the proxy fetches really use, without its credentials") {
  auto with = [](const std::string& uri, const std::string& extra) {
    std::string yaml = kMinimal;
    replace_all(yaml, "https://idp.example.com/jwks.json", uri + extra);
    return effective_config_json(load_ok(yaml));
  };
  CHECK(contains(with("https://idp.example.com/jwks.json", ""), R"("proxy": "env")"));
  CHECK(contains(with("https://idp.example.com/jwks.json", "\n      proxy: none"), R"("proxy": "none")"));
  const std::string url = with("https://idp.example.com/jwks.json", "\n      proxy: socks5h://egress:Pr0xyPass@proxy:1080");
  CHECK(contains(url, R"("proxy": "socks5h://[redacted]@proxy:1080")"));
  CHECK_FALSE(contains(url, "Pr0xyPass"));
  // A plain-http JWKS never goes through a proxy, whatever the setting says.
  CHECK(contains(with("http://127.0.0.1:8080/jwks.json", ""), R"("proxy": "none")"));
  CHECK(contains(with("HTTP://127.0.0.1:8080/jwks.json", "\n      proxy: http://proxy:3128"), R"("proxy": "none")"));
}

TEST_CASE("HMAC secret bytes never appear, from a file or from the environment") {
  auto hs = [](const std::string& source) {
    std::string y = kMinimal;
    y.replace(y.find("    algorithms: [RS256]\n"), 24, "    algorithms: [HS256]\n" + source);
    return y.substr(0, y.find("    jwks:"));
  };
  // Any 8 consecutive bytes of the secret would be a leak worth failing on, not just all 40.
  auto check_no_secret = [](const std::string& json) {
    REQUIRE(kSecret.size() == 40);
    for (std::size_t i = 0; i + 8 <= kSecret.size(); ++i) CHECK_MESSAGE(!contains(json, kSecret.substr(i, 8)), kSecret.substr(i, 8));
  };
  TempDir dir;
  dir.write("secret", kSecret + "\n");
  const std::string from_file = effective_config_json(load_ok(hs("    hmac_secret_file: " + dir.file("secret") + "\n")));
  check_no_secret(from_file);
  CHECK(contains(from_file, "\"hmac_secret_file\": \"" + dir.file("secret") + "\""));
  CHECK(contains(from_file, R"("hmac_secret_env": null)"));
  CHECK(contains(from_file, R"("hmac_secret": "[redacted]")"));
  check_valid_json(from_file);

  const std::string from_env =
      effective_config_json(load_ok(hs("    hmac_secret_env: JWT_SECRET\n"), options({{"JWT_SECRET", kSecret}})));
  check_no_secret(from_env);
  CHECK(contains(from_env, R"("hmac_secret_file": null)"));
  CHECK(contains(from_env, R"("hmac_secret_env": "JWT_SECRET")"));
  CHECK(contains(from_env, R"("hmac_secret": "[redacted]")"));
  check_valid_json(from_env);

  // Without a secret the marker is null, so "[redacted]" always means one is configured.
  CHECK(contains(effective_config_json(load_ok(kMinimal)), R"("hmac_secret": null)"));
}

TEST_CASE("the output stays valid JSON whatever bytes the config holds") {
  std::string yaml = kMinimal;
  replace_all(yaml, "audiences: [orders-api]", "audiences: [\"${AUD}\", \"quote\\\" back\\\\ tab\\t nl\\n\", \"ünïcode\"]");
  const std::string json = effective_config_json(load_ok(yaml, options({{"AUD", std::string("bad\xff\xc3(utf8\x01")}})));
  CHECK(contains(json, "\"bad\xef\xbf\xbd\xef\xbf\xbd(utf8\\u0001\""));
  check_valid_json(json);
  check_python_round_trip(json);
}

TEST_CASE("tls, upstream_tls, https upstreams and require_certificate_binding are shown, as paths and names") {
  std::string yaml = kMinimal;
  replace_all(yaml, "upstream: http://127.0.0.1:3000", "upstream: https://orders.internal");
  yaml += "    require_certificate_binding: true\n"
          "tls:\n  cert_file: /etc/jwtgate/tls.crt\n  key_file: /etc/jwtgate/tls.key\n  min_version: 1.3\n"
          "  handshake_timeout: 2s\n  session_tickets: false\n  client_ca_file: /etc/jwtgate/clients.pem\n"
          "  client_auth: optional\n"
          "upstream_tls:\n  ca_file: /etc/jwtgate/upstream-ca.pem\n  server_name: orders.svc\n"
          "  cert_file: /etc/jwtgate/client.crt\n  key_file: /etc/jwtgate/client.key\n"
          "routes:\n  - prefix: /a\n    upstream: https://inventory:8443\n  - prefix: /\n";
  const std::string json = effective_config_json(load_ok(yaml));
  CHECK_MESSAGE(contains(json, R"(  "tls": {
    "cert_file": "/etc/jwtgate/tls.crt",
    "key_file": "/etc/jwtgate/tls.key",
    "min_version": "1.3",
    "handshake_timeout": "2s",
    "session_tickets": false,
    "client_ca_file": "/etc/jwtgate/clients.pem",
    "client_auth": "optional"
  },
  "admin_listen": {)"), json);
  CHECK_MESSAGE(contains(json, R"(  "upstream": {
    "url": "https://orders.internal",
    "scheme": "https",
    "host": "orders.internal",
    "port": 443
  },
  "upstream_tls": {
    "ca_file": "/etc/jwtgate/upstream-ca.pem",
    "server_name": "orders.svc",
    "cert_file": "/etc/jwtgate/client.crt",
    "key_file": "/etc/jwtgate/client.key"
  },)"), json);
  CHECK(contains(json, R"("require_certificate_binding": true)"));
  CHECK(contains(json, R"("url": "https://inventory:8443",
        "scheme": "https",
        "host": "inventory",
        "port": 8443)"));
  check_valid_json(json);
  check_python_round_trip(json);

  // Defaults: 1.2, 10s, tickets on, no client certificates.
  const std::string plain = effective_config_json(
      load_ok(kMinimal + "tls:\n  cert_file: /c.pem\n  key_file: /k.pem\n"));
  CHECK(contains(plain, R"("min_version": "1.2",
    "handshake_timeout": "10s",
    "session_tickets": true,
    "client_ca_file": null,
    "client_auth": "none")"));
}
