#!/usr/bin/python3
"""Side-by-side proxy benchmark: jwtgate against nginx and HAProxy on this machine.

Run through bench/run.sh, which installs the peers and builds jwtgate first. Every server binds
to 127.0.0.1; every process is stopped when the run ends, also on error or Ctrl-C.

Layout (2 cores): the proxy under test is pinned to CPU 0, wrk and the upstream (a one-worker
nginx answering 200 "ok") to CPU 1. Each round runs every scenario once, in order, so scenarios
are interleaved (A B C ... A B C ...); the table reports medians over rounds and each figure as
a ratio to its peer in the same run.
"""

import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import platform
import re
import resource
import secrets
import selectors
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
import hmac

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
UPSTREAM_PORT = 18180
PROXY_PORT = 18181
ADMIN_PORT = 18182
ALGS = ["RS256", "ES256", "HS256"]
AUDIENCE = "bench-api"
REPEATED_TOKENS = 100
TOKEN_TTL = 24 * 3600
CLK_TCK = os.sysconf("SC_CLK_TCK")


def default_nginx():
    """Debian's nginx on PATH, else the one install-deps unpacks into .deps/."""
    return shutil.which("nginx") or str(ROOT / ".deps" / "nginx" / "usr" / "sbin" / "nginx")


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def issuer(alg):
    return f"https://idp.bench.example/{alg.lower()}"


# ---------------------------------------------------------------- keys and tokens

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_SIGNER = {}


def _init_signer(alg, key_pem, secret):
    _SIGNER["alg"] = alg
    _SIGNER["key"] = serialization.load_pem_private_key(key_pem, None) if key_pem else None
    _SIGNER["secret"] = secret


def _sign_range(args):
    start, count, now = args
    alg, key, secret = _SIGNER["alg"], _SIGNER["key"], _SIGNER["secret"]
    header = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": f"bench-{alg.lower()}"},
                               separators=(",", ":")).encode())
    out = []
    for i in range(start, start + count):
        payload = {"iss": issuer(alg), "aud": AUDIENCE, "sub": f"user-{i:07d}", "scope": "read write",
                   "iat": now, "exp": now + TOKEN_TTL}
        signing_input = (header + "." + b64url(json.dumps(payload, separators=(",", ":")).encode())).encode()
        if alg == "RS256":
            sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256":
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = hmac.new(secret, signing_input, hashlib.sha256).digest()
        out.append(signing_input.decode() + "." + b64url(sig))
    return out


