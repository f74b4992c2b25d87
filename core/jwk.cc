#include "core/jwk.h"

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>

#include "core/base64url.h"
#include "core/json_object.h"
#include "core/json_writer.h"

namespace jwtgate::core {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

Status skip(std::string reason) { return {Reason::malformed, std::move(reason)}; }

// A member that must be a string when present. Returns false for a present non-string.
bool optional_string(object obj, std::string_view name, std::optional<std::string_view>& out) {
  element e;
  if (obj.at_key(name).get(e)) { out.reset(); return true; }
  std::string_view s;
  if (e.get_string().get(s)) return false;
  out = s;
  return true;
}

Status decode_member(object obj, std::string_view name, std::string& out) {
  std::optional<std::string_view> text;
  if (!optional_string(obj, name, text)) return skip(quoted_detail(name, "is not a string"));
  if (!text) return skip(quoted_detail(name, "is missing"));
  if (!base64url_decode(*text, out) || out.empty()) return skip(quoted_detail(name, "is not valid base64url"));
  return Status::Ok();
}

std::string_view strip_leading_zeros(std::string_view bytes) {
  while (bytes.size() > 1 && bytes.front() == '\0') bytes.remove_prefix(1);
  return bytes;
}

BignumPtr to_bn(std::string_view bytes) {
  return BignumPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), nullptr));
}

EvpPkeyPtr key_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return nullptr;
  }
  return EvpPkeyPtr(raw);
}

Status parse_rsa(object obj, Jwk& key) {
  std::string n_bytes, e_bytes;
  if (Status s = decode_member(obj, "n", n_bytes); !s) return s;
  if (Status s = decode_member(obj, "e", e_bytes); !s) return s;
  std::string_view n = strip_leading_zeros(n_bytes), e = strip_leading_zeros(e_bytes);
  BignumPtr bn_n = to_bn(n), bn_e = to_bn(e);
  if (!bn_n || !bn_e) return skip("RSA parameters could not be read");
  const int bits = BN_num_bits(bn_n.get());
  if (bits < static_cast<int>(kMinRsaBits)) {
    return skip("RSA modulus is " + std::to_string(bits) + " bits; at least " + std::to_string(kMinRsaBits) + " are required");
  }
  if (bits > static_cast<int>(kMaxRsaBits)) return skip("RSA modulus is larger than " + std::to_string(kMaxRsaBits) + " bits");
  if (e.size() > 8 || !BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get())) return skip("RSA public exponent is not valid");
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return skip("RSA key could not be built");
  }
  key.public_key = key_from_params("RSA", bld.get());
  if (!key.public_key) return skip("RSA key could not be built");
  key.bits = static_cast<std::size_t>(bits);
  return Status::Ok();
}

struct CurveInfo {
  Curve curve;
  std::string_view jwk_name;
  std::size_t coordinate_bytes;
  std::size_t bits;
};
constexpr CurveInfo kEcCurves[] = {
    {Curve::p256, "P-256", 32, 256},
    {Curve::p384, "P-384", 48, 384},
    {Curve::p521, "P-521", 66, 521},
};

Status parse_ec(object obj, Jwk& key) {
  std::optional<std::string_view> crv;
  if (!optional_string(obj, "crv", crv) || !crv) return skip("EC key has no \"crv\" string");
  const CurveInfo* info = nullptr;
  for (const auto& c : kEcCurves) {
    if (c.jwk_name == *crv) info = &c;
  }
  if (!info) return skip("EC curve \"" + std::string(crv->substr(0, 16)) + "\" is not supported (P-256, P-384, P-521)");
  std::string x, y;
  if (Status s = decode_member(obj, "x", x); !s) return s;
  if (Status s = decode_member(obj, "y", y); !s) return s;
  if (x.size() != info->coordinate_bytes || y.size() != info->coordinate_bytes) {
    return skip("EC coordinates for " + std::string(info->jwk_name) + " must be exactly " +
                std::to_string(info->coordinate_bytes) + " bytes");
  }
  std::string point;
  point.reserve(1 + 2 * info->coordinate_bytes);
  point += '\x04';
  point += x;
  point += y;
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  const std::string group(info->jwk_name);
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group.c_str(), 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size())) {
    return skip("EC key could not be built");
  }
  key.public_key = key_from_params("EC", bld.get());
  if (!key.public_key) return skip("EC point is not on the curve");
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.public_key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return skip("EC point is not on the curve");
  key.crv = info->curve;
  key.bits = info->bits;
  return Status::Ok();
}

