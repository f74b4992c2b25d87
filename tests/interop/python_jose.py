#!/usr/bin/python3
"""Independent JOSE implementations for jwtgate's interop test (Debian's python3-jwt and
python3-jwcrypto).

  python_jose.py make    -> prints {"jwks":{...}, "tokens":[{"lib","alg","token"}], "now":N}
                            tokens signed by PyJWT and by jwcrypto for every algorithm
  python_jose.py check   <- reads {"jwks":{...}, "tokens":[{"alg","token"}]} on stdin
                         -> prints {"results":[{"alg","valid","error"}]} verified by jwcrypto
"""
import base64
import json
import os
import sys
import time

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwcrypto import jwk, jws
from jwcrypto import jwt as jcjwt

ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512", "EdDSA"]
CURVES = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
HASH_BYTES = {"256": 32, "384": 48, "512": 64}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(alg):
    """Returns (pyjwt signing key, jwcrypto private JWK, public JWK dict)."""
    if alg.startswith("HS"):
        secret = os.urandom(HASH_BYTES[alg[2:]])
        key = jwk.JWK(kty="oct", k=b64url(secret))
        return secret, key, json.loads(key.export(private_key=True))
    if alg.startswith(("RS", "PS")):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg in CURVES:
        private = ec.generate_private_key(CURVES[alg])
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    key = jwk.JWK.from_pyca(private)
    return private, key, json.loads(key.export_public())


def make():
    now = int(time.time())
    claims = {"iss": "https://idp.test/", "aud": "api", "sub": "alice", "iat": now, "exp": now + 300,
              "realm_access": {"roles": ["admin"]}}
    keys, tokens = [], []
    for alg in ALGS:
        signing, private_jwk, public = make_key(alg)
        kid = "py-" + alg
        public.update({"kid": kid, "alg": alg, "use": "sig"})
        keys.append(public)
        tokens.append({"lib": "pyjwt", "alg": alg,
                       "token": pyjwt.encode(claims, signing, algorithm=alg, headers={"kid": kid})})
        signed = jcjwt.JWT(header={"alg": alg, "kid": kid, "typ": "JWT"}, claims=claims)
        signed.make_signed_token(private_jwk)
        tokens.append({"lib": "jwcrypto", "alg": alg, "token": signed.serialize()})
    json.dump({"jwks": {"keys": keys}, "tokens": tokens, "now": now}, sys.stdout)


def check():
    request = json.load(sys.stdin)
    keyset = jwk.JWKSet.from_json(json.dumps(request["jwks"]))
    results = []
    for item in request["tokens"]:
        try:
            token = jws.JWS()
            token.deserialize(item["token"])
            kid = token.jose_header.get("kid")
            token.verify(keyset.get_key(kid), alg=item["alg"])
            results.append({"alg": item["alg"], "valid": True, "error": ""})
        except Exception as exc:  # every failure is reported, none is fatal
            results.append({"alg": item["alg"], "valid": False, "error": repr(exc)})
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]]()
