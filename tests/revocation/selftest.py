"""`e2e.py --selftest`: the revocation suite's own helpers, without jwtgate — Redis started through
the redis-server symlink (plain, persistent across a restart, with a password), the RESP client
and subscriber, the key names of the data model, tokens checked by an independent library
(python3-jwt), the ConfigMap swaps seen through the symlinks, and the upstream oracle."""
import json
import os
import time

import jwt  # python3-jwt: an independent check of the tokens e2e.py signs itself


class FakeGate:
    """Client.send against the upstream directly: what a jwtgate that lets everything pass does."""

    def __init__(self, name, port):
        self.name, self.port = name, port


def run_all(run, e, tmp):
    expect, Failure = e.expect, e.Failure
    state = {}

    def redis_basics():
        r = e.Redis("plain", tmp)
        state["plain"] = r
        r.start()
        expect(r.call("SET", "k", "v", "EX", 5) == "OK", "SET")
        expect(r.call("GET", "k") == "v", "GET")
        expect(1 <= r.call("TTL", "k") <= 5, "TTL")
        expect(r.call("EXISTS", "k") == 1 and r.call("EXISTS", "nope") == 0, "EXISTS")
        expect(r.call("GET", "nope") is None, "GET of a missing key")
        exat = int(time.time()) + 2
        r.call("SET", "short", "x", "EXAT", exat)
        e.wait_for("a key with EXAT 2 s ahead gone", lambda: r.call("EXISTS", "short") == 0, 4.0, 0.1)
        for i in range(30):
            r.call("SET", f"{e.KEY_PREFIX}jti:{i}", "{}")
        keys = r.scan(e.KEY_PREFIX + "*")
        expect(len(keys) == 30, f"SCAN found {len(keys)} keys")
        sub = r.subscribe()
        try:
            n = r.call("PUBLISH", e.CHANNEL, '{"jti":"x","exp":1}')
            expect(n == 1, f"PUBLISH reached {n} subscribers")
            expect(sub.message(2.0) == '{"jti":"x","exp":1}', "the subscriber got the message")
            expect(sub.message(0.2) is None, "a second message out of nowhere")
        finally:
            sub.close()
        try:
            r.call("NOSUCHCOMMAND")
            raise Failure("an unknown command did not raise RedisError")
        except e.RedisError:
            pass
        r.stop()
        expect(not r.running(), "Redis still running after stop")
        try:
            r.call("PING")
            raise Failure("PING answered after stop")
        except OSError:
            pass

    def redis_persistent_restart():
        r = e.Redis("persist", tmp, persistent=True)
        r.start()
        port = r.port
        r.call("SET", "survives", "yes", "EX", 600)
        r.stop()
        r.start()
        expect(r.port == port, "the port changed over the restart")
        expect(r.call("GET", "survives") == "yes", "the key did not survive the restart")
        expect(500 < r.call("TTL", "survives") <= 600, "the TTL did not survive the restart")
        r.stop()

    def redis_password():
        r = e.Redis("pw", tmp, password="pw-selftest")
        r.start()
        expect(r.call("SET", "a", "b") == "OK", "SET with AUTH")
        try:
            with e.Resp(r.port) as conn:
                conn.call("GET", "a")
            raise Failure("GET without AUTH succeeded")
        except e.RedisError as err:
            expect("NOAUTH" in str(err), f"without AUTH: {err}")
        r.stop()

    def key_names():
        # What jwtgate revoke wrote for jti "abc" (kind digit, byte length, ':', value; 16 bytes).
        expect(e.jti_key("abc", 100) == e.KEY_PREFIX + "jti:8f25c948b8222a693c8d4e322fe45773:100", "jti key")
        import hashlib
        want = hashlib.sha256(b"124:https://idp.example.com/5:alice").digest()[:16].hex()
        expect(e.sub_key("https://idp.example.com/", "alice", 5, 9) == e.KEY_PREFIX + "sub:" + want + ":5:9", "sub key")
        want = hashlib.sha256(b"224:https://idp.example.com/5:alice").digest()[:16].hex()
        expect(e.sid_key("https://idp.example.com/", "alice", 9, "p:") == "p:sid:" + want + ":9", "sid key with a prefix")

    def tokens():
        k = e.Keys(tmp)
        jwks = json.load(open(k.jwks))
        es = jwt.PyJWK(jwks["keys"][0]).key
        rs = jwt.PyJWK(jwks["keys"][1]).key
        t = k.access(sid="s1")
        claims = jwt.decode(t, es, algorithms=["ES256"], audience=e.AUDIENCE, issuer=e.ISSUER)
        expect(claims == t.claims and claims["sid"] == "s1" and claims["sub"] == "alice", f"access claims {claims}")
        no_iat = k.access(iat=e.DROP)
        expect("iat" not in jwt.decode(no_iat, es, algorithms=["ES256"], audience=e.AUDIENCE), "DROP iat")
        try:
            jwt.decode(k.access(forged=True), es, algorithms=["ES256"], audience=e.AUDIENCE)
            raise Failure("a forged access token verified")
        except jwt.InvalidSignatureError:
            pass
        lo = k.logout(sid="s2")
        expect(jwt.get_unverified_header(lo) == {"alg": "RS256", "typ": "logout+jwt", "kid": "idp-rsa"},
               f"logout header {jwt.get_unverified_header(lo)}")
        c = jwt.decode(lo, rs, algorithms=["RS256"], audience=e.AUDIENCE, issuer=e.ISSUER)
        expect(c["events"] == {e.LOGOUT_EVENT: {}} and c["sid"] == "s2" and "jti" in c and "iat" in c,
               f"logout claims {c}")
        expect("typ" not in jwt.get_unverified_header(k.logout(header={"typ": None}, sid="x")), "typ removed")
        try:
            jwt.decode(k.logout(key=k.rs_forged, sid="x"), rs, algorithms=["RS256"], audience=e.AUDIENCE)
            raise Failure("a forged logout token verified")
        except jwt.InvalidSignatureError:
            pass
        none = k.logout(header={"alg": "none"}, sid="x")
        expect(none.endswith("."), "alg none has an empty signature")

    def configmap():
        cm = e.ConfigMapDir(os.path.join(tmp, "cm"), "revoked.jsonl", "one\n")
        expect(e.read(cm.file) == "one\n", "first version")
        first = os.readlink(os.path.join(cm.path, "..data"))
        cm.swap("two\n")
        expect(e.read(cm.file) == "two\n", "after the swap")
        expect(os.readlink(os.path.join(cm.path, "..data")) != first, "..data not swapped")
        expect(not os.path.exists(os.path.join(cm.path, first)), "the old version was not removed")
        expect(os.readlink(cm.file) == os.path.join("..data", "revoked.jsonl"), "the file's link")
        lines = e.entry_lines({"jti": "a", "exp": 1}).splitlines()
        expect(lines[0].startswith("#") and lines[1] == "" and json.loads(lines[2]) == {"jti": "a", "exp": 1},
               f"entry_lines {lines}")

    def upstream_oracle():
        up = e.Upstream(tmp)
        try:
            client = e.Client(up)
            a = client.send(FakeGate("direct", up.port), "tok")
            expect(a.status == 200 and a.received, f"direct to the upstream: {a}")
            expect(up.seen() == [], "seen not cleared by send")
        finally:
            up.stop()

    def cli_helper():
        code, out, err = e.cli("/bin/echo", ["hello"])
        expect(code == 0 and out == "hello\n", f"cli(/bin/echo): {code} {out!r}")

    run.case("selftest: Redis via the redis-server symlink: SET/GET/TTL/EXISTS/EXAT/SCAN/PUBLISH/SUBSCRIBE, stop",
             redis_basics)
    run.case("selftest: a persistent Redis keeps keys and TTLs over a restart on the same port",
             redis_persistent_restart)
    run.case("selftest: a requirepass Redis needs AUTH", redis_password)
    run.case("selftest: key names of the data model", key_names)
    run.case("selftest: tokens verify with python3-jwt; forged ones do not; logout token header and claims", tokens)
    run.case("selftest: ConfigMap swaps seen through ..data", configmap)
    run.case("selftest: the upstream oracle", upstream_oracle)
    run.case("selftest: cli helper", cli_helper)
    if state.get("plain") and state["plain"].running():
        state["plain"].stop()