Status parse_okp(object obj, Jwk& key) {
  std::optional<std::string_view> crv;
  if (!optional_string(obj, "crv", crv) || !crv) return skip("OKP key has no \"crv\" string");
  if (*crv != "Ed25519") return skip("OKP curve \"" + std::string(crv->substr(0, 16)) + "\" is not supported (Ed25519)");
  std::string x;
  if (Status s = decode_member(obj, "x", x); !s) return s;
  if (x.size() != 32) return skip("Ed25519 public key must be exactly 32 bytes");
  key.public_key.reset(EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr,
                                                      reinterpret_cast<const unsigned char*>(x.data()), x.size()));
  if (!key.public_key) return skip("Ed25519 key could not be built");
  key.crv = Curve::ed25519;
  key.bits = 256;
  return Status::Ok();
}

Status check_hmac_secret(std::string_view secret) {
  if (secret.size() < kMinHmacSecretBytes) {
    return skip("HMAC secret is " + std::to_string(secret.size()) + " bytes; at least " +
                std::to_string(kMinHmacSecretBytes) + " are required (RFC 7518 §3.2)");
  }
  if (looks_like_public_key(secret)) return skip("HMAC secret is a public key encoding; refusing a key-confusion setup");
  return Status::Ok();
}

Status parse_oct(object obj, Jwk& key) {
  std::string k;
  if (Status s = decode_member(obj, "k", k); !s) return s;
  if (Status s = check_hmac_secret(k); !s) return s;
  key.bits = k.size() * 8;
  key.secret = SecretBytes(k);
  OPENSSL_cleanse(k.data(), k.size());
  return Status::Ok();
}

Status check_usage(object obj) {
  std::optional<std::string_view> use;
  if (!optional_string(obj, "use", use)) return skip("\"use\" is not a string");
  if (use && *use != "sig") return skip("key is for \"use\": \"" + std::string(use->substr(0, 16)) + "\", not \"sig\"");
  element ops;
  if (!obj.at_key("key_ops").get(ops)) {
    simdjson::dom::array arr;
    if (ops.get_array().get(arr)) return skip("\"key_ops\" is not an array");
    bool verify = false;
    for (element op : arr) {
      std::string_view s;
      if (op.get_string().get(s)) return skip("\"key_ops\" holds a non-string");
      if (s == "verify") verify = true;
    }
    if (!verify) return skip("\"key_ops\" does not include \"verify\"");
  }
  return Status::Ok();
}

}  // namespace

bool Jwk::fits(Alg a) const noexcept {
  if (alg && *alg != a) return false;
  if (alg_key_type(a) != kty) return false;
  switch (kty) {
    case KeyType::oct: return secret.size() >= alg_digest_size(a);
    case KeyType::ec:
    case KeyType::okp: return alg_curve(a) == crv;
    case KeyType::rsa: return true;
  }
  return false;
}

