#!/usr/bin/python3
"""TLS end to end: jwtgate's TLS listener and its TLS to the upstream, driven by real clients
(curl, `openssl s_client`, Python's ssl) against certificates this test makes with the openssl
CLI, and judged by what a recording upstream received.

    e2e.py --jwtgate build/jwtgate [-k SUBSTRING] [--keep] [--testssl]

The PKI (in a temporary directory): a server CA with ECDSA P-256 and RSA-2048 server
certificates for 127.0.0.1/localhost, a second and third ECDSA one for the reload case, and one
valid for 7 days (check-config must warn); a client CA with an intermediate, client certificates
from the root (no chain) and from the intermediate (sent with its chain), and one from a CA jwtgate
does not know; upstream certificates: valid, expired, self-signed, for another name, and a client
certificate for mTLS to the upstream.

The jwtgates (each with its own config, admin listener and log):
  ecdsa   ECDSA cert from a Kubernetes-style directory (..data symlink), TLS 1.2+, client_auth
          optional, handshake_timeout 1s, two workers, a provider that requires certificate
          binding beside one that does not
  rsa     RSA cert, TLS 1.2+, no client certificates
  strict  RSA cert, min_version 1.3, client_auth required
  plain   no tls: the plain listener, and `upstream: https://` routes to the TLS upstreams
  named   upstream_tls.server_name overriding the URL's host, no client certificate

The oracle for what passes is tests/support/upstream.py's /__seen record (every request head it
parsed, header names as sent), asked directly after each case; tests/tls/tls_upstream.py serves the
same handler over TLS. Prints PASS/FAIL per case, exits 1 if any failed.

Debian's /usr/bin/python3, standard library only. Everything binds 127.0.0.1 on free ports;
every wait is bounded.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ports import free_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
UPSTREAM = os.path.join(ROOT, "tests", "support", "upstream.py")
TLS_UPSTREAM = os.path.join(HERE, "tls_upstream.py")
PYTHON = "/usr/bin/python3"

ISSUER = "https://idp.example.com/"
BOUND_ISSUER = "https://bound.example.com/"  # its provider has require_certificate_binding: true
AUDIENCE = "orders-api"
WAIT = 20.0  # seconds for a process to come up
FORGED = [":Zm9yZ2Vk:", ":Zm9yZ2VkIGNoYWlu:"]  # what a client's own Client-Cert headers carry
SPOOF_NAMES = ["Client-Cert", "client-cert", "CLIENT-CERT", "Client_Cert", "Client-Cert-Chain",
               "client_cert_chain", "CLIENT-CERT-CHAIN"]


class Failure(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failure(message)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def read(path):
    with open(path) as f:
        return f.read()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fold(name):
    """CGI/WSGI/PHP read Client_Cert and Client-Cert as one variable."""
    return re.sub(r"[^a-z0-9]", "-", name.lower())


def wait_until(what, predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"{what}: not within {timeout} s")
        time.sleep(interval)


# --- the PKI -----------------------------------------------------------------------------------

class Pki:
    """Keys and certificates made with the openssl CLI. Leaf certificates for the server side
    name 127.0.0.1 and localhost unless told otherwise."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "pki")
        os.makedirs(self.dir)
        self.ca = self.root("server-ca")
        self.client_ca = self.root("client-ca")
        self.client_int = self.intermediate("client-int", self.client_ca)
        self.unknown_ca = self.root("unknown-ca")
        self.ecdsa = self.leaf("ecdsa", self.ca, "ec")
        self.ecdsa2 = self.leaf("ecdsa2", self.ca, "ec", days=60)
        self.ecdsa3 = self.leaf("ecdsa3", self.ca, "ec", days=90)
        self.rsa = self.leaf("rsa", self.ca, "rsa")
        self.soon = self.leaf("soon", self.ca, "ec", days=7)
        self.client = self.leaf("client", self.client_ca, "ec", usage="clientAuth", san=None)
        self.client_chained = self.leaf("client-chained", self.client_int, "ec", usage="clientAuth", san=None)
        self.client_other = self.leaf("client-other", self.client_ca, "ec", usage="clientAuth", san=None)
        self.client_unknown = self.leaf("client-unknown", self.unknown_ca, "ec", usage="clientAuth", san=None)
        self.up_good = self.leaf("up-good", self.ca, "ec")
        self.up_expired = self.leaf("up-expired", self.ca, "ec", expired=True)
        self.up_self = self.self_signed("up-self")
        self.up_wrong = self.leaf("up-wrong", self.ca, "ec", san="DNS:wrong.example.com")
        self.up_mtls = self.leaf("up-mtls", self.ca, "ec", san="IP:127.0.0.1,DNS:localhost,DNS:wrong.example.com")
        self.up_client = self.leaf("up-client", self.client_ca, "ec", usage="clientAuth", san=None)

    def openssl(self, *args):
        r = subprocess.run(["openssl", *args], cwd=self.dir, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Failure(f"openssl {' '.join(args)}: {r.stderr}")
        return r.stdout

    def key(self, name, kind):
        path = os.path.join(self.dir, name + ".key")
        if kind == "ec":
            self.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
        else:
            self.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
        return path

    def ext(self, name, text):
        return write(os.path.join(self.dir, name + ".ext"), "[v3]\n" + text)

    def root(self, name):
        key = self.key(name, "ec")
        crt = os.path.join(self.dir, name + ".crt")
        self.openssl("req", "-x509", "-new", "-key", key, "-subj", f"/CN=jwtgate test {name}", "-days", "30",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                     "-out", crt)
        return Cert(name, crt, key, None)

    def sign(self, name, issuer, key, ext, days):
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".crt")
        self.openssl("req", "-new", "-key", key, "-subj", f"/CN={name}", "-out", csr)
        serial = int.from_bytes(os.urandom(16), "big") >> 1  # 127 random bits, as CAs must (testssl checks)
        self.openssl("x509", "-req", "-in", csr, "-CA", issuer.crt, "-CAkey", issuer.key, "-set_serial",
                     str(serial), "-days", str(days), "-sha256", "-extfile", ext, "-extensions", "v3", "-out", crt)
        return crt

    def intermediate(self, name, issuer):
        key = self.key(name, "ec")
        ext = self.ext(name, "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
        return Cert(name, self.sign(name, issuer, key, ext, 30), key, issuer)

    def leaf(self, name, issuer, kind, usage="serverAuth", san="IP:127.0.0.1,DNS:localhost", days=30, expired=False):
        key = self.key(name, kind)
        text = f"basicConstraints=critical,CA:FALSE\nextendedKeyUsage={usage}\n"
        text += "keyUsage=critical,digitalSignature" + (",keyEncipherment" if kind == "rsa" else "") + "\n"
        if san:
            text += f"subjectAltName={san}\n"
        ext = self.ext(name, text)
        if expired:
            crt = self.sign_expired(name, issuer, key, ext)
        else:
            crt = self.sign(name, issuer, key, ext, days)
        cert = Cert(name, crt, key, issuer)
        if issuer.issuer is not None:  # issued by an intermediate: the file carries the chain
            write(cert.chain, read(crt) + read(issuer.crt))
        return cert

    def sign_expired(self, name, issuer, key, ext):
        """`openssl x509 -req` cannot backdate; `openssl ca` can: valid in January 2020 only."""
        db = os.path.join(self.dir, "ca-db")
        os.makedirs(os.path.join(db, "new"), exist_ok=True)
        write(os.path.join(db, "index.txt"), "")
        write(os.path.join(db, "serial"), os.urandom(16).hex().upper() + "\n")
        conf = write(os.path.join(db, "ca.cnf"),
                     f"[ca]\ndefault_ca = d\n[d]\ndatabase = {db}/index.txt\nnew_certs_dir = {db}/new\n"
                     f"serial = {db}/serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
                     "[p]\ncommonName = supplied\n" + read(ext))
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".crt")
        self.openssl("req", "-new", "-key", key, "-subj", f"/CN={name}", "-out", csr)
        self.openssl("ca", "-batch", "-config", conf, "-cert", issuer.crt, "-keyfile", issuer.key, "-in", csr,
                     "-out", crt, "-notext", "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
                     "-extensions", "v3")
        return crt

    def self_signed(self, name):
        key = self.key(name, "ec")
        crt = os.path.join(self.dir, name + ".crt")
        self.openssl("req", "-x509", "-new", "-key", key, "-subj", f"/CN={name}", "-days", "30",
                     "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-out", crt)
        return Cert(name, crt, key, None)