def make_material(work: Path, unique: int, algs=ALGS):
    """Keys, JWKS, PEMs for HAProxy and the token files of `algs`; reused while the tokens stay
    valid."""
    meta_path = work / "material.json"
    now = int(time.time())
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("unique") == unique and set(algs) <= set(meta.get("algs", ALGS)) \
                and meta.get("created", 0) + TOKEN_TTL // 2 > now:
            log(f"reusing keys and tokens from {work}")
            return
    log(f"generating keys and {unique} distinct tokens per algorithm ({', '.join(algs)}; RS256 takes a minute)")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(48)).encode()
    pems = {}
    for alg, key in (("RS256", rsa_key), ("ES256", ec_key)):
        pems[alg] = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        (work / f"{alg.lower()}.pub.pem").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (work / "hs256.secret").write_bytes(secret)
    os.chmod(work / "hs256.secret", 0o600)

    rn = rsa_key.public_key().public_numbers()
    en = ec_key.public_key().public_numbers()
    jwks = {"keys": [
        {"kty": "RSA", "kid": "bench-rs256", "alg": "RS256", "use": "sig",
         "n": b64url(rn.n.to_bytes((rn.n.bit_length() + 7) // 8, "big")), "e": b64url(rn.e.to_bytes(3, "big"))},
        {"kty": "EC", "kid": "bench-es256", "alg": "ES256", "use": "sig", "crv": "P-256",
         "x": b64url(en.x.to_bytes(32, "big")), "y": b64url(en.y.to_bytes(32, "big"))},
    ]}
    (work / "jwks.json").write_text(json.dumps(jwks))

    for alg in algs:
        chunks = [(i, min(10000, unique - i), now) for i in range(0, unique, 10000)]
        with multiprocessing.Pool(os.cpu_count(), _init_signer, (alg, pems.get(alg), secret)) as pool:
            tokens = [t for chunk in pool.map(_sign_range, chunks) for t in chunk]
        if len(set(tokens)) != unique:
            raise SystemExit(f"{alg}: tokens are not all distinct")
        (work / f"tokens-{alg.lower()}-unique.txt").write_text("\n".join(tokens) + "\n")
        (work / f"tokens-{alg.lower()}-repeated.txt").write_text("\n".join(tokens[:REPEATED_TOKENS]) + "\n")
        log(f"  {alg}: {len(tokens)} tokens, {len(tokens[0])} bytes each")
    meta_path.write_text(json.dumps({"unique": unique, "algs": list(algs), "created": now}))


# ---------------------------------------------------------------- processes

def tree_pids(pid):
    """pid and its descendants (nginx runs a master and a worker)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (all threads)
    return total / CLK_TCK


def status_kib(pids, key):
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def pinned(cmd, cpu):
    return ["taskset", "-c", str(cpu), *cmd] if cpu is not None else cmd


class Proc:
    def __init__(self, name, cmd, work, env=None):
        self.name = name
        self.log_path = work / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)

    def pids(self):
        return tree_pids(self.p.pid)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()


def wait_port(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise SystemExit(f"{proc.name} exited; see {proc.log_path}")
        try:
            socket.create_connection((HOST, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"{proc.name} did not open port {port}; see {proc.log_path}")


def http_get(port, path, headers=None, timeout=5.0):
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# ---------------------------------------------------------------- servers

# Extra lines for every nginx's http block: tls_bench.py sets the temporary paths an nginx
# unpacked from its .deb (no /var/lib/nginx) would otherwise fail to create.
NGINX_EXTRA_HTTP = ""


def nginx_conf(work, name, port, body):
    user = "user root root;\n" if os.geteuid() == 0 else ""
    path = work / f"{name}.nginx.conf"
    path.write_text(f"""{user}worker_processes 1;
daemon off;
pid {work}/{name}.pid;
error_log {work}/{name}.error.log error;
events {{ worker_connections 30000; }}
http {{
  access_log off;
  default_type text/plain;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path {work}/{name}-tmp;
  proxy_temp_path {work}/{name}-tmp;
{NGINX_EXTRA_HTTP.format(tmp=f"{work}/{name}-tmp")}{body}
}}
""")
    (work / f"{name}-tmp").mkdir(exist_ok=True)
    return path


def start_upstream(work, cpu, port=UPSTREAM_PORT, nginx="nginx"):
    # The upstream repeats the X-Jwt-Sub it received, so the sanity checks can see what a proxy
    # injected.
    conf = nginx_conf(work, "upstream", port, f"""  server {{
    listen {HOST}:{port} backlog=4096;
    location / {{ add_header X-Seen-Sub "$http_x_jwt_sub" always; return 200 "ok\\n"; }}
  }}""")
    p = Proc("upstream", pinned([str(nginx), "-c", str(conf)], cpu), work)
    wait_port(port, p)
    return p


def start_nginx_proxy(work, cpu):
    conf = nginx_conf(work, "nginx-proxy", PROXY_PORT, f"""  upstream app {{
    server {HOST}:{UPSTREAM_PORT};
    keepalive 1024;
    keepalive_requests 100000000;
  }}
  server {{
    listen {HOST}:{PROXY_PORT} backlog=4096;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}""")
    return Proc("nginx-proxy", pinned(["nginx", "-c", str(conf)], cpu), work)


def haproxy_jwt_rules(work, alg):
    # As HAProxy's documentation and its "Verify OAuth JWT tokens" guide recommend: algorithm,
    # issuer, audience, signature and expiry; the subject is passed on like jwtgate does.
    key = f'"{(work / "hs256.secret").read_text()}"' if alg == "HS256" else f'"{work / (alg.lower() + ".pub.pem")}"'
    return f"""  http-request deny deny_status 401 unless {{ req.hdr(authorization) -m found }}
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request deny deny_status 401 unless {{ var(txn.alg) -m str {alg} }}
  http-request deny deny_status 401 unless {{ var(txn.iss) -m str {issuer(alg)} }}
  http-request deny deny_status 401 unless {{ var(txn.aud) -m str {AUDIENCE} }}
  http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_verify(txn.alg,{key}) -m int 1 }}
  http-request set-var(txn.now) date()
  http-request deny deny_status 401 if {{ var(txn.exp),sub(txn.now) -m int lt 0 }}
  http-request set-var(txn.sub) var(txn.bearer),jwt_payload_query('$.sub')
  http-request set-header X-Jwt-Sub %[var(txn.sub)]
"""


def start_haproxy(work, cpu, alg=None):
    name = f"haproxy-{alg.lower()}" if alg else "haproxy"
    rules = haproxy_jwt_rules(work, alg) if alg else ""
    conf = work / f"{name}.cfg"
    # HAProxy needs two descriptors per connection it may hold, and refuses to start without them.
    maxconn = min(30000, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200) // 2)
    conf.write_text(f"""global
  nbthread 1
  maxconn {maxconn}
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  option http-keep-alive
  http-reuse always
frontend fe
  bind {HOST}:{PROXY_PORT}
{rules}  default_backend app
backend app
  server app {HOST}:{UPSTREAM_PORT}
""")
    return Proc(name, pinned(["haproxy", "-db", "-f", str(conf)], cpu), work)


def jwtgate_conf(work, max_connections=20000, front=None, algs=ALGS, admin_port=ADMIN_PORT, name="jwtgate"):
    """`front`: the YAML lines saying where requests come in and go to; by default the proxy on
    PROXY_PORT in front of the upstream."""
    path = work / f"{name}.yaml"
    front = front or f"listen: {HOST}:{PROXY_PORT}\nupstream: http://{HOST}:{UPSTREAM_PORT}\n"
    keys = {"RS256": f"jwks: {{file: {work / 'jwks.json'}}}", "ES256": f"jwks: {{file: {work / 'jwks.json'}}}",
            "HS256": f"hmac_secret_file: {work / 'hs256.secret'}\n    hmac_secret_kid: bench-hs256"}
    providers = "".join(f"""  - name: {alg[:2].lower()}
    issuer: {issuer(alg)}
    audiences: [{AUDIENCE}]
    algorithms: [{alg}]
    {keys[alg]}
    claims_to_headers: {{sub: X-Jwt-Sub}}
""" for alg in algs)
    path.write_text(f"""{front}admin_listen: {HOST}:{admin_port}
workers: 1
providers:
{providers}routes:
  - prefix: /public
    auth: none
  - prefix: /
    auth: required
limits: {{max_connections: {max_connections}, idle_timeout: 5m}}
log: {{level: warn, access_log: false}}
""")
    return path


def start_jwtgate(work, cpu, binary):
    conf = jwtgate_conf(work)
    return Proc("jwtgate", pinned([str(binary), "--config", str(conf)], cpu), work)


def wait_jwtgate_ready(proc, timeout=10.0, admin_port=ADMIN_PORT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise SystemExit(f"jwtgate exited; see {proc.log_path}")
        try:
            if http_get(admin_port, "/readyz", timeout=0.5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.002)
    raise SystemExit(f"jwtgate not ready; see {proc.log_path}")


# ---------------------------------------------------------------- scenarios

@dataclass
class Scenario:
    name: str
    server: str          # direct | nginx | haproxy | jwtgate
    alg: str = None      # haproxy: the jwt_verify algorithm; jwtgate: the tokens' algorithm
    tokens: str = "repeated"
    path: str = "/api/items"
    peer: str = None     # the scenario this one is compared with
    results: list = field(default_factory=list)

    def token_file(self, work):
        return work / f"tokens-{(self.alg or 'RS256').lower()}-{self.tokens}.txt"

    def start(self, work, args):
        if self.server == "direct":
            return None
        if self.server == "nginx":
            p = start_nginx_proxy(work, args.proxy_cpu)
        elif self.server == "haproxy":
            p = start_haproxy(work, args.proxy_cpu, self.alg)
        else:
            p = start_jwtgate(work, args.proxy_cpu, args.jwtgate)
            wait_jwtgate_ready(p)
        wait_port(PROXY_PORT, p)
        return p

    def port(self):
        return UPSTREAM_PORT if self.server == "direct" else PROXY_PORT


def scenarios(selected):
    out = [
        Scenario("direct", "direct"),
        Scenario("nginx proxy", "nginx"),
        Scenario("haproxy proxy", "haproxy", peer="nginx proxy"),
        Scenario("jwtgate public route", "jwtgate", path="/public/items", peer="nginx proxy"),
    ]
    for alg in ALGS:
        out.append(Scenario(f"haproxy jwt_verify {alg}", "haproxy", alg=alg, tokens="unique"))
        out.append(Scenario(f"jwtgate {alg} repeated", "jwtgate", alg=alg, peer="nginx proxy"))
        out.append(Scenario(f"jwtgate {alg} unique", "jwtgate", alg=alg, tokens="unique",
                            peer=f"haproxy jwt_verify {alg}"))
    if selected:
        want = [s.strip() for s in selected.split(",")]
        out = [s for s in out if any(w in s.name for w in want)]
    return out


def run_wrk(args, port, path, token_file, seconds, conns, start_index=0):
    cmd = pinned(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", "-s",
                  str(ROOT / "bench" / "wrk_tokens.lua"), f"http://{HOST}:{port}{path}", "--",
                  str(token_file), str(start_index)], args.load_cpu)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"WRK_RESULT (\{.*\})", out.stdout)
    if out.returncode != 0 or not m:
        raise SystemExit(f"wrk failed: {out.stdout}\n{out.stderr}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def metric(text, name):
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def sanity_check(s, work):
    """Before measuring: a proxy with auth must pass a good token (and inject its subject) and
    refuse a forged one and a missing one; otherwise its figures mean nothing."""
    good = s.token_file(work).read_text().split("\n", 1)[0]
    status, headers, _ = http_get(s.port(), s.path, {"Authorization": f"Bearer {good}"})
    if status != 200:
        raise SystemExit(f"{s.name}: a valid token got {status}")
    if s.alg is None:
        return
    sub = json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "==="))["sub"]
    if headers.get("X-Seen-Sub") != sub:
        raise SystemExit(f"{s.name}: the upstream saw X-Jwt-Sub {headers.get('X-Seen-Sub')!r}, not {sub!r}")
    head, payload, sig = good.split(".")
    forged = f"{head}.{payload}.{sig[:10]}{'A' if sig[10] != 'A' else 'B'}{sig[11:]}"
    for what, hdrs in (("a forged token", {"Authorization": f"Bearer {forged}"}), ("no token", {})):
        status = http_get(s.port(), s.path, hdrs)[0]
        if status not in (401, 403):
            raise SystemExit(f"{s.name}: {what} got {status}, not 401/403")


def measure(s, work, args, conns=None):
    conns = conns or args.connections
    proc = s.start(work, args)
    try:
        sanity_check(s, work)
        tokens = s.token_file(work)
        # Warm-up: upstream connections, allocator, and (repeated tokens) the verified-token
        # cache. Unique-token runs start the measured pass half a file away from the warm-up.
        run_wrk(args, s.port(), s.path, tokens, 1, conns, start_index=0)
        pids = proc.pids() if proc else []
        cpu0 = cpu_seconds(pids)
        r = run_wrk(args, s.port(), s.path, tokens, args.seconds, conns,
                    start_index=args.unique // 2 if s.tokens == "unique" else 0)
        r["cpu_us"] = (cpu_seconds(pids) - cpu0) * 1e6 / max(1, r["requests"]) if proc else None
        r["rss_kib"] = status_kib(pids, "VmHWM") if proc else None
        if s.server == "jwtgate" and s.alg:
            text = urllib.request.urlopen(f"http://{HOST}:{ADMIN_PORT}/metrics", timeout=5).read().decode()
            hits = metric(text, "jwtgate_token_cache_hits_total")
            misses = metric(text, "jwtgate_token_cache_misses_total")
            r["hit_ratio"] = hits / max(1.0, hits + misses)
        if r["status_errors"] or r["socket_errors"]:
            raise SystemExit(f"{s.name}: {r['status_errors']} bad statuses, {r['socket_errors']} socket errors")
        return r
    finally:
        if proc:
            proc.stop()


# ---------------------------------------------------------------- memory and scaling

def open_idle_connections(port, path, count, token):
    """Opens `count` keep-alive connections, sends one request on each, reads the response, and
    returns the open sockets (the caller closes them)."""
    request = (f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    socks = []
    batch = 500
    for start in range(0, count, batch):
        sel = selectors.DefaultSelector()
        pending = {}
        for _ in range(min(batch, count - start)):
            s = socket.create_connection((HOST, port), 10)
            s.sendall(request)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            pending[s] = b""
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(1):
                s = key.fileobj
                data = s.recv(4096)
                if not data:
                    raise SystemExit("a connection closed before its response")
                pending[s] += data
                if b"\r\n\r\nok\n" in pending[s]:
                    if not pending[s].startswith(b"HTTP/1.1 200"):
                        raise SystemExit(f"idle-connection setup got {pending[s][:40]!r}")
                    sel.unregister(s)
                    del pending[s]
                    socks.append(s)
        sel.close()
        if pending:
            raise SystemExit("responses did not arrive in time")
    return socks


def memory_and_scaling(work, args, report):
    token = (work / "tokens-rs256-repeated.txt").read_text().split("\n", 1)[0]

    # Start to ready: from exec to /readyz answering 200, with a file JWKS and an HMAC secret.
    starts = []
    for _ in range(args.starts):
        t0 = time.monotonic()
        p = start_jwtgate(work, args.proxy_cpu, args.jwtgate)
        try:
            wait_jwtgate_ready(p)
            starts.append((time.monotonic() - t0) * 1000)
        finally:
            p.stop()
    report["start_to_ready_ms"] = statistics.median(starts)

    # Idle RSS and 10,000 idle keep-alive connections, for jwtgate and its peers.
    idle = {}
    for name, starter in (("jwtgate", lambda: start_jwtgate(work, args.proxy_cpu, args.jwtgate)),
                          ("nginx proxy", lambda: start_nginx_proxy(work, args.proxy_cpu)),
                          ("haproxy proxy", lambda: start_haproxy(work, args.proxy_cpu))):
        if name.startswith("haproxy") and (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200) // 2 < args.idle_connections + 10:
            log("HAProxy cannot hold that many connections under this open-files limit; left out of the idle test")
            continue
        p = starter()
        try:
            if name == "jwtgate":
                wait_jwtgate_ready(p)
            wait_port(PROXY_PORT, p)
            time.sleep(0.3)
            rss_idle = status_kib(p.pids(), "VmRSS")
            socks = open_idle_connections(PROXY_PORT, "/api/items", args.idle_connections, token)
            time.sleep(0.5)
            rss_conns = status_kib(p.pids(), "VmRSS")
            for s in socks:
                s.close()
            idle[name] = {"idle_kib": rss_idle, "conns_kib": rss_conns}
        finally:
            p.stop()
    report["idle"] = idle

    # Connection scaling: the same load over 10 and over 1,000 connections, interleaved.
    scaling = {label: {10: [], 1000: []} for label in ("jwtgate public route", "jwtgate RS256 repeated", "nginx proxy")}
    for _ in range(args.rounds):
        for label, per in scaling.items():
            s = Scenario(label, "nginx" if label.startswith("nginx") else "jwtgate",
                         alg="RS256" if "RS256" in label else None,
                         path="/public/items" if "public" in label else "/api/items")
            for conns in (10, 1000):
                per[conns].append(measure(s, work, args, conns)["rps"])
    report["scaling"] = {k: {c: statistics.median(v) for c, v in per.items()} for k, per in scaling.items()}


# ---------------------------------------------------------------- report

def machine():
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    debian = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?"

    def version(cmd, pattern):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True).stdout + \
                subprocess.run(cmd, capture_output=True, text=True).stderr
            m = re.search(pattern, out)
            return m.group(1) if m else "?"
        except OSError:
            return "?"
    return {
        "cpu": cpu, "cores": os.cpu_count(), "debian": debian, "kernel": platform.release(),
        "nginx": version(["nginx", "-v"], r"nginx/(\S+)"),
        "haproxy": version(["haproxy", "-v"], r"version (\S+)"),
        "openssl": version(["openssl", "version"], r"OpenSSL (\S+)"),
        "wrk": version(["wrk", "-v"], r"wrk (\S+)"),
    }


def fmt_ratio(x, target=None, higher_is_better=True):
    if x is None:
        return ""
    mark = ""
    if target is not None:
        ok = x >= target if higher_is_better else x <= target
        mark = " ✓" if ok else " ✗"
    return f"{x:.2f}×{mark}"


def render(report, sc, args):
    by = {s.name: s for s in sc}
    med = {}
    for s in sc:
        rs = s.results
        med[s.name] = {
            "rps": statistics.median(r["rps"] for r in rs),
            "p50_ms": statistics.median(r["p50_us"] for r in rs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in rs) / 1000,
            "cpu_us": statistics.median(r["cpu_us"] for r in rs) if rs[0]["cpu_us"] is not None else None,
            "rss_mib": max(r["rss_kib"] for r in rs) / 1024 if rs[0]["rss_kib"] is not None else None,
            "hit_ratio": statistics.median(r["hit_ratio"] for r in rs) if "hit_ratio" in rs[0] else None,
        }
    targets = {"jwtgate public route": 0.95, "jwtgate RS256 repeated": 0.9, "jwtgate ES256 repeated": 0.9,
               "jwtgate HS256 repeated": 0.9, "jwtgate RS256 unique": 1.5, "jwtgate ES256 unique": 1.25,
               "jwtgate HS256 unique": 1.5}
    report["scenarios"] = med
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Debian {m['debian']}, kernel {m['kernel']}; "
        f"nginx {m['nginx']}, HAProxy {m['haproxy']}, OpenSSL {m['openssl']}, wrk {m['wrk']}.",
        f"Load: `wrk -t1 -c{args.connections}`, {args.rounds} interleaved rounds of {args.seconds} s "
        f"(medians); proxy pinned to CPU {args.proxy_cpu}, wrk and upstream to CPU {args.load_cpu}; "
        f"unique-token sets hold {args.unique} tokens per algorithm.",
        "",
        "| scenario | req/s | vs peer (target) | p50 ms | p99 ms | proxy CPU µs/req | vs peer | peak RSS MiB | cache hits |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sc:
        x = med[s.name]
        peer = med.get(s.peer) if s.peer else None
        rps_ratio = x["rps"] / peer["rps"] if peer else None
        cpu_ratio = x["cpu_us"] / peer["cpu_us"] if peer and x["cpu_us"] and peer["cpu_us"] else None
        target = targets.get(s.name)
        vs = f"{fmt_ratio(rps_ratio, target)} of {s.peer}" + (f" (≥ {target}×)" if target else "") if peer else ""
        cpu_vs = fmt_ratio(cpu_ratio, 1.05 if s.name == "jwtgate public route" else None, False)
        lines.append("| {} | {:,.0f} | {} | {:.2f} | {:.2f} | {} | {} | {} | {} |".format(
            s.name, x["rps"], vs, x["p50_ms"], x["p99_ms"],
            f"{x['cpu_us']:.1f}" if x["cpu_us"] is not None else "—", cpu_vs,
            f"{x['rss_mib']:.1f}" if x["rss_mib"] is not None else "—",
            f"{x['hit_ratio'] * 100:.0f}%" if x["hit_ratio"] is not None else ""))
    # Peak RSS against HAProxy's under the same kind of load.
    rss_lines = []
    for alg in ALGS:
        h = med.get(f"haproxy jwt_verify {alg}")
        for kind in ("unique", "repeated"):
            j = med.get(f"jwtgate {alg} {kind}")
            if h and j and h["rss_mib"] and j["rss_mib"]:
                rss_lines.append(f"{alg} {kind}: jwtgate {j['rss_mib']:.1f} MiB vs HAProxy jwt_verify "
                                 f"{h['rss_mib']:.1f} MiB ({fmt_ratio(j['rss_mib'] / h['rss_mib'], 1.0, False)})")
    if rss_lines:
        lines += ["", "Peak RSS under load (target ≤ HAProxy's): " + "; ".join(rss_lines) + "."]
    if "idle" in report:
        lines += ["", f"| process | idle RSS MiB | with {args.idle_connections} idle keep-alive connections MiB |",
                  "|---|---:|---:|"]
        for name, v in report["idle"].items():
            lines.append(f"| {name} | {v['idle_kib'] / 1024:.1f} | {v['conns_kib'] / 1024:.1f} |")
        j = report["idle"]["jwtgate"]
        lines += ["", f"Targets: jwtgate idle ≤ 8 MiB ({'✓' if j['idle_kib'] <= 8192 else '✗'}); "
                      f"{args.idle_connections} idle connections ≤ 64 MiB in total "
                      f"({'✓' if j['conns_kib'] <= 65536 else '✗'})."]
        lines += ["", f"Start to ready with a file JWKS (exec → `/readyz` 200, median of {args.starts}): "
                      f"{report['start_to_ready_ms']:.1f} ms (target ≤ 50 ms "
                      f"{'✓' if report['start_to_ready_ms'] <= 50 else '✗'})."]
        lines += ["", "| 10 → 1,000 connections | req/s at 10 | req/s at 1,000 | ratio (target ≥ 0.85×) |",
                  "|---|---:|---:|---|"]
        for name, v in report["scaling"].items():
            ratio = v[1000] / v[10]
            target = 0.85 if name.startswith("jwtgate") else None
            lines.append(f"| {name} | {v[10]:,.0f} | {v[1000]:,.0f} | {fmt_ratio(ratio, target)} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jwtgate", type=Path, default=ROOT / "build-bench" / "jwtgate")
    ap.add_argument("--work", type=Path, default=Path("/tmp/jwtgate-bench"))
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "latest.md")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--unique", type=int, default=200_000)
    ap.add_argument("--idle-connections", type=int, default=10_000)
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--only", help="comma-separated substrings of scenario names (default: all)")
    ap.add_argument("--skip-memory", action="store_true", help="skip idle RSS, idle connections, scaling, start time")
    args = ap.parse_args()
    if args.unique < 2 * REPEATED_TOKENS:
        ap.error("--unique is too small")

    cores = os.cpu_count() or 1
    args.proxy_cpu, args.load_cpu = (0, 1) if cores >= 2 else (None, None)
    if cores < 2:
        log("one core only: nothing is pinned, figures are not comparable with the README")
    for tool in ("wrk", "nginx", "haproxy", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing; run bench/run.sh, which installs it")
    if not args.jwtgate.exists():
        raise SystemExit(f"{args.jwtgate} is missing; run bench/run.sh, which builds it")
    # Every server inherits this: each idle client connection costs the client one descriptor
    # and a proxy two at most (HAProxy reserves two per maxconn).
    want = max(65536, args.idle_connections * 3 + 1000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        log(f"open files are limited to {hard}; the idle-connection test may fail")

    args.work.mkdir(parents=True, exist_ok=True)
    make_material(args.work, args.unique)

    report = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    upstream = start_upstream(args.work, args.load_cpu)
    try:
        sc = scenarios(args.only)
        for rnd in range(args.rounds):
            for s in sc:
                r = measure(s, args.work, args, None)
                s.results.append(r)
                log(f"round {rnd + 1}/{args.rounds} {s.name}: {r['rps']:,.0f} req/s, p99 {r['p99_us'] / 1000:.2f} ms"
                    + (f", {r['cpu_us']:.1f} µs CPU/req, peak {r['rss_kib'] / 1024:.1f} MiB" if r["cpu_us"] else ""))
        if not args.skip_memory:
            memory_and_scaling(args.work, args, report)
    finally:
        upstream.stop()

    table = render(report, sc, args)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    argv = sys.argv[1:]
    if argv[:2] == ["--jwtgate", "build-bench/jwtgate"]:
        argv = argv[2:]  # added by run.sh itself
    command = "bash bench/run.sh " + " ".join(argv)
    args.results.write_text(f"# jwtgate proxy benchmark\n\nCommand: `{command.strip()}`\n\n{table}")
    args.results.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    print(table)
    log(f"wrote {args.results}")


if __name__ == "__main__":
    main()
