#!/usr/bin/python3
"""HTTP/2 and gRPC through jwtgate against nginx, in the same run (issue 17).

Rows (the ratio of a row is the median over rounds of jwtgate / peer within the round, so the
shared machine's drift cancels; every run of every round is checked, a run with one failed
response is an error, not a number):

  1 h2c -> HTTP/1.1 upstream   jwtgate `upstream: http://` against nginx `listen ... http2` +
                               `proxy_pass` with a keep-alive upstream block
  2 h2c -> h2c upstream        jwtgate `upstream: h2c://` (one multiplexed HTTP/2 connection to the
                               upstream). nginx cannot proxy plain HTTP requests to an HTTP/2
                               upstream (`grpc_pass` is gRPC only), so the peer is row 1's nginx
                               run (h2c -> HTTP/1.1 proxy_pass); the table says so
  3 gRPC unary                 POST /echo.Echo/Unary, `content-type: application/grpc`,
                               `te: trailers`, one small gRPC message; jwtgate `upstream: h2c://`
                               against nginx `grpc_pass grpc://` (keep-alive upstream block)
  4 gRPC unary, direct         row 3's jwtgate run against h2load straight to the same upstream:
                               what the hop through jwtgate costs in gRPC calls per second

The client is `h2load` (nghttp2) speaking h2c by prior knowledge: `-c 16 -m 10` by default, one
thread, `-n` sized from the run's warm-up to last about `--seconds` and capped by
`--max-requests`. Every request carries the same ES256 bearer token (tokens from proxy_bench.py),
so each of jwtgate's checks is a verified-token-cache hit (a run under 99% fails); nginx checks no
token: it is the cost floor of HTTP/2 termination plus proxying.

Upstreams (one-worker nginx each): an HTTP/1.1 server answering `200 ok`, and an h2c server
(`listen ... http2`) answering plain requests with `200 ok` and /echo.Echo/Unary with a real
gRPC answer: `content-type: application/grpc`, one gRPC message (a static 7-byte file; nginx's
`return` cannot send NUL bytes) and the trailer `grpc-status: 0` (`add_trailer`). Both repeat
the X-Jwt-Sub they received as X-Seen-Sub, so the sanity checks see what jwtgate injected.

Checks, per run: before measuring, one request of the row's kind over HTTP/2 (Python `h2`) must
get 200 with the upstream's body (gRPC: the message and `grpc-status: 0` in the trailers, and
with `grpcio`, when installed, a real unary call must return OK with the message); on jwtgate
the subject must reach the upstream, and no token must be refused (401; gRPC: grpc-status 16).
After measuring: h2load's counts (all done and succeeded, none failed, errored or timed out,
every status 2xx), the upstream's request counter (nginx stub_status) grew by exactly the
requests sent, and on jwtgate the metrics agree (upstream 2xx responses, for gRPC
jwtgate_grpc_responses_total{grpc_status="0"}, token cache hits).

Layout (2 cores): the server under test pinned to CPU 0 (nginx `worker_processes 1`, jwtgate
`workers: 1`), h2load and the upstreams to CPU 1. h2load may saturate its core before the server
does, so the table also gives the server's CPU time per request (all threads' on-CPU time from
/proc/PID/task/*/schedstat, or utime+stime from /proc/PID/stat), which does not depend on who is
the bottleneck. In row 4 the direct run has no proxy: the upstream shares CPU 1 with h2load in
both runs, and only the rates compare.

Run it with a built jwtgate:
  nice -n 10 /usr/bin/python3 bench/h2_bench.py --jwtgate build-release/jwtgate
(the script lowers its own priority by --nice, 10 by default, for a shared machine). Every
server binds to 127.0.0.1 on ports picked by the kernel, and is stopped when its run ends, also
on error or Ctrl-C. Results: bench/results/h2.md and h2.json.
"""

import argparse
import base64
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxy_bench as pb  # noqa: E402

HOST = pb.HOST
ALG = "ES256"
PLAIN_PATH = "/api/items"
GRPC_PATH = "/echo.Echo/Unary"
MAX_ROUNDS = 20
MAX_SECONDS = 30
MAX_REQUESTS = 200_000
MAX_CONCURRENT_STREAMS = 100
# A gRPC message: the 5-byte header (not compressed, big-endian length) and a small protobuf
# payload (field 1, a string). The upstream answers with RESPONSE_FRAME.
REQUEST_PAYLOAD = b"\x0a\x0dhello jwtgate"
REQUEST_FRAME = b"\x00" + len(REQUEST_PAYLOAD).to_bytes(4, "big") + REQUEST_PAYLOAD
RESPONSE_PAYLOAD = b"\x0a\x02ok"
RESPONSE_FRAME = b"\x00" + len(RESPONSE_PAYLOAD).to_bytes(4, "big") + RESPONSE_PAYLOAD


