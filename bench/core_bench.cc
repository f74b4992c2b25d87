// core/ against raw OpenSSL, per algorithm, in one run: tokens verified per second through
// verify_token (decode + allowlist + key selection + signature + claims) next to EVP
// verification of the same signatures with everything prepared up front (the key's verify
// context set up once, as `openssl speed` does: the ceiling), EVP verification that sets up a
// context per signature (EVP_DigestVerifyInit, as most verifiers do), and the cost of decode +
// claims alone. Runs are interleaved (core, raw, core, raw, ...) and the median is
// reported, because these machines are shared and noisy.
//
//   core_bench [--seconds-per-run 0.3] [--rounds 5] [--alg ES256,RS256,...]
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/base64url.h"
#include "core/signature.h"
#include "core/signer.h"
#include "core/verifier.h"

using namespace jwtgate::core;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::int64_t kNow = 1'700'000'000;
constexpr int kTokens = 64;

struct Fixture {
  Alg alg;
  SigningKey signing;
  KeySet keys;
  VerifyPolicy policy;
  std::vector<std::string> tokens;
  std::vector<std::string> inputs;      // signing inputs
  std::vector<std::string> raw_sigs;    // as OpenSSL wants them (DER for ECDSA)
  EvpPkeyCtxPtr prepared;               // RSA and ECDSA: a verify context set up once
};

Fixture make_fixture(Alg alg) {
  Fixture f{alg, {}, {}, {}, {}, {}, {}, {}};
  f.signing = std::move(generate_signing_key(alg).value());
  f.keys = std::move(parse_jwks(jwks_for(f.signing, alg, "k1")).value());
  f.policy.algorithms.add(alg);
  f.policy.claims.issuer = "https://idp.example.com/";
  f.policy.claims.audiences = {"orders-api"};
  f.policy.claims.required_claims = {"sub"};
  for (int i = 0; i < kTokens; ++i) {
    std::string payload = R"({"iss":"https://idp.example.com/","aud":["orders-api","billing"],"sub":"user-)" +
                          std::to_string(i) + R"(","scope":"read write","realm_access":{"roles":["user"]},"iat":)" +
                          std::to_string(kNow) + ",\"exp\":" + std::to_string(kNow + 900) + "}";
    std::string token = mint_token(alg, f.signing, "k1", payload).value();
    const auto dot = token.rfind('.');
    std::string sig;
    base64url_decode(std::string_view(token).substr(dot + 1), sig);
    if (alg_family(alg) == AlgFamily::ecdsa) {
      const std::size_t half = sig.size() / 2;
      EcdsaSigPtr es(ECDSA_SIG_new());
      ECDSA_SIG_set0(es.get(), BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), static_cast<int>(half), nullptr),
                     BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data() + half), static_cast<int>(half), nullptr));
      unsigned char der[160];
      unsigned char* p = der;
      const int len = i2d_ECDSA_SIG(es.get(), &p);
      sig.assign(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
    }
    f.inputs.push_back(token.substr(0, dot));
    f.raw_sigs.push_back(sig);
    f.tokens.push_back(std::move(token));
  }
  const AlgFamily family = alg_family(alg);
  if (family == AlgFamily::rsa_pkcs1 || family == AlgFamily::rsa_pss || family == AlgFamily::ecdsa) {
    f.prepared.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, f.keys.keys[0].public_key.get(), nullptr));
    EVP_PKEY_verify_init(f.prepared.get());
    EVP_PKEY_CTX_set_signature_md(f.prepared.get(), fetched_digest(alg));
    if (family == AlgFamily::rsa_pss) {
      EVP_PKEY_CTX_set_rsa_padding(f.prepared.get(), RSA_PKCS1_PSS_PADDING);
      EVP_PKEY_CTX_set_rsa_pss_saltlen(f.prepared.get(), RSA_PSS_SALTLEN_DIGEST);
      EVP_PKEY_CTX_set_rsa_mgf1_md(f.prepared.get(), fetched_digest(alg));
    }
  }
  return f;
}

// Runs `op(i)` for about `seconds`, returns operations per second.
template <typename Op>
double rate(double seconds, Op op) {
  std::size_t n = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  auto now = start;
  do {
    for (int i = 0; i < 16; ++i) op(n++ % kTokens);
    now = Clock::now();
  } while (now < deadline);
  return static_cast<double>(n) / std::chrono::duration<double>(now - start).count();
}

