// `jwtgate dev-idp`: a development-only OpenID provider, so a local stack (compose, a laptop)
// needs no identity provider from outside. It publishes an OIDC discovery document and the
// public JWKS of one signing key, and mints a token for whatever claims it is asked for, to
// anyone who asks: it authenticates nobody, which is the point and why it must never face
// production traffic. Every answer says so in a header.
//
// This file is the logic only (request in, response out, no I/O), so it is tested without a
// socket; cli/dev_idp_command.cc puts it behind an AdminServer.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/alg.h"
#include "core/signer.h"
#include "proxy/admin/admin_server.h"

namespace jwtgate::proxy {

inline constexpr std::string_view kDevIdpMarkerHeader = "X-Jwtgate-Dev-Idp";
inline constexpr std::string_view kDevIdpMarker = "development only, not for production";
inline constexpr std::chrono::seconds kDevIdpMaxTtl{24 * 3600};
// Claims are small; the bound keeps a runaway client from making the IdP sign megabytes.
inline constexpr std::size_t kDevIdpMaxBody = 32 * 1024;

struct DevIdpOptions {
  std::string issuer;  // checked with check_dev_idp_issuer
  std::string audience = "dev-api";
  std::string kid = "dev-idp-1";
  std::chrono::seconds ttl{15 * 60};
};

// An http(s) URL with a host and no query, fragment or credentials: what OIDC Discovery §3 asks of
// an issuer. false + `error` otherwise.
bool check_dev_idp_issuer(std::string_view issuer, std::string& error);

// Whether `alg` can be served: its public key goes into a JWKS, which an HMAC secret cannot.
bool dev_idp_alg_supported(core::Alg alg);

class DevIdp {
 public:
  // `key` must fit `alg` (see dev_idp_alg_supported); check_key() says whether it signs.
  DevIdp(DevIdpOptions options, core::Alg alg, core::SigningKey key);

  // Signs a throwaway token: false + `error` when the key does not fit the algorithm.
  bool check_key(std::string& error) const;

  // The answer to one request; `now` is the Unix time the tokens are minted at.
  AdminResponse handle(const AdminRequest& request, std::int64_t now) const;

  const std::string& issuer() const { return options_.issuer; }
  const std::string& discovery_url() const { return discovery_url_; }
  const std::string& jwks_url() const { return jwks_url_; }
  const std::string& token_url() const { return token_url_; }
  const std::string& jwks() const { return jwks_; }
  const std::string& base_path() const { return base_path_; }  // "" or "/realms/dev"

 private:
  AdminResponse token(const AdminRequest& request, std::int64_t now) const;

  DevIdpOptions options_;
  core::Alg alg_;
  core::SigningKey key_;
  std::string jwks_;
  std::string discovery_document_;
  // The issuer's path (no trailing "/"): the endpoints live below it, so an issuer such as
  // http://idp:9000/realms/dev serves its discovery document where clients look for it.
  std::string base_path_;
  std::string discovery_url_, jwks_url_, token_url_;
};

}  // namespace jwtgate::proxy