def log(msg):
    print(f"[h2-bench] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- process CPU

def cpu_seconds(pids):
    """On-CPU time of every thread of `pids`: schedstat (nanoseconds) where the kernel has it,
    else utime + stime (clock ticks)."""
    total = 0.0
    for p in pids:
        tasks = Path(f"/proc/{p}/task")
        try:
            tids = os.listdir(tasks)
        except OSError:
            continue
        got = False
        ns = 0
        for t in tids:
            try:
                ns += int((tasks / t / "schedstat").read_text().split()[0])
                got = True
            except (OSError, ValueError, IndexError):
                pass
        total += ns / 1e9 if got else pb.cpu_seconds([p])
    return total


# ---------------------------------------------------------------- HTTP/2 client for the checks

def h2_request(port, method, path, headers=(), body=b"", timeout=5.0):
    """One request over h2c with prior knowledge: (status, headers, body, trailers); header
    names lower-case, repeated names joined with ', '."""
    import h2.config
    import h2.connection
    import h2.events

    def as_dict(fields):
        out = {}
        for k, v in fields or []:
            out[k] = f"{out[k]}, {v}" if k in out else v
        return out

    sock = socket.create_connection((HOST, port), timeout)
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "http"), (":authority", f"{HOST}:{port}"), (":path", path),
                  *headers]
        if body:
            fields.append(("content-length", str(len(body))))
        conn.send_headers(sid, fields, end_stream=not body)
        if body:
            conn.send_data(sid, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        head, trailers, data = None, None, b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection before the stream ended")
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    head = ev.headers
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                    trailers = ev.headers
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise RuntimeError(f"stream reset, error code {ev.error_code}")
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    raise RuntimeError(f"GOAWAY, error code {ev.error_code}")
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    if head is None:
                        raise RuntimeError("the stream ended without a response head")
                    hd = as_dict(head)
                    return int(hd[":status"]), hd, data, as_dict(trailers)
            sock.sendall(conn.data_to_send())
        raise RuntimeError("no complete response in time")
    finally:
        sock.close()


def grpcio_call(port, token):
    """A real gRPC unary call with grpcio, when it is installed: (code name, response bytes)."""
    try:
        import grpc
    except ImportError:
        return None
    with grpc.insecure_channel(f"{HOST}:{port}") as ch:
        f = ch.unary_unary(GRPC_PATH, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        md = [("authorization", f"Bearer {token}")] if token else None
        try:
            resp = f(REQUEST_PAYLOAD, timeout=5, metadata=md)
            return "OK", resp
        except grpc.RpcError as e:
            return e.code().name, None


# ---------------------------------------------------------------- servers

@dataclass
class Ports:
    up_h1: int = field(default_factory=free_port)
    up_h2c: int = field(default_factory=free_port)
    up_h2c_status: int = field(default_factory=free_port)
    server: int = field(default_factory=free_port)
    admin: int = field(default_factory=free_port)


def start_upstreams(work, args, ports):
    """The HTTP/1.1 upstream and the h2c one, each a one-worker nginx on the load CPU, each with
    a stub_status (its request counter checks that every request reached it)."""
    frame = work / "grpc-response.bin"
    frame.write_bytes(RESPONSE_FRAME)
    seen = 'add_header X-Seen-Sub "$http_x_jwt_sub" always;'
    h1 = pb.nginx_conf(work, "upstream-h1", ports.up_h1, f"""  server {{
    listen {HOST}:{ports.up_h1} backlog=4096;
    location = /stub_status {{ stub_status; }}
    location / {{ {seen} return 200 "ok\\n"; }}
  }}""")
    # /echo.Echo/Unary: the static module answers GET only; a POST gets 405, which error_page
    # turns into the same file with 200 (an internal redirect, as GET). open_file_cache keeps
    # the file open.
    h2c = pb.nginx_conf(work, "upstream-h2c", ports.up_h2c, f"""  open_file_cache max=16;
  server {{
    listen {HOST}:{ports.up_h2c} http2 backlog=4096;
    http2_max_concurrent_streams 1000;
    # nginx ends an HTTP/2 connection with GOAWAY after keepalive_requests (1000): grpc_pass
    # answers the calls in flight then with 502, which would fail the peer's runs.
    keepalive_requests 100000000;
    location = {GRPC_PATH} {{
      {seen}
      default_type application/grpc;
      etag off;
      add_trailer grpc-status 0;
      alias {frame};
      error_page 405 =200 $uri;
    }}
    location / {{ {seen} return 200 "ok\\n"; }}
  }}
  server {{
    listen {HOST}:{ports.up_h2c_status};
    location = /stub_status {{ stub_status; }}
  }}""")
    procs = []
    try:
        for name, conf, port in (("upstream-h1", h1, ports.up_h1), ("upstream-h2c", h2c, ports.up_h2c)):
            p = pb.Proc(name, pb.pinned([str(args.nginx), "-c", str(conf)], args.load_cpu), work)
            procs.append(p)
            pb.wait_port(port, p)
        pb.wait_port(ports.up_h2c_status, procs[1])
    except BaseException:
        for p in procs:
            p.stop()
        raise
    return procs


def upstream_requests(port):
    """nginx stub_status' request counter (it counts the status request too)."""
    text = urllib.request.urlopen(f"http://{HOST}:{port}/stub_status", timeout=5).read().decode()
    m = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", text, re.M)
    if not m:
        raise SystemExit(f"unexpected stub_status answer: {text!r}")
    return int(m.group(3))


def start_nginx(work, args, ports, mode):
    """mode "h1": h2c in, proxy_pass to the HTTP/1.1 upstream; "grpc": h2c in, grpc_pass to the
    h2c upstream. Either way with a keep-alive upstream block."""
    if mode == "h1":
        upstream = f"server {HOST}:{ports.up_h1};"
        location = "proxy_pass http://app;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";"
    else:
        upstream = f"server {HOST}:{ports.up_h2c};"
        location = "grpc_pass grpc://app;"
    conf = pb.nginx_conf(work, f"nginx-{mode}", ports.server, f"""  upstream app {{
    {upstream}
    keepalive 1024;
    keepalive_requests 100000000;
  }}
  server {{
    listen {HOST}:{ports.server} http2 backlog=4096;
    http2_max_concurrent_streams {MAX_CONCURRENT_STREAMS};
    keepalive_requests 100000000;
    location / {{
      {location}
    }}
  }}""")
    p = pb.Proc(f"nginx-{mode}", pb.pinned([str(args.nginx), "-c", str(conf)], args.proxy_cpu), work)
    pb.wait_port(ports.server, p)
    return p


def start_jwtgate(work, args, ports, upstream_url):
    front = (f"listen: {HOST}:{ports.server}\n"
             f"upstream: {upstream_url}\n"
             f"http2: {{max_concurrent_streams: {MAX_CONCURRENT_STREAMS}}}\n")
    conf = pb.jwtgate_conf(work, front=front, algs=[ALG], admin_port=ports.admin, name="jwtgate-h2")
    p = pb.Proc("jwtgate-h2", pb.pinned([str(args.jwtgate), "--config", str(conf)], args.proxy_cpu), work)
    try:
        pb.wait_jwtgate_ready(p, admin_port=ports.admin)
        pb.wait_port(ports.server, p)
    except BaseException:
        p.stop()
        raise
    return p


# ---------------------------------------------------------------- runs

@dataclass
class Run:
    """One measured configuration; rows compare two of them."""
    key: str
    server: str      # jwtgate | nginx | direct
    upstream: str    # h1 | h2c
    grpc: bool
    label: str


RUNS = {
    "nginx-h1": Run("nginx-h1", "nginx", "h1", False, "nginx h2c → HTTP/1.1 proxy_pass"),
    "jwtgate-h1": Run("jwtgate-h1", "jwtgate", "h1", False, "jwtgate h2c → `upstream: http://`"),
    "jwtgate-h2c": Run("jwtgate-h2c", "jwtgate", "h2c", False, "jwtgate h2c → `upstream: h2c://`"),
    "nginx-grpc": Run("nginx-grpc", "nginx", "h2c", True, "nginx `grpc_pass grpc://`"),
    "jwtgate-grpc": Run("jwtgate-grpc", "jwtgate", "h2c", True, "jwtgate `upstream: h2c://`"),
    "direct-grpc": Run("direct-grpc", "direct", "h2c", True, "h2load straight to the h2c upstream"),
}


@dataclass
class Row:
    key: str
    jwtgate: str     # a RUNS key
    peer: str        # a RUNS key
    note: str
    cpu: bool = True  # whether the peer has a server whose CPU compares


ROWS = [
    Row("h2c → HTTP/1.1 upstream", "jwtgate-h1", "nginx-h1", "same upstream (nginx, HTTP/1.1), keep-alive"),
    Row("h2c → h2c upstream", "jwtgate-h2c", "nginx-h1",
        "peer is row 1's nginx run (h2c → HTTP/1.1): nginx cannot proxy plain requests to an h2c upstream"),
    Row("gRPC unary", "jwtgate-grpc", "nginx-grpc", "same h2c upstream (nginx `listen … http2`)"),
    Row("gRPC unary, jwtgate vs direct", "jwtgate-grpc", "direct-grpc",
        "row 3's jwtgate run against h2load straight to the upstream", cpu=False),
]


def select_rows(only):
    if not only:
        return list(ROWS)
    want = [w.strip() for w in only.split(",")]
    return [r for r in ROWS if any(w in r.key for w in want)]


def h2load_cmd(args, port, run, token, n):
    cmd = ["h2load", "-n", str(n), "-c", str(args.clients), "-m", str(args.streams), "-t", "1",
           "-T", "30", "-N", "10"]
    if run.server != "direct":
        cmd += ["-H", f"authorization: Bearer {token}"]
    if run.grpc:
        cmd += ["-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(args.work / "grpc-request.bin"),
                f"http://{HOST}:{port}{GRPC_PATH}"]
    else:
        cmd += [f"http://{HOST}:{port}{PLAIN_PATH}"]
    return pb.pinned(cmd, args.load_cpu)


def parse_h2load(out):
    """h2load's summary: rate and the request and status counts."""
    r = {}
    m = re.search(r"finished in ([0-9.]+)(m?s), ([0-9.]+) req/s", out)
    if m:
        r["seconds"] = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        r["rps"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    if m:
        for k, v in zip(("total", "started", "done", "succeeded", "failed", "errored", "timeout"), m.groups()):
            r[k] = int(v)
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        for k, v in zip(("2xx", "3xx", "4xx", "5xx"), m.groups()):
            r[k] = int(v)
    return r


def run_h2load(args, port, run, token, n, what, tolerate=0.0):
    """`tolerate`: the share of 5xx answers accepted (counted in "failed" and reported): only for
    nginx's grpc_pass, which under this load answers a few calls with 502 ("upstream sent frame
    for unknown stream" against an nginx h2c upstream, an nginx defect). jwtgate gets none."""
    cmd = h2load_cmd(args, port, run, token, n)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds * 4 + 60)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"{what}: h2load did not finish in {args.seconds * 4 + 60} s: {' '.join(cmd)}")
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = parse_h2load(out.stdout)
    r["client_cpu_s"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    need = ("rps", "total", "2xx")
    if out.returncode != 0 or any(k not in r for k in need):
        raise SystemExit(f"{what}: h2load failed (exit {out.returncode}): {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    bad = []
    r["failed_5xx"] = 0
    if tolerate and r["failed"] == r["5xx"] and r["5xx"] <= tolerate * n and r["succeeded"] + r["failed"] == n \
            and not any(r[k] for k in ("errored", "timeout", "3xx", "4xx")):
        r["failed_5xx"] = r["5xx"]
        return r
    if not (r["total"] == r["started"] == r["done"] == r["succeeded"] == r["2xx"] == n):
        bad.append(f"{n} sent: {r['started']} started, {r['done']} done, {r['succeeded']} succeeded, "
                   f"{r['2xx']} 2xx")
    bad += [f"{r[k]} {k}" for k in ("failed", "errored", "timeout", "3xx", "4xx", "5xx") if r[k]]
    if bad:
        raise SystemExit(f"{what}: not every response succeeded ({'; '.join(bad)})\n{out.stdout}")
    return r


def metric(text, name, labels=None):
    """The value of one series (exact label values given in `labels`), 0 when absent."""
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}(?:{{([^}}]*)}})? (\S+)$", text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in (labels or {}).items()):
            total += float(m.group(2))
    return total