class Cert:
    def __init__(self, name, crt, key, issuer):
        self.name = name
        self.crt = crt
        self.key = key
        self.issuer = issuer
        self.chain = crt[:-len(".crt")] + ".chain.crt"  # leaf + intermediate, when there is one
        if not os.path.exists(self.chain):
            shutil.copyfile(crt, self.chain)

    @property
    def der(self):
        return ssl.PEM_cert_to_DER_cert(read(self.crt))

    @property
    def fingerprint(self):
        return hashlib.sha256(self.der).hexdigest()

    @property
    def thumbprint(self):
        """RFC 8705 §3.1 x5t#S256."""
        return b64url(hashlib.sha256(self.der).digest())

    @property
    def rfc9440(self):
        return ":" + base64.b64encode(self.der).decode() + ":"

    @property
    def not_after(self):
        out = subprocess.run(["openssl", "x509", "-in", self.crt, "-noout", "-enddate"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
        return int(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))


class SecretDir:
    """A Kubernetes Secret mount: tls.crt and tls.key are links through ..data to a timestamped
    directory, and an update is one rename of a new ..data link over the old one."""

    def __init__(self, path, cert, key):
        self.path = path
        os.makedirs(path)
        self.generation = 0
        self.swap(cert, key)
        os.symlink("..data/tls.crt", os.path.join(path, "tls.crt"))
        os.symlink("..data/tls.key", os.path.join(path, "tls.key"))
        self.crt = os.path.join(path, "tls.crt")
        self.key = os.path.join(path, "tls.key")

    def swap(self, cert, key):
        self.generation += 1
        version = f"..2026_12_02_{self.generation:02d}"
        os.makedirs(os.path.join(self.path, version))
        shutil.copyfile(cert, os.path.join(self.path, version, "tls.crt"))
        shutil.copyfile(key, os.path.join(self.path, version, "tls.key"))
        tmp_link = os.path.join(self.path, "..data_tmp")
        os.symlink(version, tmp_link)
        os.rename(tmp_link, os.path.join(self.path, "..data"))
        return os.path.join(self.path, version)


# --- processes ---------------------------------------------------------------------------------

class Proc:
    def __init__(self, name, argv, tmp, stdout=None):
        self.name = name
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout or self.log,
                                     stderr=self.log, start_new_session=True)

    def tail(self, n=30):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        return self.proc.returncode


