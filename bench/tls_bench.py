#!/usr/bin/python3
"""TLS on the proxy listener: jwtgate against nginx with the same certificate, in the same run.

Rows (each measured on both servers, one after the other, every round; the ratio of a row is the
median over rounds of jwtgate / nginx within the round, so the shared machine's drift cancels):

  new ECDSA / RSA, TLS 1.3 and 1.2   a full handshake per connection (no session offered; a run
                                     where any connection resumed fails)
  resumed ECDSA, TLS 1.3 and 1.2     every connection offers the ticket the previous one got; a
                                     run where not all (but each client's first) resumed fails
  keep-alive ECDSA / RSA, TLS 1.3    `wrk -t1 -c50` over HTTPS, the same bearer tokens cycled from
                                     the repeated set, so jwtgate's verified-token cache hits

The handshake clients are Python `ssl` processes (OpenSSL underneath), each connecting,
handshaking, sending `GET /public/hs` with `Connection: close` and reading the answer to the end,
one connection after another; `ssl.SSLSocket.session_reused` says whether a connection resumed.
`openssl s_time` was tried first: under TLS 1.3 its `-reuse` resumed none of its connections
against nginx, and it managed about 60 connections a second while using a tenth of its core. Both servers proxy the
request to the same upstream (jwtgate's /public route is `auth: none`); reading the answer is
also what lets a TLS 1.3 client receive the ticket it resumes with. nginx does no JWT check in
any row: it is the cost floor of TLS termination plus proxying.

Layout (2 cores): the server under test pinned to CPU 0 (one worker each: nginx
`worker_processes 1`, jwtgate `workers: 1`), the clients and the upstream (the one-worker nginx of
proxy_bench answering 200 "ok") to CPU 1. The client may saturate its core before the server
does on the handshake rows, so the table also gives the server's CPU time per handshake or
request, which does not depend on who is the bottleneck.

Run it through `bash bench/run.sh tls`, or directly with a built jwtgate (see bench/README.md).
Certificates (a test CA and a leaf for 127.0.0.1/localhost, ECDSA P-256 and RSA-2048) are made
at run time with Python's `cryptography`; tokens come from proxy_bench.py. Every server binds
to 127.0.0.1 and is stopped when its run ends, also on error or Ctrl-C.
"""

import argparse
import datetime
import ipaddress
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import proxy_bench as pb

HOST = pb.HOST
# Not the other benchmarks' ports.
UPSTREAM_PORT = 18380
SERVER_PORT = 18381
ADMIN_PORT = 18382
ALG = "ES256"
HS_PATH = "/public/hs"
KA_PATH = "/api/items"
MAX_ROUNDS = 50
MAX_SECONDS = 60
# What jwtgate offers for TLS 1.2 (tls_server_context.h), given to nginx too.
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                 "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")


