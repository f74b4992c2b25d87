// The verdict for one request on one route: find the token, pick the provider its iss names,
// verify it with that provider's keys alone (or find it in the verified-token cache), check its
// certificate binding against the connection's client certificate, the route's scopes and
// claims, and say which headers to add. One per worker; never blocks.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/jwk.h"
#include "core/status.h"
#include "core/token.h"
#include "proxy/http/http_head.h"
#include "proxy/runtime_config.h"
#include "proxy/http/token_extractor.h"
#include "proxy/http/verified_token_cache.h"

namespace jwtgate::proxy {

struct AuthResult {
  core::Status status;                  // ok, or why the request is refused
  bool authenticated = false;           // a token was verified (false for auth none / optional without token)
  int provider = -1;                    // also set when the token's kid is unknown to its provider
  std::vector<HeaderField> add_headers;  // claim and payload headers to add
  // When the provider does not forward the token: every place it was sent in, as bits over the
  // route's token sources (see ExtractedToken::found_in), to remove it from all of them.
  std::uint64_t strip_sources = 0;
  bool cache_hit = false;
  bool token_present = false;
  std::optional<core::TokenDigest> digest;  // of the presented token: for its fingerprint only
  std::string sub, jti;    // of a verified token, for the access log
};

class Authenticator {
 public:
  Authenticator(std::shared_ptr<const RuntimeConfig> config, std::size_t cache_capacity);

  // A provider's current key set (nullptr: not loaded yet). Drops its cached tokens.
  void set_keys(std::size_t provider, std::shared_ptr<const core::KeySet> keys);
  // The revocations every token is checked against, cached verdicts included (nullptr: none
  // configured). Swapped by the worker between requests.
  void set_revocations(std::shared_ptr<const core::RevocationSet> set) { revocations_ = std::move(set); }

  // `client_cert_thumbprint`: the x5t#S256 of the connection's client certificate (see
  // core::certificate_thumbprint), empty when the connection presented none.
  AuthResult authenticate(const config::Route& route, const HeaderList& headers, std::string_view query,
                          std::int64_t now, std::string_view client_cert_thumbprint);

  const RuntimeConfig& config() const { return *config_; }
  std::size_t cache_size() const { return cache_.size(); }

 private:
  void decide(const config::Route& route, const ExtractedToken& token, std::int64_t now,
              std::string_view client_cert_thumbprint, AuthResult& result);
  core::Status verify_fresh(const config::Route& route, std::string_view token, std::int64_t now, VerifiedToken& out);
  core::Status check_route(const config::Route& route, const VerifiedToken& v, std::int64_t now,
                           std::string_view client_cert_thumbprint) const;
  int select_provider(const config::Route& route, const core::Token& token, core::Status& error) const;

  std::shared_ptr<const RuntimeConfig> config_;
  std::vector<std::shared_ptr<const core::KeySet>> keys_;
  std::shared_ptr<const core::RevocationSet> revocations_;
  VerifiedTokenCache cache_;
  core::Token scratch_;
};

}  // namespace jwtgate::proxy