Result<Jwk> parse_jwk(object obj) {
  Jwk key;
  std::optional<std::string_view> kty, kid, alg;
  if (!optional_string(obj, "kid", kid)) return skip("\"kid\" is not a string");
  if (kid) {
    if (kid->size() > kMaxKidBytes) return skip("\"kid\" is longer than " + std::to_string(kMaxKidBytes) + " bytes");
    key.kid = std::string(*kid);
    key.has_kid = true;
  }
  if (!optional_string(obj, "kty", kty) || !kty) return skip("\"kty\" is missing or not a string");
  if (Status s = check_usage(obj); !s) return s;
  if (!optional_string(obj, "alg", alg)) return skip("\"alg\" is not a string");
  if (alg) {
    key.alg = alg_from_name(*alg);
    if (!key.alg) return skip("key \"alg\" \"" + std::string(alg->substr(0, 24)) + "\" is not a supported signature algorithm");
  }
  if (*kty == "RSA") key.kty = KeyType::rsa;
  else if (*kty == "EC") key.kty = KeyType::ec;
  else if (*kty == "OKP") key.kty = KeyType::okp;
  else if (*kty == "oct") key.kty = KeyType::oct;
  else return skip("\"kty\" \"" + std::string(kty->substr(0, 16)) + "\" is not supported (RSA, EC, OKP, oct)");

  if (key.kty != KeyType::oct) {
    // A published set must not carry private parts; a key that does is compromised.
    for (std::string_view priv : {"d", "p", "q", "dp", "dq", "qi"}) {
      element ignored;
      if (!obj.at_key(priv).get(ignored)) return skip("key contains private key material; publish only public keys");
    }
  }
  Status s;
  switch (key.kty) {
    case KeyType::rsa: s = parse_rsa(obj, key); break;
    case KeyType::ec: s = parse_ec(obj, key); break;
    case KeyType::okp: s = parse_okp(obj, key); break;
    case KeyType::oct: s = parse_oct(obj, key); break;
  }
  if (!s) return s;
  if (key.alg && (alg_key_type(*key.alg) != key.kty ||
                  (key.kty != KeyType::oct && key.kty != KeyType::rsa && alg_curve(*key.alg) != key.crv))) {
    return skip("key \"alg\" " + std::string(alg_name(*key.alg)) + " does not fit a " +
                std::string(key_type_name(key.kty)) + " key" +
                (key.crv != Curve::none ? " on " + std::string(curve_name(key.crv)) : std::string()));
  }
  if (key.alg && key.kty == KeyType::oct && key.secret.size() < alg_digest_size(*key.alg)) {
    return skip("HMAC secret is shorter than the " + std::string(alg_name(*key.alg)) + " hash output");
  }
  return key;
}

Result<KeySet> parse_jwks(std::string_view json) {
  simdjson::dom::parser parser;
  if (!init_json_parser(parser, json.size())) return Status(Reason::malformed, "JWKS: out of memory");
  object root;
  if (Status s = parse_json_object(parser, json, false, "JWKS", root); !s) return s;
  KeySet set;
  auto add = [&set](std::size_t index, object key_obj) {
    std::string kid;
    std::string_view kid_view;
    if (!key_obj["kid"].get_string().get(kid_view)) kid = std::string(kid_view.substr(0, kMaxKidBytes));
    if (set.keys.size() >= kMaxKeysPerSet) {
      set.skipped.push_back({index, kid, "more than " + std::to_string(kMaxKeysPerSet) + " keys in one set"});
      return;
    }
    Result<Jwk> key = parse_jwk(key_obj);
    if (key) set.keys.push_back(std::move(key.value()));
    else set.skipped.push_back({index, kid, key.status().detail()});
  };
  element keys;
  if (root.at_key("keys").get(keys)) {
    element kty;
    if (root.at_key("kty").get(kty)) return Status(Reason::malformed, "JWKS has no \"keys\" array");
    add(0, root);
  } else {
    simdjson::dom::array arr;
    if (keys.get_array().get(arr)) return Status(Reason::malformed, "JWKS \"keys\" is not an array");
    std::size_t index = 0;
    for (element e : arr) {
      object key_obj;
      if (e.get_object().get(key_obj)) set.skipped.push_back({index, "", "key is not a JSON object"});
      else add(index, key_obj);
      ++index;
    }
  }
  if (set.keys.empty()) {
    std::string detail = "JWKS has no usable key";
    for (const auto& k : set.skipped) {
      detail += "; key " + std::to_string(k.index) + (k.kid.empty() ? "" : " (kid \"" + k.kid + "\")") + ": " + k.reason;
    }
    return Status(Reason::malformed, std::move(detail));
  }
  return set;
}