def jwtgate_counts(ports):
    text = urllib.request.urlopen(f"http://{HOST}:{ports.admin}/metrics", timeout=5).read().decode()
    return {
        "hits": metric(text, "jwtgate_token_cache_hits_total"),
        "misses": metric(text, "jwtgate_token_cache_misses_total"),
        "up_2xx": metric(text, "jwtgate_upstream_responses_total", {"class": "2xx"}),
        "up_all": metric(text, "jwtgate_upstream_responses_total"),
        "grpc_0": metric(text, "jwtgate_grpc_responses_total", {"grpc_status": "0"}),
        "grpc_all": metric(text, "jwtgate_grpc_responses_total"),
    }


def sanity_check(run, port, token, what):
    """One request of the run's kind over HTTP/2 before measuring; on jwtgate also that the
    subject reached the upstream and that no token is refused."""
    sub = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["sub"]
    auth = [] if run.server == "direct" else [("authorization", f"Bearer {token}")]
    try:
        if run.grpc:
            grpc_hdrs = [("content-type", "application/grpc"), ("te", "trailers")]
            status, hd, body, tr = h2_request(port, "POST", GRPC_PATH, grpc_hdrs + auth, REQUEST_FRAME)
            if status != 200 or not hd.get("content-type", "").startswith("application/grpc") \
                    or body != RESPONSE_FRAME or tr.get("grpc-status") != "0":
                raise SystemExit(f"{what}: the gRPC call got {status} {hd.get('content-type')!r}, body "
                                 f"{body[:20]!r}, trailers {tr}; want 200 application/grpc, the message and "
                                 f"grpc-status 0")
            g = grpcio_call(port, token if auth else None)
            if g is not None and g != ("OK", RESPONSE_PAYLOAD):
                raise SystemExit(f"{what}: a grpcio unary call got {g}")
            if run.server == "jwtgate":
                if hd.get("x-seen-sub") != sub:
                    raise SystemExit(f"{what}: the upstream saw X-Jwt-Sub {hd.get('x-seen-sub')!r}, not {sub!r}")
                status, hd, _, tr = h2_request(port, "POST", GRPC_PATH, grpc_hdrs, REQUEST_FRAME)
                gs = tr.get("grpc-status", hd.get("grpc-status"))
                if status != 200 or gs != "16":
                    raise SystemExit(f"{what}: a gRPC call without a token got {status}, grpc-status {gs!r}; "
                                     f"want 200 with grpc-status 16 (UNAUTHENTICATED)")
                g = grpcio_call(port, None)
                if g is not None and g[0] != "UNAUTHENTICATED":
                    raise SystemExit(f"{what}: a grpcio call without a token got {g[0]}, not UNAUTHENTICATED")
        else:
            status, hd, body, _ = h2_request(port, "GET", PLAIN_PATH, auth)
            if status != 200 or body != b"ok\n":
                raise SystemExit(f"{what}: GET {PLAIN_PATH} over h2c got {status} {body[:40]!r}")
            if run.server == "jwtgate":
                if hd.get("x-seen-sub") != sub:
                    raise SystemExit(f"{what}: the upstream saw X-Jwt-Sub {hd.get('x-seen-sub')!r}, not {sub!r}")
                status = h2_request(port, "GET", PLAIN_PATH)[0]
                if status not in (401, 403):
                    raise SystemExit(f"{what}: no token over h2c got {status}, not 401/403")
    except (OSError, RuntimeError) as e:
        raise SystemExit(f"{what}: the HTTP/2 check failed: {e}")


