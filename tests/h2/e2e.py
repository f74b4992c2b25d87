#!/usr/bin/python3
"""HTTP/2 and gRPC end to end (issue 17): jwtgate's h2c and h2-over-TLS listener, its h2c
upstreams and its gRPC answers, driven by real clients (grpcio, curl, nghttp, a raw frame
client) and judged by what the upstreams received.

    e2e.py --jwtgate build/jwtgate [-k SUBSTRING] [--keep]
    e2e.py --selftest [-k SUBSTRING]      the test's own servers and clients, no jwtgate

The upstreams (each prints its port):
  tests/h2/grpc_server.py      grpcio with generic byte handlers: /echo.Echo/{Unary,Admin,
                               ServerStream,ClientStream,Bidi,Slow}; every call answers with the
                               metadata it received (`x-seen-metadata`)
  tests/h2/h2_upstream.py      a recording h2c server (python h2, inbound validation off); its
                               GET /__seen?clear=1 is the oracle for what an h2c upstream received
  tests/support/upstream.py    the recording HTTP/1.1 upstream; its /__seen likewise

The jwtgates (each with its own config, admin listener and log):
  main    plain listener (HTTP/1.1 and h2c prior knowledge on one port), upstream h2c:// the gRPC
          server; routes /echo.Echo/Admin (scope admin), /echo.Echo, /dead.Echo (a closed port),
          /plain (upstream.py), /plain/admin (scope admin), /h2 (h2_upstream)
  tls     the same routes behind a TLS listener (ALPN h2, http/1.1)
  slow    limits.upstream_timeout: 1s in front of the gRPC server
  nokeys  a provider whose jwks file does not exist (never ready)

Tokens: ES256, made here with python3-jwt / cryptography; the JWKS is a file.
Prints PASS/FAIL per case, exits 1 if any failed. Debian's /usr/bin/python3 (grpc, h2, hpack,
hyperframe, jwt, cryptography). Everything binds 127.0.0.1 on free ports; every wait is bounded;
every process started is stopped at the end.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
sys.path.insert(0, HERE)
from ports import free_port  # noqa: E402
import h2wire  # noqa: E402
from h2wire import H2Client, error_name, grpc_frame, grpc_messages  # noqa: E402

import grpc  # noqa: E402
import jwt  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

PYTHON = "/usr/bin/python3"
UPSTREAM = os.path.join(ROOT, "tests", "support", "upstream.py")
GRPC_SERVER = os.path.join(HERE, "grpc_server.py")
H2_UPSTREAM = os.path.join(HERE, "h2_upstream.py")

ISSUER = "https://idp.example.com/"
AUDIENCE = "orders-api"
WAIT = 20.0
MIB = 1 << 20
RSS_BUDGET = 64 * MIB
IDENTITY = "x-jwt-sub"
FORGED_METADATA = [("x-jwt-sub", "mallory"), ("x_jwt_sub", "mallory")]
FORGED_HEADERS = [("X-Jwt-Sub", "mallory"), ("x_jwt_sub", "mallory"), ("X-JWT-SUB", "mallory")]
GRPC_MESSAGE_RE = re.compile(r"^(?:[\x20-\x24\x26-\x7e]|%[0-9A-Fa-f]{2})*$")
CONNECTION_SPECIFIC = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


class Failure(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failure(message)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fold(name):
    """CGI/WSGI read X_Jwt_Sub and X-Jwt-Sub as one variable."""
    return re.sub(r"[^a-z0-9]", "-", name.lower())


def values_of(pairs, name):
    return [v for n, v in pairs if fold(n) == fold(name)]


def auth(token):
    return [("authorization", f"Bearer {token}")]


# --- tokens ------------------------------------------------------------------------------------

class Tokens:
    def __init__(self, tmp):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.other = ec.generate_private_key(ec.SECP256R1())  # same kid, not in the JWKS
        numbers = self.key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
               "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}
        self.jwks = write(os.path.join(tmp, "jwks.json"), json.dumps({"keys": [jwk]}))
        os.chmod(self.jwks, 0o644)
        self.valid = self.mint({"scope": "read"})
        self.admin = self.mint({"scope": "read admin"})
        self.expired = self.mint({"scope": "read admin"}, ttl=-3600)
        self.wrong_key = self.mint({"scope": "read admin"}, key=self.other)
        head, payload, sig = self.valid.split(".")
        i = len(sig) // 2
        self.bad_signature = ".".join([head, payload, sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]])

    def mint(self, claims, ttl=600, key=None):
        now = int(time.time())
        full = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now + min(ttl, 0) - 60, "exp": now + ttl}
        full.update(claims)
        pem = (key or self.key).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())
        return jwt.encode(full, pem, algorithm="ES256", headers={"kid": "k1"})


# --- PKI for the TLS listener --------------------------------------------------------------------

class Pki:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "pki")
        os.makedirs(self.dir)
        self.ca_key, self.ca = self.path("ca.key"), self.path("ca.crt")
        self.key, self.crt = self.path("server.key"), self.path("server.crt")
        self.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.ca_key)
        self.openssl("req", "-x509", "-new", "-key", self.ca_key, "-subj", "/CN=jwtgate h2 test CA", "-days", "30",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                     "keyUsage=critical,keyCertSign,cRLSign", "-out", self.ca)
        self.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.key)
        csr = self.path("server.csr")
        self.openssl("req", "-new", "-key", self.key, "-subj", "/CN=localhost", "-out", csr)
        ext = write(self.path("server.ext"), "[v3]\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                                             "keyUsage=critical,digitalSignature\n"
                                             "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        self.openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-set_serial",
                     str(int.from_bytes(os.urandom(16), "big") >> 1), "-days", "30", "-sha256", "-extfile", ext,
                     "-extensions", "v3", "-out", self.crt)

    def path(self, name):
        return os.path.join(self.dir, name)

    def openssl(self, *args):
        r = subprocess.run(["openssl", *args], cwd=self.dir, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Failure(f"openssl {' '.join(args)}: {r.stderr}")

    def context(self, alpn):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx


# --- processes ---------------------------------------------------------------------------------

def jwtgate_env(binary):
    """The environment for jwtgate. An AddressSanitizer build keeps freed memory in quarantine
    (256 MiB by default), which would read as growth in the RSS checks: it gets a small one, so
    the checks still measure what jwtgate holds."""
    env = dict(os.environ)
    try:
        linked = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        linked = ""
    if "libasan" in linked:
        extra = "quarantine_size_mb=4:thread_local_quarantine_size_kb=256"
        env["ASAN_OPTIONS"] = f"{env['ASAN_OPTIONS']}:{extra}" if env.get("ASAN_OPTIONS") else extra
    return env


class Proc:
    """A child in its own session, stderr (and stdout unless piped) to a log file."""

    def __init__(self, name, argv, tmp, pipe_stdout=False, env=None):
        self.name = name
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if pipe_stdout else self.log, stderr=self.log,
                                     start_new_session=True, env=env)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def tail(self, n=30):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")

    def lines(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()

    def stop(self):
        status = self.proc.poll()
        if status is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                status = self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                status = self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()
        return status


class Server:
    """One of the test's upstreams: started, its port read from its first stdout line."""

    def __init__(self, name, argv, tmp):
        self.name = name
        self.proc = Proc(name, argv, tmp, pipe_stdout=True)
        ready, _, _ = select.select([self.proc.proc.stdout], [], [], WAIT)
        line = self.proc.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.proc.stop()
            raise Failure(f"{name} did not print its port within {WAIT} s:\n{self.proc.tail()}")
        self.port = int(line)

    def seen(self, clear=True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/__seen?clear=1" if clear else "/__seen")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stop(self):
        self.proc.stop()


class Jwtgate:
    def __init__(self, name, binary, tmp, body, ready=True, workers=2):
        self.name = name
        self.binary = binary
        self.dir = os.path.join(tmp, "gate-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "jwtgate.yaml")
        self.body = body
        self.workers = workers
        self.ready = ready  # wait for /readyz (else /healthz: a gate whose provider never gets keys)
        self.proc = None
        self.pick_ports()

    def pick_ports(self):
        self.port = free_port()
        self.admin_port = free_port()
        write(self.config, f"listen: 127.0.0.1:{self.port}\nworkers: {self.workers}\n"
                           f"admin_listen: 127.0.0.1:{self.admin_port}\n" + self.body)

    def start(self):
        for attempt in range(3):
            try:
                return self.start_once()
            except Failure as failure:
                if attempt == 2 or "address already in use" not in str(failure).lower():
                    raise
                self.pick_ports()

    def start_once(self):
        self.proc = Proc("jwtgate", [self.binary, "--config", self.config], self.dir, env=jwtgate_env(self.binary))
        probe = "/readyz" if self.ready else "/healthz"
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise Failure(f"jwtgate {self.name} exited with {self.proc.proc.returncode}:\n{self.proc.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=2)
                conn.request("GET", probe)
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise Failure(f"jwtgate {self.name} not answering {probe} on {self.admin_port} within {WAIT} s:\n"
                      f"{self.proc.tail()}")

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise Failure("no VmRSS in /proc/PID/status")

    def metrics(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        values = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
        return values

    def access_lines(self):
        out = []
        for line in self.proc.lines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("msg") == "access":
                out.append(obj)
        return out

    def stop(self, failures):
        if not self.proc:
            return
        status = self.proc.stop()
        if status != 0:
            failures.append(f"jwtgate {self.name} exited with {status} on SIGTERM:\n{self.proc.tail()}")


def metric(values, name, **labels):
    total, found = 0.0, False
    for key, value in values.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))
        if all(have.get(k) == v for k, v in labels.items()):
            total += value
            found = True
    return total if found else None


# --- clients -----------------------------------------------------------------------------------

def http1(port, method, target, headers=(), body=b""):
    """One HTTP/1.1 request on a fresh connection; (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for n, v in headers:
            conn.putheader(n, v)
        if body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


def http1_chunked(port, target, headers, chunks):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", target, body=iter(chunks), headers=dict(headers), encode_chunked=True)
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


def h2_get(port, path, headers=(), tls=None, timeout=10):
    c = H2Client(port, tls=tls, timeout=timeout)
    try:
        s = c.wait(c.request("GET", path, headers), timeout)
        return s, c
    finally:
        c.close()


def curl(url, args=(), timeout=10):
    """(exit code, http code, http version, stdout body, stderr)."""
    fd, out = tempfile.mkstemp(prefix="curl-")
    os.close(fd)
    try:
        r = subprocess.run(["curl", "-sS", "--max-time", str(timeout), "-o", out, "-w", "%{http_code} %{http_version}",
                            *args, url], capture_output=True, text=True, timeout=timeout + 10)
        with open(out, "rb") as f:
            body = f.read()
    finally:
        os.unlink(out)
    code, _, version = r.stdout.partition(" ")
    return r.returncode, code, version, body, r.stderr


def grpc_channel(port):
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_retries", 0),
                                                             ("grpc.max_receive_message_length", 16 * MIB),
                                                             ("grpc.max_send_message_length", 16 * MIB)])


def grpc_metadata(token, forged=True):
    md = [("authorization", f"Bearer {token}")] if token else []
    return md + (FORGED_METADATA if forged else [])


def seen_identity(initial_metadata):
    """The x-jwt-sub values (any spelling) the gRPC server says it received."""
    md = dict(initial_metadata or ())
    expect("x-seen-metadata" in md, f"the gRPC server's x-seen-metadata is missing from the initial metadata "
                                    f"{list(md)}: the call did not reach grpc_server.py, or its headers were lost")
    received = json.loads(md["x-seen-metadata"])
    return [[k, v] for k, v in received if fold(k) == IDENTITY]


def expect_alice(received, what):
    expect(received == [[IDENTITY, "alice"]],
           f"{what}: the server received identity metadata {received}, expected exactly [['x-jwt-sub', 'alice']] "
           f"(the verified sub injected, the forged x-jwt-sub / x_jwt_sub removed)")


def grpc_code(fn):
    """Runs FN, a gRPC call expected to fail; returns (code, details, trailing metadata)."""
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details(), e.trailing_metadata()
    raise Failure("the call succeeded; expected it to be refused")


def raw_grpc(port, path, token, payload=b"{}", extra=(), timeout=10, content_type="application/grpc", tls=None):
    """One gRPC unary call by hand; (stream, elapsed seconds, client)."""
    headers = [("content-type", content_type), ("te", "trailers")] + (auth(token) if token else []) + list(extra)
    c = H2Client(port, tls=tls, timeout=timeout)
    started = time.monotonic()
    try:
        s = c.wait(c.request("POST", path, headers, body=grpc_frame(payload)), timeout)
        return s, time.monotonic() - started, c
    finally:
        c.close()


def expect_trailers_only(s, code, what):
    """A gRPC Trailers-Only answer: one HEADERS with END_STREAM, :status 200, content-type
    application/grpc*, grpc-status CODE, grpc-message percent-encoded."""
    expect(s.headers is not None, f"{what}: no response ({s.describe()})")
    expect(s.status == 200, f"{what}: :status {s.status}, a gRPC refusal must be :status 200 Trailers-Only "
                            f"({s.describe()})")
    expect((s.header("content-type") or "").startswith("application/grpc"),
           f"{what}: content-type {s.header('content-type')!r}, expected application/grpc ({s.describe()})")
    expect(s.trailers is None and not s.data and s.ended,
           f"{what}: not Trailers-Only (one HEADERS frame with END_STREAM, no DATA): {s.describe()}")
    expect(s.header("grpc-status") == str(code), f"{what}: grpc-status {s.header('grpc-status')!r}, expected {code} "
                                                 f"({s.describe()})")
    message = s.header("grpc-message")
    expect(message is not None, f"{what}: no grpc-message ({s.describe()})")
    expect(GRPC_MESSAGE_RE.match(message), f"{what}: grpc-message {message!r} is not percent-encoded")


def grpc_status_of(s):
    return (s.trailer("grpc-status") if s.trailers else None) or (s.header("grpc-status") if s.headers else None)


# --- the test run ------------------------------------------------------------------------------

class Run:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.failures = []
        self.passed = 0
        self.skipped = 0

    def selected(self, name):
        return not self.args.k or self.args.k in name

    def case(self, name, fn, *a):
        if not self.selected(name):
            self.skipped += 1
            return
        started = time.monotonic()
        try:
            note = fn(*a)
        except Failure as e:
            self.failures.append(f"{name}: {e}")
            print(f"FAIL {name}: {e}", flush=True)
            return
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            details = e.details() if hasattr(e, "details") else str(e)
            self.failures.append(f"{name}: gRPC call failed: {code} {details!r}")
            print(f"FAIL {name}: gRPC call failed: {code} {details!r}", flush=True)
            return
        except (OSError, ssl.SSLError, http.client.HTTPException, subprocess.SubprocessError,
                ValueError, KeyError) as e:
            self.failures.append(f"{name}: {type(e).__name__}: {e}")
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            return
        self.passed += 1
        print(f"PASS {name}" + (f" ({note})" if note else "") + f" [{time.monotonic() - started:.1f} s]", flush=True)

    def finish(self, label, started):
        if self.args.keep or self.failures:
            print(f"{label}: configs and logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        elapsed = time.monotonic() - started
        if self.failures:
            print(f"\n{self.passed} passed, {len(self.failures)} failed in {elapsed:.1f} s:", *self.failures,
                  sep="\n  ")
            return 1
        print(f"{label}: {self.passed} passed in {elapsed:.1f} s" +
              (f" ({self.skipped} skipped by -k)" if self.skipped else ""))
        return 0


def provider_block(jwks):
    return f"""providers:
  - name: main
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [ES256]
    jwks:
      file: {jwks}
    claims_to_headers:
      sub: X-Jwt-Sub
"""


def main_body(grpc_port, plain_port, h2_port, dead_port, jwks, extra=""):
    return f"""upstream: h2c://127.0.0.1:{grpc_port}
http2:
  enabled: true
  max_concurrent_streams: 100
limits:
  max_header_bytes: 16KiB
  upstream_timeout: 30s
{extra}""" + provider_block(jwks) + f"""routes:
  - prefix: /echo.Echo/Admin
    require_scopes: [admin]
  - prefix: /echo.Echo
  - prefix: /dead.Echo
    upstream: h2c://127.0.0.1:{dead_port}
  - prefix: /plain/admin
    upstream: http://127.0.0.1:{plain_port}
    require_scopes: [admin]
  - prefix: /plain
    upstream: http://127.0.0.1:{plain_port}
  - prefix: /h2
    upstream: h2c://127.0.0.1:{h2_port}
"""


class World:
    """Everything the cases need."""

    def __init__(self, tokens, gate, tls_gate, slow, nokeys, grpc_up, plain, h2up, pki):
        self.tokens, self.gate, self.tls, self.slow, self.nokeys = tokens, gate, tls_gate, slow, nokeys
        self.grpc, self.plain, self.h2up, self.pki = grpc_up, plain, h2up, pki
        self.baseline_rss = None


# --- gRPC cases ---------------------------------------------------------------------------------

def grpc_cases(run, w):
    port, t = w.gate.port, w.tokens

    def unary():
        with grpc_channel(port) as ch:
            reply, call = ch.unary_unary("/echo.Echo/Unary").with_call(b"hello", metadata=grpc_metadata(t.valid),
                                                                        timeout=10)
        expect_alice(seen_identity(call.initial_metadata()), "Unary")
        body = json.loads(reply)
        expect(values_of(body["metadata"], IDENTITY) == ["alice"], f"Unary reply metadata {body['metadata']}")
        expect(body["request_bytes"] == 5, f"the server got {body['request_bytes']} request bytes, sent 5")
        trailing = dict(call.trailing_metadata() or ())
        expect(trailing.get("x-trailer") == "done", f"trailing metadata {trailing}: x-trailer: done did not reach "
                                                    "the client")

    def server_stream():
        with grpc_channel(port) as ch:
            call = ch.unary_stream("/echo.Echo/ServerStream")(json.dumps({"count": 10, "size": 1000}).encode(),
                                                              metadata=grpc_metadata(t.valid), timeout=10)
            messages = list(call)
            expect_alice(seen_identity(call.initial_metadata()), "ServerStream")
        expect(len(messages) == 10 and all(len(m) == 1000 for m in messages),
               f"got {len(messages)} messages of sizes {sorted({len(m) for m in messages})}, expected 10 of 1000")

    def client_stream():
        sizes = [1, 100, 10000, 70000, 5]
        with grpc_channel(port) as ch:
            reply, call = ch.stream_unary("/echo.Echo/ClientStream").with_call(
                iter([b"x" * n for n in sizes]), metadata=grpc_metadata(t.valid), timeout=10)
        expect_alice(seen_identity(call.initial_metadata()), "ClientStream")
        body = json.loads(reply)
        expect(body == {"messages": len(sizes), "bytes": sum(sizes)}, f"server counted {body}, sent "
                                                                      f"{len(sizes)} messages, {sum(sizes)} bytes")

    def bidi():
        sent = [os.urandom(n) for n in (3, 3000, 30000, 0, 300)]
        with grpc_channel(port) as ch:
            call = ch.stream_stream("/echo.Echo/Bidi")(iter(sent), metadata=grpc_metadata(t.valid), timeout=10)
            got = list(call)
            expect_alice(seen_identity(call.initial_metadata()), "Bidi")
        expect(got == sent, f"echoed {[len(m) for m in got]} bytes per message, sent {[len(m) for m in sent]}")

    def admin_allowed():
        with grpc_channel(port) as ch:
            reply, call = ch.unary_unary("/echo.Echo/Admin").with_call(b"", metadata=grpc_metadata(t.admin),
                                                                        timeout=10)
        expect_alice(seen_identity(call.initial_metadata()), "Admin with the admin scope")

    run.case("grpc unary: valid token, x-jwt-sub alice at the server, forged copies gone, x-trailer reaches the "
             "client", unary)
    run.case("grpc server-streaming: valid token, 10 messages, x-jwt-sub alice", server_stream)
    run.case("grpc client-streaming: valid token, counts match, x-jwt-sub alice", client_stream)
    run.case("grpc bidi: valid token, every message echoed, x-jwt-sub alice", bidi)
    run.case("grpc admin scope: /echo.Echo/Admin passes with scope admin (control for 7)", admin_allowed)

    denials = [("no token", None, "/echo.Echo/Unary", 16), ("invalid signature", t.bad_signature, "/echo.Echo/Unary", 16),
               ("signed by an unknown key", t.wrong_key, "/echo.Echo/Unary", 16),
               ("expired", t.expired, "/echo.Echo/Unary", 16), ("garbage", "not.a.jwt", "/echo.Echo/Unary", 16),
               ("insufficient scope", t.valid, "/echo.Echo/Admin", 7)]
    for label, token, path, code in denials:
        def client_view(token=token, path=path, code=code):
            with grpc_channel(port) as ch:
                got, details, _ = grpc_code(lambda: ch.unary_unary(path).with_call(
                    b"", metadata=grpc_metadata(token), timeout=10))
            expect(got.value[0] == code, f"grpcio saw {got} ({details!r}), expected code {code}")

        def wire_view(token=token, path=path, code=code, label=label):
            s, _, _ = raw_grpc(port, path, token)
            expect_trailers_only(s, code, label)
        run.case(f"grpc denial {label} -> {code} (grpcio)", client_view)
        run.case(f"grpc denial {label} -> {code} Trailers-Only on the wire", wire_view)

    def stream_denied():
        with grpc_channel(port) as ch:
            def call():
                list(ch.unary_stream("/echo.Echo/ServerStream")(b'{"count": 3, "size": 10}', timeout=10))
            got, details, _ = grpc_code(call)
        expect(got == grpc.StatusCode.UNAUTHENTICATED, f"grpcio saw {got} ({details!r}), expected UNAUTHENTICATED")

    def bidi_denied():
        with grpc_channel(port) as ch:
            got, details, _ = grpc_code(lambda: list(ch.stream_stream("/echo.Echo/Bidi")(
                iter([b"a", b"b"]), metadata=grpc_metadata(t.expired), timeout=10)))
        expect(got == grpc.StatusCode.UNAUTHENTICATED, f"grpcio saw {got} ({details!r}), expected UNAUTHENTICATED")

    def grpc_plus_proto():
        s, _, _ = raw_grpc(port, "/echo.Echo/Unary", None, content_type="application/grpc+proto")
        expect_trailers_only(s, 16, "application/grpc+proto without a token")

    def unreachable():
        with grpc_channel(port) as ch:
            got, details, _ = grpc_code(lambda: ch.unary_unary("/dead.Echo/Unary").with_call(
                b"", metadata=grpc_metadata(t.valid), timeout=10))
        expect(got == grpc.StatusCode.UNAVAILABLE, f"grpcio saw {got} ({details!r}), expected UNAVAILABLE")
        s, _, _ = raw_grpc(port, "/dead.Echo/Unary", t.valid)
        expect_trailers_only(s, 14, "upstream on a closed port")

    def no_keys():
        with grpc_channel(w.nokeys.port) as ch:
            got, details, _ = grpc_code(lambda: ch.unary_unary("/echo.Echo/Unary").with_call(
                b"", metadata=grpc_metadata(t.valid), timeout=10))
        expect(got == grpc.StatusCode.UNAVAILABLE, f"grpcio saw {got} ({details!r}), expected UNAVAILABLE")
        s, _, _ = raw_grpc(w.nokeys.port, "/echo.Echo/Unary", t.valid)
        expect_trailers_only(s, 14, "provider without keys")

    def upstream_timeout():
        started = time.monotonic()
        with grpc_channel(w.slow.port) as ch:
            got, details, _ = grpc_code(lambda: ch.unary_unary("/echo.Echo/Slow").with_call(
                b'{"seconds": 3}', metadata=grpc_metadata(t.valid), timeout=10))
        elapsed = time.monotonic() - started
        expect(got == grpc.StatusCode.DEADLINE_EXCEEDED, f"grpcio saw {got} ({details!r}) after {elapsed:.2f} s, "
                                                         "expected DEADLINE_EXCEEDED from upstream_timeout: 1s")
        expect(0.8 <= elapsed < 2.8, f"DEADLINE_EXCEEDED after {elapsed:.2f} s; upstream_timeout is 1s, the "
                                     "upstream answers after 3 s, the client's deadline is 10 s")
        s, elapsed, _ = raw_grpc(w.slow.port, "/echo.Echo/Slow", t.valid, b'{"seconds": 3}')
        expect(elapsed < 2.8, f"raw call answered after {elapsed:.2f} s")
        # This upstream sends its response head at once and the message late: the call had begun,
        # so it ends with grpc-status 4 in trailers (a Trailers-Only answer when nothing had).
        if s.trailers is None:
            expect_trailers_only(s, 4, "upstream_timeout on the wire")
        else:
            expect(s.status == 200 and s.ended and s.trailer("grpc-status") == "4",
                   f"upstream_timeout on the wire: expected trailers with grpc-status 4: {s.describe()}")
            message = s.trailer("grpc-message")
            expect(message is not None and GRPC_MESSAGE_RE.match(message), f"grpc-message {message!r}")
        return f"{elapsed:.2f} s"

    def grpc_timeout_header():
        s, elapsed, _ = raw_grpc(port, "/echo.Echo/Slow", t.valid, b'{"seconds": 3}', extra=[("grpc-timeout", "300m")])
        expect(s.done, f"no complete answer within 10 s: {s.describe()}")
        expect(grpc_status_of(s) == "4", f"grpc-status {grpc_status_of(s)!r}, expected 4: {s.describe()}")
        expect(elapsed < 1.5, f"DEADLINE_EXCEEDED after {elapsed:.2f} s for grpc-timeout: 300m")
        if s.status == 200 and s.trailers is None:
            how = "Trailers-Only"
        else:
            how = "headers then trailers (the upstream's own deadline may have answered)"
        return f"{elapsed:.2f} s, {how}"

    def log_and_metrics():
        before = metric(w.gate.metrics(), "jwtgate_grpc_responses_total", grpc_status="16") or 0
        marker = "/echo.Echo/Unary"
        lines_before = len(w.gate.access_lines())
        for _ in range(3):
            s, _, _ = raw_grpc(port, marker, None)
            expect(grpc_status_of(s) == "16", f"denial: {s.describe()}")
        deadline = time.monotonic() + 5
        while True:
            after = metric(w.gate.metrics(), "jwtgate_grpc_responses_total", grpc_status="16")
            lines = [l for l in w.gate.access_lines()[lines_before:] if l.get("path") == marker]
            if (after or 0) - before >= 3 and len([l for l in lines if l.get("grpc_status") == 16]) >= 3:
                return f"metric {before:.0f} -> {after:.0f}"
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        expect(after is not None, 'no jwtgate_grpc_responses_total{grpc_status="16"} sample in /metrics')
        expect(after - before >= 3, f'jwtgate_grpc_responses_total{{grpc_status="16"}} went {before} -> {after} '
                                    "after 3 denials")
        raise Failure(f"access log: expected 3 lines for {marker} with \"grpc_status\": 16 (an integer), found "
                      f"{lines[-3:] or 'none'}")

    def large_stream():
        count, size = 4096, 64 * 1024  # 256 MiB
        base = w.gate.rss()
        peak, got, messages = base, 0, 0
        started = time.monotonic()
        with grpc_channel(port) as ch:
            call = ch.unary_stream("/echo.Echo/ServerStream")(json.dumps({"count": count, "size": size}).encode(),
                                                              metadata=grpc_metadata(t.valid), timeout=120)
            time.sleep(2.0)  # not reading: the windows fill up, jwtgate must stop reading the upstream
            peak = max(peak, w.gate.rss())
            for message in call:
                got += len(message)
                messages += 1
                if messages <= 600:
                    time.sleep(0.003)  # a slow reader for the first ~37 MiB
                if messages % 128 == 0:
                    peak = max(peak, w.gate.rss())
                if time.monotonic() - started > 90:
                    call.cancel()
                    raise Failure(f"only {messages} of {count} messages in 90 s")
        peak = max(peak, w.gate.rss())
        expect(messages == count and got == count * size, f"received {messages} messages, {got} bytes; expected "
                                                          f"{count} of {size}")
        expect(peak - base < RSS_BUDGET, f"jwtgate RSS grew {(peak - base) / MIB:.1f} MiB (from {base / MIB:.1f} "
                                         f"to {peak / MIB:.1f} MiB) relaying 256 MiB to a slow reader; budget 64 MiB")
        return f"RSS +{(peak - base) / MIB:.1f} MiB, {time.monotonic() - started:.1f} s"

    run.case("grpc denial on a server-streaming call without a token -> 16", stream_denied)
    run.case("grpc denial on a bidi call with an expired token -> 16", bidi_denied)
    run.case("grpc denial with content-type application/grpc+proto -> 16 Trailers-Only", grpc_plus_proto)
    run.case("grpc upstream unreachable (closed port) -> 14", unreachable)
    run.case("grpc provider without keys -> 14", no_keys)
    run.case("grpc upstream_timeout 1s, /Slow 3 s, client deadline 10 s -> 4", upstream_timeout)
    run.case("grpc grpc-timeout: 300m header (raw h2), /Slow 3 s -> 4 quickly", grpc_timeout_header)
    run.case("grpc access log \"grpc_status\": 16 and jwtgate_grpc_responses_total{grpc_status=\"16\"}",
             log_and_metrics)
    run.case("grpc large server stream (256 MiB in 64 KiB messages) to a slow reader: RSS growth < 64 MiB",
             large_stream)


# --- HTTP cases (h2c, HTTP/1.1, TLS, trailers, both upstream kinds) -----------------------------

def check_plain_record(w, record, what, authority=None):
    headers = record["headers"]
    subs = [(n, v) for n, v in headers if fold(n) == IDENTITY]
    expect(len(subs) == 1 and subs[0][1] == "alice",
           f"{what}: upstream.py received identity headers {subs}, expected one X-Jwt-Sub: alice")
    hosts = values_of(headers, "host")
    expect(len(hosts) == 1, f"{what}: upstream.py received Host {hosts}, expected exactly one")
    if authority:
        expect(hosts[0] == authority, f"{what}: Host {hosts[0]!r}, expected the client's :authority {authority!r}")
    bad = [n for n, _ in headers if n.lower() in CONNECTION_SPECIFIC - {"connection"}]
    expect(not bad, f"{what}: connection-specific headers reached the upstream: {bad}")


def check_h2_record(record, what, method, path):
    expect(record["protocol"] == "h2", f"{what}: h2_upstream received the request over {record['protocol']}, "
                                       "expected h2 (h2c:// upstream)")
    pseudo = record["pseudo"]
    expect(pseudo.get(":method") == method and pseudo.get(":path") == path,
           f"{what}: pseudo-headers {pseudo}, expected :method {method} :path {path}")
    expect(pseudo.get(":scheme") in ("http", "https") and (pseudo.get(":authority") or
                                                          values_of(record["headers"], "host")),
           f"{what}: pseudo-headers {pseudo}: :scheme and :authority (or host) expected")
    upper = [n for n, _ in record["headers"] if n != n.lower()]
    expect(not upper, f"{what}: upper-case header names sent over h2: {upper}")
    bad = [n for n, v in record["headers"] if n in CONNECTION_SPECIFIC or (n == "te" and v != "trailers")]
    expect(not bad, f"{what}: connection-specific headers sent over h2: {bad}")
    subs = [[n, v] for n, v in record["headers"] if fold(n) == IDENTITY]
    expect(subs == [[IDENTITY, "alice"]], f"{what}: h2_upstream received identity headers {subs}, expected exactly "
                                          "[['x-jwt-sub', 'alice']] (lower-case, the forged ones gone)")


def only(records, what):
    expect(len(records) == 1, f"{what}: the upstream received {len(records)} requests, expected 1: "
                              f"{[(r.get('method') or r.get('pseudo'), r.get('path')) for r in records]}")
    return records[0]


def http_cases(run, w):
    port, t = w.gate.port, w.tokens
    forged = [f"{n}: {v}" for n, v in FORGED_HEADERS]

    def curl_h2c():
        w.plain.seen()
        args = ["--http2-prior-knowledge", "-H", f"Authorization: Bearer {t.valid}"]
        for h in forged:
            args += ["-H", h]
        code, status, version, body, err = curl(f"http://127.0.0.1:{port}/plain/x?q=1", args)
        expect(code == 0 and status == "200", f"curl exit {code}, status {status}: {err[-400:]}")
        expect(version == "2", f"curl negotiated HTTP/{version}, expected 2")
        record = only(w.plain.seen(), "h2c to /plain")
        expect(record["path"] == "/plain/x?q=1", f"upstream.py got path {record['path']}")
        check_plain_record(w, record, "h2c -> HTTP/1 upstream", f"127.0.0.1:{port}")

    def curl_h1():
        w.plain.seen()
        args = ["--http1.1", "-H", f"Authorization: Bearer {t.valid}"]
        for h in forged:
            args += ["-H", h]
        code, status, version, body, err = curl(f"http://127.0.0.1:{port}/plain/y", args)
        expect(code == 0 and status == "200", f"curl exit {code}, status {status}: {err[-400:]}")
        expect(version == "1.1", f"curl used HTTP/{version}, expected 1.1")
        check_plain_record(w, only(w.plain.seen(), "HTTP/1.1 to /plain"), "HTTP/1.1 -> HTTP/1 upstream")

    def h2_post_to_h1():
        # curl, not the raw frame client: a body larger than the stream window needs a client
        # that waits for WINDOW_UPDATEs (jwtgate credits them as the upstream takes the bytes).
        w.plain.seen()
        body = os.urandom(300000)
        fd, path = tempfile.mkstemp(prefix="h2-post-")
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        try:
            code, status, version, data, err = curl(
                f"http://127.0.0.1:{port}/plain/upload",
                ["--http2-prior-knowledge", "-H", f"Authorization: Bearer {t.valid}", "-H",
                 "Content-Type: application/octet-stream", "--data-binary", f"@{path}"], timeout=15)
        finally:
            os.unlink(path)
        expect(code == 0 and status == "200" and version == "2",
               f"h2 POST of 300000 bytes: curl exit {code}, status {status} over HTTP/{version}: {err[-400:]}")
        reply = json.loads(data)
        expect(reply["body_length"] == len(body) and reply["body_sha256"] == hashlib.sha256(body).hexdigest(),
               f"upstream.py got {reply['body_length']} bytes sha256 {reply['body_sha256'][:16]}..., sent "
               f"{len(body)}")
        only(w.plain.seen(), "h2 POST to /plain")

    def refusal_parity(path, token, want):
        headers = auth(token) if token else []
        s, _ = h2_get(port, path, headers)
        status, h1_headers, h1_body = http1(port, "GET", path, headers)
        expect(status == want, f"HTTP/1.1 got {status}, expected {want} (control)")
        expect(s.status == want, f"h2 got {s.describe()}, HTTP/1.1 got {status}")
        expect(s.data == h1_body, f"h2 body {s.data[:300]!r} differs from HTTP/1.1 body {h1_body[:300]!r}")
        h1 = {n.lower(): v for n, v in h1_headers}
        for name in ("www-authenticate", "content-type"):
            expect(s.header(name) == h1.get(name), f"h2 {name} {s.header(name)!r} differs from HTTP/1.1 "
                                                   f"{h1.get(name)!r}")
        expect(not w.plain.seen(), "a refused request reached upstream.py")

    def tls_alpn():
        for offer, want in ((["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")):
            raw = socket.create_connection(("127.0.0.1", w.tls.port), timeout=10)
            with w.pki.context(offer).wrap_socket(raw, server_hostname="localhost") as sock:
                got = sock.selected_alpn_protocol()
            expect(got == want, f"client offering {offer}: the listener selected {got!r}, expected {want!r}")

    def tls_curl(flag, want):
        w.plain.seen()
        code, status, version, body, err = curl(f"https://localhost:{w.tls.port}/plain/tls",
                                                [flag, "--cacert", w.pki.ca, "--resolve",
                                                 f"localhost:{w.tls.port}:127.0.0.1", "-H",
                                                 f"Authorization: Bearer {t.valid}", "-H", "X-Jwt-Sub: mallory"])
        expect(code == 0 and status == "200", f"curl {flag} exit {code}, status {status}: {err[-400:]}")
        expect(version == want, f"curl {flag} over TLS: HTTP/{version}, expected {want}")
        check_plain_record(w, only(w.plain.seen(), f"curl {flag} over TLS"), f"TLS {flag}")

    def tls_grpc_raw():
        s, _, _ = raw_grpc(w.tls.port, "/echo.Echo/Unary", None, tls=w.pki.context(["h2"]))
        expect_trailers_only(s, 16, "gRPC over TLS without a token")

    def nghttp_concurrent():
        w.plain.seen()
        started = time.monotonic()
        r = subprocess.run(["nghttp", "-n", "-s", "-m", "20", "-t", "20", "-H", f"authorization: Bearer {t.valid}",
                            f"http://127.0.0.1:{port}/plain/slow?ms=300"], capture_output=True, text=True, timeout=40)
        elapsed = time.monotonic() - started
        expect(r.returncode == 0, f"nghttp exit {r.returncode}: {(r.stdout + r.stderr)[-600:]}")
        codes = re.findall(r"^\s*\d+\s+\S+\s+\S+\s+\S+\s+(\d{3})\s+\d+\s+/plain/slow", r.stdout, re.M)
        expect(codes.count("200") == 20, f"nghttp statistics show statuses {codes}, expected 20 x 200:\n"
                                         f"{r.stdout[-800:]}")
        seen = w.plain.seen()
        expect(len(seen) == 20, f"upstream.py received {len(seen)} requests, expected 20")
        expect(elapsed < 4.5, f"20 streams of a 300 ms request took {elapsed:.1f} s: served one after another "
                              "(concurrent streams would take well under 4.5 s)")
        return f"{elapsed:.2f} s"

    def trailers_both_ways():
        w.h2up.seen()
        body = os.urandom(1000)
        c = H2Client(port)
        try:
            headers = auth(t.valid) + [("content-type", "application/octet-stream"), ("te", "trailers"),
                                       ("x-jwt-sub", "mallory"), ("x_jwt_sub", "mallory")]
            s = c.wait(c.request("POST", "/h2/trailers?x=1", headers, body=body,
                                 trailers=[("x-client-trailer", "yes")]), 10)
        finally:
            c.close()
        expect(s.status == 200 and s.ended, f"response: {s.describe()}")
        expect(s.data == b"ok /h2/trailers?x=1\n", f"body {s.data!r}")
        expect(s.trailers is not None and s.trailer("x-upstream-trailer") == "yes",
               f"the upstream's trailer x-upstream-trailer: yes did not reach the client: {s.describe()}")
        expect(s.trailer("x-request-trailers") == "1", f"the upstream says it got {s.trailer('x-request-trailers')} "
                                                       "request trailers, expected 1")
        record = only(w.h2up.seen(), "trailers via /h2")
        check_h2_record(record, "h2 -> h2c upstream", "POST", "/h2/trailers?x=1")
        expect(record["trailers"] == [["x-client-trailer", "yes"]],
               f"h2_upstream received request trailers {record['trailers']}, expected [['x-client-trailer', 'yes']]")
        expect(["te", "trailers"] in record["headers"], f"te: trailers did not reach the upstream: {record['headers']}")
        expect(record["body_length"] == 1000 and record["ended"], f"upstream got {record['body_length']} body bytes, "
                                                                  f"ended {record['ended']}")

    def h1_to_h2():
        w.h2up.seen()
        headers = auth(t.valid) + FORGED_HEADERS + [("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"),
                                                    ("X-Mixed-Case", "1")]
        status, _, body = http1(port, "GET", "/h2/from-h1?q=1", headers)
        expect(status == 200 and body == b"ok /h2/from-h1?q=1\n", f"GET: status {status}, body {body[:200]!r}")
        record = only(w.h2up.seen(), "HTTP/1.1 GET to /h2")
        check_h2_record(record, "HTTP/1.1 -> h2c upstream", "GET", "/h2/from-h1?q=1")
        expect(["x-mixed-case", "1"] in record["headers"], f"x-mixed-case missing or not lower-cased: "
                                                          f"{record['headers']}")
        chunks = [os.urandom(n) for n in (1000, 50000, 1, 49999)]
        status, _, body = http1_chunked(port, "/h2/upload", auth(t.valid), chunks)
        expect(status == 200, f"chunked POST: status {status}, body {body[:200]!r}")
        record = only(w.h2up.seen(), "HTTP/1.1 chunked POST to /h2")
        check_h2_record(record, "HTTP/1.1 chunked -> h2c upstream", "POST", "/h2/upload")
        expect(record["body_length"] == 101000 and record["ended"],
               f"h2_upstream got {record['body_length']} bytes (ended {record['ended']}), sent 101000")

    run.case("h2c prior knowledge (curl) to /plain: HTTP/1 upstream gets X-Jwt-Sub alice, forged copies gone, "
             "Host from :authority", curl_h2c)
    run.case("HTTP/1.1 (curl) on the same port to /plain: X-Jwt-Sub alice, forged copies gone", curl_h1)
    run.case("h2c POST 300000 bytes to the HTTP/1 upstream arrives intact", h2_post_to_h1)
    run.case("h2 refusal matches HTTP/1.1: no token -> 401, same body and WWW-Authenticate",
             refusal_parity, "/plain/x", None, 401)
    run.case("h2 refusal matches HTTP/1.1: expired token -> 401", refusal_parity, "/plain/x", t.expired, 401)
    run.case("h2 refusal matches HTTP/1.1: insufficient scope -> 403", refusal_parity, "/plain/admin/x", t.valid, 403)
    run.case("TLS listener: ALPN selects h2 when offered, http/1.1 otherwise", tls_alpn)
    run.case("TLS listener: curl --http2 negotiates HTTP/2, identity headers right", tls_curl, "--http2", "2")
    run.case("TLS listener: curl --http1.1 stays on HTTP/1.1", tls_curl, "--http1.1", "1.1")
    run.case("TLS listener: gRPC without a token -> 16 Trailers-Only", tls_grpc_raw)
    run.case("nghttp -m 20: 20 concurrent streams on one connection, all 200, served concurrently", nghttp_concurrent)
    run.case("trailers both ways via /h2 (raw h2 client): te: trailers and the request trailer reach the upstream, "
             "its trailer reaches the client", trailers_both_ways)
    run.case("HTTP/1.1 client to the h2c upstream /h2: GET and chunked POST, lower-case names, no hop-by-hop",
             h1_to_h2)


# --- limits and attacks --------------------------------------------------------------------------

def fresh(w, what):
    """After an attack: the process is up, a new connection is served (h2 and HTTP/1.1), RSS is bounded."""
    expect(w.gate.alive(), f"after {what}: jwtgate exited with {w.gate.proc.proc.returncode}:\n{w.gate.proc.tail()}")
    s, _ = h2_get(w.gate.port, "/h2/fresh", auth(w.tokens.valid))
    expect(s.status == 200, f"after {what}: a fresh h2 connection got {s.describe()}")
    status, _, _ = http1(w.gate.port, "GET", "/plain/fresh", auth(w.tokens.valid))
    expect(status == 200, f"after {what}: a fresh HTTP/1.1 connection got {status}")
    rss = w.gate.rss()
    if w.baseline_rss is not None:
        expect(rss - w.baseline_rss < RSS_BUDGET, f"after {what}: jwtgate RSS {rss / MIB:.1f} MiB, "
                                                  f"{(rss - w.baseline_rss) / MIB:.1f} MiB above the "
                                                  f"{w.baseline_rss / MIB:.1f} MiB before the attacks")
    w.h2up.seen()
    w.plain.seen()
    return rss


def ended(c):
    if c.goaway is not None:
        return f"GOAWAY {error_name(c.goaway[0])} (last stream {c.goaway[1]})"
    if c.closed:
        return f"closed ({c.closed})"
    return None


# The attack clients: each returns what happened; the cases judge it. In --selftest they run
# against h2_upstream, which does not defend itself, only to show they run.

def attack_concurrent(port, token, path, n=110):
    c = H2Client(port)
    try:
        advertised = c.server_settings.get(h2wire.MAX_CONCURRENT_STREAMS)
        ids, data = [], []
        for i in range(n):
            sid, frames = c.request("POST", f"{path}/mcs-{i}", auth(token) + [("content-type", "text/plain")],
                                    end=False, send=False)
            ids.append(sid)
            data.append(frames)
        c.send(b"".join(data))
        c.pump_until(lambda: sum(c.streams[s].reset == h2wire.REFUSED_STREAM for s in ids) >= n - 100 or
                     c.goaway is not None or c.closed, 5)
        c.pump_until(lambda: False, 0.5)
        refused = [s for s in ids if c.streams[s].reset == h2wire.REFUSED_STREAM]
        other = {s: c.streams[s].describe() for s in ids if c.streams[s].done and s not in refused}
        result = {"advertised": advertised, "ids": ids, "refused": refused, "other": other, "ended": ended(c)}
        try:
            for s in ids:
                if not c.streams[s].done:
                    c.rst(s)
        except OSError:
            pass  # the server has closed the connection (GOAWAY)
        return result
    finally:
        c.close()


def attack_big_headers(port, token, path, kind):
    c = H2Client(port)
    try:
        base = c.request_headers("GET", path, auth(token))
        if kind == "one":
            block = c.encode(base + [("x-big", "a" * 20000)], huffman=False)
        elif kind == "many":
            block = c.encode(base + [(f"x-h{i:03d}", "v" * 40) for i in range(400)], huffman=False)
        elif kind == "indexed":
            block = c.encode(base + [("x-big", "a" * 4000)] * 10, huffman=False)
        else:  # "control": a little under the limit
            block = c.encode(base + [("x-big", "a" * 1000)], huffman=False)
        sid = c.request("GET", path, raw_block=block)
        s = c.wait(sid, 10)
        return {"stream": s, "block_bytes": len(block), "ended": ended(c)}
    finally:
        c.close()


def attack_rapid_reset(port, token, path, pairs=2000, batch=50, limit=20.0):
    c = H2Client(port)
    sent = 0
    started = time.monotonic()
    try:
        while sent < pairs and time.monotonic() - started < limit and c.goaway is None and not c.closed:
            data = []
            for _ in range(batch):
                sid, frames = c.request("GET", f"{path}/rr", auth(token), send=False)
                data.append(frames + c.frame(h2wire.RstStreamFrame(sid, 8)))
            try:
                c.send(b"".join(data))
            except OSError as e:
                c.closed = f"{type(e).__name__}: {e}"
                break
            sent += batch
            c.pump(0.001)
        if c.goaway is None and not c.closed:
            c.pump_until(lambda: c.goaway is not None or c.closed, 3)
        return {"sent": sent, "ended": ended(c), "seconds": time.monotonic() - started}
    finally:
        c.close()


def attack_continuation(port, token, path, empty, max_frames=None, limit=20.0):
    c = H2Client(port)
    started = time.monotonic()
    frames = bytes_sent = 0
    try:
        block = c.encode(c.request_headers("GET", f"{path}/cont", auth(token)))
        c.send(c.frame(h2wire.HeadersFrame(1, block)))  # no END_HEADERS
        c.streams[1] = h2wire.Stream(1)
        if empty:
            chunk, max_frames, per_batch = b"", max_frames or 20000, 1000
        else:
            chunk, max_frames, per_batch = c.encode([("x-c", "a" * 16000)], huffman=False), max_frames or 512, 16
        one = c.frame(h2wire.ContinuationFrame(1, chunk))
        while frames < max_frames and time.monotonic() - started < limit and c.goaway is None and not c.closed:
            try:
                c.send(one * per_batch)
            except OSError as e:
                c.closed = f"{type(e).__name__}: {e}"
                break
            frames += per_batch
            bytes_sent += len(one) * per_batch
            c.pump(0.001)
        if c.goaway is None and not c.closed:
            c.pump_until(lambda: c.goaway is not None or c.closed, 3)
        return {"frames": frames, "bytes": bytes_sent, "ended": ended(c), "stream": c.streams[1].describe()}
    finally:
        c.close()


def attack_flood(port, kind, batches=400, per_batch=1000, limit=20.0, drain=10.0):
    """PING or SETTINGS frames sent without reading (a small receive buffer), then a look at what came back."""
    c = H2Client(port, rcvbuf=4096)
    c.auto_window = False
    sent, stalled = 0, False
    try:
        if kind == "ping":
            one = c.frame(h2wire.PingFrame(0, b"12345678"))
        else:
            one = c.frame(h2wire.SettingsFrame(0, {0x2: 0}))  # ENABLE_PUSH 0, each needs an ACK
        c.sock.settimeout(5)
        started = time.monotonic()
        # 400000 frames: their ACKs (6.8 MB) are more than the kernel buffers between us can hold,
        # so a server that queues ACKs it cannot write must notice, or stop reading.
        for _ in range(batches):
            if time.monotonic() - started > limit:
                break
            try:
                c.sock.sendall(one * per_batch)
            except socket.timeout:
                stalled = True
                break
            except OSError as e:
                c.closed = f"{type(e).__name__}: {e}"
                break
            sent += per_batch
        if not c.closed:
            c.drain(drain)
        return {"sent": sent, "stalled": stalled, "ended": ended(c), "acks": c.pings_acked + c.settings_acked}
    finally:
        c.close()


def smuggle_attempts(path, authority, token):
    """(label, header list, body, trailers) for requests RFC 9113 §8.2/§8.3 calls malformed."""
    auth_h = ("authorization", f"Bearer {token}")

    def req(p=path, method="GET", extra=(), authority_=authority):
        return [(":method", method), (":scheme", "http"), (":authority", authority_), (":path", p), auth_h,
                *extra]
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    post = [("content-type", "text/plain")]
    return [
        ("connection: keep-alive", req(extra=[("connection", "keep-alive")]), None, None),
        ("keep-alive header", req(extra=[("keep-alive", "timeout=5")]), None, None),
        ("proxy-connection header", req(extra=[("proxy-connection", "keep-alive")]), None, None),
        ("upgrade: websocket", req(extra=[("upgrade", "websocket")]), None, None),
        ("transfer-encoding: chunked with a smuggled request in DATA",
         req(method="POST", extra=post + [("transfer-encoding", "chunked")]), b"0\r\n\r\n" + smuggled, None),
        ("te: gzip", req(extra=[("te", "gzip")]), None, None),
        ("content-length 5 with 41 bytes of DATA", req(method="POST", extra=post + [("content-length", "5")]),
         b"hello" + smuggled, None),
        ("content-length 100 with 10 bytes of DATA", req(method="POST", extra=post + [("content-length", "100")]),
         b"0123456789", None),
        ("two different content-length values", req(method="POST", extra=post + [("content-length", "3"),
                                                                                 ("content-length", "10")]),
         b"abc", None),
        ("upper-case header name", req(extra=[("X-Foo", "bar")]), None, None),
        ("header name with a space", req(extra=[("x foo", "bar")]), None, None),
        ("header name with a colon", req(extra=[("x:foo", "bar")]), None, None),
        ("CR LF in a value", req(extra=[("x-foo", "a\r\nX-Injected: 1")]), None, None),
        ("bare LF in a value", req(extra=[("x-foo", "a\nX-Injected: 1")]), None, None),
        ("bare CR in a value", req(extra=[("x-foo", "a\rX-Injected: 1")]), None, None),
        ("NUL in a value", req(extra=[("x-foo", "a\x00b")]), None, None),
        ("leading space in a value", req(extra=[("x-foo", " bar")]), None, None),
        ("CR LF in :path", req(p=path + "\r\nX-Injected: 1"), None, None),
        ("space in :path (a second request line)", req(p=path + " HTTP/1.1\r\nHost: x\r\n\r\nGET /smuggled"),
         None, None),
        (":path without a leading /", req(p=path.lstrip("/")), None, None),
        (":path in absolute form", req(p="http://127.0.0.1" + path), None, None),
        ("empty :path", req(p=""), None, None),
        ("no :path", [h for h in req() if h[0] != ":path"], None, None),
        ("two :path", req() + [(":path", path + "-other")], None, None),
        ("pseudo-header after a regular header", [h for h in req() if h[0] != ":path"] + [(":path", path)],
         None, None),
        ("unknown pseudo-header :foo", req() + [(":foo", "bar")], None, None),
        ("space in :method", req(method="GET /smuggled"), None, None),
        ("CR LF in :authority", req(authority_="127.0.0.1\r\nX-Injected: 1"), None, None),
        ("CR LF in a trailer", req(method="POST", extra=post), b"x", [("x-t", "a\r\nX-Injected: 1")]),
        ("connection header in a trailer", req(method="POST", extra=post), b"x", [("connection", "close")]),
        ("pseudo-header in a trailer", req(method="POST", extra=post), b"x", [(":path", "/smuggled")]),
    ]


def send_smuggle(port, headers, body, trailers, timeout=5):
    c = H2Client(port)
    try:
        block = c.encode(headers, huffman=False)
        sid = c.new_stream_id()
        frames = c.header_frames(sid, block, body is None and trailers is None)
        if body is not None:
            d = h2wire.DataFrame(sid, body)
            if trailers is None:
                d.flags.add("END_STREAM")
            frames += c.frame(d)
        if trailers is not None:
            frames += c.header_frames(sid, c.encode(trailers, huffman=False), True)
        c.send(frames)  # one write: a proxy that sees all of it before forwarding can refuse it whole
        s = c.wait(sid, timeout)
        return s, ended(c)
    finally:
        c.close()


def attack_cases(run, w):
    port, t = w.gate.port, w.tokens

    def baseline():
        """jwtgate's RSS before the first attack that runs (after a warm-up request)."""
        if w.baseline_rss is None:
            rss = fresh(w, "warm-up before the attacks")
            w.baseline_rss = rss

    def concurrent():
        baseline()
        r = attack_concurrent(port, t.valid, "/h2")
        expect(r["advertised"] == 100, f"SETTINGS_MAX_CONCURRENT_STREAMS is {r['advertised']}, expected 100")
        want = r["ids"][100:]
        # RFC 9113 section 5.1.2: a stream error (REFUSED_STREAM), or, as nghttp2 treats a client
        # that ignores a limit it has acknowledged, a connection error (GOAWAY PROTOCOL_ERROR).
        goaway = (r["ended"] or "").startswith("GOAWAY PROTOCOL_ERROR")
        expect(r["refused"] == want or (goaway and not r["refused"]),
               f"streams refused with REFUSED_STREAM: {r['refused']}; expected exactly the ten beyond 100 "
               f"({want[0]}..{want[-1]}) or GOAWAY PROTOCOL_ERROR; connection: {r['ended']}; other finished "
               f"streams: {list(r['other'].values())[:3]}")
        if not goaway:
            expect(not r["other"], f"streams within the limit ended early: {list(r['other'].values())[:3]}")
        time.sleep(0.5)
        seen = [x["pseudo"].get(":path") for x in w.h2up.seen()]
        refused_paths = {f"/h2/mcs-{i}" for i in range(100, 110)}
        expect(not refused_paths & set(seen), f"refused streams reached the upstream: {refused_paths & set(seen)}")
        fresh(w, "110 concurrent streams")
        return f"{len(seen)} of the 100 open streams forwarded"

    def big_headers(kind, label):
        baseline()
        w.h2up.seen()
        control = attack_big_headers(port, t.valid, "/h2/big-control", "control")
        expect(control["stream"].status == 200, f"control (1000-byte header) did not pass: "
                                                f"{control['stream'].describe()}")
        w.h2up.seen()
        r = attack_big_headers(port, t.valid, f"/h2/big-{kind}", kind)
        s = r["stream"]
        expect(s.status == 431 or s.reset is not None,
               f"{label} ({r['block_bytes']} bytes encoded): expected 431 or RST_STREAM on the stream, got "
               f"{s.describe()}; connection: {r['ended'] or 'open'}")
        leaked = [x["pseudo"].get(":path") for x in w.h2up.seen()]
        expect(not leaked, f"{label}: the request reached the upstream: {leaked}")
        fresh(w, label)
        return f"{'431' if s.status == 431 else 'RST_STREAM ' + error_name(s.reset)}, {r['block_bytes']} bytes encoded"

    def rapid_reset():
        baseline()
        r = attack_rapid_reset(port, t.valid, "/h2")
        expect(r["ended"], f"no GOAWAY and no close after {r['sent']} HEADERS+RST_STREAM pairs in "
                           f"{r['seconds']:.1f} s")
        time.sleep(0.5)
        forwarded = len(w.h2up.seen())
        fresh(w, "Rapid Reset")
        note = f"{r['ended']} after {r['sent']} pairs, {forwarded} reached the upstream"
        expect(r["ended"].startswith("GOAWAY"), f"the connection closed without a GOAWAY: {note}")
        return note

    def continuation(empty):
        baseline()
        r = attack_continuation(port, t.valid, "/h2", empty)
        expect(r["ended"], f"no GOAWAY and no close after {r['frames']} CONTINUATION frames ({r['bytes']} bytes)")
        leaked = [x["pseudo"].get(":path") for x in w.h2up.seen()]
        expect(not leaked, f"the flooded request reached the upstream: {leaked}")
        fresh(w, "CONTINUATION flood")
        return f"{r['ended']} after {r['frames']} frames, {r['bytes']} bytes"

    def flood(kind):
        baseline()
        r = attack_flood(port, kind)
        expect(r["ended"], f"{kind.upper()} flood: {r['sent']} frames sent without reading "
                           f"({'the server stopped reading' if r['stalled'] else 'all accepted'}), "
                           f"{r['acks']} ACKs read back, and neither GOAWAY nor close")
        fresh(w, f"{kind.upper()} flood")
        return f"{r['ended']} after {r['sent']} frames{', writes stalled' if r['stalled'] else ''}"

    run.case("limit: SETTINGS_MAX_CONCURRENT_STREAMS 100 advertised, streams 101-110 refused (REFUSED_STREAM or GOAWAY)",
             concurrent)
    run.case("limit: one 20000-byte header (HEADERS+CONTINUATION) over max_header_bytes -> 431/reset, not forwarded",
             big_headers, "one", "one 20000-byte header")
    run.case("limit: 400 small headers over max_header_bytes -> 431/reset, not forwarded",
             big_headers, "many", "400 headers")
    run.case("limit: HPACK-indexed header list (4 KiB encoded, 40 KiB decoded) -> 431/reset, not forwarded",
             big_headers, "indexed", "indexed header list")
    run.case("attack: Rapid Reset (HEADERS+RST_STREAM loop) -> GOAWAY, still serving", rapid_reset)
    run.case("attack: CONTINUATION flood of 16 KiB frames -> GOAWAY/closed, still serving", continuation, False)
    run.case("attack: CONTINUATION flood of empty frames -> GOAWAY/closed, still serving", continuation, True)
    run.case("attack: PING flood without reading -> GOAWAY/closed, still serving", flood, "ping")
    run.case("attack: SETTINGS flood without reading -> GOAWAY/closed, still serving", flood, "settings")
    smuggle_cases(run, w)


def smuggle_cases(run, w):
    port, t = w.gate.port, w.tokens
    authority = f"127.0.0.1:{port}"
    routes = (("/plain", w.plain, lambda r: r["path"]), ("/h2", w.h2up, lambda r: r["pseudo"].get(":path")))

    def control(prefix, up, path_of):
        if w.baseline_rss is None:
            w.baseline_rss = fresh(w, "warm-up before the attacks")
        up.seen()
        for label, headers, body, trailers in (
                ("GET", smuggle_attempts(f"{prefix}/smuggle-control", authority, t.valid)[0][1][:5], None, None),
                ("POST with body and trailers", smuggle_attempts(f"{prefix}/smuggle-control", authority, t.valid)[-3][1],
                 b"x", [("x-t", "fine")])):
            s, gone = send_smuggle(port, headers, body, trailers)
            expect(s.status == 200, f"control {label}, encoded the same way as the attempts: {s.describe()}; "
                                    f"connection {gone or 'open'}")
            seen = up.seen()
            expect([path_of(r) for r in seen] == [f"{prefix}/smuggle-control"],
                   f"control {label}: the upstream saw {[path_of(r) for r in seen]}")

    def attempt(prefix, up, path_of, index):
        up.seen()
        label, headers, body, trailers = smuggle_attempts(f"{prefix}/smuggle-{index}", authority, t.valid)[index]
        s, gone = send_smuggle(port, headers, body, trailers)
        time.sleep(0.05)
        seen = up.seen()
        if trailers is not None:
            # The head and body are sound; only the trailer is malformed. What must never reach the
            # upstream is the trailer itself (nor anything it would inject).
            bad = [r for r in seen if "X-Injected" in json.dumps(r) or (r.get("trailers") and any(
                   n.startswith(":") or n == "connection" or re.search(r"[\r\n\0]", v) for n, v in r["trailers"]))]
            expect(not bad, f"{label}: the malformed trailer reached the upstream: {bad}")
            expect(not (s.status and 200 <= s.status < 300 and s.ended and not s.reset),
                   f"{label}: the request completed {s.status}: {s.describe()}")
        elif label.startswith("content-length") and "DATA" in label:
            # jwtgate streams: the head goes upstream before the body arrives, as Envoy's and
            # nginx's unbuffered proxying do. nghttp2 finds the mismatch at the DATA frame, and
            # the stream is reset both ways: the upstream may have seen the head, never a request
            # that ended (h2), and never the request smuggled in the body.
            expect(all(path_of(r) == f"{prefix}/smuggle-{index}" for r in seen),
                   f"{label}: the upstream saw {[path_of(r) for r in seen]}")
            if prefix == "/h2":
                time.sleep(0.2)
                seen = up.seen() + seen
                ended_ok = [r for r in seen if r.get("ended") and not r.get("reset")]
                expect(not ended_ok, f"{label}: the upstream got a request that ended normally: {ended_ok}")
            expect(s.reset is not None or gone or (s.status is not None and 400 <= s.status < 500),
                   f"{label}: expected RST_STREAM, GOAWAY or a 4xx, got {s.describe()}")
        else:
            expect(not seen, f"{label}: reached the upstream: {[(path_of(r), r.get('headers')) for r in seen]}")
            expect(s.reset is not None or gone or (s.status is not None and 400 <= s.status < 500),
                   f"{label}: expected RST_STREAM, GOAWAY or a 4xx, got {s.describe()}")
        if s.reset is not None:
            return f"RST_STREAM {error_name(s.reset)}"
        return gone or f"status {s.status}"

    count = len(smuggle_attempts("/x", authority, t.valid))
    for prefix, up, path_of in routes:
        run.case(f"smuggle {prefix}: control, the raw encoder's well-formed request reaches the upstream",
                 control, prefix, up, path_of)
        for i in range(count):
            label = smuggle_attempts("/x", authority, t.valid)[i][0]
            run.case(f"smuggle {prefix}: {label} never reaches the upstream", attempt, prefix, up, path_of, i)
    if run.selected("smuggle"):
        run.case("smuggle: still serving after the attempts", lambda: fresh(w, "smuggling attempts") and None)


# --- self-test: the test's own servers and clients, without jwtgate ------------------------------

def selftest(run, tmp):
    """What can be checked without an HTTP/2 jwtgate: the gRPC pair directly, h2_upstream with curl
    and nghttp, the raw client's trailers, and the attack clients against h2_upstream (which has no
    defences; their outcome is printed, not judged)."""
    servers = []
    try:
        g = Server("grpc_server", [PYTHON, GRPC_SERVER], tmp)
        servers.append(g)
        h = Server("h2_upstream", [PYTHON, H2_UPSTREAM], tmp)
        servers.append(h)

        def grpc_direct():
            with grpc_channel(g.port) as ch:
                md = [("x-jwt-sub", "alice")]
                reply, call = ch.unary_unary("/echo.Echo/Unary").with_call(b"hi", metadata=md, timeout=10)
                expect_alice(seen_identity(call.initial_metadata()), "direct Unary")
                expect(dict(call.trailing_metadata()).get("x-trailer") == "done", "x-trailer missing")
                call = ch.unary_stream("/echo.Echo/ServerStream")(b'{"count": 5, "size": 70000}', metadata=md,
                                                                  timeout=10)
                expect([len(m) for m in call] == [70000] * 5, "ServerStream")
                reply, _ = ch.stream_unary("/echo.Echo/ClientStream").with_call(iter([b"a", b"bc"]), timeout=10)
                expect(json.loads(reply) == {"messages": 2, "bytes": 3}, f"ClientStream {reply}")
                expect(list(ch.stream_stream("/echo.Echo/Bidi")(iter([b"1", b"22"]), timeout=10)) == [b"1", b"22"],
                       "Bidi")
                got, _, _ = grpc_code(lambda: ch.unary_unary("/echo.Echo/Slow").with_call(b'{"seconds": 3}',
                                                                                           timeout=0.5))
                expect(got == grpc.StatusCode.DEADLINE_EXCEEDED, f"Slow with a 0.5 s deadline: {got}")
            s, elapsed, _ = raw_grpc(g.port, "/echo.Echo/Slow", None, b'{"seconds": 3}', extra=[("grpc-timeout", "300m")])
            expect(grpc_status_of(s) == "4" and elapsed < 1.5, f"raw grpc-timeout 300m: {s.describe()}, {elapsed:.2f} s")
            s, _, _ = raw_grpc(g.port, "/echo.Echo/Unary", None, b"abc")
            expect(s.status == 200 and s.trailer("grpc-status") == "0" and s.trailer("x-trailer") == "done",
                   f"raw Unary: {s.describe()}")
            expect(json.loads(grpc_messages(s.data)[0])["request_bytes"] == 3, "raw Unary reply")

        def large_direct():
            with grpc_channel(g.port) as ch:
                call = ch.unary_stream("/echo.Echo/ServerStream")(b'{"count": 1024, "size": 65536}', timeout=60)
                total = sum(len(m) for m in call)
            expect(total == 64 * MIB, f"{total} bytes")

        def h2up_curl():
            code, status, version, body, err = curl(f"http://127.0.0.1:{h.port}/h2/c", ["--http2-prior-knowledge",
                                                                                        "-H", "te: trailers"])
            expect(code == 0 and status == "200" and version == "2" and body == b"ok /h2/c\n",
                   f"curl: {code} {status} {version} {body!r} {err[-300:]}")
            seen = h.seen()
            check_h2_record(dict(seen[0], headers=seen[0]["headers"] + [["x-jwt-sub", "alice"]]), "curl", "GET",
                            "/h2/c")
            code, _, version, body, _ = curl(f"http://127.0.0.1:{h.port}/__seen", ["--http2-prior-knowledge"])
            expect(version == "2" and json.loads(body) == [], f"/__seen over h2c: {version} {body!r}")

        def h2up_nghttp():
            r = subprocess.run(["nghttp", "-n", "-s", "-m", "20", f"http://127.0.0.1:{h.port}/h2/n"],
                               capture_output=True, text=True, timeout=30)
            codes = re.findall(r"^\s*\d+\s+\S+\s+\S+\s+\S+\s+(\d{3})\s+\d+\s+/h2/n", r.stdout, re.M)
            expect(r.returncode == 0 and codes.count("200") == 20, f"nghttp: {r.returncode} {codes}")
            expect(len(h.seen()) == 20, "h2_upstream did not record 20")

        def raw_trailers():
            c = H2Client(h.port)
            s = c.wait(c.request("POST", "/h2/t", [("te", "trailers")], body=b"abc", trailers=[("x-c", "1")]), 5)
            c.close()
            expect(s.trailer("x-upstream-trailer") == "yes" and s.trailer("x-request-trailers") == "1", s.describe())
            rec = h.seen()[0]
            expect(rec["trailers"] == [["x-c", "1"]] and rec["body_length"] == 3, str(rec))

        def smuggle_encodings():
            # h2_upstream accepts everything, so every attempt must arrive as sent: the encoder works.
            problems = []
            for label, headers, body, trailers in smuggle_attempts("/h2/s", f"127.0.0.1:{h.port}", "tok"):
                h.seen()
                s, gone = send_smuggle(h.port, headers, body, trailers, timeout=2)
                seen = h.seen()
                print(f"  INFO {label}: h2_upstream recorded {len(seen)}, answer: "
                      f"{s.describe()[:90] if not gone else gone}")
                if any(n == "X-Foo" for n, _ in headers) and not any(["X-Foo", "bar"] in r["headers"] for r in seen):
                    problems.append(label)
            expect(not problems, f"not recorded as sent: {problems}")

        def attacks_run():
            for label, fn in (("concurrent", lambda: attack_concurrent(h.port, "tok", "/h2")),
                              ("big header", lambda: attack_big_headers(h.port, "tok", "/h2/b", "one")),
                              ("indexed headers", lambda: attack_big_headers(h.port, "tok", "/h2/b", "indexed")),
                              ("rapid reset", lambda: attack_rapid_reset(h.port, "tok", "/h2", pairs=500)),
                              ("continuation", lambda: attack_continuation(h.port, "tok", "/h2", False, 64)),
                              ("empty continuation", lambda: attack_continuation(h.port, "tok", "/h2", True, 2000)),
                              ("ping flood", lambda: attack_flood(h.port, "ping", batches=20, drain=2)),
                              ("settings flood", lambda: attack_flood(h.port, "settings", batches=20, drain=2))):
                r = fn()
                r = {k: (v.describe() if isinstance(v, h2wire.Stream) else v) for k, v in r.items()
                     if k not in ("ids", "other")}
                print(f"  INFO {label} vs h2_upstream: {json.dumps(r)[:300]}")
                h.seen()
            expect(h.proc.alive(), "h2_upstream died")

        run.case("selftest: grpc_server direct (four call kinds, trailer, deadlines, raw gRPC frames)", grpc_direct)
        run.case("selftest: grpc_server direct 64 MiB server stream", large_direct)
        run.case("selftest: h2_upstream with curl --http2-prior-knowledge, /__seen over h2c", h2up_curl)
        run.case("selftest: h2_upstream with nghttp -m 20", h2up_nghttp)
        run.case("selftest: raw client trailers both ways with h2_upstream", raw_trailers)
        run.case("selftest: smuggling encodings arrive as sent at the permissive h2_upstream", smuggle_encodings)
        run.case("selftest: the attack clients run against h2_upstream", attacks_run)
    finally:
        for s in servers:
            s.stop()


# --- main --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jwtgate", help="the jwtgate binary")
    ap.add_argument("-k", help="run only the cases whose name holds this")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    ap.add_argument("--selftest", action="store_true", help="check the test's own servers and clients only")
    args = ap.parse_args()
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="jwtgate-h2-e2e-")
    run = Run(args, tmp)
    if args.selftest:
        try:
            selftest(run, tmp)
        except Failure as e:
            run.failures.append(str(e))
            print(f"FAIL {e}", flush=True)
        return run.finish("h2 selftest", started)
    if not args.jwtgate:
        ap.error("--jwtgate is required (or --selftest)")
    args.jwtgate = os.path.abspath(args.jwtgate)
    if not os.access(args.jwtgate, os.X_OK):
        print(f"h2 e2e: jwtgate binary {args.jwtgate} is missing", file=sys.stderr)
        return 1
    gates, servers = [], []
    try:
        tokens = Tokens(tmp)
        pki = Pki(tmp)
        grpc_up = Server("grpc_server", [PYTHON, GRPC_SERVER], tmp)
        servers.append(grpc_up)
        plain = Server("upstream", [PYTHON, UPSTREAM], tmp)
        servers.append(plain)
        h2up = Server("h2_upstream", [PYTHON, H2_UPSTREAM], tmp)
        servers.append(h2up)
        dead = free_port()  # never bound: the unreachable upstream
        body = main_body(grpc_up.port, plain.port, h2up.port, dead, tokens.jwks)
        gate = Jwtgate("main", args.jwtgate, tmp, body)
        tls_gate = Jwtgate("tls", args.jwtgate, tmp, f"tls:\n  cert_file: {pki.crt}\n  key_file: {pki.key}\n" + body)
        slow = Jwtgate("slow", args.jwtgate, tmp, f"""upstream: h2c://127.0.0.1:{grpc_up.port}
limits:
  upstream_timeout: 1s
""" + provider_block(tokens.jwks) + "routes:\n  - prefix: /echo.Echo\n")
        nokeys = Jwtgate("nokeys", args.jwtgate, tmp, f"upstream: h2c://127.0.0.1:{grpc_up.port}\n" +
                         provider_block(os.path.join(tmp, "absent-jwks.json")) + "routes:\n  - prefix: /echo.Echo\n",
                         ready=False)
        for g in (gate, tls_gate, slow, nokeys):
            try:
                gates.append(g.start())
            except Failure as e:  # its cases fail on their own; the others still run
                run.failures.append(str(e))
                print(f"FAIL {e}", flush=True)
        print(f"h2 e2e: upstreams and {len(gates)} jwtgates up in {time.monotonic() - started:.1f} s", flush=True)
        w = World(tokens, gate, tls_gate, slow, nokeys, grpc_up, plain, h2up, pki)
        grpc_cases(run, w)
        http_cases(run, w)
        attack_cases(run, w)
        for g in gates:
            if not g.alive():
                run.failures.append(f"jwtgate {g.name} is no longer running:\n{g.proc.tail()}")
    except Failure as e:
        run.failures.append(str(e))
        print(f"FAIL {e}", flush=True)
    finally:
        for g in gates:
            g.stop(run.failures)
        for s in servers:
            s.stop()
    return run.finish("h2 e2e", started)


if __name__ == "__main__":
    sys.exit(main())