def log(msg):
    print(f"[tls-bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- certificates

def make_certs(work):
    """A CA and a leaf for 127.0.0.1 and localhost, per key type; the leaf file holds the leaf
    then the CA, as a deployment would serve it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    out = {}
    for kind in ("ecdsa", "rsa"):
        def key():
            return ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa" else \
                rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_key, leaf_key = key(), key()
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"jwtgate bench CA {kind}")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .sign(ca_key, hashes.SHA256()))
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        cert_file, key_file, ca_file = work / f"{kind}.crt", work / f"{kind}.key", work / f"{kind}-ca.crt"
        cert_file.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
        key_file.write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        os.chmod(key_file, 0o600)
        ca_file.write_bytes(ca.public_bytes(pem))
        out[kind] = (cert_file, key_file, ca_file)
    return out


# ---------------------------------------------------------------- servers

def start_nginx(work, args, cert):
    cert_file, key_file, _ = cert
    conf = pb.nginx_conf(work, "nginx-tls", SERVER_PORT, f"""  upstream app {{
    server {HOST}:{UPSTREAM_PORT};
    keepalive 1024;
    keepalive_requests 100000000;
  }}
  server {{
    listen {HOST}:{SERVER_PORT} ssl backlog=4096;
    ssl_certificate {cert_file};
    ssl_certificate_key {key_file};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers {TLS12_CIPHERS};
    ssl_prefer_server_ciphers on;
    ssl_session_tickets on;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}""")
    p = pb.Proc("nginx-tls", pb.pinned([str(args.nginx), "-c", str(conf)], args.proxy_cpu), work)
    pb.wait_port(SERVER_PORT, p)
    return p


def start_jwtgate(work, args, cert):
    cert_file, key_file, _ = cert
    front = (f"listen: {HOST}:{SERVER_PORT}\n"
             f"tls:\n  cert_file: {cert_file}\n  key_file: {key_file}\n  min_version: \"1.2\"\n"
             f"  session_tickets: true\n"
             f"upstream: http://{HOST}:{UPSTREAM_PORT}\n")
    conf = pb.jwtgate_conf(work, front=front, algs=[ALG], admin_port=ADMIN_PORT, name="jwtgate-tls")
    p = pb.Proc("jwtgate-tls", pb.pinned([str(args.jwtgate), "--config", str(conf)], args.proxy_cpu), work)
    try:
        pb.wait_jwtgate_ready(p, admin_port=ADMIN_PORT)
        pb.wait_port(SERVER_PORT, p)
    except BaseException:
        p.stop()
        raise
    return p


# ---------------------------------------------------------------- clients

def https_get(path, ca_file, headers):
    """One request with certificate verification against the test CA: proves the server serves
    the certificate made for it, for the hostname, and answers."""
    import ssl
    ctx = ssl.create_default_context(cafile=str(ca_file))
    req = urllib.request.Request(f"https://localhost:{SERVER_PORT}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def sanity_check(server, work, cert):
    tokens = work / f"tokens-{ALG.lower()}-repeated.txt"
    good = tokens.read_text().split("\n", 1)[0]
    status, _, body = https_get(HS_PATH, cert[2], {})
    if status != 200 or body != b"ok\n":
        raise SystemExit(f"{server}: GET {HS_PATH} over TLS got {status} {body[:40]!r}")
    status, _, _ = https_get(KA_PATH, cert[2], {"Authorization": f"Bearer {good}"})
    if status != 200:
        raise SystemExit(f"{server}: a valid token over TLS got {status}")
    if server == "jwtgate":
        # The keep-alive row is about cached tokens on a gateway that does check them.
        status, _, _ = https_get(KA_PATH, cert[2], {})
        if status not in (401, 403):
            raise SystemExit(f"jwtgate: no token over TLS got {status}, not 401/403")


HS_REQUEST = f"GET {HS_PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()


def _handshake_loop(job):
    """One client process: connections one after another for `seconds`, each a handshake, one
    request, its answer read to the end (the server closes). `reuse`: every connection offers
    the session (ticket) the previous one received."""
    import socket
    import ssl
    import time
    mode, version, seconds, cpu = job
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # verified once in sanity_check; here only the server's cost counts
    v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ctx.maximum_version = v
    ctx.set_alpn_protocols(["http/1.1"])
    session, done, resumed, bad = None, 0, 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        raw = socket.create_connection((HOST, SERVER_PORT), 5)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session if mode == "reuse" else None) as s:
            s.sendall(HS_REQUEST)
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                bad += 1
            if s.session_reused:
                resumed += 1
            if mode == "reuse":
                session = s.session
        done += 1
    return done, resumed, bad


def run_handshakes(args, mode, version, seconds):
    """args.clients processes of _handshake_loop: connections per second, how many resumed."""
    import multiprocessing
    import time
    t0 = time.monotonic()
    with multiprocessing.Pool(args.clients) as pool:
        parts = pool.map(_handshake_loop, [(mode, version, seconds, args.load_cpu)] * args.clients, chunksize=1)
    elapsed = time.monotonic() - t0
    conns = sum(p[0] for p in parts)
    return {"connections": conns, "seconds": elapsed, "resumed": sum(p[1] for p in parts),
            "bad": sum(p[2] for p in parts)}


def jwtgate_tls_counts():
    text = urllib.request.urlopen(f"http://{HOST}:{ADMIN_PORT}/metrics", timeout=5).read().decode()
    hits = pb.metric(text, "jwtgate_token_cache_hits_total")
    misses = pb.metric(text, "jwtgate_token_cache_misses_total")
    return hits, misses


# ---------------------------------------------------------------- rows

@dataclass
class Row:
    key: str
    cert: str          # ecdsa | rsa
    kind: str          # new | reuse | keepalive
    version: str       # 1.3 | 1.2 (keep-alive: what wrk negotiates, 1.3)
    results: dict = field(default_factory=lambda: {"nginx": [], "jwtgate": []})

    @property
    def unit(self):
        return "req/s" if self.kind == "keepalive" else "handshakes/s"


def rows(only):
    out = []
    for cert in ("ecdsa", "rsa"):
        for version in ("1.3", "1.2"):
            out.append(Row(f"new {cert} TLS {version}", cert, "new", version))
    for version in ("1.3", "1.2"):
        out.append(Row(f"resumed ecdsa TLS {version}", "ecdsa", "reuse", version))
    for cert in ("ecdsa", "rsa"):
        out.append(Row(f"keep-alive {cert} TLS 1.3", cert, "keepalive", "1.3"))
    if only:
        want = [w.strip() for w in only.split(",")]
        out = [r for r in out if any(w in r.key for w in want)]
    return out


def measure(row, server, work, args, certs):
    cert = certs[row.cert]
    proc = start_jwtgate(work, args, cert) if server == "jwtgate" else start_nginx(work, args, cert)
    try:
        sanity_check(server, work, cert)
        pids = proc.pids()
        if row.kind == "keepalive":
            tokens = work / f"tokens-{ALG.lower()}-repeated.txt"
            url_port = SERVER_PORT
            # Warm-up: keep-alive connections to the upstream, and the verified-token cache.
            run_wrk_https(args, url_port, tokens, 1)
            h0 = jwtgate_tls_counts() if server == "jwtgate" else None
            cpu0 = pb.cpu_seconds(pids)
            r = run_wrk_https(args, url_port, tokens, args.seconds)
            n = max(1, r["requests"])
            r["rate"] = r["rps"]
            r["cpu_us"] = (pb.cpu_seconds(pids) - cpu0) * 1e6 / n
            if r["status_errors"] or r["socket_errors"]:
                raise SystemExit(f"{row.key} {server}: {r['status_errors']} bad statuses, {r['socket_errors']} socket errors")
            if h0:
                hits, misses = jwtgate_tls_counts()
                r["hit_ratio"] = (hits - h0[0]) / max(1.0, (hits - h0[0]) + (misses - h0[1]))
                if r["hit_ratio"] < 0.99:
                    raise SystemExit(f"{row.key}: the token cache hit only {r['hit_ratio']:.0%}")
            return r
        run_handshakes(args, row.kind, row.version, 1)  # warm-up
        cpu0 = pb.cpu_seconds(pids)
        r = run_handshakes(args, row.kind, row.version, args.seconds)
        n = max(1, r["connections"])
        r["rate"] = r["connections"] / r["seconds"]
        if r["bad"]:
            raise SystemExit(f"{row.key} {server}: {r['bad']} of {n} connections did not get 200")
        r["cpu_us"] = (pb.cpu_seconds(pids) - cpu0) * 1e6 / n
        # A new-handshake row must not resume, a resumption row must (all but its first).
        if row.kind == "new" and r["resumed"]:
            raise SystemExit(f"{row.key} {server}: {r['resumed']} of {n} connections resumed")
        if row.kind == "reuse" and r["resumed"] < n - args.clients:
            raise SystemExit(f"{row.key} {server}: only {r['resumed']} of {n} connections resumed")
        return r
    finally:
        proc.stop()


def run_wrk_https(args, port, token_file, seconds):
    cmd = pb.pinned(["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "5s", "-s",
                     str(pb.ROOT / "bench" / "wrk_tokens.lua"), f"https://{HOST}:{port}{KA_PATH}", "--",
                     str(token_file), "0"], args.load_cpu)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"WRK_RESULT (\{.*\})", out.stdout)
    if out.returncode != 0 or not m:
        raise SystemExit(f"wrk failed: {out.stdout}\n{out.stderr}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


# ---------------------------------------------------------------- report

def fmt(x):
    return f"{x:,.0f}"


def render(report, rs, args):
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Debian {m['debian']}, kernel {m['kernel']}; "
        f"nginx {m['nginx']}, OpenSSL {m['openssl']}, wrk {m['wrk']}.",
        f"{args.rounds} rounds of {args.seconds} s, nginx and jwtgate alternating within each row of each round; "
        f"server (one worker each) pinned to CPU {args.proxy_cpu}, clients and upstream to CPU {args.load_cpu}. "
        f"Handshake rows: {args.clients} Python `ssl` client processes, each connecting, handshaking, sending "
        f"`GET {HS_PATH}` (`Connection: close`) and reading the answer, one connection after another "
        f"(new: no session offered, none resumed; resumed: the previous connection's ticket offered, all resumed); "
        f"keep-alive rows: `wrk -t1 -c{args.connections}` over HTTPS with {ALG} bearer tokens "
        f"(jwtgate: verified-token cache hits; nginx checks no token: it is the cost floor).",
        "",
        "| row | TLS | unit | nginx (median) | jwtgate (median) | jwtgate / nginx: median of per-round ratios "
        "(goal ≥ 1.0×) | per round | server CPU µs per handshake/request nginx · jwtgate | CPU ratio |",
        "|---|---|---|---:|---:|---|---|---|---:|",
    ]
    report["rows"] = {}
    for row in rs:
        n, j = row.results["nginx"], row.results["jwtgate"]
        ratios = [b["rate"] / a["rate"] for a, b in zip(n, j)]
        cpu_ratios = [b["cpu_us"] / a["cpu_us"] for a, b in zip(n, j)]
        med = statistics.median(ratios)
        x = report["rows"][row.key] = {
            "unit": row.unit, "tls": row.version,
            "nginx": statistics.median(r["rate"] for r in n), "jwtgate": statistics.median(r["rate"] for r in j),
            "ratio_median": med, "ratio_per_round": ratios,
            "nginx_cpu_us": statistics.median(r["cpu_us"] for r in n),
            "jwtgate_cpu_us": statistics.median(r["cpu_us"] for r in j),
            "cpu_ratio_median": statistics.median(cpu_ratios),
            "runs": {"nginx": n, "jwtgate": j},
        }
        lines.append(f"| {row.key} | {row.version} | {row.unit} | {fmt(x['nginx'])} | {fmt(x['jwtgate'])} | "
                     f"{med:.2f}× {'✓' if med >= 1.0 else '✗'} | {' · '.join(f'{v:.2f}' for v in ratios)} | "
                     f"{x['nginx_cpu_us']:.0f} · {x['jwtgate_cpu_us']:.0f} | {x['cpu_ratio_median']:.2f}× |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jwtgate", type=Path, default=pb.ROOT / "build-release" / "jwtgate")
    ap.add_argument("--nginx", type=Path, default=Path(pb.default_nginx()))
    ap.add_argument("--work", type=Path, default=Path("/tmp/jwtgate-tls-bench"))
    ap.add_argument("--results", type=Path, default=pb.ROOT / "bench" / "results" / "tls.md")
    ap.add_argument("--rounds", type=int, default=3, help=f"rounds (1..{MAX_ROUNDS}; default 3)")
    ap.add_argument("--seconds", type=int, default=4, help=f"measured seconds per run (1..{MAX_SECONDS}; default 4)")
    ap.add_argument("--connections", type=int, default=50, help="wrk connections in the keep-alive rows")
    ap.add_argument("--clients", type=int, default=4, help="handshake client processes (default 4)")
    ap.add_argument("--only", help="comma-separated substrings of row names (default: all)")
    args = ap.parse_args()
    if not 1 <= args.rounds <= MAX_ROUNDS:
        ap.error(f"--rounds must be 1..{MAX_ROUNDS}")
    if not 1 <= args.seconds <= MAX_SECONDS:
        ap.error(f"--seconds must be 1..{MAX_SECONDS}")
    if not 1 <= args.connections <= 10_000:
        ap.error("--connections must be 1..10000")
    cores = os.cpu_count() or 1
    args.proxy_cpu, args.load_cpu = (0, 1) if cores >= 2 else (None, None)
    for tool in ("wrk", "taskset", "openssl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing; run bench/run.sh, which installs it")
    if not os.access(args.nginx, os.X_OK):
        raise SystemExit(f"{args.nginx} is missing; run bench/run.sh or scripts/install-deps.sh")
    built = subprocess.run([str(args.nginx), "-V"], capture_output=True, text=True, timeout=10).stderr
    if "--with-http_ssl_module" not in built:
        raise SystemExit(f"{args.nginx} has no ssl module")
    if not args.jwtgate.exists():
        raise SystemExit(f"{args.jwtgate} is missing; build it (see bench/README.md)")
    # nginx creates every module's temporary directory at start, at its compiled-in path unless
    # told otherwise; an nginx unpacked from its .deb (.deps/nginx) has no /var/lib/nginx.
    pb.NGINX_EXTRA_HTTP = "".join(f"  {mod}_temp_path {{tmp}};\n" for mod in ("fastcgi", "uwsgi", "scgi")
                                  if f"--without-http_{mod}_module" not in built)

    args.work.mkdir(parents=True, exist_ok=True)
    pb.make_material(args.work, 2 * pb.REPEATED_TOKENS, algs=[ALG])
    certs = make_certs(args.work)
    rs = rows(args.only)
    if not rs:
        ap.error("--only selects nothing")

    report = {"machine": pb.machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    report["machine"]["nginx"] = (m.group(1) if (m := re.search(r"nginx/(\S+)", built)) else "?")
    upstream = pb.start_upstream(args.work, args.load_cpu, port=UPSTREAM_PORT, nginx=args.nginx)
    try:
        for rnd in range(args.rounds):
            for row in rs:
                # Alternate who goes first, so neither always runs right after the other.
                order = ("nginx", "jwtgate") if rnd % 2 == 0 else ("jwtgate", "nginx")
                for server in order:
                    r = measure(row, server, args.work, args, certs)
                    row.results[server].append(r)
                    log(f"round {rnd + 1}/{args.rounds} {row.key} {server}: {r['rate']:,.0f} {row.unit}, "
                        f"{r['cpu_us']:.1f} µs server CPU each"
                        + (f", {r['resumed']} resumed of {r['connections']}" if "resumed" in r else ""))
    finally:
        upstream.stop()

    table = render(report, rs, args)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    argv = sys.argv[1:]
    if argv[:2] == ["--jwtgate", "build-release/jwtgate"]:
        command = "bash bench/run.sh tls " + " ".join(argv[2:])  # run.sh adds --jwtgate itself
    else:
        command = "/usr/bin/python3 bench/tls_bench.py " + " ".join(argv)
    args.results.write_text(f"# jwtgate TLS benchmark against nginx\n\nCommand: `{command.strip()}`\n\n{table}")
    args.results.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    print(table)
    log(f"wrote {args.results}")


if __name__ == "__main__":
    main()