def measure(run, args, ports, token, what):
    if run.server == "jwtgate":
        url = f"http://{HOST}:{ports.up_h1}" if run.upstream == "h1" else f"h2c://{HOST}:{ports.up_h2c}"
        proc, port = start_jwtgate(args.work, args, ports, url), ports.server
    elif run.server == "nginx":
        proc, port = start_nginx(args.work, args, ports, "grpc" if run.grpc else "h1"), ports.server
    else:
        proc, port = None, ports.up_h2c
    status_port = ports.up_h1 if run.upstream == "h1" else ports.up_h2c_status
    up_pids = args.upstream_pids[run.upstream]
    try:
        sanity_check(run, port, token, what)
        # Warm-up: the connections to the upstream, the token cache, and a rate to size -n by.
        warm = run_h2load(args, port, run, token, args.warmup, what + " (warm-up)",
                          1e-3 if run.server == "nginx" and run.grpc else 0.0)
        n = max(args.warmup, min(args.max_requests, int(warm["rps"] * args.seconds)))
        pids = proc.pids() if proc else []
        c0 = jwtgate_counts(ports) if run.server == "jwtgate" else None
        u0 = upstream_requests(status_port)
        cpu0, up0 = cpu_seconds(pids), cpu_seconds(up_pids)
        tolerate = 1e-3 if run.server == "nginx" and run.grpc else 0.0
        r = run_h2load(args, port, run, token, n, what, tolerate)
        cpu1, up1 = cpu_seconds(pids), cpu_seconds(up_pids)
        u1 = upstream_requests(status_port)
        r["requests"] = n
        r["rate"] = r["rps"]
        r["cpu_us"] = (cpu1 - cpu0) * 1e6 / n if proc else None
        r["upstream_cpu_us"] = (up1 - up0) * 1e6 / n
        r["client_cpu_us"] = r.pop("client_cpu_s") * 1e6 / n
        if abs(u1 - u0 - 1 - n) > r["failed_5xx"]:  # + the second stub_status request itself
            raise SystemExit(f"{what}: the upstream counted {u1 - u0 - 1} requests, h2load sent {n}")
        if c0 is not None:
            c1 = jwtgate_counts(ports)
            d = {k: c1[k] - c0[k] for k in c1}
            r["hit_ratio"] = d["hits"] / max(1.0, d["hits"] + d["misses"])
            if r["hit_ratio"] < 0.99:
                raise SystemExit(f"{what}: the token cache hit only {r['hit_ratio']:.1%}")
            if d["up_2xx"] != n or d["up_all"] != n:
                raise SystemExit(f"{what}: jwtgate counted {d['up_2xx']:.0f} upstream 2xx responses "
                                 f"({d['up_all']:.0f} in all) for {n} requests")
            if run.grpc and (d["grpc_0"] != n or d["grpc_all"] != n):
                raise SystemExit(f"{what}: jwtgate counted {d['grpc_0']:.0f} calls with grpc-status 0 "
                                 f"({d['grpc_all']:.0f} in all) for {n} calls")
        if proc and not proc.alive():
            raise SystemExit(f"{what}: the server exited during the run; see {proc.log_path}")
        return r
    finally:
        if proc:
            proc.stop()


