#!/usr/bin/python3
"""Revocation and OIDC back-channel logout end to end (issue 18): real Redis 7 servers, several
jwtgates sharing them, `jwtgate revoke`, a test IdP's logout tokens and a ConfigMap-style
revocation file, judged by what a recording upstream received and what the client was answered.

    e2e.py [--jwtgate build/jwtgate] [-k SUBSTRING] [--keep]
    e2e.py --selftest [-k SUBSTRING]      the test's own helpers (Redis, RESP client, tokens,
                                          ConfigMap swaps, upstream), no jwtgate

The jwtgate binary comes from --jwtgate, else $JWTGATE, else build/jwtgate under the repository.

Redis: Debian's Redis 7 server is /usr/bin/redis-check-rdb (package redis-tools), which picks its
role from argv[0]; each Redis runs as a `redis-server` symlink to it in its own directory, bound to
127.0.0.1 on a free port. The test talks to Redis with its own small RESP client (no redis module).
  shared   persistent (appendonly, fsync always): jwtgates a and b; restarted mid-run
  late     persistent, not started until the "unavailable" cases: jwtgates deny and keep;
           later stopped, frozen (SIGSTOP) and restarted
  auth     requirepass, and an ACL user `rev` limited to its key prefix and channel: jwtgate pw
  tls      a TLS port (a CA made here with the openssl CLI) beside a plain one for the test's
           own looks: jwtgates tls and tlsbad

The jwtgates (each with its own config, admin listener and log, two workers):
  a       Redis shared, resync_interval 1s, backchannel_logout (providers [corp], entry_ttl 1h)
  b       Redis shared, resync_interval 1h: what it learns comes by pub/sub or by the full load
          at (re)connect only; backchannel_logout
  deny    Redis late, on_unavailable: deny, ready_requires_sync: true
  keep    Redis late, on_unavailable: keep (the default spelled out)
  file    revocation.file in a Kubernetes ConfigMap-style directory (..data symlink swaps)
  append  revocation.file a plain file that `jwtgate revoke --file` appends to
  pw      Redis auth as ACL user rev (username + password_file), custom key_prefix and channel
  tls     rediss:// with ca_file the CA that signed Redis's certificate
  tlsbad  rediss:// with ca_file another CA (never connects)
Upstreams: tests/support/upstream.py (its /__seen record is the oracle for what passed) and
tests/h2/grpc_server.py behind the /echo.Echo route (h2c) for the gRPC answers.
Providers (every jwtgate): corp (the test IdP's issuer: ES256 access tokens, RS256 logout tokens,
one JWKS file) and partner (another issuer, same keys) for the issuer-scoping controls.

Every refusal case has a control: the same token (or a sibling differing only in the revoked
property) passes before, or beside, it. "Within 1 s" polls for at most 1 s after `jwtgate revoke`
exits (or the logout's 200). Prints PASS/FAIL per case, exits 1 if any failed. Debian's
/usr/bin/python3 (python3-cryptography; python3-h2, python3-grpcio and python3-jwt, which
tests/h2/e2e.py imports: its process, gRPC and HTTP/1.1 helpers serve here too, as do a few of
tests/tls/e2e.py's). Every wait is bounded; every process started is stopped at the end.
"""
import argparse
import hashlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from ports import free_port  # noqa: E402


def suite_module(suite):
    """tests/SUITE/e2e.py, imported as SUITE_e2e for its helpers (as tests/h2/hardening.py imports
    tests/h2/e2e.py). Not by `import e2e`: this file is an e2e.py too, and would find itself."""
    name = f"{suite}_e2e"
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tests", suite, "e2e.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


h2_e2e = suite_module("h2")
tls_e2e = suite_module("tls")
sys.path.insert(0, HERE)  # selftest.py, ahead of the directories the two put on the path
# Failure is h2's: what its helpers (Server, Jwtgate, Pki) raise is what Run.case catches. tls's
# helpers raise their own: only wait_for uses one that can, and it raises h2's instead.
from h2_e2e import (GRPC_SERVER, PYTHON, UPSTREAM, Failure, b64url, expect, grpc_status_of, metric,  # noqa: E402
                    raw_grpc)
from tls_e2e import read  # noqa: E402

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

REDIS_BINARY = "/usr/bin/redis-check-rdb"  # Debian's Redis 7 server; its role comes from argv[0]

ISSUER = "https://idp.example.com/"
PARTNER = "https://partner.example.com/"
AUDIENCE = "orders-api"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
KEY_PREFIX = "jwtgate:revoked:"
CHANNEL = "jwtgate:revocations"
PW_PREFIX = "pw:rev:"
PW_CHANNEL = "pw:revocations"
ENTRY_TTL = 3600  # backchannel_logout.entry_ttl of a and b
WAIT = 20.0       # a process coming up
PROPAGATION = 1.0  # the issue's bound: a revocation reaches every sidecar within a second
RELOAD = 5.0      # a file swap or append applied ("within a few seconds")
RECONNECT = 8.0   # jwtgate reconnecting to a Redis that came back
BULK = 3000       # keys written straight into Redis for the paged full load (SCAN COUNT 1000)
FROZEN = 8.0      # an unanswering Redis noticed (resync_interval 1s + a command timeout + slack)
SKEW = 5          # providers' clock_skew (s): tokens minted up to a few seconds ahead still pass
DROP = object()   # a claim left out of a token


def write(path, text, mode=0o644):
    """h2's write, then MODE (the ACL user's password file is 0600)."""
    h2_e2e.write(path, text)
    os.chmod(path, mode)
    return path


def sha256_hex(*parts):
    """Hex SHA-256 of the parts joined by NUL: jti alone, or iss "\\0" sub / iss "\\0" sid."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def unique(label):
    return f"{label}-{uuid.uuid4().hex[:12]}"


def wait_for(what, predicate, timeout, interval=0.05):
    """tls's wait_until: polls PREDICATE until it returns something true; its value, or (h2's)
    Failure after TIMEOUT s. tls's own Failure is not the one Run.case catches."""
    try:
        return tls_e2e.wait_until(what, predicate, timeout, interval)
    except tls_e2e.Failure:
        raise Failure(f"{what}: not within {timeout:g} s") from None


# --- Redis ---------------------------------------------------------------------------------------

class RedisError(Exception):
    pass


class Resp:
    """A minimal RESP2 client: enough for GET/SET/TTL/EXISTS/SCAN/PUBLISH/SUBSCRIBE/AUTH."""

    def __init__(self, port, password=None, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        if password is not None:
            self.call("AUTH", password)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, int):
                a = str(a)
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n + 2)[:-2].decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RedisError(f"unexpected RESP reply {line[:40]!r}")

    def call(self, *args):
        self.send(*args)
        return self.reply()

    def scan(self, match):
        cursor, keys = "0", []
        for _ in range(10000):
            cursor, batch = self.call("SCAN", cursor, "MATCH", match, "COUNT", 1000)
            keys += batch
            if cursor == "0":
                return sorted(set(keys))
        raise Failure("SCAN did not finish")


class Subscriber:
    """SUBSCRIBEd to one channel; message() returns the next message's payload or None."""

    def __init__(self, port, channel, password=None):
        self.conn = Resp(port, password)
        self.seen = []
        reply = self.conn.call("SUBSCRIBE", channel)
        expect(reply and reply[0] == "subscribe", f"SUBSCRIBE {channel}: {reply}")

    def find(self, predicate, timeout):
        """The first message within TIMEOUT s whose parsed JSON satisfies PREDICATE (None if
        none); every message seen meanwhile is kept in self.seen."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.message(max(0.0, deadline - time.monotonic()))
            if m is None:
                return None
            self.seen.append(m)
            try:
                if predicate(json.loads(m)):
                    return m
            except ValueError:
                pass

    def message(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.conn.sock.settimeout(left)
            try:
                reply = self.conn.reply()
            except socket.timeout:
                return None
            if isinstance(reply, list) and reply and reply[0] == "message":
                return reply[2]

    def close(self):
        self.conn.close()


class Redis:
    """One Redis 7 server in its own directory, on a port fixed for its life (restarts keep it)."""

    def __init__(self, name, tmp, persistent=False, password=None, tls=None, acl=None):
        self.name = name
        self.acl = acl  # (user, password, [rules]): an ACL user beside the default one
        self.tls = tls  # (cert, key, ca): also a TLS port; the plain one stays for the test's own looks
        self.tls_port = free_port() if tls else None
        self.dir = os.path.join(tmp, "redis-" + name)
        os.makedirs(self.dir)
        self.binary = os.path.join(self.dir, "redis-server")
        os.symlink(REDIS_BINARY, self.binary)
        self.persistent = persistent
        self.password = password
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc = None
        self.starts = 0

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    @property
    def tls_url(self):
        return f"rediss://127.0.0.1:{self.tls_port}"

    def start(self):
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--daemonize", "no", "--protected-mode", "yes"]
        if self.persistent:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.acl:
            user, password, rules = self.acl
            argv += ["--user", user, "on", ">" + password, *rules]
        if self.tls:
            cert, key, ca = self.tls
            argv += ["--tls-port", str(self.tls_port), "--tls-cert-file", cert, "--tls-key-file", key,
                     "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        self.starts += 1
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"redis {self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if self.call("PING") == "PONG":
                    return self
            except (OSError, RedisError):
                pass
            time.sleep(0.05)
        raise Failure(f"redis {self.name} not answering PING on {self.port} within {WAIT} s:\n{self.tail()}")

    def freeze(self):
        """SIGSTOP: a partition as jwtgate sees it: connections stay open, nothing answers."""
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def stop(self):
        """SIGTERM: Redis shuts down cleanly (the append-only file is complete)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if getattr(self, "frozen", False):
                self.thaw()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def call(self, *args):
        with Resp(self.port, self.password) as r:
            return r.call(*args)

    def scan(self, match):
        with Resp(self.port, self.password) as r:
            return r.scan(match)

    def subscribe(self, channel=CHANNEL):
        return Subscriber(self.port, channel, self.password)

    def tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


def entry_digest_hex(kind, iss, value):
    """jwtgate's entry digest (core/revocation.cc): the first 16 bytes of SHA-256 over the kind's
    digit, then (but for jti) len(iss) ":" iss, then len(value) ":" value, lengths in bytes."""
    data = str(kind).encode()
    if kind != 0:
        data += str(len(iss.encode())).encode() + b":" + iss.encode()
    data += str(len(value.encode())).encode() + b":" + value.encode()
    return hashlib.sha256(data).digest()[:16].hex()


# The keys `jwtgate revoke` writes (README: any key under the prefix works for readers; these make
# a second revocation of the same thing overwrite the first).
def jti_key(jti, exp, prefix=KEY_PREFIX):
    return f"{prefix}jti:{entry_digest_hex(0, '', jti)}:{exp}"


def sub_key(iss, sub, before, exp, prefix=KEY_PREFIX):
    return f"{prefix}sub:{entry_digest_hex(1, iss, sub)}:{before}:{exp}"


def sid_key(iss, sid, exp, prefix=KEY_PREFIX):
    return f"{prefix}sid:{entry_digest_hex(2, iss, sid)}:{exp}"


# --- keys and tokens -----------------------------------------------------------------------------

def sign(header, claims, key):
    """A compact JWS made here (not by a JWT library), so every header and claim is as written."""
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    data = f"{head}.{body}".encode()
    alg = header.get("alg")
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "RS256":
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "none":
        sig = b""
    else:
        raise ValueError(f"cannot sign {alg}")
    return f"{head}.{body}.{b64url(sig)}"


class Token(str):
    """A compact JWT that remembers its claims."""

    def __new__(cls, text, claims, header):
        t = super().__new__(cls, text)
        t.claims = claims
        t.header = header
        return t