// `prepared`: with the verify context set up once (RSA, ECDSA); otherwise one per signature.
bool raw_verify(const Fixture& f, EVP_MD_CTX* ctx, std::size_t i, bool prepared) {
  const auto* in = reinterpret_cast<const unsigned char*>(f.inputs[i].data());
  const auto* sig = reinterpret_cast<const unsigned char*>(f.raw_sigs[i].data());
  const Jwk& key = f.keys.keys[0];
  if (prepared && f.prepared) {
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int hash_len = 0;
    static EvpMdCtxPtr md_ctx(EVP_MD_CTX_new());  // apart from `ctx`, which DigestVerifyInit repurposes
    EVP_DigestInit_ex2(md_ctx.get(), fetched_digest(f.alg), nullptr);
    EVP_DigestUpdate(md_ctx.get(), in, f.inputs[i].size());
    EVP_DigestFinal_ex(md_ctx.get(), hash, &hash_len);
    return EVP_PKEY_verify(f.prepared.get(), sig, f.raw_sigs[i].size(), hash, hash_len) == 1;
  }
  if (alg_family(f.alg) == AlgFamily::hmac) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(fetched_digest(f.alg), key.secret.view().data(), static_cast<int>(key.secret.size()), in, f.inputs[i].size(), mac, &len);
    return CRYPTO_memcmp(mac, sig, len) == 0;
  }
  EVP_MD_CTX_reset(ctx);
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestVerifyInit(ctx, &pctx, fetched_digest(f.alg), nullptr, key.public_key.get()) != 1) return false;
  if (alg_family(f.alg) == AlgFamily::rsa_pss) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  return EVP_DigestVerify(ctx, sig, f.raw_sigs[i].size(), in, f.inputs[i].size()) == 1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.3;
  int rounds = 5;
  std::vector<Alg> algs;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds-per-run")) seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds")) rounds = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--alg")) {
      std::string list = argv[i + 1];
      for (std::size_t pos = 0; pos <= list.size();) {
        std::size_t comma = std::min(list.find(',', pos), list.size());
        if (auto a = alg_from_name(list.substr(pos, comma - pos))) algs.push_back(*a);
        pos = comma + 1;
      }
    }
  }
  if (algs.empty()) {
    for (int i = 0; i < kAlgCount; ++i) algs.push_back(static_cast<Alg>(i));
  }

  std::printf("%-6s %14s %14s %8s %18s %18s\n", "alg", "core tok/s", "raw EVP/s", "ratio", "EVP init each/s",
              "decode+claims ns");
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  Token scratch;
  int failures = 0;
  for (Alg alg : algs) {
    Fixture f = make_fixture(alg);
    // Correctness first: a benchmark of a verifier that rejects everything measures nothing.
    for (int i = 0; i < kTokens; ++i) {
      if (!verify_token(scratch, f.tokens[i], f.keys, f.policy, kNow).ok() || !raw_verify(f, ctx.get(), i, true) ||
          !raw_verify(f, ctx.get(), i, false)) {
        std::fprintf(stderr, "%s: token %d did not verify\n", std::string(alg_name(alg)).c_str(), i);
        ++failures;
      }
    }
    std::vector<double> core_rates, raw_rates, init_rates, parse_ns;
    volatile int sink = 0;
    for (int r = 0; r < rounds; ++r) {
      core_rates.push_back(rate(seconds, [&](std::size_t i) {
        sink = sink + verify_token(scratch, f.tokens[i], f.keys, f.policy, kNow).ok();
      }));
      raw_rates.push_back(rate(seconds, [&](std::size_t i) { sink = sink + raw_verify(f, ctx.get(), i, true); }));
      init_rates.push_back(rate(seconds, [&](std::size_t i) { sink = sink + raw_verify(f, ctx.get(), i, false); }));
      parse_ns.push_back(1e9 / rate(seconds / 3, [&](std::size_t i) {
        sink = sink + (scratch.decode(f.tokens[i]).ok() &&
                       check_claims(Claims(scratch.payload()), f.policy.claims, kNow).ok());
      }));
    }
    const double core = median(core_rates), raw = median(raw_rates);
    std::printf("%-6s %14.0f %14.0f %7.2fx %18.0f %18.0f\n", std::string(alg_name(alg)).c_str(), core, raw, core / raw,
                median(init_rates), median(parse_ns));
  }
  return failures == 0 ? 0 : 1;
}