class Upstream:
    """upstream.py (plain) or tls_upstream.py: prints its port, records every request head."""

    def __init__(self, name, tmp, cert=None, client_ca=None, own_cert=None):
        self.name = name
        self.tls = cert is not None
        argv = [PYTHON, UPSTREAM] if cert is None else [PYTHON, TLS_UPSTREAM, "--cert", cert.chain, "--key", cert.key]
        if client_ca:
            argv += ["--client-ca", client_ca]
        self.err = open(os.path.join(tmp, f"upstream-{name}.log"), "wb")
        self.proc = subprocess.Popen(argv + ["--name", name], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        if not line.strip():
            raise Failure(f"upstream {name} did not start")
        self.port = int(line)
        self.own_cert = own_cert  # what the test itself presents to an upstream that requires one

    def seen(self, clear=True):
        """Every request head this upstream parsed since the last clear (asked directly)."""
        target = "/__seen?clear=1" if clear else "/__seen"
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the test's own look at its own upstream
            if self.own_cert:
                ctx.load_cert_chain(self.own_cert.chain, self.own_cert.key)
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", target)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.err.close()


class Tokens:
    def __init__(self, jwtgate, tmp):
        self.jwtgate = jwtgate
        self.tmp = tmp
        self.key = os.path.join(tmp, "idp")
        self.run(["keygen", "--alg", "ES256", "--kid", "k1", "--out", self.key])
        self.jwks = self.key + ".jwks.json"

    def run(self, args):
        r = subprocess.run([self.jwtgate] + args, cwd=self.tmp, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise Failure(f"jwtgate {' '.join(args)}: {r.stderr}")
        return r.stdout.strip()

    def mint(self, claims, issuer=ISSUER):
        full = {"iss": issuer, "aud": AUDIENCE, "sub": "alice", **claims}
        return self.run(["mint", "--key", self.key + ".pem", "--alg", "ES256", "--kid", "k1",
                         "--claims", json.dumps(full), "--ttl", "10m"])


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


class Jwtgate:
    def __init__(self, name, binary, tmp, body, workers=1):
        self.name = name
        self.dir = os.path.join(tmp, "gate-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "jwtgate.yaml")
        self.body, self.workers = body, workers
        self.pick_ports()
        self.binary = binary
        self.proc = None

    def pick_ports(self):
        self.port = free_port()
        self.admin_port = free_port()
        write(self.config, f"listen: 127.0.0.1:{self.port}\nworkers: {self.workers}\n"
                           f"admin:\n  listen: 127.0.0.1:{self.admin_port}\n" + self.body)

    def start(self):
        # free_port's port is free only until something else binds it: another gate starting in
        # the same moment, or a client's ephemeral port. Such a loss is the test's, not jwtgate's,
        # so it is retried with new ports; any other failure to start is reported.
        for attempt in range(3):
            try:
                return self.start_once()
            except Failure as failure:
                if attempt == 2 or "address already in use" not in str(failure):
                    raise
                self.pick_ports()

    def start_once(self):
        self.proc = Proc("jwtgate", [self.binary, "--config", self.config], self.dir)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.proc.proc.poll() is not None:
                raise Failure(f"jwtgate {self.name} exited with {self.proc.proc.returncode}:\n{self.proc.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=2)
                conn.request("GET", "/readyz")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    # The proxy listener is bound before the admin one says ready; check without
                    # a TCP connection that would count as a failed handshake.
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise Failure(f"jwtgate {self.name} not ready on {self.admin_port} within {WAIT} s:\n{self.proc.tail()}")

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
            values[name] = float(value)
        return values

    def stop(self, failures):
        if not self.proc:
            return
        status = self.proc.stop()
        if status != 0:
            failures.append(f"jwtgate {self.name} exited with {status} on SIGTERM:\n{self.proc.tail()}")


def metric(values, name, **labels):
    """The sample of NAME whose labels include LABELS; the sum when several match."""
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

class Response:
    def __init__(self, status, headers, body, version=None, cipher=None, alpn=None, peer=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.version = version
        self.cipher = cipher
        self.alpn = alpn
        self.peer = peer  # the server certificate's DER

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[0] if values else None


def client_context(ca, version=None, cert=None, alpn=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if cert:
        ctx.load_cert_chain(cert.chain, cert.key)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def exchange(sock, port, method, target, headers, body=b"", close=True):
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{n}: {v}" for n, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    resp = http.client.HTTPResponse(sock, method=method)
    resp.begin()
    data = resp.read()
    return resp.status, resp.getheaders(), data


def https(port, ctx, target="/public/x", headers=(), method="GET", hostname="localhost"):
    """One request on a fresh TLS connection (Python's ssl)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=hostname) as s:
        s.settimeout(10)
        status, hdrs, data = exchange(s, port, method, target, headers)
        return Response(status, hdrs, data, s.version(), s.cipher()[0], s.selected_alpn_protocol(),
                        s.getpeercert(binary_form=True))


def plain(port, target, headers=(), method="GET"):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(10)
        status, hdrs, data = exchange(s, port, method, target, headers)
        return Response(status, hdrs, data)


def curl(port, ca, args=(), target="/public/x"):
    """curl -v over TLS to localhost (resolved to 127.0.0.1, so SNI is sent); returns
    (exit code, http code, http version, stderr)."""
    r = subprocess.run(["curl", "-sS", "-v", "--max-time", "10", "--cacert", ca, "--resolve",
                        f"localhost:{port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                        *args, f"https://localhost:{port}{target}"], capture_output=True, text=True, timeout=20)
    code, _, version = r.stdout.partition(" ")
    return r.returncode, code, version, r.stderr


def s_client(port, ca, args=(), request=None):
    """openssl s_client; returns (exit code, negotiated version or None, cipher, output)."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
            "-verify_hostname", "localhost", "-CAfile", ca, "-verify_return_error", *args]
    if request:
        argv.append("-ign_eof")
    try:
        r = subprocess.run(argv, input=request or b"", capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        raise Failure(f"openssl s_client {' '.join(args)} did not finish within 20 s")
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    # "New, TLSv1.0, Cipher is X" names the cipher's protocol, not the one negotiated: that is the
    # session's "Protocol  :" line, which means something only when a cipher was agreed.
    cipher = re.search(r"^New, \S+, Cipher is (\S+)", out, re.M)
    protocol = re.search(r"^\s*Protocol\s*: (\S+)", out, re.M)
    if not cipher or cipher.group(1) == "(NONE)" or not protocol:
        return r.returncode, None, None, out
    return r.returncode, protocol.group(1), cipher.group(1), out


GET_PUBLIC = b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


# --- the test run ------------------------------------------------------------------------------

class Run:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.failures = []
        self.passed = 0
        self.skipped = 0

    def finish(self, label, started, kept_what="files"):
        """Keeps the temporary directory when asked or when a case failed, prints the summary
        and returns the exit code."""
        if self.args.keep or self.failures:
            print(f"{label}: {kept_what} kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        elapsed = time.monotonic() - started
        if self.failures:
            print(f"\n{self.passed} passed, {len(self.failures)} failed in {elapsed:.1f} s:", *self.failures, sep="\n  ")
            return 1
        print(f"{label}: {self.passed} passed in {elapsed:.1f} s" +
              (f" ({self.skipped} skipped by -k)" if self.skipped else ""))
        return 0

    def case(self, name, fn, *a):
        if self.args.k and self.args.k not in name:
            self.skipped += 1
            return
        try:
            fn(*a)
        except Failure as e:
            self.failures.append(f"{name}: {e}")
            print(f"FAIL {name}: {e}", flush=True)
            return
        except (OSError, ssl.SSLError, http.client.HTTPException, subprocess.SubprocessError) as e:
            self.failures.append(f"{name}: {type(e).__name__}: {e}")
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            return
        self.passed += 1
        print(f"PASS {name}", flush=True)


def provider_block(tokens, bound=True):
    """`bound`: add the provider that requires certificate binding, which only a listener that
    asks for client certificates may have (the loader refuses it anywhere else)."""
    text = f"""providers:
  - name: main
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [ES256]
    jwks:
      file: {tokens.jwks}
"""
    if bound:
        text += f"""  - name: bound
    issuer: {BOUND_ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [ES256]
    require_certificate_binding: true
    jwks:
      file: {tokens.jwks}
"""
    return text


ROUTES = """routes:
  - prefix: /public
    auth: none
  - prefix: /
"""


def only_request(up, what):
    seen = up.seen()
    expect(len(seen) == 1, f"{what}: the upstream received {len(seen)} requests, expected 1: "
                           f"{[(r['method'], r['path']) for r in seen]}")
    return seen[0]


def header_values(record, name):
    return [v for n, v in record["headers"] if fold(n) == fold(name)]


# --- downstream cases ----------------------------------------------------------------------------

def old_protocol_control(run, pki):
    """The refusals below mean something only if this client can speak TLS 1.0/1.1 at all: against
    a Python server that allows them, the same s_client commands must negotiate them."""
    def control():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(pki.ecdsa.crt, pki.ecdsa.key)
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve():
            for _ in range(2):
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                conn.settimeout(10)
                try:
                    with ctx.wrap_socket(conn, server_side=True) as s:
                        s.recv(1)
                except OSError:
                    pass
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            for flag, want in (("-tls1_1", "TLSv1.1"), ("-tls1", "TLSv1")):
                code, version, _, out = s_client(port, pki.ca.crt, [flag, "-cipher", "DEFAULT:@SECLEVEL=0"])
                expect(version == want, f"s_client {flag} cannot negotiate {want} even where the server allows it: "
                                        f"{out[-400:]}")
        finally:
            listener.close()
            thread.join(timeout=15)

    run.case("control: s_client -tls1/-tls1_1 at SECLEVEL 0 negotiates with a server that allows them", control)


def handshake_cases(run, gate, pki, cert, up, kind):
    """curl, s_client and Python's ssl on TLS 1.2 and 1.3; the right certificate; an AEAD suite
    with ECDHE on 1.2; ALPN http/1.1, never h2."""
    ca = pki.ca.crt
    port = gate.port
    key_exchange = "ECDHE-ECDSA-" if kind == "ecdsa" else "ECDHE-RSA-"

    def python_ssl(version, label):
        up.seen()
        r = https(port, client_context(ca, version), "/public/x")
        expect(r.status == 200, f"status {r.status}")
        expect(r.version == label, f"negotiated {r.version}, expected {label}")
        expect(r.peer == cert.der, "the server presented another certificate than its cert_file's")
        if label == "TLSv1.2":
            expect(r.cipher.startswith(key_exchange) and ("GCM" in r.cipher or "CHACHA20" in r.cipher),
                   f"TLS 1.2 cipher {r.cipher} is not {key_exchange}+AEAD")
        only_request(up, "python ssl")

    def with_curl(flags, label):
        code, status, _, err = curl(port, ca, flags)
        expect(code == 0 and status == "200", f"curl exit {code}, status {status}: {err[-600:]}")
        expect(f"SSL connection using {label}" in err, f"curl did not report {label}: {err[-600:]}")

    def with_s_client(flag, label):
        code, version, cipher, out = s_client(port, ca, [flag], GET_PUBLIC)
        expect(version == label, f"s_client negotiated {version}: {out[-800:]}")
        expect("Verify return code: 0 (ok)" in out, f"s_client did not verify the certificate: {out[-800:]}")
        expect("HTTP/1.1 200" in out, f"no 200 answer through s_client: {out[-800:]}")

    for version, label in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        run.case(f"{gate.name}: python ssl {label}: 200, its certificate", python_ssl, version, label)
    run.case(f"{gate.name}: curl TLS 1.2", with_curl, ["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2")
    run.case(f"{gate.name}: curl TLS 1.3", with_curl, ["--tlsv1.3"], "TLSv1.3")
    run.case(f"{gate.name}: s_client -tls1_2", with_s_client, "-tls1_2", "TLSv1.2")
    run.case(f"{gate.name}: s_client -tls1_3", with_s_client, "-tls1_3", "TLSv1.3")

    def refused_old(flag):
        code, version, _, out = s_client(port, ca, [flag, "-cipher", "DEFAULT:@SECLEVEL=0"])
        expect(version is None and code != 0, f"{flag} negotiated {version}: {out[-600:]}")
        expect("no protocols available" not in out, f"the client refused, not the server: {out[-400:]}")

    def refused_weak_12(cipher):
        code, version, _, out = s_client(port, ca, ["-tls1_2", "-cipher", cipher])
        expect(version is None and code != 0, f"{cipher} negotiated on TLS 1.2: {out[-600:]}")

    for flag, label in (("-tls1_1", "TLS 1.1"), ("-tls1", "TLS 1.0")):
        run.case(f"{gate.name}: {label} refused by the server (s_client {flag} at SECLEVEL 0)", refused_old, flag)
    if kind == "rsa":
        # ECDHE + AEAD only on 1.2: RSA key exchange and CBC suites are never chosen.
        for weak in ("AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384",
                     "DHE-RSA-AES128-GCM-SHA256"):
            run.case(f"{gate.name}: TLS 1.2 suite {weak} refused", refused_weak_12, weak)
    else:
        for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256"):
            run.case(f"{gate.name}: TLS 1.2 suite {weak} refused", refused_weak_12, weak)

    def alpn():
        r = https(port, client_context(ca, alpn=["http/1.1"]), "/public/x")
        expect(r.alpn == "http/1.1", f"offered http/1.1: server selected {r.alpn!r}")
        try:
            https(port, client_context(ca, alpn=["spdy/3", "h2c"]), "/public/x")
            expect(False, "offered neither h2 nor http/1.1: the handshake succeeded")
        except ssl.SSLError as e:
            expect(re.search(r"no.application.protocol", str(e), re.I), f"spdy/h2c-only offer: {e}")
        code, version, _, out = s_client(port, ca, ["-alpn", "h2,http/1.1"])
        expect("ALPN protocol: h2" in out, f"s_client -alpn h2,http/1.1: {out[-600:]}")
        code, version, _, out = s_client(port, ca, ["-alpn", "http/1.1,h2"])
        expect("ALPN protocol: h2" in out, f"s_client -alpn http/1.1,h2 (server preference): {out[-600:]}")
        code, status, http_version, err = curl(port, ca, ["--http2"])
        expect(status == "200" and http_version == "2", f"curl --http2 got {status} over HTTP/{http_version}")
        expect("ALPN: server accepted h2" in err, f"curl: {err[-600:]}")
        code, status, http_version, err = curl(port, ca, ["--http1.1"])
        expect(status == "200" and http_version == "1.1", f"curl --http1.1 got {status} over HTTP/{http_version}")
        up.seen()

    run.case(f"{gate.name}: ALPN selects h2 when offered, else http/1.1 (python, s_client, curl)", alpn)

    def resumption():
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_context(ca, version)
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.settimeout(10)
                exchange(s, port, "GET", "/public/x", [])  # 1.3 tickets arrive after the handshake
                session = s.session
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                s.settimeout(10)
                status, _, _ = exchange(s, port, "GET", "/public/x", [])
                expect(status == 200, f"{version.name}: resumed connection got {status}")
                expect(s.session_reused, f"{version.name}: session ticket not accepted (full handshake)")
        up.seen()

    run.case(f"{gate.name}: session tickets resume on TLS 1.2 and 1.3", resumption)

    def forwarded_proto():
        up.seen()
        r = https(port, client_context(ca), "/public/x", [("X-Forwarded-Proto", "http")])
        expect(r.status == 200, f"status {r.status}")
        got = header_values(only_request(up, "X-Forwarded-Proto"), "X-Forwarded-Proto")
        expect(got == ["https"], f"X-Forwarded-Proto at the upstream: {got}")

    run.case(f"{gate.name}: X-Forwarded-Proto: https at the upstream (client's http replaced)", forwarded_proto)


def spoof_headers():
    return [(name, FORGED[i % 2]) for i, name in enumerate(SPOOF_NAMES)]


def check_client_cert_headers(record, cert):
    """Exactly jwtgate's Client-Cert (and Client-Cert-Chain) for CERT, or none without one; no
    client-sent copy in any spelling."""
    problems = []
    for name, value in record["headers"]:
        if value in FORGED:
            problems.append(f"the client's {name}: {value} reached the upstream")
    got_cert = header_values(record, "Client-Cert")
    got_chain = header_values(record, "Client-Cert-Chain")
    if cert is None:
        if got_cert or got_chain:
            problems.append(f"without a client certificate the upstream got Client-Cert {got_cert}, chain {got_chain}")
    else:
        if got_cert != [cert.rfc9440]:
            problems.append(f"Client-Cert at the upstream: {got_cert}, expected [{cert.rfc9440[:40]}...]")
        want_chain = [] if cert.issuer.issuer is None else [
            ":" + base64.b64encode(cert.issuer.der).decode() + ":"]
        if got_chain != want_chain:
            problems.append(f"Client-Cert-Chain at the upstream: {got_chain}, expected {want_chain}")
    names = [n for n, _ in record["headers"] if fold(n) in ("client-cert", "client-cert-chain")]
    odd = [n for n in names if n.lower() not in ("client-cert", "client-cert-chain")]
    if odd:
        problems.append(f"other spellings at the upstream: {odd}")
    expect(not problems, "; ".join(problems))


def mtls_optional_cases(run, gate, pki, up, tokens):
    ca = pki.ca.crt
    port = gate.port

    def no_cert():
        up.seen()
        r = https(port, client_context(ca), "/public/x")
        expect(r.status == 200, f"status {r.status}")
        check_client_cert_headers(only_request(up, "no cert"), None)

    def valid(cert):
        up.seen()
        r = https(port, client_context(ca, cert=cert), "/public/x")
        expect(r.status == 200, f"status {r.status}")
        check_client_cert_headers(only_request(up, cert.name), cert)

    def unknown_ca(version):
        up.seen()
        try:
            r = https(port, client_context(ca, version, cert=pki.client_unknown), "/public/x")
        except (ssl.SSLError, ConnectionError) as e:
            expect(up.seen() == [], "a request reached the upstream")
            return str(e)
        raise Failure(f"handshake with an unknown CA's certificate succeeded: status {r.status}")

    run.case(f"{gate.name}: mTLS optional: no certificate passes, no Client-Cert", no_cert)
    run.case(f"{gate.name}: mTLS optional: root-issued cert passes, Client-Cert = RFC 9440 of its DER", valid,
             pki.client)
    run.case(f"{gate.name}: mTLS optional: intermediate-issued cert (chain sent) passes, Client-Cert-Chain",
             valid, pki.client_chained)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        run.case(f"{gate.name}: mTLS optional: unknown CA's cert refused at handshake ({version.name})",
                 unknown_ca, version)

    def curl_with_cert():
        up.seen()
        code, status, _, err = curl(port, ca, ["--cert", pki.client.crt, "--key", pki.client.key])
        expect(code == 0 and status == "200", f"curl exit {code}, status {status}: {err[-400:]}")
        check_client_cert_headers(only_request(up, "curl --cert"), pki.client)

    run.case(f"{gate.name}: mTLS optional: curl --cert passes, Client-Cert", curl_with_cert)

    def spoofed(cert):
        up.seen()
        r = https(port, client_context(ca, cert=cert), "/public/x", spoof_headers())
        expect(r.status == 200, f"status {r.status} (stripping, not refusing, is the contract)")
        check_client_cert_headers(only_request(up, "spoofed"), cert)

    run.case(f"{gate.name}: client-sent Client-Cert(-Chain) in 7 spellings stripped, no client cert",
             spoofed, None)
    run.case(f"{gate.name}: client-sent Client-Cert(-Chain) in 7 spellings stripped, with a client cert",
             spoofed, pki.client)
    run.case(f"{gate.name}: client-sent Client-Cert(-Chain) stripped, chained client cert",
             spoofed, pki.client_chained)

    def spoofed_keepalive():
        """The second request on a connection whose first carried a certificate: still only the
        real one, and a forged one from the client on the same connection is gone."""
        up.seen()
        ctx = client_context(ca, cert=pki.client)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.settimeout(10)
            for i in range(2):
                status, _, _ = exchange(s, port, "GET", f"/public/{i}", spoof_headers() if i else [], close=i == 1)
                expect(status == 200, f"request {i}: status {status}")
        seen = up.seen()
        expect(len(seen) == 2, f"the upstream received {len(seen)} requests, expected 2")
        for record in seen:
            check_client_cert_headers(record, pki.client)

    run.case(f"{gate.name}: keep-alive: every request gets the connection's Client-Cert, forged ones stripped",
             spoofed_keepalive)

    # --- certificate binding (RFC 8705 §3) ---
    bound = tokens.mint({"cnf": {"x5t#S256": pki.client.thumbprint}})
    bound_strict = tokens.mint({"cnf": {"x5t#S256": pki.client.thumbprint}}, issuer=BOUND_ISSUER)
    unbound_strict = tokens.mint({}, issuer=BOUND_ISSUER)
    unbound = tokens.mint({})

    def binding(token, cert, status, what, extra=()):
        up.seen()
        r = https(port, client_context(ca, cert=cert), "/orders/1", bearer(token) + list(extra))
        expect(r.status == status, f"{what}: status {r.status}, expected {status}: {r.body[:200]!r}")
        seen = up.seen()
        if status == 200:
            expect(len(seen) == 1, f"the upstream received {len(seen)} requests")
        else:
            expect(seen == [], "a refused request reached the upstream")
            www = r.header("WWW-Authenticate") or ""
            expect("invalid_token" in www, f"WWW-Authenticate {www!r} lacks invalid_token")

    run.case(f"{gate.name}: bound token with its certificate: 200", binding, bound, pki.client, 200, "bound+cert")
    # After a success the token is cached: the binding must still be checked on the hit.
    run.case(f"{gate.name}: bound token with another certificate: 401 invalid_token (cache hit)", binding, bound,
             pki.client_other, 401, "bound+other")
    run.case(f"{gate.name}: bound token without a certificate: 401 invalid_token", binding, bound, None, 401,
             "bound+none")
    run.case(f"{gate.name}: bound token, chained cert (not the bound one): 401", binding, bound,
             pki.client_chained, 401, "bound+chained")
    run.case(f"{gate.name}: bound token, no cert, client-sent Client-Cert of the bound cert: 401", binding, bound,
             None, 401, "bound+forged header", [("Client-Cert", pki.client.rfc9440)])
    run.case(f"{gate.name}: bound token, other cert, client-sent Client-Cert of the bound cert: 401", binding,
             bound, pki.client_other, 401, "bound+other+forged header", [("Client-Cert", pki.client.rfc9440)])
    run.case(f"{gate.name}: unbound token, no binding required: 200 with or without cert", lambda: (
        binding(unbound, None, 200, "unbound+none"), binding(unbound, pki.client, 200, "unbound+cert")))
    run.case(f"{gate.name}: require_certificate_binding: unbound token refused 401 invalid_token", binding,
             unbound_strict, pki.client, 401, "strict unbound")
    run.case(f"{gate.name}: require_certificate_binding: bound token with its cert: 200", binding,
             bound_strict, pki.client, 200, "strict bound")
    run.case(f"{gate.name}: require_certificate_binding: bound token without cert: 401", binding,
             bound_strict, None, 401, "strict bound no cert")


def handshake_timeout_case(run, gate):
    def silent():
        with socket.create_connection(("127.0.0.1", gate.port), timeout=10) as s:
            start = time.monotonic()
            s.settimeout(8)
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                raise Failure("a silent client was not closed within 8 s (handshake_timeout 1s)")
            elapsed = time.monotonic() - start
            expect(data == b"", f"the server sent {data!r} to a client that said nothing")
            expect(0.7 <= elapsed <= 4, f"closed after {elapsed:.2f} s, handshake_timeout is 1s")

    def partial_hello():
        """A ClientHello cut off after its record header: the timeout covers the whole handshake."""
        with socket.create_connection(("127.0.0.1", gate.port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            start = time.monotonic()
            s.settimeout(8)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            except socket.timeout:
                raise Failure("a half-sent ClientHello was not closed within 8 s")
            elapsed = time.monotonic() - start
            expect(elapsed <= 4, f"closed after {elapsed:.2f} s, handshake_timeout is 1s")

    run.case(f"{gate.name}: handshake_timeout closes a silent TCP client", silent)
    run.case(f"{gate.name}: handshake_timeout closes a client stuck mid-ClientHello", partial_hello)


def metrics_cases(run, gate, pki, cert):
    """Counted by result and version: an exact delta for a known sequence of handshakes."""
    def counts():
        m = gate.metrics()
        return {
            "ok12": metric(m, "jwtgate_tls_handshakes_total", result="success", version="TLSv1.2") or 0,
            "ok13": metric(m, "jwtgate_tls_handshakes_total", result="success", version="TLSv1.3") or 0,
            "failure": metric(m, "jwtgate_tls_handshakes_total", result="failure") or 0,
            "timeout": metric(m, "jwtgate_tls_handshakes_total", result="timeout") or 0,
        }

    def handshakes():
        before = counts()
        for _ in range(3):
            https(gate.port, client_context(pki.ca.crt, ssl.TLSVersion.TLSv1_2))
        for _ in range(2):
            https(gate.port, client_context(pki.ca.crt, ssl.TLSVersion.TLSv1_3))
        s_client(gate.port, pki.ca.crt, ["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"])
        with socket.create_connection(("127.0.0.1", gate.port), timeout=10) as s:
            s.settimeout(8)
            try:
                s.recv(1)
            except OSError:
                pass
        want = {"ok12": 3, "ok13": 2, "failure": 1, "timeout": 1}
        last = {}

        def settled():
            nonlocal last
            now = counts()
            last = {k: now[k] - before[k] for k in want}
            return last == want
        try:
            wait_until("handshake counters", settled, timeout=5)
        except Failure:
            raise Failure(f"jwtgate_tls_handshakes_total deltas {last}, expected {want}")

    def expiry():
        m = gate.metrics()
        got = metric(m, "jwtgate_tls_certificate_expiry_timestamp_seconds", listener="proxy")
        expect(got == cert.not_after, f"expiry gauge {got}, the leaf's notAfter is {cert.not_after}")

    run.case(f"{gate.name}: jwtgate_tls_handshakes_total counts success by version, failure, timeout", handshakes)
    run.case(f"{gate.name}: jwtgate_tls_certificate_expiry_timestamp_seconds = leaf notAfter", expiry)


def strict_cases(run, gate, pki, up):
    """min_version 1.3 and client_auth required, RSA certificate."""
    ca = pki.ca.crt

    def refuses_12():
        up.seen()  # the upstream is shared: forget what earlier gates' cases sent
        try:
            r = https(gate.port, client_context(ca, ssl.TLSVersion.TLSv1_2, cert=pki.client), "/public/x")
        except (ssl.SSLError, ConnectionError):
            pass
        else:
            raise Failure(f"TLS 1.2 accepted with min_version 1.3 ({r.version})")
        code, version, _, out = s_client(gate.port, ca, ["-tls1_2", "-cert", pki.client.crt, "-key", pki.client.key])
        expect(version is None, f"s_client -tls1_2 negotiated {version}")
        code, status, _, err = curl(gate.port, ca, ["--tlsv1.2", "--tls-max", "1.2", "--cert", pki.client.crt,
                                                    "--key", pki.client.key])
        expect(code != 0, f"curl TLS 1.2 succeeded ({status})")
        expect(up.seen() == [], "a request reached the upstream")

    def tls13_with_cert():
        up.seen()
        r = https(gate.port, client_context(ca, cert=pki.client), "/public/x")
        expect(r.status == 200 and r.version == "TLSv1.3", f"status {r.status} over {r.version}")
        expect(r.peer == pki.rsa.der, "not the RSA certificate")
        check_client_cert_headers(only_request(up, "required+cert"), pki.client)
        code, status, _, err = curl(gate.port, ca, ["--cert", pki.client.crt, "--key", pki.client.key])
        expect(code == 0 and status == "200", f"curl --cert: exit {code}, status {status}: {err[-400:]}")
        code, version, _, out = s_client(gate.port, ca, ["-cert", pki.client.crt, "-key", pki.client.key],
                                         GET_PUBLIC)
        expect(version == "TLSv1.3" and "HTTP/1.1 200" in out, f"s_client with a cert: {version}: {out[-600:]}")
        up.seen()

    def no_cert(version):
        up.seen()
        try:
            r = https(gate.port, client_context(ca, version), "/public/x")
        except (ssl.SSLError, ConnectionError):
            expect(up.seen() == [], "a request reached the upstream")
            return
        raise Failure(f"client_auth required, no certificate: got {r.status}")

    def curl_no_cert():
        code, status, _, err = curl(gate.port, ca)
        expect(code != 0 and status in ("", "000"), f"curl without a cert: exit {code}, status {status}")

    run.case(f"{gate.name}: min_version 1.3 refuses TLS 1.2 (python, s_client, curl)", refuses_12)
    run.case(f"{gate.name}: client_auth required: RSA cert, TLS 1.3, client cert passes (python, curl, s_client)",
             tls13_with_cert)
    run.case(f"{gate.name}: client_auth required: no certificate refused", no_cert, ssl.TLSVersion.TLSv1_3)
    run.case(f"{gate.name}: client_auth required: no certificate refused (curl)", curl_no_cert)
    run.case(f"{gate.name}: client_auth required: unknown CA's cert refused", lambda: expect_refused(
        gate, client_context(ca, cert=pki.client_unknown), up))


def expect_refused(gate, ctx, up):
    up.seen()
    try:
        r = https(gate.port, ctx, "/public/x")
    except (ssl.SSLError, ConnectionError):
        expect(up.seen() == [], "a request reached the upstream")
        return
    raise Failure(f"handshake succeeded: status {r.status}")


def bound_on_plain_forged(gate, up, tokens, cert):
    """The client sends the real certificate's RFC 9440 value itself: binding must look at the
    connection, never at a header."""
    up.seen()
    token = tokens.mint({"cnf": {"x5t#S256": cert.thumbprint}})
    r = plain(gate.port, "/orders/1", bearer(token) + [("Client-Cert", cert.rfc9440)])
    expect(r.status == 401, f"status {r.status}, expected 401")
    expect(up.seen() == [], "a refused request reached the upstream")


def plain_cases(run, gate, up, tokens, forged_cert):
    thumbprint = forged_cert.thumbprint
    def spoofed():
        up.seen()
        r = plain(gate.port, "/public/x", spoof_headers())
        expect(r.status == 200, f"status {r.status}")
        record = only_request(up, "plain")
        check_client_cert_headers(record, None)
        got = header_values(record, "X-Forwarded-Proto")
        expect(got == ["http"], f"X-Forwarded-Proto on the plain listener: {got}")

    run.case(f"{gate.name}: plain listener: client-sent Client-Cert(-Chain) in 7 spellings stripped", spoofed)

    def bound_on_plain(token, what):
        up.seen()
        r = plain(gate.port, "/orders/1", bearer(token))
        expect(r.status == 401, f"{what}: status {r.status}, expected 401")
        www = r.header("WWW-Authenticate") or ""
        expect("invalid_token" in www, f"WWW-Authenticate {www!r} lacks invalid_token")
        expect(up.seen() == [], "a refused request reached the upstream")

    run.case(f"{gate.name}: plain listener: a certificate-bound token is refused 401 invalid_token",
             bound_on_plain, tokens.mint({"cnf": {"x5t#S256": thumbprint}}), "bound")
    run.case(f"{gate.name}: plain listener: a bound token with a forged Client-Cert of that cert: 401",
             lambda: bound_on_plain_forged(gate, up, tokens, forged_cert))


# --- certificate reload under load --------------------------------------------------------------

class Load:
    """A client thread alternating keep-alive requests (one connection, reused) and requests on
    fresh connections until stopped; every answer must be a 200."""

    def __init__(self, port, ca):
        self.port = port
        self.ctx = client_context(ca)
        self.ok = 0
        self.errors = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        keep = None
        i = 0
        while not self.stopping.is_set() and i < 100000:
            i += 1
            try:
                if i % 2:
                    if keep is None:
                        keep = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self.ctx)
                    keep.request("GET", f"/public/keep/{i}")
                    resp = keep.getresponse()
                else:
                    fresh = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self.ctx)
                    fresh.request("GET", f"/public/fresh/{i}", headers={"Connection": "close"})
                    resp = fresh.getresponse()
                resp.read()
                if resp.status != 200:
                    self.errors.append(f"request {i}: status {resp.status}")
                else:
                    self.ok += 1
                if i % 2 == 0:
                    fresh.close()
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(f"request {i} ({'keep-alive' if i % 2 else 'fresh'}): {type(e).__name__}: {e}")
                if i % 2:
                    keep = None

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=15)


def peer_fingerprint(port, ca):
    r = https(port, client_context(ca), "/public/x")
    return hashlib.sha256(r.peer).hexdigest()


def reload_cases(run, gate, pki, secret):
    ca = pki.ca.crt

    def reloads(result):
        return metric(gate.metrics(), "jwtgate_tls_certificate_reloads_total", result=result) or 0

    def under_load():
        expect(peer_fingerprint(gate.port, ca) == pki.ecdsa.fingerprint, "not serving the first certificate")
        load = Load(gate.port, ca)
        try:
            time.sleep(0.7)
            failures_before = reloads("failure")
            successes_before = reloads("success")
            secret.swap(pki.ecdsa2.crt, pki.ecdsa2.key)
            wait_until("new connections see the new certificate",
                       lambda: peer_fingerprint(gate.port, ca) == pki.ecdsa2.fingerprint, timeout=10)
            # Every worker: a run of fresh connections, all with the new certificate.
            for i in range(12):
                got = peer_fingerprint(gate.port, ca)
                expect(got == pki.ecdsa2.fingerprint, f"fresh connection {i} after the swap got the old certificate")
            expect(reloads("success") > successes_before, "jwtgate_tls_certificate_reloads_total{result=success} "
                                                          "did not count the reload")
            got = metric(gate.metrics(), "jwtgate_tls_certificate_expiry_timestamp_seconds", listener="proxy")
            expect(got == pki.ecdsa2.not_after, f"expiry gauge {got} after reload, new notAfter {pki.ecdsa2.not_after}")
            time.sleep(0.5)
            # A broken pair: ecdsa3's certificate with ecdsa2's key.
            secret.swap(pki.ecdsa3.crt, pki.ecdsa2.key)
            wait_until("jwtgate_tls_certificate_reloads_total{result=failure} to count the broken pair",
                       lambda: reloads("failure") > failures_before, timeout=10)
            for i in range(12):
                got = peer_fingerprint(gate.port, ca)
                expect(got == pki.ecdsa2.fingerprint, f"fresh connection {i} after a broken pair: not the kept certificate")
            time.sleep(0.5)
        finally:
            load.stop()
        expect(not load.errors, f"{len(load.errors)} failed requests of {load.ok + len(load.errors)}: {load.errors[:5]}")
        expect(load.ok >= 20, f"only {load.ok} requests in the load run")
        expect("tls certificate reload failed" in gate.proc.tail(200), "no 'tls certificate reload failed' warning")
        print(f"     reload under load: {load.ok} requests, 0 failed", flush=True)

    def sighup():
        # Repair in place (the broken version directory gets ecdsa3's own key): only SIGHUP says when.
        version = os.path.join(secret.path, os.readlink(os.path.join(secret.path, "..data")))
        shutil.copyfile(pki.ecdsa3.key, os.path.join(version, "tls.key"))
        gate.proc.proc.send_signal(signal.SIGHUP)
        wait_until("SIGHUP reloads the certificate",
                   lambda: peer_fingerprint(gate.port, ca) == pki.ecdsa3.fingerprint, timeout=10)

    run.case(f"{gate.name}: certificate reload (..data swap) under keep-alive + fresh load: 0 failed, new cert; "
             f"broken pair keeps the old", under_load)
    run.case(f"{gate.name}: SIGHUP reloads the certificate", sighup)


# --- upstream TLS ------------------------------------------------------------------------------

def upstream_tls_cases(run, plain_gate, named_gate, ups, tokens, pki):
    token = tokens.mint({})

    def through(gate, path, status, up, client_cn=None, reason=None):
        for u in ups.values():
            u.seen()
        log_lines = len(gate.proc.tail(100000).splitlines())
        r = plain(gate.port, f"{path}/anything", bearer(token))
        expect(r.status == status, f"{path}: status {r.status}, expected {status}: {r.body[:200]!r}")
        seen = up.seen()
        if status == 200:
            expect(len(seen) == 1, f"the upstream received {len(seen)} requests")
            expect(r.header("X-Upstream") == up.name, f"answered by {r.header('X-Upstream')}")
            got = header_values(seen[0], "X-Forwarded-Proto")
            expect(got == ["http"], f"X-Forwarded-Proto to the upstream: {got} (the client's listener is plain)")
            if client_cn:
                expect(r.header("X-Upstream-Client-Cert") == client_cn,
                       f"client certificate at the upstream: {r.header('X-Upstream-Client-Cert')}")
        else:
            expect(seen == [], f"the upstream received {len(seen)} requests")
        if reason:
            logged = [json.loads(line) for line in gate.proc.tail(100000).splitlines()[log_lines:]
                      if line.startswith("{")]
            got = [e.get("reason") for e in logged if e.get("msg") == "upstream TLS handshake failed"]
            expect(got and re.search(reason, got[-1]), f"'upstream TLS handshake failed' reasons logged: {got}, "
                                                       f"expected /{reason}/")
        return r

    def pooled():
        a = through(plain_gate, "/good", 200, ups["good"])
        b = through(plain_gate, "/good", 200, ups["good"])
        expect(a.header("X-Upstream-Connection") == b.header("X-Upstream-Connection"),
               f"two requests over two upstream TLS connections ({a.header('X-Upstream-Connection')}, "
               f"{b.header('X-Upstream-Connection')}): not pooled")

    run.case("plain: https upstream verified with upstream_tls.ca_file: 200", through, plain_gate, "/good", 200,
             ups["good"])
    run.case("plain: https upstream connections are kept alive (pooled)", pooled)
    run.case("plain: expired upstream certificate: 502", through, plain_gate, "/expired", 502, ups["expired"], None,
             "certificate has expired")
    run.case("plain: self-signed upstream certificate (not in ca_file): 502", through, plain_gate, "/selfsigned",
             502, ups["selfsigned"], None, "self-signed certificate")
    run.case("plain: upstream certificate for another name: 502", through, plain_gate, "/wrongname", 502,
             ups["wrongname"], None, "IP address mismatch")
    run.case("plain: upstream requiring a client certificate: upstream_tls.cert_file/key_file: 200", through,
             plain_gate, "/mtls", 200, ups["mtls"], "up-client")
    def stale_then_resumed():
        # /close-next leaves a pooled connection the upstream closes on its next request: the
        # retry opens a new connection, which must resume the session the first one was issued.
        first = through(plain_gate, "/good", 200, ups["good"])
        r = plain(plain_gate.port, "/good/close-next", bearer(token))
        expect(r.status == 200, f"/close-next: status {r.status}")
        r = plain(plain_gate.port, "/good/anything", bearer(token))
        expect(r.status == 200, f"after the stale connection: status {r.status}: {r.body[:200]!r}")
        expect(r.header("X-Upstream-Connection") != first.header("X-Upstream-Connection"),
               "the request after /close-next did not come over a new connection")
        expect(r.header("X-Upstream-Session-Reused") == "True",
               f"the new upstream connection did a full handshake (session_reused "
               f"{r.header('X-Upstream-Session-Reused')}): the pool's session was not offered")

    def reload_upstream_tls():
        original = read(plain_gate.config)
        pattern = re.compile(r"(?m)^  ca_file: .*$")
        expect(pattern.search(original), "the plain gate's config has no upstream_tls.ca_file line")

        def reload_with(text):
            write(plain_gate.config, text)
            plain_gate.proc.proc.send_signal(signal.SIGHUP)

        def status():
            return plain(plain_gate.port, "/good/anything", bearer(token)).status

        try:
            expect(status() == 200, "not serving /good before the reload")
            # The client CA signed no server certificate: the good upstream no longer verifies.
            reload_with(pattern.sub(f"  ca_file: {pki.client_ca.crt}", original))
            wait_until("the reloaded upstream_tls.ca_file to refuse the upstream", lambda: status() == 502, timeout=10)
            expect("upstream TLS handshake failed" in plain_gate.proc.tail(400),
                   "no 'upstream TLS handshake failed' log line")
            reload_with(original)
            wait_until("the original ca_file to verify the upstream again", lambda: status() == 200, timeout=10)
            broken = os.path.join(os.path.dirname(plain_gate.config), "broken-ca.pem")
            write(broken, "not a certificate\n")
            reload_with(pattern.sub(f"  ca_file: {broken}", original))
            wait_until("the broken ca_file's reload to be refused",
                       lambda: "config reload rejected: upstream_tls" in plain_gate.proc.tail(400), timeout=10)
            for i in range(5):
                got = status()
                expect(got == 200, f"request {i} after a refused reload: {got} (the old config should serve)")
        finally:
            reload_with(original)
            wait_until("the original config back", lambda: status() == 200, timeout=10)

    run.case("plain: a stale pooled TLS connection is replaced, and the new one resumes the session",
             stale_then_resumed)
    run.case("plain: upstream_tls changed by SIGHUP applies to new requests; a broken ca_file is refused",
             reload_upstream_tls)
    run.case("named: upstream_tls.server_name names the upstream: wrong.example.com's cert: 200", through,
             named_gate, "/", 200, ups["wrongname"])
    run.case("named: server_name overrides the URL host: 127.0.0.1's cert refused: 502", through, named_gate,
             "/good", 502, ups["good"], None, "hostname mismatch")
    run.case("named: mTLS upstream without upstream_tls.cert_file: 502", through, named_gate, "/mtls", 502,
             ups["mtls"], None, "certificate required|alert|closed the connection right after the TLS handshake")


# --- check-config --------------------------------------------------------------------------------

def check_config_cases(run, jwtgate, pki, tmp, tokens, upstream_port):
    def config(name, cert, key):
        return write(os.path.join(tmp, f"check-{name}.yaml"),
                     f"listen: 127.0.0.1:{free_port()}\nupstream: http://127.0.0.1:{upstream_port}\n"
                     f"tls:\n  cert_file: {cert}\n  key_file: {key}\n" + provider_block(tokens, bound=False))

    def check(name, cert, key, code, needle):
        path = config(name, cert, key)
        r = subprocess.run([jwtgate, "check-config", "--config", path], capture_output=True, text=True, timeout=30)
        out = r.stdout + r.stderr
        expect(r.returncode == code, f"exit {r.returncode}, expected {code}: {out}")
        expect(re.search(needle, out, re.I), f"output lacks /{needle}/: {out}")

    run.case("check-config: a matching pair is valid", check, "ok", pki.ecdsa.crt, pki.ecdsa.key, 0,
             r"valid \(0 warnings\)")
    run.case("check-config: key does not match the certificate: invalid", check, "mismatch", pki.ecdsa.crt,
             pki.rsa.key, 2, r"tls\.key_file.*match|match.*" + re.escape(pki.rsa.key) + "|" + re.escape(pki.rsa.key) + ".*match")
    run.case("check-config: certificate expiring in 7 days: a warning", check, "soon", pki.soon.crt, pki.soon.key,
             0, r"warning.*expir|expir.*warning")


# --- testssl.sh (manual) -------------------------------------------------------------------------

def run_testssl(gate, tmp, ca):
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if not testssl:
        print("testssl: not installed (scripts/install-deps.sh --testssl)")
        return
    out = os.path.join(tmp, f"testssl-{gate.name}.txt")
    print(f"testssl: {testssl} against {gate.name} on 127.0.0.1:{gate.port} (several minutes) -> {out}", flush=True)
    with open(out, "wb") as f:
        subprocess.run([testssl, "--quiet", "--color", "0", "--warnings", "off", "--add-ca", ca,
                        f"127.0.0.1:{gate.port}"], stdout=f, stderr=subprocess.STDOUT, timeout=900)
    # testssl 3.0 has no overall grade: its protocol, cipher and vulnerability lines are the verdict.
    summary = [line.rstrip() for line in read(out).splitlines()
               if re.search(r"offered|VULNERABLE|NOT ok|not vulnerable|Done|Chain of trust|Rating|Grade", line)]
    print(f"testssl {gate.name}:", *summary, sep="\n  ")


# --- main --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jwtgate", required=True)
    ap.add_argument("-k", help="run only the cases whose name holds this")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (PKI, configs, logs)")
    ap.add_argument("--testssl", action="store_true", help="also run Debian's testssl.sh against the listeners")
    args = ap.parse_args()
    args.jwtgate = os.path.abspath(args.jwtgate)
    if not os.access(args.jwtgate, os.X_OK):
        print(f"tls e2e: jwtgate binary {args.jwtgate} is missing", file=sys.stderr)
        return 1
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="jwtgate-tls-e2e-")
    run = Run(args, tmp)
    gates, ups = [], {}
    try:
        pki = Pki(tmp)
        tokens = Tokens(args.jwtgate, tmp)
        up = Upstream("plain", tmp)
        ups["good"] = Upstream("good", tmp, pki.up_good)
        ups["expired"] = Upstream("expired", tmp, pki.up_expired)
        ups["selfsigned"] = Upstream("selfsigned", tmp, pki.up_self)
        ups["wrongname"] = Upstream("wrongname", tmp, pki.up_wrong)
        ups["mtls"] = Upstream("mtls", tmp, pki.up_mtls, client_ca=pki.client_ca.crt, own_cert=pki.up_client)
        print(f"tls e2e: PKI, tokens and upstreams ready in {time.monotonic() - started:.1f} s", flush=True)

        secret = SecretDir(os.path.join(tmp, "secret"), pki.ecdsa.crt, pki.ecdsa.key)
        ecdsa = Jwtgate("ecdsa", args.jwtgate, tmp, workers=2, body=f"""upstream: http://127.0.0.1:{up.port}
tls:
  cert_file: {secret.crt}
  key_file: {secret.key}
  min_version: "1.2"
  handshake_timeout: 1s
  client_ca_file: {pki.client_ca.crt}
  client_auth: optional
""" + provider_block(tokens) + ROUTES)
        rsa = Jwtgate("rsa", args.jwtgate, tmp, body=f"""upstream: http://127.0.0.1:{up.port}
tls:
  cert_file: {pki.rsa.crt}
  key_file: {pki.rsa.key}
""" + provider_block(tokens, bound=False) + ROUTES)
        strict = Jwtgate("strict", args.jwtgate, tmp, body=f"""upstream: http://127.0.0.1:{up.port}
tls:
  cert_file: {pki.rsa.crt}
  key_file: {pki.rsa.key}
  min_version: "1.3"
  client_ca_file: {pki.client_ca.crt}
  client_auth: required
""" + provider_block(tokens) + ROUTES)
        plain_gate = Jwtgate("plain", args.jwtgate, tmp, body=f"""upstream: http://127.0.0.1:{up.port}
upstream_tls:
  ca_file: {pki.ca.crt}
  cert_file: {pki.up_client.crt}
  key_file: {pki.up_client.key}
""" + provider_block(tokens, bound=False) + f"""routes:
  - prefix: /public
    auth: none
  - prefix: /good
    upstream: https://127.0.0.1:{ups["good"].port}
  - prefix: /expired
    upstream: https://127.0.0.1:{ups["expired"].port}
  - prefix: /selfsigned
    upstream: https://127.0.0.1:{ups["selfsigned"].port}
  - prefix: /wrongname
    upstream: https://127.0.0.1:{ups["wrongname"].port}
  - prefix: /mtls
    upstream: https://127.0.0.1:{ups["mtls"].port}
  - prefix: /
""")
        named = Jwtgate("named", args.jwtgate, tmp, body=f"""upstream: https://127.0.0.1:{ups["wrongname"].port}
upstream_tls:
  ca_file: {pki.ca.crt}
  server_name: wrong.example.com
""" + provider_block(tokens, bound=False) + f"""routes:
  - prefix: /good
    upstream: https://127.0.0.1:{ups["good"].port}
  - prefix: /mtls
    upstream: https://127.0.0.1:{ups["mtls"].port}
  - prefix: /
""")
        for gate in (ecdsa, rsa, strict, plain_gate, named):
            try:
                gates.append(gate.start())
            except Failure as e:
                run.failures.append(str(e))
                print(f"FAIL {e}", flush=True)
        started_gates = {g.name for g in gates}
        print(f"tls e2e: {len(gates)} jwtgates up at {time.monotonic() - started:.1f} s", flush=True)

        old_protocol_control(run, pki)
        check_config_cases(run, args.jwtgate, pki, tmp, tokens, up.port)
        if "ecdsa" in started_gates:
            handshake_cases(run, ecdsa, pki, pki.ecdsa, up, "ecdsa")
            handshake_timeout_case(run, ecdsa)
            mtls_optional_cases(run, ecdsa, pki, up, tokens)
            metrics_cases(run, ecdsa, pki, pki.ecdsa)
        if "rsa" in started_gates:
            handshake_cases(run, rsa, pki, pki.rsa, up, "rsa")
        if "strict" in started_gates:
            strict_cases(run, strict, pki, up)
        if "plain" in started_gates:
            plain_cases(run, plain_gate, up, tokens, pki.client)
        if {"plain", "named"} <= started_gates:
            upstream_tls_cases(run, plain_gate, named, ups, tokens, pki)
        if "ecdsa" in started_gates:
            reload_cases(run, ecdsa, pki, secret)
        if args.testssl:
            for gate in (ecdsa, rsa):
                if gate.name in started_gates:
                    run_testssl(gate, tmp, pki.ca.crt)
    except Failure as e:
        run.failures.append(str(e))
        print(f"FAIL {e}", flush=True)
    finally:
        for gate in gates:
            gate.stop(run.failures)
        for u in ups.values():
            u.stop()
        if "up" in locals():
            up.stop()
    return run.finish("tls e2e", started, "PKI, configs and logs")


if __name__ == "__main__":
    sys.exit(main())