# ---------------------------------------------------------------- report

def fmt(x):
    return f"{x:,.0f}"


def render(report, rs, results, args):
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Debian {m['debian']}, kernel {m['kernel']}; "
        f"nginx {m['nginx']}, h2load {m['h2load']}.",
        f"{args.rounds} rounds, every run of a round on its own server start, the order reversed every other "
        f"round; server (one worker each) pinned to CPU {args.proxy_cpu}, h2load and the upstreams (one-worker "
        f"nginx, HTTP/1.1 and h2c) to CPU {args.load_cpu}. Load: `h2load -c {args.clients} -m {args.streams} -t 1` "
        f"over h2c (prior knowledge), `-n` sized to about {args.seconds} s from a {args.warmup}-request warm-up, "
        f"at most {args.max_requests:,}; one {ALG} bearer token on every request (jwtgate: verified-token cache "
        f"hits; nginx checks no token: it is the cost floor). gRPC: POST {GRPC_PATH} with "
        f"`content-type: application/grpc`, `te: trailers` and a {len(REQUEST_FRAME)}-byte message; the upstream "
        f"answers one {len(RESPONSE_FRAME)}-byte message and `grpc-status: 0`. Every response of every run "
        f"checked (h2load: all 2xx and succeeded; upstream request counter; jwtgate's metrics).",
        "",
        "| row | jwtgate | compared with | peer req/s (median) | jwtgate req/s (median) | jwtgate / peer: median of "
        "per-round ratios | per round | server CPU µs/req peer · jwtgate | CPU ratio |",
        "|---|---|---|---:|---:|---|---|---|---:|",
    ]
    report["rows"] = {}
    for row in rs:
        j, p = results[row.jwtgate], results[row.peer]
        ratios = [b["rate"] / a["rate"] for a, b in zip(p, j)]
        med = statistics.median(ratios)
        x = report["rows"][row.key] = {
            "jwtgate_run": row.jwtgate, "peer_run": row.peer, "note": row.note,
            "peer": statistics.median(r["rate"] for r in p), "jwtgate": statistics.median(r["rate"] for r in j),
            "ratio_median": med, "ratio_per_round": ratios,
            "jwtgate_cpu_us": statistics.median(r["cpu_us"] for r in j),
        }
        if row.cpu:
            cpu_ratios = [b["cpu_us"] / a["cpu_us"] for a, b in zip(p, j)]
            x["peer_cpu_us"] = statistics.median(r["cpu_us"] for r in p)
            x["cpu_ratio_median"] = statistics.median(cpu_ratios)
            x["cpu_ratio_per_round"] = cpu_ratios
            cpu = f"{x['peer_cpu_us']:.1f} · {x['jwtgate_cpu_us']:.1f}"
            cpu_ratio = f"{x['cpu_ratio_median']:.2f}×"
            goal = f" {'✓' if med >= 1.0 else '✗'}"
        else:
            cpu = f"— · {x['jwtgate_cpu_us']:.1f}"
            cpu_ratio = "—"
            goal = ""
        lines.append(f"| {row.key} | {RUNS[row.jwtgate].label} | {RUNS[row.peer].label}{'¹' if row.peer == 'nginx-h1' and row.jwtgate != 'jwtgate-h1' else ''} | "
                     f"{fmt(x['peer'])} | {fmt(x['jwtgate'])} | {med:.2f}×{goal} | "
                     f"{' · '.join(f'{v:.2f}' for v in ratios)} | {cpu} | {cpu_ratio} |")
    lines += ["", "¹ row 1's nginx run: nginx cannot proxy plain requests to an h2c upstream (`grpc_pass` is gRPC "
                  "only), so jwtgate's h2c → h2c is set against nginx's h2c → HTTP/1.1.",
              "", "✓/✗: jwtgate / nginx ≥ 1.0× (rows 1–3). Row 4 (row 3's jwtgate run against h2load straight to "
                  "the same upstream) has no goal: it is the price of the hop; its direct run has no proxy, so no "
                  "CPU figure."]
    failed = sum(r.get("failed_5xx", 0) for r in results.get("nginx-grpc", []))
    sent = sum(r.get("requests", 0) for r in results.get("nginx-grpc", []))
    if failed:
        lines += ["", f"nginx `grpc_pass` answered {failed} of {sent:,} calls with 502 (its error log: \"upstream sent "
                      "frame for unknown stream\", against the nginx h2c upstream); those runs are counted as "
                      "measured. jwtgate's runs had no failed call (any failure aborts the benchmark)."]
    report["runs"] = results
    return "\n".join(lines) + "\n"