def _apply(base, changes):
    out = dict(base)
    for k, v in changes.items():
        if v is DROP:
            out.pop(k, None)
        else:
            out[k] = v
    return out


class Keys:
    """The test IdP: an ES256 key (k1) for access tokens and an RS256 key (idp-rsa) for logout
    tokens, both in one JWKS file; forged keys with the same kids that no JWKS holds."""

    def __init__(self, tmp):
        self.es = ec.generate_private_key(ec.SECP256R1())
        self.rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.es_forged = ec.generate_private_key(ec.SECP256R1())
        self.rs_forged = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        en = self.es.public_key().public_numbers()
        rn = self.rs.public_key().public_numbers()
        self.jwk_es = {"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
                       "x": b64url(en.x.to_bytes(32, "big")), "y": b64url(en.y.to_bytes(32, "big"))}
        self.jwk_rs = {"kty": "RSA", "kid": "idp-rsa", "alg": "RS256", "use": "sig",
                       "n": b64url(rn.n.to_bytes((rn.n.bit_length() + 7) // 8, "big")),
                       "e": b64url(rn.e.to_bytes((rn.e.bit_length() + 7) // 8, "big"))}
        self.jwks = write(os.path.join(tmp, "jwks.json"), json.dumps({"keys": [self.jwk_es, self.jwk_rs]}))

    def access(self, forged=False, **changes):
        """An ES256 access token of corp (sub alice, iat 5 s ago, exp in 10 min, a fresh jti);
        CHANGES override claims (DROP removes one)."""
        now = int(time.time())
        claims = _apply({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now - 5, "exp": now + 600,
                         "jti": unique("at")}, changes)
        header = {"alg": "ES256", "typ": "JWT", "kid": "k1"}
        return Token(sign(header, claims, self.es_forged if forged else self.es), claims, header)

    def logout(self, header=None, key=None, **changes):
        """An RS256 logout token of corp: iss, aud, iat now, exp in 2 min, a fresh jti, the
        back-channel logout event; add sid= and/or sub=. HEADER overrides header fields (None
        removes one)."""
        now = int(time.time())
        claims = _apply({"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 120, "jti": unique("lo"),
                         "events": {LOGOUT_EVENT: {}}}, changes)
        hdr = {"alg": "RS256", "typ": "logout+jwt", "kid": "idp-rsa"}
        for k, v in (header or {}).items():
            if v is None:
                hdr.pop(k, None)
            else:
                hdr[k] = v
        return Token(sign(hdr, claims, key or self.rs), claims, hdr)

    def pem(self, key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


# --- the ConfigMap-style directory ---------------------------------------------------------------

class ConfigMapDir:
    """What the kubelet's AtomicWriter makes of a ConfigMap volume: NAME is a symlink through
    ..data to a timestamped directory; an update writes a new timestamped directory, points a
    ..data_tmp link at it, renames that over ..data (one atomic step) and removes the old one."""

    def __init__(self, path, name, text):
        self.path = path
        self.name = name
        os.makedirs(path)
        self.generation = 0
        self.current = None
        self.swap(text)
        os.symlink(os.path.join("..data", name), os.path.join(path, name))
        self.file = os.path.join(path, name)

    def swap(self, text):
        self.generation += 1
        version = f"..2026_12_04_20_{self.generation:02d}_00.{100000 + self.generation}"
        os.makedirs(os.path.join(self.path, version))
        write(os.path.join(self.path, version, self.name), text)
        tmp_link = os.path.join(self.path, "..data_tmp")
        os.symlink(version, tmp_link)
        os.rename(tmp_link, os.path.join(self.path, "..data"))
        if self.current:
            shutil.rmtree(os.path.join(self.path, self.current))
        self.current = version


def entry_lines(*entries, comments=True):
    text = "# revoked tokens, one JSON object per line\n\n" if comments else ""
    return text + "".join(json.dumps(e) + "\n" for e in entries)


# --- a CA for rediss:// -------------------------------------------------------------------------

class Pki(h2_e2e.Pki):
    """h2's Pki (made with the openssl CLI: a CA, and a server certificate for 127.0.0.1 and
    localhost it signed), and another CA that signed nothing here."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.other_ca, _ = self.root("other-ca")

    def root(self, name):
        key, crt = self.path(name + ".key"), self.path(name + ".crt")
        self.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        self.openssl("req", "-x509", "-new", "-key", key, "-subj", f"/CN=jwtgate revocation test {name}",
                     "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", crt)
        return crt, key


# --- processes -----------------------------------------------------------------------------------

def jwtgate_env(binary, extra=None):
    """h2's environment for jwtgate (an AddressSanitizer build gets a small quarantine), plus EXTRA."""
    env = h2_e2e.jwtgate_env(binary)
    env.update(extra or {})
    return env


class Upstream(h2_e2e.Server):
    """tests/support/upstream.py (or another server that prints its port first), started and
    asked as h2's Server: GET /__seen?clear=1 is the oracle."""

    def __init__(self, tmp, name="upstream", script=UPSTREAM):
        super().__init__(name, [PYTHON, script], tmp)


class Jwtgate(h2_e2e.Jwtgate):
    """h2's Jwtgate (config, ports retried when lost, /readyz or /healthz wait, access_lines, the
    stop on SIGTERM), with its admin listener asked through http1 and its log read whole."""

    def admin(self, method, target, headers=(), body=b""):
        return http1(self.admin_port, method, target, headers, body)

    def readyz(self):
        return self.admin("GET", "/readyz")[0]

    def metrics(self):
        """As h2's, but asked through http1, and the answer must be a 200."""
        status, _, data = self.admin("GET", "/metrics")
        expect(status == 200, f"{self.name} /metrics answered {status}")
        values = {}
        for line in data.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
        return values

    def metric(self, name, **labels):
        return metric(self.metrics(), name, **labels)

    def log_text(self):
        """Everything jwtgate has logged so far (stderr and stdout), as written."""
        with open(self.proc.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


# --- clients -------------------------------------------------------------------------------------

def http1(port, method, target, headers=(), body=b""):
    """h2's one HTTP/1.1 request on a fresh connection, (status, headers, body), but with
    Connection: close, and Content-Length: 0 on an empty POST or PUT (an empty logout body is
    sent as one, not left without a length)."""
    extra = [("Content-Length", "0")] if not body and method in ("POST", "PUT") else []
    return h2_e2e.http1(port, method, target, [*headers, *extra, ("Connection", "close")], body)


def header(headers, name):
    values = [v for n, v in headers if n.lower() == name.lower()]
    return values[0] if values else None


class Answer:
    def __init__(self, gate, status, headers, body, received, path):
        self.gate, self.status, self.headers, self.body, self.received = gate, status, headers, body, received
        self.path = path

    def www(self):
        return header(self.headers, "WWW-Authenticate") or ""

    def __str__(self):
        text = f"{self.gate}: {self.status}"
        if self.www():
            text += f" (WWW-Authenticate: {self.www()})"
        text += ", the upstream " + ("received it" if self.received else "did not receive it")
        return text


class Client:
    """Requests through a jwtgate, each judged by whether the upstream received it: every request
    carries a fresh path, and the upstream's record is read (and cleared) after each."""

    def __init__(self, up):
        self.up = up

    def send(self, gate, token=None, prefix="/api"):
        nonce = uuid.uuid4().hex
        headers = [("Authorization", f"Bearer {token}")] if token is not None else []
        path = f"{prefix}/{nonce}"
        status, hdrs, body = http1(gate.port, "GET", path, headers)
        received = any(nonce in r["path"] for r in self.up.seen())
        return Answer(gate.name, status, hdrs, body, received, path)

    def passes(self, gate, token, what, prefix="/api"):
        a = self.send(gate, token, prefix)
        expect(a.status == 200 and a.received, f"{what}: expected 200 and the upstream to receive it; {a}")
        return a

    def refused(self, gate, token, what, times=1):
        """401 invalid_token, reason revoked, never forwarded; TIMES fresh connections (both
        workers, cache hits included)."""
        for _ in range(times):
            a = self.send(gate, token)
            expect(a.status == 401 and not a.received,
                   f"{what}: expected 401 and nothing forwarded; {a}")
            expect('error="invalid_token"' in a.www(), f"{what}: WWW-Authenticate {a.www()!r} lacks "
                                                       'error="invalid_token"')
            # The spec's text is "the token has been revoked"; jwtgate words it per kind (session,
            # subject), which RFC 6750 leaves free: only its presence is checked.
            expect(re.search(r'error_description="[^"]+"', a.www()),
                   f"{what}: WWW-Authenticate {a.www()!r} has no error_description")
        return a

    def unavailable(self, gate, token, what):
        a = self.send(gate, token)
        expect(a.status == 503 and not a.received, f"{what}: expected 503 and nothing forwarded; {a}")
        return a

    def wait_refused(self, gates, token, what, within=PROPAGATION, since=None):
        """Every gate in GATES refuses TOKEN within WITHIN s of SINCE (default: now); then again on
        fresh connections. Returns the seconds each took."""
        since = time.monotonic() if since is None else since
        at = self.poll(gates, token, lambda a: a.status == 401, since + within, 0.02,
                       f"{what}: not refused within {within:g} s by ")
        took = {name: t - since for name, t in at.items()}
        for g in gates:
            self.refused(g, token, f"{what} ({g.name}, after {took[g.name]:.2f} s)", times=3)
        return took

    def wait_passes(self, gates, token, what, within):
        self.poll(gates, token, lambda a: a.status == 200 and a.received, time.monotonic() + within, 0.05,
                  f"{what}: not passing within {within:g} s on ")

    def poll(self, gates, token, done, deadline, pause, failure):
        """Sends TOKEN through each gate in GATES, every PAUSE s, until DONE holds of its answer;
        when each did (time.monotonic()), or Failure (FAILURE, then the last answers of those
        left) once past DEADLINE."""
        pending, last, at = list(gates), {}, {}
        while pending:
            for g in list(pending):
                a = last[g.name] = self.send(g, token)
                if done(a):
                    at[g.name] = time.monotonic()
                    pending.remove(g)
            if pending and time.monotonic() > deadline:
                raise Failure(failure + "; ".join(str(last[g.name]) for g in pending))
            if pending:
                time.sleep(pause)
        return at


def expect_logged_revoked(gate, answer):
    """GATE's access log has the request ANSWER was for: status 401, reason revoked."""
    lines = wait_for(f"{gate.name}'s access log line for {answer.path}", lambda: [
        o for o in gate.access_lines() if o.get("path") == answer.path], 3.0)
    expect(lines[-1].get("status") == 401 and lines[-1].get("reason") == "revoked",
           f"access log line {lines[-1]}, expected status 401 and reason revoked")


def stored(redis, prefix=KEY_PREFIX, **match):
    """(key, entry) of the first key under PREFIX whose JSON value has MATCH's fields: found by
    value, whatever the key's name."""
    keys = redis.scan(prefix + "*")
    for key in keys:
        try:
            obj = json.loads(redis.call("GET", key) or "")
        except (RedisError, ValueError):
            continue
        if isinstance(obj, dict) and all(obj.get(f) == v for f, v in match.items()):
            return key, obj
    raise Failure(f"no Redis key under {prefix!r} holds an entry with {match}; keys: {keys[:20]}")


def expect_ttl_at_least(redis, key, seconds, what):
    """KEY expires (a TTL, not -1) no sooner than SECONDS from now (less 5 s)."""
    ttl = redis.call("TTL", key)
    expect(ttl != -1, f"{what}: {key} has no TTL")
    expect(ttl >= seconds - 5, f"{what}: TTL of {key} is {ttl}, expected at least {seconds:.0f}")
    return ttl


def cli(binary, args, env=None, timeout=20):
    """`jwtgate ARGS`: (exit code, stdout, stderr)."""
    r = subprocess.run([binary] + args, capture_output=True, text=True, timeout=timeout,
                       env=jwtgate_env(binary, env), stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr


def revoke(binary, args, env=None):
    """`jwtgate revoke ARGS` that must succeed: the entry it printed."""
    code, out, err = cli(binary, ["revoke"] + args, env)
    expect(code == 0, f"jwtgate revoke {' '.join(args)}: exit {code}: {err.strip()[-400:]}")
    try:
        entry = json.loads(out)
    except ValueError:
        raise Failure(f"jwtgate revoke {' '.join(args)}: stdout is not one JSON entry: {out!r}")
    expect(isinstance(entry, dict), f"jwtgate revoke printed {out!r}, not a JSON object")
    return entry


def grpc_unary(gate, token):
    """One gRPC call to /echo.Echo/Unary through GATE (h2's raw_grpc: HTTP/2, h2c prior knowledge):
    (grpc-status, whether grpc_server.py answered it, a description)."""
    st, _, _ = raw_grpc(gate.port, "/echo.Echo/Unary", token)
    reached = bool(st.headers) and st.header("x-seen-metadata") is not None
    return grpc_status_of(st), reached, st.describe()


def post_logout(gate, token=None, body=None, method="POST", content_type="application/x-www-form-urlencoded"):
    if body is None:
        body = b"" if token is None else ("logout_token=" + quote(token, safe="")).encode()
    headers = [("Content-Type", content_type)] if method == "POST" else []
    return gate.admin(method, "/backchannel-logout", headers, body if method == "POST" else b"")


# --- the test run --------------------------------------------------------------------------------

class Run(tls_e2e.Run):
    """tls's Run (its counts and finish), with cases that report a bug in the test itself as a
    failure and go on, and fail() for what is not a case."""

    def selected(self, name):
        return not self.args.k or self.args.k in name

    def case(self, name, fn, *a):
        if not self.selected(name):
            self.skipped += 1
            return
        started = time.monotonic()
        try:
            fn(*a)
        except Failure as e:
            self.fail(name, str(e))
            return
        except (OSError, http.client.HTTPException, subprocess.SubprocessError, RedisError) as e:
            self.fail(name, f"{type(e).__name__}: {e}")
            return
        except Exception:  # a bug in the test itself: say so, and go on with the other cases
            self.fail(name, "TEST ERROR\n" + traceback.format_exc())
            return
        self.passed += 1
        print(f"PASS {name} ({time.monotonic() - started:.1f} s)", flush=True)

    def fail(self, name, text):
        self.failures.append(f"{name}: {text}")
        print(f"FAIL {name}: {text}", flush=True)


class World:
    def __init__(self, binary, keys, up, shared, late, auth, gates, cm, append_file, pw_file):
        self.binary, self.keys, self.up = binary, keys, up
        self.shared, self.late, self.auth = shared, late, auth
        self.g = gates  # name -> Jwtgate
        self.cm, self.append_file, self.pw_file = cm, append_file, pw_file
        self.c = Client(up)

    def revoke(self, redis, *args, env=None):
        return revoke(self.binary, ["--redis", redis.url, *args], env)

    def shared_pair(self):
        """What the cases of Redis shared start from: gates a and b, the two as a list, the client
        and the IdP's keys."""
        a, b = self.g["a"], self.g["b"]
        return a, b, [a, b], self.c, self.keys


def gate_body(up, keys, revocation, grpc_port):
    return f"""upstream: http://127.0.0.1:{up.port}
providers:
  - name: corp
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [ES256, RS256]
    jwks:
      file: {keys.jwks}
    clock_skew: {SKEW}s
    claims_to_headers:
      sub: X-Jwt-Sub
  - name: partner
    issuer: {PARTNER}
    audiences: [{AUDIENCE}]
    algorithms: [ES256, RS256]
    clock_skew: {SKEW}s
    jwks:
      file: {keys.jwks}
routes:
  - prefix: /public
    auth: none
  - prefix: /echo.Echo
    upstream: h2c://127.0.0.1:{grpc_port}
  - prefix: /
revocation:
""" + revocation


def redis_section(redis, resync, extra=""):
    return f"""  redis:
    url: redis://127.0.0.1:{redis.port}/0
    resync_interval: {resync}
    connect_timeout: 1s
{extra}"""


LOGOUT_SECTION = f"""  backchannel_logout:
    providers: [corp]
    entry_ttl: {ENTRY_TTL // 3600}h
    max_token_age: 5m
"""


# --- config and CLI usage ------------------------------------------------------------------------

def config_cases(run, w):
    def check(body, want, what):
        path = os.path.join(w.g["a"].dir, f"check-{uuid.uuid4().hex[:8]}.yaml")
        write(path, f"listen: 127.0.0.1:{free_port()}\nadmin_listen: 127.0.0.1:{free_port()}\n" + body)
        code, out, err = cli(w.binary, ["check-config", "--config", path])
        expect(code == want, f"{what}: check-config exit {code}, expected {want}: {(out + err).strip()[-600:]}")
        return out + err

    def valid():
        check(w.g["a"].body, 0, "gate a's file")
        check(w.g["deny"].body, 0, "gate deny's file")
        check(w.g["file"].body, 0, "gate file's file")

    def refused():
        base = gate_body(w.up, w.keys, "", w.grpc.port)
        check(base + redis_section(w.shared, "1s"), 0, "control: a minimal redis section")
        check(base + f"  file: {w.append_file}\n", 0, "control: a minimal file section")
        check(base + "  on_unavailable: keep\n", 2, "revocation without file or redis")
        check(base + redis_section(w.shared, "1s") + "  on_unavailable: maybe\n", 2, "on_unavailable: maybe")
        check(base + redis_section(w.shared, "1s") + "  ready_requires_sync: yes\n", 2, "ready_requires_sync: yes")
        check(base + f"  redis:\n    url: http://127.0.0.1:{w.shared.port}\n", 2, "a redis url of scheme http")
        check(base + f"  redis:\n    url: {w.shared.url}\n    resync_intervall: 1s\n", 2, "a misspelled key")
        check(base + redis_section(w.shared, "1s") + "  backchannel_logout:\n    providers: [nosuch]\n", 2,
              "backchannel_logout naming an unknown provider")

    run.case("config: check-config accepts the suite's revocation sections", valid)
    run.case("config: check-config refuses a revocation section without a source, bad values, unknown keys", refused)


def cli_usage_cases(run, w):
    exp = str(int(time.time()) + 600)

    def bad_usage():
        problems = []
        for args in ([], ["--redis", w.shared.url], ["--redis", w.shared.url, "--jti", "x"],
                     ["--jti", "x", "--exp", exp],
                     ["--redis", w.shared.url, "--jti", "x", "--exp", "soon"],
                     ["--redis", w.shared.url, "--jti", "x", "--exp", exp, "--iss", ISSUER, "--sid", "s"],
                     ["--redis", w.shared.url, "--sub", "alice"],
                     ["--redis", w.shared.url, "--sid", "s"],
                     ["--redis", w.shared.url, "--iss", ISSUER, "--sub", "alice", "--sid", "s"],
                     ["--redis", w.shared.url, "--iss", ISSUER, "--sid", "s", "--ttl", "5mins"],
                     ["--redis", w.shared.url, "--iss", ISSUER, "--sub", "alice", "--nosuch"]):
            code, out, err = cli(w.binary, ["revoke"] + args)
            if code != 2:
                problems.append(f"revoke {' '.join(args)}: exit {code} (stdout {out.strip()[:200]!r})")
        expect(not problems, "; ".join(problems))
        control = write(os.path.join(w.g["a"].dir, "usage-control.jsonl"), "")
        entry = revoke(w.binary, ["--file", control, "--jti", "x", "--exp", exp])  # control: good usage works
        expect(entry == {"jti": "x", "exp": int(exp)}, f"control: revoke --file printed {entry}")
        expect(not w.shared.scan(KEY_PREFIX + "*"), "a refused revoke wrote to Redis: "
                                                    f"{w.shared.scan(KEY_PREFIX + '*')}")

    def unreachable():
        closed = free_port()  # never bound
        secret = "s3cr3t-" + uuid.uuid4().hex
        code, out, err = cli(w.binary, ["revoke", "--redis", f"redis://127.0.0.1:{closed}", "--password-env",
                                        "REVOKE_TEST_PW", "--jti", "x", "--exp", exp], env={"REVOKE_TEST_PW": secret})
        expect(code == 1, f"Redis unreachable: exit {code}, expected 1 ({err.strip()[-300:]})")
        expect(err.strip(), "Redis unreachable: nothing on stderr")
        expect(secret not in out + err, "the password appears in the output")

    run.case("cli: revoke with bad usage exits 2 and writes nothing", bad_usage)
    run.case("cli: revoke with Redis unreachable exits 1 with a message, never the password", unreachable)


# --- case 1: two instances sharing one Redis -------------------------------------------------------

def shared_cases(run, w):
    a, b, both, c, k = w.shared_pair()

    def by_jti():
        token = k.access()
        other = k.access()
        for g in both:  # twice: the second is a verified-token cache hit
            c.passes(g, token, f"{g.name} before the revocation")
            c.passes(g, token, f"{g.name} before the revocation (cached)")
            c.passes(g, other, f"{g.name}: the control token")
        before_entries = a.metric("jwtgate_revocation_entries", kind="jti")
        sub = w.shared.subscribe()
        try:
            entry = w.revoke(w.shared, "--jti", token.claims["jti"], "--exp", str(token.claims["exp"]))
            done = time.monotonic()
            took = c.wait_refused(both, token, "the revoked jti", since=done)
            message = sub.find(lambda m: m == entry, 2.0)
        finally:
            sub.close()
        expect(entry == {"jti": token.claims["jti"], "exp": token.claims["exp"]},
               f"revoke printed {entry}, expected the jti and exp given")
        for g in both:
            c.passes(g, other, f"{g.name}: another token after the revocation")
        key, value = stored(w.shared, jti=token.claims["jti"])
        expect(value == entry, f"Redis {key} holds {value}, revoke printed {entry}")
        expect_ttl_at_least(w.shared, key, token.claims["exp"] - time.time(), "the jti entry")
        expect(message is not None, f"PUBLISH on {CHANNEL}: got {sub.seen}, expected the entry {entry}")
        after = a.metric("jwtgate_revocation_entries", kind="jti")
        expect(after is not None and (before_entries is None or after >= before_entries + 1),
               f"jwtgate_revocation_entries{{kind=\"jti\"}} on a went from {before_entries} to {after}")
        expect_logged_revoked(a, c.refused(a, token, "a: the revoked token once more"))
        revoked = a.metric("jwtgate_auth_failures_total", reason="revoked")
        expect(revoked and revoked >= 1, f"jwtgate_auth_failures_total{{reason=\"revoked\"}} on a is {revoked}")
        print(f"  jti refused after {', '.join(f'{n} {s:.2f} s' for n, s in took.items())}", flush=True)

    def by_subject():
        subject = unique("bob")
        now = int(time.time())
        old = k.access(sub=subject, iat=now - 60)
        no_iat = k.access(sub=subject, iat=DROP)
        partner = k.access(iss=PARTNER, sub=subject, iat=now - 60)
        other = k.access(sub=unique("carol"), iat=now - 60)
        no_jti = k.access(sub=subject, iat=now - 60, jti=DROP)
        for g in both:
            for t, what in ((old, "an old token"), (no_iat, "a token without iat"), (no_jti, "a token without jti"),
                            (partner, "partner's token"),
                            (other, "another subject's token")):
                c.passes(g, t, f"{g.name}: {what} before the revocation")
        entry = w.revoke(w.shared, "--iss", ISSUER, "--sub", subject)
        done = time.monotonic()
        c.wait_refused(both, old, "a token of the subject issued before", since=done)
        before = entry.get("before")
        expect(isinstance(before, int) and abs(before - time.time()) <= 5,
               f"revoke printed {entry}: before should default to now")
        expect(entry.get("iss") == ISSUER and entry.get("sub") == subject, f"revoke printed {entry}")
        expect(isinstance(entry.get("exp"), int) and abs(entry["exp"] - (time.time() + 86400)) <= 5,
               f"revoke printed {entry}: exp should be now + 24h (the default --ttl)")
        newer = k.access(sub=subject, iat=before + 1)
        for g in both:
            c.refused(g, no_iat, f"{g.name}: a token of the subject without iat (counts as before)")
            c.refused(g, no_jti, f"{g.name}: a token of the subject without jti")
            c.passes(g, newer, f"{g.name}: a token of the subject issued after `before`")
            c.passes(g, partner, f"{g.name}: the same sub from another issuer")
            c.passes(g, other, f"{g.name}: another subject's token")
        expect_logged_revoked(b, c.refused(b, old, "b: the subject's old token once more"))
        key, value = stored(w.shared, iss=ISSUER, sub=subject)
        expect(value == entry, f"Redis {key} holds {value}, revoke printed {entry}")
        expect_ttl_at_least(w.shared, key, 86400, "the subject entry (--ttl 24h by default)")

    def subject_boundary():
        subject = unique("dave")
        t0 = int(time.time()) - 100
        older = k.access(sub=subject, iat=t0 - 1)
        at = k.access(sub=subject, iat=t0)
        for g in both:
            c.passes(g, older, f"{g.name}: iat before-1 before the revocation")
        entry = w.revoke(w.shared, "--iss", ISSUER, "--sub", subject, "--before", str(t0), "--ttl", "1h")
        c.wait_refused(both, older, "iat = before - 1")
        expect(entry.get("before") == t0, f"revoke printed {entry}, expected before {t0}")
        for g in both:
            c.passes(g, at, f"{g.name}: iat = before (not before it)")
        key, value = stored(w.shared, iss=ISSUER, sub=subject)
        expect(value == entry, f"Redis {key} holds {value}, revoke printed {entry}")
        expect_ttl_at_least(w.shared, key, 3600, "the subject entry (--ttl 1h)")

    def by_session():
        sid = unique("sess")
        token = k.access(sid=sid)
        same_user_other_sid = k.access(sid=unique("sess"))
        partner = k.access(iss=PARTNER, sid=sid)
        no_sid = k.access()
        for g in both:
            c.passes(g, token, f"{g.name}: the session's token before the revocation")
            for t, what in ((same_user_other_sid, "another session"), (partner, "partner's token with that sid"),
                            (no_sid, "a token without sid")):
                c.passes(g, t, f"{g.name}: {what} before")
        entry = w.revoke(w.shared, "--iss", ISSUER, "--sid", sid)
        c.wait_refused(both, token, "the revoked session's token", since=time.monotonic())
        expect(entry.get("iss") == ISSUER and entry.get("sid") == sid, f"revoke printed {entry}")
        for g in both:
            c.passes(g, same_user_other_sid, f"{g.name}: the same user's other session")
            c.passes(g, partner, f"{g.name}: the same sid from another issuer")
            c.passes(g, no_sid, f"{g.name}: a token without sid")
        fresh = k.access(sid=sid, iat=int(time.time()) + 1)
        for g in both:
            c.refused(g, fresh, f"{g.name}: a token of the revoked session minted afterwards")
        expect_logged_revoked(a, c.refused(a, token, "a: the session's token once more"))
        key, value = stored(w.shared, iss=ISSUER, sid=sid)
        expect(value == entry, f"Redis {key} holds {value}, revoke printed {entry}")

    def grpc_revoked():
        token, other = k.access(), k.access()
        for g in both:
            code, reached, text = grpc_unary(g, token)
            expect(code == "0" and reached, f"{g.name}: gRPC with the token before: grpc-status {code}, {text}")
        w.revoke(w.shared, "--jti", token.claims["jti"], "--exp", str(token.claims["exp"]))
        c.wait_refused(both, token, "the revoked token (HTTP/1.1)")
        for g in both:
            code, reached, text = grpc_unary(g, token)
            expect(code == "16" and not reached, f"{g.name}: gRPC with the revoked token: grpc-status {code}, "
                                                 f"expected 16 UNAUTHENTICATED and no call reaching the server: {text}")
            code, reached, text = grpc_unary(g, other)
            expect(code == "0" and reached, f"{g.name}: gRPC with another token: grpc-status {code}, {text}")

    run.case("shared: revoke --jti refuses the token on a and b within 1 s (cached before), others pass; "
             "key, TTL, PUBLISH, access log, metrics", by_jti)
    run.case("shared: revoke --iss --sub refuses the subject's earlier tokens (and those without iat) on a and b "
             "within 1 s; a later token, another issuer and another subject pass", by_subject)
    run.case("shared: revoke --sub --before T refuses iat T-1, passes iat T; --ttl 1h",
             subject_boundary)
    run.case("shared: revoke --iss --sid refuses that session on a and b within 1 s; other sessions, issuers pass",
             by_session)
    run.case("shared: over gRPC (h2c) a revoked token gets grpc-status 16 and never reaches the server; "
             "another token passes", grpc_revoked)


# --- case 2: entries expire ----------------------------------------------------------------------------

def expiry_cases(run, w):
    a, b, both, c, k = w.shared_pair()

    def jti_key_expires():
        jti = unique("old")
        exp = int(time.time()) - 297  # exp + 300 s is 3 s from now
        entry = w.revoke(w.shared, "--jti", jti, "--exp", str(exp))
        expect(entry == {"jti": jti, "exp": exp}, f"revoke printed {entry}")
        key, _ = stored(w.shared, jti=jti)
        ttl = w.shared.call("TTL", key)
        expect(ttl == -2 or 0 <= ttl <= 3, f"TTL of {key} is {ttl}, expected at most 3 (EXPIREAT exp + 300 s)")
        wait_for(f"{key} gone from Redis", lambda: w.shared.call("EXISTS", key) == 0, 6.0, 0.2)

    def session_lapses():
        sid = unique("short")
        token = k.access(sid=sid)
        for g in both:
            c.passes(g, token, f"{g.name} before")
        n0 = a.metric("jwtgate_revocation_entries", kind="session")
        entry = w.revoke(w.shared, "--iss", ISSUER, "--sid", sid, "--ttl", "3s")
        c.wait_refused(both, token, "the session revoked for 3 s")
        n1 = a.metric("jwtgate_revocation_entries", kind="session")
        expect(n1 is not None and (n0 is None or n1 >= n0 + 1),
               f"jwtgate_revocation_entries{{kind=\"session\"}} on a: {n0} before, {n1} with the entry")
        expect(isinstance(entry.get("exp"), int) and abs(entry["exp"] - (time.time() + 3)) <= 3,
               f"revoke printed {entry}: exp should be now + 3 s")
        key, _ = stored(w.shared, iss=ISSUER, sid=sid)
        # A session entry ends at its exp (only jti entries are extended by the clock skew, as
        # their tokens are); the wait allows the skew anyway. b (resync 1h) drops it by itself.
        c.wait_passes(both, token, "the session's token once its entry's exp (+ clock_skew) passed",
                      within=max(0.0, entry["exp"] - time.time()) + SKEW + 2.0)
        ttl = w.shared.call("TTL", key)
        expect(ttl == -2, f"{key} still in Redis {SKEW} s after the entry's exp (TTL {ttl}); expected "
                          "EXPIREAT at the entry's exp")
        wait_for(f"jwtgate_revocation_entries{{kind=\"session\"}} on a back to {n1 - 1:g} after a resync",
                 lambda: a.metric("jwtgate_revocation_entries", kind="session") == n1 - 1, 3.0, 0.2)

    def data_model():
        """The keys `jwtgate revoke` writes and their TTLs (README: "From Redis")."""
        problems = []
        now = time.time()
        jti = unique("dm")
        exp = int(now) + 600
        entries = [
            (w.revoke(w.shared, "--jti", jti, "--exp", str(exp)), jti_key(jti, exp), exp + 300, "jti (exp + 300 s)"),
        ]
        subject, sid = unique("dm"), unique("dm")
        e = w.revoke(w.shared, "--iss", ISSUER, "--sub", subject, "--ttl", "1h")
        entries.append((e, sub_key(ISSUER, subject, e.get("before"), e.get("exp")), e.get("exp"), "sub (the entry's exp)"))
        e = w.revoke(w.shared, "--iss", ISSUER, "--sid", sid, "--ttl", "1h")
        entries.append((e, sid_key(ISSUER, sid, e.get("exp")), e.get("exp"), "sid (the entry's exp)"))
        for entry, want_key, want_expiry, what in entries:
            match = {f: entry[f] for f in ("jti", "iss", "sub", "sid") if f in entry}
            key, value = stored(w.shared, **match)
            if key != want_key:
                problems.append(f"{what}: key {key}, expected {want_key} (<prefix><kind>:<entry digest hex>[:<before>]:<exp>)")
            if value != entry:
                problems.append(f"{what}: value {value}, printed {entry}")
            expiry = w.shared.call("EXPIRETIME", key)
            if not isinstance(want_expiry, int) or abs(expiry - want_expiry) > 1:
                problems.append(f"{what}: EXPIRETIME {expiry}, expected {want_expiry} "
                                f"({expiry - want_expiry if isinstance(want_expiry, int) else '?'} s off)")
        expect(not problems, "\n    " + "\n    ".join(problems))

    run.case("expiry: a jti entry's Redis key lives until exp + 300 s (clock skew), then is gone", jti_key_expires)
    run.case("expiry: a session revoked with --ttl 3s lapses: token passes again on a and b, key gone from Redis, "
             "a's entries gauge drops after its resync", session_lapses)
    run.case("data model: revoke writes <prefix><kind>:<digest> keys with EXPIREAT (jti: exp + 300 s; "
             "sub/sid: the entry's exp)", data_model)


# --- case 5: back-channel logout ------------------------------------------------------------------------

def logout_cases(run, w):
    a, b, both, c, k = w.shared_pair()
    state = {}

    def expect_ok(gate, token, what):
        status, headers, body = post_logout(gate, token)
        expect(status == 200, f"{what}: POST /backchannel-logout to {gate.name} answered {status}: {body[:300]!r}")
        cc = header(headers, "Cache-Control") or ""
        expect("no-store" in cc, f"{what}: Cache-Control {cc!r}, expected no-store")

    def expect_400(gate, token, what, body=None):
        status, headers, data = post_logout(gate, token, body=body)
        if status != 400:
            return f"{what}: {status}, expected 400 ({data[:200]!r})"
        ctype = header(headers, "Content-Type") or ""
        if not ctype.startswith("application/json"):
            return f"{what}: Content-Type {ctype!r}, expected application/json"
        try:
            obj = json.loads(data)
        except ValueError:
            return f"{what}: body {data[:200]!r} is not JSON"
        if not isinstance(obj, dict) or obj.get("error") != "invalid_request" or \
                not isinstance(obj.get("error_description"), str) or not obj["error_description"]:
            return f"{what}: body {obj}, expected error invalid_request and an error_description"
        return None

    def by_sid():
        sid = unique("sso")
        token = k.access(sid=sid)
        other_session = k.access(sid=unique("sso"))
        for g in both:
            c.passes(g, token, f"{g.name}: the session's token before the logout")
            c.passes(g, other_session, f"{g.name}: another session's token before")
        ok0 = a.metric("jwtgate_backchannel_logouts_total", result="ok") or 0
        sub = w.shared.subscribe()
        try:
            logout = k.logout(sid=sid, sub="alice")
            expect_ok(a, logout, "a valid logout token (sid and sub)")
            state["replay"] = logout
            c.wait_refused(both, token, "the logged-out session's token")
            message = sub.find(lambda m: isinstance(m, dict) and m.get("sid") == sid, 2.0)
        finally:
            sub.close()
        for g in both:
            c.passes(g, other_session, f"{g.name}: alice's other session (sid given: the session, not the subject)")
        key, entry = stored(w.shared, iss=ISSUER, sid=sid)
        expect(isinstance(entry.get("exp"), int) and abs(entry["exp"] - (time.time() + ENTRY_TTL)) <= 5,
               f"Redis {key} holds {entry}: exp should be now + entry_ttl ({ENTRY_TTL} s)")
        expect_ttl_at_least(w.shared, key, ENTRY_TTL, "the logout's session entry")
        expect(message is not None, f"PUBLISH on {CHANNEL} after the logout: {sub.seen}, expected the sid entry")
        ok1 = a.metric("jwtgate_backchannel_logouts_total", result="ok")
        expect(ok1 is not None and ok1 >= ok0 + 1, f"jwtgate_backchannel_logouts_total{{result=\"ok\"}}: {ok0} -> {ok1}")
        state["replay"] = logout

    def by_sub():
        subject = unique("erin")
        old = k.access(sub=subject, iat=int(time.time()) - 30)
        other = k.access(sub=unique("frank"))
        for g in both:
            c.passes(g, old, f"{g.name}: the subject's token before the logout")
            c.passes(g, other, f"{g.name}: another subject's token before")
        logout = k.logout(sub=subject)
        expect_ok(b, logout, "a valid logout token (sub only) posted to b")
        c.wait_refused(both, old, "the logged-out subject's earlier token")
        later = k.access(sub=subject, iat=logout.claims["iat"] + 2)
        for g in both:
            c.passes(g, other, f"{g.name}: another subject's token")
            c.passes(g, later, f"{g.name}: the subject's token issued after the logout")
        key, entry = stored(w.shared, iss=ISSUER, sub=subject)
        expect(isinstance(entry.get("before"), int) and abs(entry["before"] - logout.claims["iat"]) <= 3,
               f"Redis {key} holds {entry}: before should be the time of the logout")
        expect_ttl_at_least(w.shared, key, ENTRY_TTL, "the logout's subject entry")

    def typ_forms():
        for hdr, what in (({"typ": "application/logout+jwt"}, "typ application/logout+jwt"),
                          ({"typ": None}, "no typ")):
            sid = unique("typ")
            token = k.access(sid=sid)
            c.passes(a, token, f"{what}: the session's token before")
            expect_ok(a, k.logout(header=hdr, sid=sid), f"a logout token with {what}")
            c.wait_refused([a], token, f"the session logged out by a token with {what}")

    def invalid():
        now = int(time.time())
        variants = [  # (what, a function of a fresh sid making the logout token)
            ("forged (another key, the same kid)", lambda s: k.logout(key=k.rs_forged, sid=s)),
            ("forged ES256 (another key, kid k1)", lambda s: k.logout(header={"alg": "ES256", "kid": "k1"},
                                                                      key=k.es_forged, sid=s)),
            ("alg none", lambda s: k.logout(header={"alg": "none"}, sid=s)),
            ("wrong aud", lambda s: k.logout(aud="someone-else", sid=s)),
            ("unknown iss", lambda s: k.logout(iss="https://evil.example.com/", sid=s)),
            ("partner's iss (a provider not in backchannel_logout.providers)", lambda s: k.logout(iss=PARTNER, sid=s)),
            ("missing events", lambda s: k.logout(events=DROP, sid=s)),
            ("events without the back-channel logout member",
             lambda s: k.logout(events={"http://schemas.openid.net/event/other": {}}, sid=s)),
            ("events member not an object", lambda s: k.logout(events={LOGOUT_EVENT: "yes"}, sid=s)),
            ("events not an object", lambda s: k.logout(events=[LOGOUT_EVENT], sid=s)),
            ("has nonce", lambda s: k.logout(nonce="n-0S6_WzA2Mj", sid=s)),
            ("typ JWT", lambda s: k.logout(header={"typ": "JWT"}, sid=s)),
            ("typ at+jwt", lambda s: k.logout(header={"typ": "at+jwt"}, sid=s)),
            ("missing jti", lambda s: k.logout(jti=DROP, sid=s)),
            ("missing iat", lambda s: k.logout(iat=DROP, sid=s)),
            ("iat older than max_token_age (10 min)", lambda s: k.logout(iat=now - 600, exp=now + 60, sid=s)),
            ("iat in the future (5 min)", lambda s: k.logout(iat=now + 300, exp=now + 600, sid=s)),
            ("expired (exp 2 min ago)", lambda s: k.logout(iat=now - 200, exp=now - 120, sid=s)),
            ("neither sub nor sid", lambda s: k.logout()),
        ]
        problems, sids = [], []
        invalid0 = a.metric("jwtgate_backchannel_logouts_total", result="invalid") or 0
        for what, make in variants:
            sid = unique("neg")
            sids.append(sid)
            p = expect_400(a, make(sid), what)
            if p:
                problems.append(p)
        for what, body in (("not a JWT", b"logout_token=not.a.jwt"), ("no logout_token", b"foo=bar"),
                           ("an empty body", b"")):
            p = expect_400(a, None, what, body=body)
            if p:
                problems.append(p)
        for sid in sids:  # nothing was revoked by the refused tokens
            a_ = c.send(a, k.access(sid=sid))
            if a_.status != 200:
                problems.append(f"a token with the sid of a refused logout token: {a_}")
        invalid1 = a.metric("jwtgate_backchannel_logouts_total", result="invalid")
        if invalid1 is None or invalid1 < invalid0 + len(variants):
            problems.append(f"jwtgate_backchannel_logouts_total{{result=\"invalid\"}}: {invalid0} -> {invalid1}, "
                            f"{len(variants)} invalid tokens posted")
        expect(not problems, "\n    " + "\n    ".join(problems))

    def replay():
        logout = state.get("replay")
        expect(logout is not None, "the sid logout case did not run or failed before posting its token")
        problems = [p for p in (expect_400(a, logout, "the same logout token again to a"),
                                expect_400(b, logout, "the same logout token to b (seen by a, through Redis)"))
                    if p]
        # control: b does accept a fresh logout token
        sid = unique("fresh")
        token = k.access(sid=sid)
        c.passes(b, token, "b: a fresh session's token before")
        expect_ok(b, k.logout(sid=sid), "a fresh logout token posted to b")
        c.wait_refused(both, token, "the session logged out at b")
        expect(not problems, "; ".join(problems))
        for g in both:
            n = g.metric("jwtgate_backchannel_logouts_total", result="replayed")
            expect(n is not None and n >= 1, f"jwtgate_backchannel_logouts_total{{result=\"replayed\"}} on {g.name}: {n}")

    def set_refused():
        # Redis takes the PUBLISH but refuses the SET (out of memory with noeviction; a read-only
        # replica and ACLs do the same): the logout must not be answered 200, since every other
        # sidecar would drop it at its next full load. The IdP's retry, once Redis takes writes,
        # stores it and is answered 200.
        sid = unique("oom")
        token = k.access(sid=sid)
        c.passes(a, token, "a: the session's token before")
        logout = k.logout(sid=sid)
        policy = w.shared.call("CONFIG", "GET", "maxmemory-policy")[1]
        w.shared.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
        w.shared.call("CONFIG", "SET", "maxmemory", "1")
        try:
            status, _, body = post_logout(a, logout)
            expect(status == 400 and b"temporarily_unavailable" in body,
                   f"a logout Redis could not store answered {status} {body[:200]!r}, expected 400 temporarily_unavailable")
            c.refused(a, token, "a: the session, applied here although not shared")
        finally:
            w.shared.call("CONFIG", "SET", "maxmemory", "0")
            w.shared.call("CONFIG", "SET", "maxmemory-policy", policy)
        expect_ok(a, logout, "the IdP's retry once Redis takes writes again")
        key, entry = stored(w.shared, iss=ISSUER, sid=sid)
        expect(entry.get("sid") == sid, f"Redis holds {entry} under {key}")
        p = expect_400(a, logout, "the same logout token a third time (now a replay)")
        expect(p is None, p or "")

    def jti_spaces():
        # The replay marker is per issuer and of its own kind: a logout token's jti revokes no
        # access token, and an access token's revoked jti makes no logout token a replay.
        shared_jti = unique("shared-jti")
        access = k.access(jti=shared_jti)
        c.passes(a, access, "a: the access token before")
        expect_ok(a, k.logout(sid=unique("x"), jti=shared_jti), "a logout token with the access token's jti")
        time.sleep(0.2)
        for g in both:
            c.passes(g, access, f"{g.name}: the access token whose jti a logout token also carried")
        other = unique("revoked-jti")
        w.revoke(w.shared, "--jti", other, "--exp", str(int(time.time()) + 600))
        c.wait_refused(both, k.access(jti=other), "the access token revoked by jti")
        expect_ok(b, k.logout(sid=unique("y"), jti=other), "a logout token whose jti is a revoked access token's")

    def methods():
        problems = []
        for method in ("GET", "PUT", "DELETE"):
            status, headers, _ = post_logout(a, method=method)
            if status != 405:
                problems.append(f"{method}: {status}")
        expect(not problems, "expected 405: " + ", ".join(problems))

    run.case("logout: a sid logout token posted to a (200, no-store) refuses the session on a and b within 1 s; "
             "the user's other session passes; Redis entry_ttl, PUBLISH, metric", by_sid)
    run.case("logout: a sub-only logout token posted to b refuses the subject's earlier tokens on a and b; "
             "later tokens and other subjects pass", by_sub)
    run.case("logout: typ application/logout+jwt and no typ are accepted", typ_forms)
    run.case("logout: forged, wrong aud/iss, bad events, nonce, wrong typ, missing jti/iat, stale, expired, "
             "no sub/sid, not a JWT: 400 JSON invalid_request, and nothing revoked", invalid)
    run.case("logout: a replayed jti is refused 400 on a and on b; a fresh one at b works", replay)
    run.case("logout: Redis refusing the SET (maxmemory, noeviction) gives 400 temporarily_unavailable, the "
             "session cut here; the retry once Redis takes writes is stored and answered 200", set_refused)
    run.case("logout: replay markers are per issuer and their own kind: no access token revoked by a logout "
             "token's jti, no logout refused for an access token's revoked jti", jti_spaces)
    run.case("logout: GET/PUT/DELETE /backchannel-logout are 405", methods)


# --- reloads ------------------------------------------------------------------------------------------

def reload_cases(run, w):
    a, b, both, c, k = w.shared_pair()

    def wait_reloaded(mark, what):
        return wait_for(f"a's log saying the config was reloaded ({what})",
                        lambda: re.search(r"config reloaded|reload rejected", a.log_text()[mark:]), 5.0, 0.1)

    def after_reload(what):
        t = k.access()
        c.passes(a, t, f"after {what}: a fresh token")
        w.revoke(w.shared, "--jti", t.claims["jti"], "--exp", str(t.claims["exp"]))
        c.wait_refused(both, t, f"revoked after {what}")
        sid = unique("rl")
        session = k.access(sid=sid)
        c.passes(a, session, f"after {what}: a session's token")
        status, _, body = post_logout(a, k.logout(sid=sid))
        expect(status == 200, f"after {what}: a logout answered {status} {body[:200]!r}")
        c.wait_refused(both, session, f"the session logged out after {what}")

    def sighup():
        token = k.access()
        w.revoke(w.shared, "--jti", token.claims["jti"], "--exp", str(token.claims["exp"]))
        c.wait_refused([a], token, "revoked before the reload")
        mark = len(a.log_text())
        a.proc.proc.send_signal(signal.SIGHUP)
        found = wait_reloaded(mark, "SIGHUP, same file")
        expect("rejected" not in found.group(0), f"a rejected its own unchanged file:\n{a.log_text()[mark:][-800:]}")
        c.refused(a, token, "after the SIGHUP: revoked before it", times=3)
        after_reload("a SIGHUP")
        # a file whose revocation section differs (put in place by rename: watch_config reloads it)
        mark = len(a.log_text())
        changed = read(a.config).replace("    connect_timeout: 1s\n", "    connect_timeout: 1500ms\n")
        expect(changed != read(a.config), "test setup: the config has no connect_timeout: 1s line")
        write(a.config + ".new", changed)
        os.replace(a.config + ".new", a.config)
        wait_reloaded(mark, "a changed revocation section")
        c.refused(a, token, "after the reload with a changed revocation section: revoked before it", times=3)
        after_reload("a reload with a changed revocation section")
        expect(a.alive(), f"a exited:\n{a.proc.tail()}")

    run.case("reload: after a SIGHUP, and after a reload with a changed revocation section, a keeps its set, "
             "takes new revocations within 1 s and accepts logouts", sighup)


# --- case 3: Redis restarted mid-run -------------------------------------------------------------------

def restart_cases(run, w):
    a, b, both, c, k = w.shared_pair()
    st = {}

    def bulk():
        target = k.access()
        other = k.access()
        c.passes(a, target, "a: the token before")
        outside = k.access()  # its entry under another prefix and on another channel: never applied
        c.passes(a, outside, "a: the token whose entry lies outside the prefix, before")
        entry_out = json.dumps({"jti": outside.claims["jti"], "exp": outside.claims["exp"]})
        w.shared.call("SET", "jwtgate:other:jti:" + sha256_hex(outside.claims["jti"]), entry_out, "EX", 600)
        w.shared.call("PUBLISH", "jwtgate:other-channel", entry_out)
        for junk in ("not json", "{}", '{"jti": 5, "exp": "x"}', "[" * 10000):  # on the channel: ignored
            w.shared.call("PUBLISH", CHANNEL, junk)
        n0 = a.metric("jwtgate_revocation_entries", kind="jti") or 0
        exp = target.claims["exp"]
        tag = uuid.uuid4().hex[:8]
        with Resp(w.shared.port) as r:  # pipelined, no PUBLISH: only a full load finds them
            for i in range(BULK):
                jti = target.claims["jti"] if i == BULK // 2 else f"bulk-{tag}-{i}"
                r.send("SET", KEY_PREFIX + "jti:" + sha256_hex(jti), json.dumps({"jti": jti, "exp": exp}),
                       "EXAT", exp + 60)
            # one value that is not an entry: logged and skipped, the others still load
            r.send("SET", KEY_PREFIX + "jti:" + sha256_hex("garbage-" + tag), "this is not json", "EX", 600)
            for _ in range(BULK + 1):
                r.reply()
        c.wait_refused([a], target, f"a: one of {BULK} keys found by the paged full load", within=3.0)
        wait_for(f"a's jwtgate_revocation_entries{{kind=\"jti\"}} at least {n0 + BULK:g}",
                 lambda: (a.metric("jwtgate_revocation_entries", kind="jti") or 0) >= n0 + BULK, 3.0, 0.2)
        c.passes(a, other, "a: another token")
        for g in both:
            c.passes(g, outside, f"{g.name}: the token whose entry lies under another prefix / on another channel")
            expect(g.alive(), f"{g.name} exited")
        st["bulk"] = n0 + BULK

    def outage():
        written = k.access()
        control = k.access()
        w.revoke(w.shared, "--jti", written.claims["jti"], "--exp", str(written.claims["exp"]))
        c.wait_refused(both, written, "revoked before the restart")
        # Put straight into Redis without PUBLISH: a finds it on its 1 s resync; b (resync 1h) only
        # by a full load, which it must do when it reconnects.
        planted = k.access()
        w.shared.call("SET", KEY_PREFIX + "jti:" + sha256_hex(planted.claims["jti"]),
                      json.dumps({"jti": planted.claims["jti"], "exp": planted.claims["exp"]}),
                      "EXAT", planted.claims["exp"] + 60)
        c.wait_refused([a], planted, "a key written without PUBLISH, on a's periodic resync", within=3.0)
        st["b_saw_planted"] = c.send(b, planted).status == 401
        st.update(written=written, planted=planted, control=control, keys=w.shared.scan(KEY_PREFIX + "*"))
        f0 = a.metric("jwtgate_revocation_sync_failures_total", source="redis") or 0
        w.shared.stop()
        wait_for("a's jwtgate_revocation_available 0 with Redis down",
                 lambda: a.metric("jwtgate_revocation_available") == 0, 4.0, 0.1)
        for g in both:
            c.refused(g, written, f"{g.name} during the outage: revoked before it")
            c.passes(g, control, f"{g.name} during the outage: a valid token (on_unavailable: keep)")
        c.refused(a, planted, "a during the outage: the key found by its resync")
        wait_for("a's jwtgate_revocation_sync_failures_total{source=\"redis\"} increasing while Redis is down",
                 lambda: (a.metric("jwtgate_revocation_sync_failures_total", source="redis") or 0) > f0, 5.0, 0.2)
        st["down"] = True

    def reconnect():
        expect(st.get("down"), "the outage case did not get Redis down")
        w.shared.start()
        kept = w.shared.scan(KEY_PREFIX + "*")
        expect(set(st["keys"]) <= set(kept), "test setup: Redis lost keys over the restart (appendonly): "
                                             f"{sorted(set(st['keys']) - set(kept))}")
        after = k.access()
        w.revoke(w.shared, "--jti", after.claims["jti"], "--exp", str(after.claims["exp"]))
        c.wait_refused(both, after, "revoked right after Redis came back", within=RECONNECT)
        for g in both:
            wait_for(f"{g.name}'s jwtgate_revocation_available 1 after the restart",
                     lambda: g.metric("jwtgate_revocation_available") == 1, RECONNECT, 0.1)
        c.wait_refused([b], st["planted"], "b: the key written without PUBLISH, after its full load on reconnect",
                       within=RECONNECT)
        if st.get("b_saw_planted"):
            print("  note: b refused the unpublished key before the restart (its periodic resync?); the "
                  "reconnect-load check above proves nothing", flush=True)
        for g in both:
            c.refused(g, st["written"], f"{g.name}: revoked before the restart")
            c.passes(g, st["control"], f"{g.name}: the control token")
        if st.get("bulk"):
            n = b.metric("jwtgate_revocation_entries", kind="jti") or 0
            expect(n >= BULK, f"b's jwtgate_revocation_entries{{kind=\"jti\"}} is {n} after its full load; "
                                    f"Redis holds the {BULK} bulk keys")
        st["up"] = True

    def pubsub_back():
        expect(st.get("up"), "the reconnect case did not finish")
        token = k.access()
        for g in both:
            c.passes(g, token, f"{g.name} before")
        w.revoke(w.shared, "--jti", token.claims["jti"], "--exp", str(token.claims["exp"]))
        c.wait_refused(both, token, "revoked once both reconnected (pub/sub resubscribed)")
        for g in both:
            age = g.metric("jwtgate_revocation_sync_age_seconds", source="redis")
            if g is a:
                expect(age is not None and 0 <= age < 5, f"a's jwtgate_revocation_sync_age_seconds: {age}")

    run.case(f"resync: a's periodic full load pages through {BULK} keys written without PUBLISH (one not an "
             "entry); keys under another prefix, messages on another channel and junk messages change nothing",
             bulk)
    run.case("restart: with Redis down a and b keep the synced set (revoked stays refused, valid passes), "
             "available 0, sync failures counted", outage)
    run.case("restart: after Redis restarts a revocation written then applies on a and b, and b's full load "
             "on reconnect finds a key it never got by pub/sub", reconnect)
    run.case("restart: after the reconnect a revocation reaches a and b within 1 s again", pubsub_back)


# --- case 4: Redis down at start and later ---------------------------------------------------------------

def unavailable_cases(run, w):
    d, kp, c, k = w.g["deny"], w.g["keep"], w.c, w.keys
    st = {}
    valid = k.access()

    def down_at_start():
        expect(not w.late.running(), "test setup: Redis late is running already")
        time.sleep(0.5)  # several connect attempts have failed by now
        expect(d.readyz() == 503, f"deny: /readyz {d.readyz()} before any sync, expected 503 (ready_requires_sync)")
        c.unavailable(d, valid, "deny: a valid token before Redis was ever reached")
        code, reached, text = grpc_unary(d, valid)
        expect(code == "14" and not reached, f"deny: gRPC with a valid token before any sync: grpc-status {code}, "
                                             f"expected 14 UNAVAILABLE: {text}")
        status, _, _ = http1(d.port, "GET", "/public/x")
        expect(status == 200, f"deny: a public route without a token answered {status}")
        no_token = c.send(d, None)
        expect(no_token.status == 401, f"deny: a protected path without a token: {no_token}, expected 401")
        lines = wait_for("deny's access log reason revocation_unavailable", lambda: [
            o for o in d.access_lines() if o.get("reason") == "revocation_unavailable" and "grpc_status" not in o], 3.0)
        expect(lines[-1].get("status") == 503 and lines[-1].get("outcome") == "unavailable", f"access log: {lines[-1]}")
        n = d.metric("jwtgate_auth_failures_total", reason="revocation_unavailable")
        expect(n and n >= 1, f"jwtgate_auth_failures_total{{reason=\"revocation_unavailable\"}}: {n}")
        for g in (d, kp):
            f = wait_for(f"{g.name}: sync failures counted", lambda: g.metric(
                "jwtgate_revocation_sync_failures_total", source="redis"), 3.0, 0.2)
            expect(f >= 1, f"{g.name}: jwtgate_revocation_sync_failures_total {f}")
            expect(g.metric("jwtgate_revocation_available") == 0, f"{g.name}: jwtgate_revocation_available "
                                                                  f"{g.metric('jwtgate_revocation_available')}")

    def keep_at_start():
        expect(not w.late.running(), "test setup: Redis late is running already")
        expect(kp.readyz() == 200, f"keep: /readyz {kp.readyz()} (ready_requires_sync false)")
        c.passes(kp, valid, "keep: a valid token before Redis was ever reached")

    def comes_up():
        w.late.start()
        wait_for("deny's /readyz 200 after the first sync", lambda: d.readyz() == 200, RECONNECT, 0.1)
        for g in (d, kp):
            wait_for(f"{g.name}'s jwtgate_revocation_available 1",
                     lambda: g.metric("jwtgate_revocation_available") == 1, RECONNECT, 0.1)
            c.passes(g, valid, f"{g.name}: a valid token once synced")
        code, reached, text = grpc_unary(d, valid)
        expect(code == "0" and reached, f"deny: gRPC with a valid token once synced: grpc-status {code}, {text}")
        revoked = k.access()
        for g in (d, kp):
            c.passes(g, revoked, f"{g.name}: the token to be revoked, before")
        w.revoke(w.late, "--jti", revoked.claims["jti"], "--exp", str(revoked.claims["exp"]))
        c.wait_refused([d, kp], revoked, "revoked in Redis late")
        age = d.metric("jwtgate_revocation_sync_age_seconds", source="redis")
        expect(age is not None and 0 <= age < 5, f"deny: jwtgate_revocation_sync_age_seconds {age}")
        st["revoked"] = revoked

    def frozen():
        expect(st.get("revoked"), "the comes-up case did not finish")
        w.late.freeze()
        try:
            started = time.monotonic()
            deadline = started + FROZEN
            while True:
                a_ = c.send(d, valid)
                if a_.status == 503:
                    break
                expect(time.monotonic() < deadline, f"deny with Redis frozen: a valid token still answered {a_} after "
                                                    f"{FROZEN:g} s: an unanswering Redis is never noticed")
                time.sleep(0.1)
            print(f"  deny noticed the frozen Redis after {time.monotonic() - started:.1f} s", flush=True)
            c.refused(kp, st["revoked"], "keep with Redis frozen: the revoked token")
            c.passes(kp, valid, "keep with Redis frozen: a valid token")
            status = d.admin("GET", "/healthz")[0]
            expect(status == 200, f"deny: /healthz {status} with Redis frozen")
        finally:
            w.late.thaw()
        c.wait_passes([d], valid, "deny: a valid token after Redis thawed", within=RECONNECT)
        c.refused(d, st["revoked"], "deny after the thaw: the revoked token")

    def down_later():
        expect(st.get("revoked"), "the comes-up case did not finish")
        f0 = {g.name: g.metric("jwtgate_revocation_sync_failures_total", source="redis") or 0 for g in (d, kp)}
        w.late.stop()
        deadline = time.monotonic() + 4.0
        while True:
            a_ = c.send(d, valid)
            if a_.status == 503:
                break
            expect(time.monotonic() < deadline, f"deny: a valid token with Redis down: {a_}, expected 503 within 4 s")
            time.sleep(0.1)
        expect(not a_.received, f"deny: {a_}")
        c.refused(kp, st["revoked"], "keep with Redis down: the revoked token")
        c.passes(kp, valid, "keep with Redis down: a valid token")
        c.unavailable(d, valid, "deny with Redis down: a valid token")
        code, reached, text = grpc_unary(d, valid)
        expect(code == "14" and not reached, f"deny with Redis down: gRPC grpc-status {code}, expected 14: {text}")
        for g in (d, kp):
            wait_for(f"{g.name}: jwtgate_revocation_sync_failures_total increasing while Redis is down",
                     lambda: (g.metric("jwtgate_revocation_sync_failures_total", source="redis") or 0) > f0[g.name],
                     5.0, 0.2)
        st["down"] = True

    def recovers():
        expect(st.get("down"), "the down-later case did not finish")
        w.late.start()
        c.wait_passes([d], valid, "deny: a valid token after Redis came back", within=RECONNECT)
        c.refused(d, st["revoked"], "deny after the recovery: the token revoked before the outage")
        c.refused(kp, st["revoked"], "keep after the recovery: the token revoked before the outage")
        expect(d.readyz() == 200, f"deny: /readyz {d.readyz()} after the recovery")

    run.case("unavailable: deny + ready_requires_sync with Redis never reached: /readyz 503, token requests 503 "
             "(reason revocation_unavailable), public route served; failures counted", down_at_start)
    run.case("unavailable: keep with Redis never reached: ready, valid tokens pass", keep_at_start)
    run.case("unavailable: Redis comes up: deny's /readyz 200, tokens pass on both, a revocation applies on both",
             comes_up)
    run.case(f"unavailable: Redis frozen (SIGSTOP: no answer, no RST): deny answers 503 within {FROZEN:g} s, keep "
             "keeps its set; after SIGCONT deny serves again", frozen)
    run.case("unavailable: Redis down later: keep still refuses the revoked token and serves others, "
             "deny answers 503, failures counted", down_later)
    run.case("unavailable: Redis back: deny serves again and still refuses the revoked token", recovers)


# --- case 6: the file source, ConfigMap-style ----------------------------------------------------------

def file_cases(run, w):
    f, c, k, cm = w.g["file"], w.c, w.keys, w.cm
    t = w.file_tokens
    st = {}

    def at_start():
        c.refused(f, t["a"], "jti A, listed at start")
        c.refused(f, t["sess"], "the session listed at start")
        c.passes(f, t["b"], "jti B, not listed")
        c.passes(f, k.access(sid=unique("x")), "another session")
        expect(f.metric("jwtgate_revocation_entries", kind="jti") == 1,
               f"jwtgate_revocation_entries{{kind=\"jti\"}}: {f.metric('jwtgate_revocation_entries', kind='jti')}")
        expect(f.metric("jwtgate_revocation_entries", kind="session") == 1, "jwtgate_revocation_entries"
               f"{{kind=\"session\"}}: {f.metric('jwtgate_revocation_entries', kind='session')}")
        age = f.metric("jwtgate_revocation_sync_age_seconds", source="file")
        expect(age is not None and age >= 0, f"jwtgate_revocation_sync_age_seconds{{source=\"file\"}}: {age}")
        expect(f.metric("jwtgate_revocation_available") == 1, "jwtgate_revocation_available "
                                                              f"{f.metric('jwtgate_revocation_available')}")

    def swap():
        cm.swap(entry_lines(w.file_entry(t["b"]), w.file_session_entry()))
        c.wait_refused([f], t["b"], "jti B, added by the swap", within=RELOAD)
        c.wait_passes([f], t["a"], "jti A, removed by the swap", within=RELOAD)
        c.refused(f, t["sess"], "the session, still listed")
        st["swapped"] = True

    def invalid_swap():
        expect(st.get("swapped"), "the swap case did not finish")
        failures0 = f.metric("jwtgate_revocation_sync_failures_total", source="file") or 0
        log_mark = len(f.log_text())
        # valid lines that would refuse A and lift B, and a broken third line: rejected whole
        cm.swap(json.dumps(w.file_entry(t["a"])) + "\n" + json.dumps(w.file_session_entry()) + "\n"
                "this is not json\n")
        wait_for("jwtgate_revocation_sync_failures_total{source=\"file\"} increasing after the invalid swap",
                 lambda: (f.metric("jwtgate_revocation_sync_failures_total", source="file") or 0) > failures0,
                 RELOAD, 0.1)
        expect(f.alive(), f"jwtgate file exited after the invalid swap:\n{f.proc.tail()}")
        c.refused(f, t["b"], "jti B, from the last good file")
        c.passes(f, t["a"], "jti A, listed only in the rejected file")
        status = f.admin("GET", "/healthz")[0]
        expect(status == 200, f"/healthz {status} after the invalid swap")
        new_log = f.log_text()[log_mark:]
        errors = [line for line in new_log.splitlines() if re.search(r'"level":\s*"(error|warn)"', line)]
        expect(errors, f"no error log line after the invalid swap:\n{new_log[-800:]}")
        expect(any(re.search(r"line\W{0,3}3\b|:3\b|this is not json", line) for line in errors),
               f"the error log does not name line 3: {errors[-3:]}")
        st["invalid"] = True

    def recovers():
        expect(st.get("invalid"), "the invalid-swap case did not finish")
        now = int(time.time())
        subject = unique("cmsub")
        old = k.access(sub=subject, iat=now - 60)
        newer = k.access(sub=subject, iat=now - 10)
        lapsed_sid = unique("lapsed")
        lapsed = k.access(sid=lapsed_sid)
        c.passes(f, old, "the subject's old token before")
        cm.swap(entry_lines(w.file_entry(t["a"]),
                            {"iss": ISSUER, "sub": subject, "before": now - 30},           # no exp: kept
                            {"iss": ISSUER, "sid": lapsed_sid, "exp": now - 60}))         # lapsed already
        c.wait_refused([f], t["a"], "jti A, in the next valid file", within=RELOAD)
        c.wait_passes([f], t["b"], "jti B, removed", within=RELOAD)
        c.wait_passes([f], t["sess"], "the session, removed", within=RELOAD)
        c.refused(f, old, "the subject's token issued before the file's `before`")
        c.passes(f, newer, "the subject's token issued after it")
        c.passes(f, lapsed, "a session whose file entry's exp has passed")

    run.case("file: the ConfigMap file's entries (comments, blank lines) apply at start; metrics", at_start)
    run.case("file: a ..data swap applies an added jti and lifts a removed one within 5 s", swap)
    run.case("file: a swap to an invalid file keeps the previous set, logs the line, counts a failure, "
             "keeps serving", invalid_swap)
    run.case("file: the next valid swap applies again (a subject entry without exp; a lapsed entry ignored)",
             recovers)


# --- case 7: revoke --file -----------------------------------------------------------------------------

def append_cases(run, w):
    g, c, k, path = w.g["append"], w.c, w.keys, w.append_file

    def appends():
        token = k.access()
        other = k.access()
        c.passes(g, token, "the token before the revocation")
        c.passes(g, other, "the control token")
        before = read(path).splitlines()
        entry = revoke(w.binary, ["--file", path, "--jti", token.claims["jti"], "--exp", str(token.claims["exp"])])
        after = read(path).splitlines()
        expect(after[:len(before)] == before and len(after) == len(before) + 1,
               f"the file had {len(before)} lines and has {len(after)}; expected one appended:\n" + "\n".join(after))
        expect(json.loads(after[-1]) == entry == {"jti": token.claims["jti"], "exp": token.claims["exp"]},
               f"appended {after[-1]!r}, printed {entry}")
        c.wait_refused([g], token, "the jti appended by revoke --file", within=RELOAD)
        c.passes(g, other, "the control token after")
        sid = unique("fs")
        session = k.access(sid=sid)
        c.passes(g, session, "the session before")
        entry2 = revoke(w.binary, ["--file", path, "--iss", ISSUER, "--sid", sid])
        expect(json.loads(read(path).splitlines()[-1]) == entry2, "the second line is not the printed entry")
        c.wait_refused([g], session, "the session appended by revoke --file", within=RELOAD)
        c.refused(g, token, "the first appended entry, still in force")
        c.passes(g, other, "the control token at the end")

    run.case("append: revoke --file appends one JSON line per call (jti, sid) that the watching jwtgate applies",
             appends)


# --- Redis with a password, custom key_prefix and channel ------------------------------------------------

def auth_cases(run, w):
    g, c, k, r = w.g["pw"], w.c, w.keys, w.auth
    common = ["--redis", r.url, "--key-prefix", PW_PREFIX, "--channel", PW_CHANNEL]

    def with_password():
        wait_for("pw's jwtgate_revocation_available 1 (authenticated)",
                 lambda: g.metric("jwtgate_revocation_available") == 1, RECONNECT, 0.1)
        token = k.access()
        other = k.access()
        c.passes(g, token, "the token before")
        sub = r.subscribe(PW_CHANNEL)
        try:
            revoke(w.binary, common + ["--password-env", "REVOKE_PW", "--jti", token.claims["jti"],
                                       "--exp", str(token.claims["exp"])], env={"REVOKE_PW": r.password})
            c.wait_refused([g], token, "revoked with --password-env")
            message = sub.find(lambda m: isinstance(m, dict) and m.get("jti") == token.claims["jti"], 2.0)
        finally:
            sub.close()
        expect(message is not None, f"PUBLISH on {PW_CHANNEL}: {sub.seen}, expected the jti entry")
        stored(r, PW_PREFIX, jti=token.claims["jti"])
        c.passes(g, other, "the control token")
        sid = unique("pw")
        session = k.access(sid=sid)
        c.passes(g, session, "the session before")
        revoke(w.binary, common + ["--user", "rev", "--password-file", w.pw_file, "--iss", ISSUER, "--sid", sid])
        c.wait_refused([g], session, "revoked by the ACL user with --user --password-file")

    def wrong_password():
        wrong = "wrong-" + uuid.uuid4().hex
        sid = unique("nopw")
        for extra, env in ((["--password-env", "REVOKE_PW"], {"REVOKE_PW": wrong}), ([], None)):
            code, out, err = cli(w.binary, ["revoke"] + common + extra + ["--iss", ISSUER, "--sid", sid], env)
            what = "a wrong password" if extra else "no password"
            expect(code == 1, f"{what}: exit {code}, expected 1 ({err.strip()[-300:]})")
            expect(wrong not in out + err and r.password not in out + err, f"{what}: a password appears in the output")
        code, out, err = cli(w.binary, ["revoke", "--redis", r.url, "--user", "rev", "--password-file", w.pw_file,
                                        "--iss", ISSUER, "--sid", sid])  # the default prefix: outside rev's ACL
        expect(code == 1, f"the ACL user writing outside its key prefix: exit {code}, expected 1 ({err.strip()[-300:]})")
        expect(r.acl[1] not in out + err, "the ACL user's password appears in the output")
        try:
            stored(r, PW_PREFIX, sid=sid)
            raise Failure("a refused write reached Redis")
        except Failure as e:
            expect("no Redis key" in str(e), str(e))

    run.case("auth: a gate with an ACL username + password_file syncs (custom key_prefix/channel); revoke "
             "--password-env (default user) and --user --password-file apply within 1 s", with_password)
    run.case("auth: revoke with a wrong or no password, or outside the ACL, exits 1 without printing a password",
             wrong_password)


# --- rediss:// -----------------------------------------------------------------------------------------

def tls_cases(run, w):
    g, bad, c, k, r = w.g["tls"], w.g["tlsbad"], w.c, w.keys, w.tls

    def syncs():
        wait_for("tls's jwtgate_revocation_available 1 over rediss://",
                 lambda: g.metric("jwtgate_revocation_available") == 1, RECONNECT, 0.1)
        token, other = k.access(), k.access()
        c.passes(g, token, "the token before")
        revoke(w.binary, ["--redis", r.tls_url, "--ca-file", w.pki.ca, "--jti", token.claims["jti"],
                          "--exp", str(token.claims["exp"])])
        c.wait_refused([g], token, "revoked over rediss://")
        c.passes(g, other, "another token")
        stored(r, jti=token.claims["jti"])

    def verified():
        problems = []
        for extra, what in (([], "the system CAs"), (["--ca-file", w.pki.other_ca], "another CA")):
            code, out, err = cli(w.binary, ["revoke", "--redis", r.tls_url] + extra + ["--iss", ISSUER, "--sid",
                                                                                     unique("tls")])
            if code != 1:
                problems.append(f"revoke over rediss:// trusting {what}: exit {code}, expected 1 "
                                f"({(out + err).strip()[-200:]})")
        expect(bad.metric("jwtgate_revocation_available") == 0,
               f"tlsbad (ca_file: another CA): jwtgate_revocation_available "
               f"{bad.metric('jwtgate_revocation_available')}, expected 0")
        f = bad.metric("jwtgate_revocation_sync_failures_total", source="redis")
        if not f:
            problems.append(f"tlsbad: jwtgate_revocation_sync_failures_total {f}, expected failed handshakes counted")
        c.passes(bad, k.access(), "tlsbad (keep): a valid token")
        expect(not problems, "; ".join(problems))

    run.case("tls: a rediss:// gate (ca_file) syncs; revoke --redis rediss:// --ca-file applies within 1 s", syncs)
    run.case("tls: the server certificate is verified: revoke without --ca-file or with another CA exits 1; "
             "a gate with another CA never syncs (failures counted) and keeps serving", verified)


# --- case 8: metrics -------------------------------------------------------------------------------------

def metrics_cases(run, w):
    def present():
        problems = []
        for g, source in ((w.g["a"], "redis"), (w.g["b"], "redis"), (w.g["file"], "file"), (w.g["pw"], "redis")):
            values = g.metrics()
            for kind in ("jti", "subject", "session"):
                v = metric(values, "jwtgate_revocation_entries", kind=kind)
                if v is None or v < 0:
                    problems.append(f"{g.name}: jwtgate_revocation_entries{{kind=\"{kind}\"}} = {v}")
            age = metric(values, "jwtgate_revocation_sync_age_seconds", source=source)
            if age is None or not (0 <= age < 10 if source == "redis" and g.name != "b" else age >= 0):
                problems.append(f"{g.name}: jwtgate_revocation_sync_age_seconds{{source=\"{source}\"}} = {age}")
            f = metric(values, "jwtgate_revocation_sync_failures_total", source=source)
            if f is None:
                problems.append(f"{g.name}: no jwtgate_revocation_sync_failures_total{{source=\"{source}\"}}")
            avail = metric(values, "jwtgate_revocation_available")
            if avail != 1:
                problems.append(f"{g.name}: jwtgate_revocation_available = {avail}")
        a = w.g["a"].metrics()
        for kind in ("jti", "subject", "session"):
            v = metric(a, "jwtgate_revocation_entries", kind=kind)
            if not v:
                problems.append(f"a: jwtgate_revocation_entries{{kind=\"{kind}\"}} = {v} after the cases wrote some")
        for result in ("ok", "invalid", "replayed"):
            if metric(a, "jwtgate_backchannel_logouts_total", result=result) is None:
                problems.append(f"a: no jwtgate_backchannel_logouts_total{{result=\"{result}\"}}")
        expect(not problems, "; ".join(problems))

    run.case("metrics: entries, sync age, sync failures, available and logout counters are exported", present)


# --- setup -----------------------------------------------------------------------------------------------

def build(args, tmp, cleanup):
    """Everything but the jwtgates' start; what it starts is appended to CLEANUP at once."""
    keys = Keys(tmp)
    up = Upstream(tmp)
    cleanup.append(up.stop)
    grpc_up = Upstream(tmp, "grpc_server", GRPC_SERVER)
    cleanup.append(grpc_up.stop)
    shared = Redis("shared", tmp, persistent=True)
    late = Redis("late", tmp, persistent=True)
    # The default user has a password; the ACL user "rev", which gate pw uses, may touch only its
    # key prefix and channel.
    auth = Redis("auth", tmp, password="pw-" + uuid.uuid4().hex,
                 acl=("rev", "rev-" + uuid.uuid4().hex, [f"~{PW_PREFIX}*", f"&{PW_CHANNEL}", "+@all"]))
    pki = Pki(tmp)
    tls = Redis("tls", tmp, tls=(pki.crt, pki.key, pki.ca))
    for r in (shared, late, auth, tls):
        cleanup.append(r.stop)
    shared.start()
    auth.start()
    tls.start()
    pw_file = write(os.path.join(tmp, "redis-password"), auth.acl[1], 0o600)  # the ACL user's

    now = int(time.time())
    file_tokens = {"a": keys.access(), "b": keys.access(), "sess": keys.access(sid=unique("cm"))}

    def file_entry(t):
        return {"jti": t.claims["jti"], "exp": t.claims["exp"]}

    def file_session_entry():
        return {"iss": ISSUER, "sid": file_tokens["sess"].claims["sid"], "exp": now + 3600}

    cm = ConfigMapDir(os.path.join(tmp, "configmap"), "revoked.jsonl",
                      entry_lines(file_entry(file_tokens["a"]), file_session_entry()))
    append_file = write(os.path.join(tmp, "appended.jsonl"), "# written by jwtgate revoke --file\n")

    body = lambda rev: gate_body(up, keys, rev, grpc_up.port)  # noqa: E731
    gates = {
        "a": Jwtgate("a", args.jwtgate, tmp, body(redis_section(shared, "1s") + LOGOUT_SECTION)),
        "b": Jwtgate("b", args.jwtgate, tmp, body(redis_section(shared, "1h") + LOGOUT_SECTION)),
        "deny": Jwtgate("deny", args.jwtgate, tmp, body(redis_section(late, "1s") +
                                                        "  on_unavailable: deny\n  ready_requires_sync: true\n"),
                        ready=False),
        "keep": Jwtgate("keep", args.jwtgate, tmp, body(redis_section(late, "1s") + "  on_unavailable: keep\n")),
        "file": Jwtgate("file", args.jwtgate, tmp, body(f"  file: {cm.file}\n")),
        "append": Jwtgate("append", args.jwtgate, tmp, body(f"  file: {append_file}\n")),
        "pw": Jwtgate("pw", args.jwtgate, tmp, body(redis_section(auth, "1s", f"""    username: rev
    password_file: {pw_file}
    key_prefix: "{PW_PREFIX}"
    channel: "{PW_CHANNEL}"
"""))),
        "tls": Jwtgate("tls", args.jwtgate, tmp, body(f"""  redis:
    url: {tls.tls_url}/0
    ca_file: {pki.ca}
    resync_interval: 1s
    connect_timeout: 1s
""")),
        "tlsbad": Jwtgate("tlsbad", args.jwtgate, tmp, body(f"""  redis:
    url: {tls.tls_url}/0
    ca_file: {pki.other_ca}
    resync_interval: 1s
    connect_timeout: 1s
""")),
    }
    w = World(args.jwtgate, keys, up, shared, late, auth, gates, cm, append_file, pw_file)
    w.tls, w.pki, w.grpc = tls, pki, grpc_up
    w.file_tokens, w.file_entry, w.file_session_entry = file_tokens, file_entry, file_session_entry
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jwtgate", default=os.environ.get("JWTGATE") or os.path.join(ROOT, "build", "jwtgate"),
                    help="the jwtgate binary (default $JWTGATE, else build/jwtgate)")
    ap.add_argument("-k", help="run only the cases whose name holds this")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    ap.add_argument("--selftest", action="store_true", help="check the test's own helpers only")
    args = ap.parse_args()
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="jwtgate-revocation-e2e-")
    run = Run(args, tmp)
    if args.selftest:
        import selftest  # noqa: E402  (tests/revocation/selftest.py)
        selftest.run_all(run, sys.modules[__name__], tmp)
        return run.finish("revocation selftest", started)
    args.jwtgate = os.path.abspath(args.jwtgate)
    if not os.access(args.jwtgate, os.X_OK):
        print(f"revocation e2e: jwtgate binary {args.jwtgate} is missing", file=sys.stderr)
        return 1
    if not os.access(REDIS_BINARY, os.X_OK):
        print(f"revocation e2e: {REDIS_BINARY} (Debian's redis-tools: the Redis 7 server) is missing",
              file=sys.stderr)
        return 1
    cleanup, started_gates = [], []
    try:
        w = build(args, tmp, cleanup)
        for name, g in w.g.items():
            try:
                started_gates.append(g.start())
            except Failure as e:  # its cases fail on their own; the others still run
                run.fail(f"start {name}", str(e))
        print(f"revocation e2e: Redis, upstream and {len(started_gates)} jwtgates up in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        config_cases(run, w)
        cli_usage_cases(run, w)
        shared_cases(run, w)
        expiry_cases(run, w)
        logout_cases(run, w)
        reload_cases(run, w)
        restart_cases(run, w)
        unavailable_cases(run, w)
        file_cases(run, w)
        append_cases(run, w)
        auth_cases(run, w)
        tls_cases(run, w)
        metrics_cases(run, w)
        for g in started_gates:
            if not g.alive():
                run.fail(f"jwtgate {g.name}", f"no longer running:\n{g.proc.tail()}")
    except Failure as e:
        run.fail("setup", str(e))
    finally:
        for g in started_gates:
            g.stop(run.failures)
        for stop in reversed(cleanup):
            stop()
    return run.finish("revocation e2e", started)


if __name__ == "__main__":
    sys.exit(main())