Result<Jwk> jwk_from_hmac_secret(std::string_view secret, std::string kid) {
  if (Status s = check_hmac_secret(secret); !s) return s;
  Jwk key;
  key.kty = KeyType::oct;
  key.has_kid = !kid.empty();
  key.kid = std::move(kid);
  key.secret = SecretBytes(secret);
  key.bits = secret.size() * 8;
  return key;
}

bool looks_like_public_key(std::string_view bytes) {
  if (bytes.find("-----BEGIN") != std::string_view::npos) return true;
  for (std::string_view prefix : {"ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-"}) {
    if (bytes.substr(0, prefix.size()) == prefix) return true;
  }
  if (!bytes.empty() && bytes.front() == '\x30') {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    EvpPkeyPtr spki(d2i_PUBKEY(nullptr, &p, static_cast<long>(bytes.size())));
    if (spki) return true;
    p = reinterpret_cast<const unsigned char*>(bytes.data());
    EvpPkeyPtr pkcs1(d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, static_cast<long>(bytes.size())));
    if (pkcs1) return true;
  }
  return false;
}

namespace {

std::string bn_param_b64(const EVP_PKEY* key, const char* name, std::size_t pad_to) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return {};
  BignumPtr bn(raw);
  std::string bytes(pad_to ? pad_to : static_cast<std::size_t>(BN_num_bytes(bn.get())), '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size())) < 0) return {};
  return base64url_encode(bytes);
}

}  // namespace

Curve curve_of(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519")) return Curve::ed25519;
  if (!EVP_PKEY_is_a(key, "EC")) return Curve::none;
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) return Curve::none;
  const std::string_view g(group, len);
  if (g == "prime256v1" || g == "P-256") return Curve::p256;
  if (g == "secp384r1" || g == "P-384") return Curve::p384;
  if (g == "secp521r1" || g == "P-521") return Curve::p521;
  return Curve::none;
}

std::string public_jwk_json(const EVP_PKEY* key, std::string_view kid, std::optional<Alg> alg) {
  JsonWriter w;
  w.begin_object();
  if (EVP_PKEY_is_a(key, "RSA")) {
    w.key("kty"); w.string("RSA");
    w.key("n"); w.string(bn_param_b64(key, OSSL_PKEY_PARAM_RSA_N, 0));
    w.key("e"); w.string(bn_param_b64(key, OSSL_PKEY_PARAM_RSA_E, 0));
  } else if (EVP_PKEY_is_a(key, "EC")) {
    const Curve curve = curve_of(key);
    const CurveInfo* info = &kEcCurves[0];
    for (const auto& c : kEcCurves) {
      if (c.curve == curve) info = &c;
    }
    w.key("kty"); w.string("EC");
    w.key("crv"); w.string(info->jwk_name);
    w.key("x"); w.string(bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, info->coordinate_bytes));
    w.key("y"); w.string(bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, info->coordinate_bytes));
  } else if (EVP_PKEY_is_a(key, "ED25519")) {
    unsigned char x[32];
    std::size_t len = sizeof x;
    EVP_PKEY_get_raw_public_key(key, x, &len);
    w.key("kty"); w.string("OKP");
    w.key("crv"); w.string("Ed25519");
    w.key("x"); w.string(base64url_encode(std::string_view(reinterpret_cast<char*>(x), len)));
  }
  w.key("use"); w.string("sig");
  if (alg) { w.key("alg"); w.string(alg_name(*alg)); }
  if (!kid.empty()) { w.key("kid"); w.string(kid); }
  w.end_object();
  return w.take();
}

}  // namespace jwtgate::core