def machine(nginx_built):
    m = pb.machine()
    m["nginx"] = (g.group(1) if (g := re.search(r"nginx/(\S+)", nginx_built)) else "?")
    try:
        v = subprocess.run(["h2load", "--version"], capture_output=True, text=True, timeout=10).stdout
        m["h2load"] = (g.group(1) if (g := re.search(r"nghttp2/(\S+)", v)) else "?")
    except OSError:
        m["h2load"] = "?"
    for k in ("haproxy", "wrk"):
        m.pop(k, None)
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jwtgate", type=Path, default=pb.ROOT / "build-release" / "jwtgate")
    ap.add_argument("--nginx", type=Path, default=Path(pb.default_nginx()))
    ap.add_argument("--work", type=Path, default=Path("/tmp/jwtgate-h2-bench"))
    ap.add_argument("--results", type=Path, default=pb.ROOT / "bench" / "results" / "h2.md")
    ap.add_argument("--rounds", type=int, default=5, help=f"rounds (1..{MAX_ROUNDS}; default 5)")
    ap.add_argument("--seconds", type=float, default=4, help=f"target seconds per measured run (1..{MAX_SECONDS}; default 4)")
    ap.add_argument("--max-requests", type=int, default=MAX_REQUESTS,
                    help=f"h2load -n cap per measured run (default and most {MAX_REQUESTS:,})")
    ap.add_argument("--warmup", type=int, default=5000, help="requests of each run's warm-up (default 5000)")
    ap.add_argument("--clients", type=int, default=16, help="h2load -c (default 16)")
    ap.add_argument("--streams", type=int, default=10, help=f"h2load -m (default 10, at most {MAX_CONCURRENT_STREAMS})")
    ap.add_argument("--nice", type=int, default=10, help="lower this process's (and its children's) priority by N")
    ap.add_argument("--only", help="comma-separated substrings of row names (default: all)")
    args = ap.parse_args()
    if not 1 <= args.rounds <= MAX_ROUNDS:
        ap.error(f"--rounds must be 1..{MAX_ROUNDS}")
    if not 1 <= args.seconds <= MAX_SECONDS:
        ap.error(f"--seconds must be 1..{MAX_SECONDS}")
    if not 100 <= args.max_requests <= MAX_REQUESTS:
        ap.error(f"--max-requests must be 100..{MAX_REQUESTS}")
    args.warmup = min(args.warmup, args.max_requests)
    if args.warmup < 100:
        ap.error("--warmup must be at least 100")
    if not 1 <= args.clients <= 1000 or not 1 <= args.streams <= MAX_CONCURRENT_STREAMS:
        ap.error(f"--clients must be 1..1000, --streams 1..{MAX_CONCURRENT_STREAMS}")
    if args.nice:
        os.nice(args.nice)
    cores = os.cpu_count() or 1
    args.proxy_cpu, args.load_cpu = (0, 1) if cores >= 2 else (None, None)
    if cores < 2:
        log("one core only: nothing is pinned, figures are not comparable")
    for tool, pkg in (("h2load", "nghttp2-client"), ("taskset", "util-linux")):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (Debian package {pkg})")
    try:
        import h2  # noqa: F401
    except ImportError:
        raise SystemExit("Python's h2 is missing (Debian package python3-h2)")
    if not os.access(args.nginx, os.X_OK):
        raise SystemExit(f"{args.nginx} is missing; run scripts/install-deps.sh")
    built = subprocess.run([str(args.nginx), "-V"], capture_output=True, text=True, timeout=10).stderr
    for mod in ("--with-http_v2_module", "--with-http_stub_status_module"):
        if mod not in built:
            raise SystemExit(f"{args.nginx} was built without {mod[7:]}")
    if "--without-http_grpc_module" in built:
        raise SystemExit(f"{args.nginx} was built without the grpc module")
    if not args.jwtgate.exists():
        raise SystemExit(f"{args.jwtgate} is missing; build it (see bench/README.md)")
    # Path("./jwtgate") prints as "jwtgate", which exec would look up on PATH.
    args.jwtgate, args.nginx = args.jwtgate.resolve(), args.nginx.resolve()
    pb.NGINX_EXTRA_HTTP = "".join(f"  {mod}_temp_path {{tmp}};\n" for mod in ("fastcgi", "uwsgi", "scgi")
                                  if f"--without-http_{mod}_module" not in built)
    rs = select_rows(args.only)
    if not rs:
        ap.error("--only selects nothing")
    keys = list(dict.fromkeys(k for r in rs for k in (r.peer, r.jwtgate)))
    log(f"{len(keys)} runs a round ({', '.join(keys)}), about {args.rounds * len(keys) * (args.seconds + 1.5):.0f} s")

    args.work.mkdir(parents=True, exist_ok=True)
    pb.make_material(args.work, 2 * pb.REPEATED_TOKENS, algs=[ALG])
    token = (args.work / f"tokens-{ALG.lower()}-repeated.txt").read_text().split("\n", 1)[0]
    (args.work / "grpc-request.bin").write_bytes(REQUEST_FRAME)
    ports = Ports()
    report = {"machine": machine(built), "args": {k: str(v) for k, v in vars(args).items()}}
    results = {k: [] for k in keys}
    t_start = time.monotonic()
    upstreams = start_upstreams(args.work, args, ports)
    try:
        args.upstream_pids = {"h1": upstreams[0].pids(), "h2c": upstreams[1].pids()}
        for rnd in range(args.rounds):
            order = keys if rnd % 2 == 0 else keys[::-1]
            for k in order:
                what = f"round {rnd + 1}/{args.rounds} {k}"
                r = measure(RUNS[k], args, ports, token, what)
                results[k].append(r)
                log(f"{what}: {r['rate']:,.0f} req/s over {r['requests']:,} requests"
                    + (f", {r['cpu_us']:.1f} µs server CPU each" if r["cpu_us"] is not None else "")
                    + (f", cache hits {r['hit_ratio']:.0%}" if "hit_ratio" in r else ""))
    finally:
        for p in upstreams:
            p.stop()
    report["elapsed_s"] = time.monotonic() - t_start

    table = render(report, rs, results, args)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    command = "/usr/bin/python3 bench/h2_bench.py " + " ".join(sys.argv[1:])
    args.results.write_text(f"# jwtgate HTTP/2 and gRPC benchmark against nginx\n\nCommand: `{command.strip()}`\n\n{table}")
    args.results.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    print(table)
    log(f"wrote {args.results} in {report['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
