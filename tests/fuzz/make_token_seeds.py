#!/usr/bin/python3
"""Writes the fixed key set the token fuzzer verifies against and its seed tokens.

Signed with Debian's python3-cryptography, not with jwtgate's own signer, so a seed that
verifies says two implementations agree. The private keys under keys/ are test keys, used for
nothing else; they are kept in the tree so the seeds stay reproducible. Run it again only when the
key set changes (it rewrites keys/verify.jwks.json and corpus/token_verify/gen-*).
"""
import base64
import hashlib
import hmac
import json
import os
import pathlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

HERE = pathlib.Path(__file__).resolve().parent
KEYS = HERE / "keys"
CORPUS = HERE / "corpus" / "token_verify"

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def uint(n: int, size: int) -> str:
    return b64(n.to_bytes(size, "big"))

def load_or_make(name, make):
    path = KEYS / f"{name}.pem"
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), None)
    key = make()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key

KEYS.mkdir(exist_ok=True)
CORPUS.mkdir(parents=True, exist_ok=True)
rsa_key = load_or_make("rsa", lambda: rsa.generate_private_key(65537, 2048))
ec_keys = {crv: load_or_make(name, lambda c=c: ec.generate_private_key(c))
           for crv, name, c in (("P-256", "p256", ec.SECP256R1()), ("P-384", "p384", ec.SECP384R1()),
                                ("P-521", "p521", ec.SECP521R1()))}
ed_key = load_or_make("ed25519", ed25519.Ed25519PrivateKey.generate)
secret_path = KEYS / "hmac.secret"
if not secret_path.exists():
    secret_path.write_bytes(os.urandom(64))
secret = secret_path.read_bytes()

ec_size = {"P-256": 32, "P-384": 48, "P-521": 66}
pub_rsa = rsa_key.public_key().public_numbers()
jwks = [
    {"kty": "oct", "kid": "hmac", "k": b64(secret)},
    {"kty": "RSA", "kid": "rsa", "n": uint(pub_rsa.n, 256), "e": uint(pub_rsa.e, 3)},
    *({"kty": "EC", "kid": crv.lower().replace("-", ""), "crv": crv,
       "x": uint(k.public_key().public_numbers().x, ec_size[crv]),
       "y": uint(k.public_key().public_numbers().y, ec_size[crv])} for crv, k in ec_keys.items()),
    {"kty": "OKP", "kid": "ed25519", "crv": "Ed25519",
     "x": b64(ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))},
    # The published example keys (RFC 7515 A.1-A.4, RFC 8037 A.2), without kid as published, so the
    # RFC example tokens in the corpus verify too.
    {"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"},
    {"kty": "RSA", "e": "AQAB",
     "n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"
          "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"
          "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"},
    {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
     "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
    {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
]
(KEYS / "verify.jwks.json").write_text(json.dumps({"keys": jwks}, indent=1) + "\n")

def sign(alg: str, data: bytes) -> bytes:
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}.get(alg[2:])
    if alg.startswith("HS"):
        return hmac.new(secret, data, getattr(hashlib, "sha" + alg[2:])).digest()
    if alg.startswith("RS"):
        return rsa_key.sign(data, padding.PKCS1v15(), digest)
    if alg.startswith("PS"):
        return rsa_key.sign(data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
    if alg.startswith("ES"):
        crv = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
        r, s = utils.decode_dss_signature(ec_keys[crv].sign(data, ec.ECDSA(digest)))
        return r.to_bytes(ec_size[crv], "big") + s.to_bytes(ec_size[crv], "big")
    return ed_key.sign(data)

KID = {"HS": "hmac", "RS": "rsa", "PS": "rsa", "ES256": "p256", "ES384": "p384", "ES512": "p521", "EdDSA": "ed25519"}
CLAIMS = {"iss": "https://idp.test/", "aud": "api", "sub": "alice", "iat": 1700000000, "exp": 1700000300,
          "scope": "read write", "realm_access": {"roles": ["admin", "user"]}, "https://example.com/tenant": "t1"}

def token(header, claims=CLAIMS, alg=None, sig=None) -> str:
    h = b64(json.dumps(header, separators=(",", ":")).encode())
    p = b64(claims if isinstance(claims, bytes) else json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{h}.{p}".encode()
    s = sig if sig is not None else sign(alg or header["alg"], signing_input)
    return f"{h}.{p}.{b64(s)}"

def write(name, text):
    (CORPUS / f"gen-{name}").write_text(text)

ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512", "EdDSA"]
for alg in ALGS:
    kid = KID.get(alg, KID.get(alg[:2]))
    write(f"{alg}-kid", token({"alg": alg, "typ": "JWT", "kid": kid}))
    write(f"{alg}-nokid", token({"alg": alg}))
# Attacks: each must never verify.
rsa_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
confused = token({"alg": "HS256", "kid": "rsa"}, sig=b"")
h, p, _ = confused.split(".")
write("confusion-HS256-rsa-pem", f"{h}.{p}." + b64(hmac.new(rsa_pem, f"{h}.{p}".encode(), hashlib.sha256).digest()))
write("none", token({"alg": "none"}, sig=b""))
write("NoNe-kid", token({"alg": "NoNe", "kid": "hmac"}, sig=b""))
write("empty-signature", token({"alg": "HS256", "kid": "hmac"}, sig=b""))
write("ES256-zero-signature", token({"alg": "ES256", "kid": "p256"}, sig=bytes(64)))
der = ec_keys["P-256"].sign(b"x", ec.ECDSA(hashes.SHA256()))
write("ES256-der-signature", token({"alg": "ES256", "kid": "p256"}, sig=der))
write("ES256-signed-with-p384", token({"alg": "ES256", "kid": "p384"}, alg="ES384"))
write("EdDSA-kid-rsa", token({"alg": "EdDSA", "kid": "rsa"}))
write("crit", token({"alg": "HS256", "kid": "hmac", "crit": ["exp"], "exp": 1}))
write("b64-false", token({"alg": "HS256", "kid": "hmac", "b64": False, "crit": ["b64"]}))
write("jwe", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d")
write("duplicate-claims", token({"alg": "HS256", "kid": "hmac"}, claims=b'{"sub":"alice","sub":"admin","exp":1700000300}'))
write("nested-claims", token({"alg": "HS256", "kid": "hmac"}, claims=(b'{"a":' * 40) + b"1" + b"}" * 40))
write("kid-traversal", token({"alg": "HS256", "kid": "../../../dev/null"}))
write("expired", token({"alg": "RS256", "kid": "rsa"}, claims={**CLAIMS, "exp": 1600000000}))
write("claims-types", token({"alg": "HS256", "kid": "hmac"},
                            claims={"exp": "1700000300", "aud": ["x", 1], "scp": ["a", 2], "nbf": None, "iat": 1e300}))
