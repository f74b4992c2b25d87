#include "core/signer.h"

#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "core/base64url.h"
#include "core/json_object.h"
#include "core/json_writer.h"
#include "core/jwk.h"
#include "core/signature.h"

namespace jwtgate::core {
namespace {

Status fail(std::string why) { return {Reason::malformed, std::move(why)}; }

std::string_view bytes_of(const unsigned char* p, std::size_t n) { return {reinterpret_cast<const char*>(p), n}; }

bool key_fits(Alg alg, const SigningKey& key) {
  switch (alg_key_type(alg)) {
    case KeyType::oct: return !key.secret.empty() && key.secret.size() >= alg_digest_size(alg);
    case KeyType::rsa: return key.private_key && EVP_PKEY_is_a(key.private_key.get(), "RSA");
    case KeyType::okp: return key.private_key && EVP_PKEY_is_a(key.private_key.get(), "ED25519");
    case KeyType::ec:
      return key.private_key && EVP_PKEY_is_a(key.private_key.get(), "EC") &&
             curve_of(key.private_key.get()) == alg_curve(alg);
  }
  return false;
}

}  // namespace

Result<SigningKey> generate_signing_key(Alg alg) {
  SigningKey key;
  switch (alg_key_type(alg)) {
    case KeyType::oct: {
      std::string secret(alg_digest_size(alg), '\0');
      if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), static_cast<int>(secret.size())) != 1) {
        return fail("random bytes unavailable");
      }
      key.secret = SecretBytes(secret);
      OPENSSL_cleanse(secret.data(), secret.size());
      return key;
    }
    case KeyType::rsa: key.private_key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))); break;
    case KeyType::okp: key.private_key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")); break;
    case KeyType::ec: key.private_key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", std::string(curve_name(alg_curve(alg))).c_str())); break;
  }
  if (!key.private_key) return fail("key generation failed");
  return key;
}

Result<SigningKey> load_signing_key(std::string_view text) {
  SigningKey key;
  if (text.find("-----BEGIN") != std::string_view::npos) {
    BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    key.private_key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key.private_key) return fail("not a PEM private key (a public key cannot sign)");
    return key;
  }
  simdjson::dom::parser parser;
  simdjson::dom::object root;
  if (Status s = parse_json_object(parser, text, false, "key file", root); !s) {
    return fail("key file is neither a PEM private key nor a JWK with an oct key");
  }
  simdjson::dom::element keys;
  simdjson::dom::object jwk = root;
  if (!root.at_key("keys").get(keys)) {
    simdjson::dom::array arr;
    if (keys.get_array().get(arr) || arr.size() != 1 || arr.at(0).get_object().get(jwk)) {
      return fail("key file JWKS must hold exactly one key");
    }
  }
  std::string_view kty, k;
  if (jwk["kty"].get_string().get(kty) || kty != "oct" || jwk["k"].get_string().get(k)) {
    return fail("key file JWK is not an oct key with \"k\"");
  }
  std::string secret;
  if (!base64url_decode(k, secret)) return fail("key file \"k\" is not valid base64url");
  key.secret = SecretBytes(secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  return key;
}

std::string private_key_pem(const SigningKey& key) {
  if (!key.private_key) return {};
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key.private_key.get(), nullptr, nullptr, 0, nullptr, nullptr)) return {};
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string jwks_for(const SigningKey& key, Alg alg, std::string_view kid) {
  std::string jwk;
  if (key.private_key) {
    jwk = public_jwk_json(key.private_key.get(), kid, alg);
  } else {
    JsonWriter w;
    w.begin_object();
    w.key("kty"); w.string("oct");
    w.key("k"); w.string(base64url_encode(key.secret.view()));
    w.key("use"); w.string("sig");
    w.key("alg"); w.string(alg_name(alg));
    if (!kid.empty()) { w.key("kid"); w.string(kid); }
    w.end_object();
    jwk = w.take();
  }
  return "{\"keys\":[" + jwk + "]}";
}

Result<std::string> sign(Alg alg, const SigningKey& key, std::string_view input) {
  if (!key_fits(alg, key)) return fail("the key does not fit algorithm " + std::string(alg_name(alg)));
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  if (alg_family(alg) == AlgFamily::hmac) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    const auto secret = key.secret.view();
    if (!HMAC(fetched_digest(alg), secret.data(), static_cast<int>(secret.size()), in, input.size(), mac, &len)) {
      return fail("HMAC failed");
    }
    return std::string(bytes_of(mac, len));
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, fetched_digest(alg), nullptr, key.private_key.get()) != 1) {
    return fail("signer could not be initialised");
  }
  if (alg_family(alg) == AlgFamily::rsa_pss &&
      (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
    return fail("signer could not be initialised");
  }
  std::size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) != 1) return fail("signing failed");
  std::string sig(len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sig.data());
  if (EVP_DigestSign(ctx.get(), out, &len, in, input.size()) != 1) return fail("signing failed");
  sig.resize(len);
  if (alg_family(alg) != AlgFamily::ecdsa) return sig;
  // JWS wants raw r||s, each padded to the coordinate length (RFC 7518 §3.4), not DER.
  const unsigned char* p = out;
  EcdsaSigPtr ecdsa(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  if (!ecdsa) return fail("ECDSA signature could not be decoded");
  const std::size_t half = ecdsa_signature_size(alg) / 2;
  std::string raw(2 * half, '\0');
  auto* r = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa.get()), r, static_cast<int>(half)) < 0 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa.get()), r + half, static_cast<int>(half)) < 0) {
    return fail("ECDSA signature could not be encoded");
  }
  return raw;
}

Result<std::string> mint_token(Alg alg, const SigningKey& key, std::string_view kid, std::string_view payload_json) {
  JsonWriter h;
  h.begin_object();
  h.key("alg"); h.string(alg_name(alg));
  h.key("typ"); h.string("JWT");
  if (!kid.empty()) { h.key("kid"); h.string(kid); }
  h.end_object();
  std::string token = base64url_encode(h.take());
  token += '.';
  token += base64url_encode(payload_json);
  Result<std::string> sig = sign(alg, key, token);
  if (!sig) return sig.status();
  token += '.';
  token += base64url_encode(*sig);
  return token;
}

}  // namespace jwtgate::core
