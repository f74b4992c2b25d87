#!/usr/bin/python3
"""nginx in front of the same upstream three ways, measured in the same run:

  a  nginx -> upstream, no auth
  b  nginx auth_request -> jwtgate's forward_auth listener; nginx -> upstream with X-Jwt-Sub
  c  nginx -> jwtgate proxy -> upstream

Every request carries the same kind of ES256 token. Rounds are interleaved (a b c a b c ...) and
the report gives, per round, the ratios b/a, c/a and b/c of requests per second, and their
medians over rounds: a ratio from one round compares runs seconds apart, so the shared machine's
drift cancels in it.

Layout (2 cores): everything on the gateway side (nginx in front, and jwtgate in b and c) is
pinned to CPU 0, wrk and the upstream (a one-worker nginx answering 200 "ok") to CPU 1. So b and c
measure what the two gateway processes together cost per request on one core.

Run it through `bash bench/run.sh forward-auth`, or directly with a built jwtgate (see
bench/README.md). Keys, tokens, process handling and wrk come from proxy_bench.py. Every server
binds to 127.0.0.1 and is stopped when its run ends, also on error or Ctrl-C.
"""

import argparse
import base64
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

import proxy_bench as pb

HOST = pb.HOST
# Not proxy_bench's ports: the two benchmarks may share a machine (not a run).
UPSTREAM_PORT = 18280
FRONT_PORT = 18281
ADMIN_PORT = 18282
JWTGATE_PORT = 18283      # jwtgate's proxy listener in c, its forward_auth listener in b
ALG = "ES256"
PATH = "/api/items"
AUTHZ_PREFIX = "/authz"
MAX_ROUNDS = 50
MAX_SECONDS = 60


def log(msg):
    print(f"[fa-bench] {msg}", file=sys.stderr, flush=True)


@dataclass
class Setup:
    key: str             # a | b | c, plus " unique" for the unique-token variants
    name: str
    jwtgate: str = None  # None | "forward_auth" | "proxy"
    tokens: str = "repeated"
    path: str = PATH
    results: list = field(default_factory=list)

    # proxy_bench.sanity_check reads these: with `alg` set, it also demands that the token's sub
    # reaches the upstream and that a forged and a missing token are refused.
    @property
    def alg(self):
        return ALG if self.jwtgate else None

    def token_file(self, work):
        return work / f"tokens-{ALG.lower()}-{self.tokens}.txt"

    def port(self):
        return FRONT_PORT


def setups(unique_variant):
    out = [
        Setup("a", "nginx, no auth"),
        Setup("b", "nginx auth_request + jwtgate forward_auth", "forward_auth"),
        Setup("c", "nginx + jwtgate proxy", "proxy"),
    ]
    if unique_variant:
        out += [Setup("b unique", "nginx auth_request + jwtgate forward_auth, unique tokens", "forward_auth", "unique"),
                Setup("c unique", "nginx + jwtgate proxy, unique tokens", "proxy", "unique")]
    return out


# ---------------------------------------------------------------- servers

def keepalive_upstream(name, port):
    return f"""  upstream {name} {{
    server {HOST}:{port};
    keepalive 1024;
    keepalive_requests 100000000;
  }}
"""


# As deploy/examples/forward-auth would configure it: the original method and URI travel in
# X-Original-*, believed because nginx's address is in trusted_proxies; the claim header comes
# back through auth_request_set and overwrites any client copy on the way to the upstream.
FRONT_LOCATIONS = {
    None: """    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }""",
    "forward_auth": f"""    location / {{
      auth_request /_jwtgate_authz;
      auth_request_set $jwt_sub $upstream_http_x_jwt_sub;
      proxy_set_header X-Jwt-Sub $jwt_sub;
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
    location = /_jwtgate_authz {{
      internal;
      proxy_pass http://jwtgate{AUTHZ_PREFIX};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}""",
    "proxy": """    location / {
      proxy_pass http://jwtgate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }""",
}


def start_front(work, cpu, nginx, mode):
    upstreams = keepalive_upstream("app", UPSTREAM_PORT) if mode != "proxy" else ""
    if mode:
        upstreams += keepalive_upstream("jwtgate", JWTGATE_PORT)
    conf = pb.nginx_conf(work, "front", FRONT_PORT, f"""{upstreams}  server {{
    listen {HOST}:{FRONT_PORT} backlog=4096;
{FRONT_LOCATIONS[mode]}
  }}""")
    return pb.Proc("front", pb.pinned([str(nginx), "-c", str(conf)], cpu), work)


def start_jwtgate(work, cpu, binary, mode):
    if mode == "proxy":
        front = f"listen: {HOST}:{JWTGATE_PORT}\nupstream: http://{HOST}:{UPSTREAM_PORT}\n"
    else:
        # Forward-auth only: no upstream, so no proxy listener.
        front = (f"forward_auth:\n  listen: {HOST}:{JWTGATE_PORT}\n  path_prefix: {AUTHZ_PREFIX}\n"
                 f"  trusted_proxies: [127.0.0.1/32]\n")
    conf = pb.jwtgate_conf(work, front=front, algs=[ALG], admin_port=ADMIN_PORT, name=f"jwtgate-{mode}")
    p = pb.Proc(f"jwtgate-{mode}", pb.pinned([str(binary), "--config", str(conf)], cpu), work)
    try:
        pb.wait_jwtgate_ready(p, admin_port=ADMIN_PORT)
        pb.wait_port(JWTGATE_PORT, p)
    except BaseException:
        p.stop()
        raise
    return p


def cache_counts():
    text = urllib.request.urlopen(f"http://{HOST}:{ADMIN_PORT}/metrics", timeout=5).read().decode()
    return pb.metric(text, "jwtgate_token_cache_hits_total"), pb.metric(text, "jwtgate_token_cache_misses_total")


# ---------------------------------------------------------------- one run

def check_overwrite(s, work):
    """A client-sent X-Jwt-Sub must not reach the upstream: otherwise b would be measuring a
    gateway that does not do the job."""
    good = s.token_file(work).read_text().split("\n", 1)[0]
    sub = json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "==="))["sub"]
    status, headers, _ = pb.http_get(FRONT_PORT, s.path, {"Authorization": f"Bearer {good}", "X-Jwt-Sub": "forged"})
    if status != 200 or headers.get("X-Seen-Sub") != sub:
        raise SystemExit(f"{s.name}: with a client X-Jwt-Sub the upstream saw {headers.get('X-Seen-Sub')!r} "
                         f"(status {status}), not {sub!r}")


def measure(s, work, args):
    procs = []
    try:
        jwtgate = None
        if s.jwtgate:
            jwtgate = start_jwtgate(work, args.proxy_cpu, args.jwtgate, s.jwtgate)
            procs.append(jwtgate)
        front = start_front(work, args.proxy_cpu, args.nginx, s.jwtgate)
        procs.append(front)
        pb.wait_port(FRONT_PORT, front)
        pb.sanity_check(s, work)
        if s.jwtgate:
            check_overwrite(s, work)
        tokens = s.token_file(work)
        # Warm-up: keep-alive connections on every hop and, for repeated tokens, the cache.
        pb.run_wrk(args, FRONT_PORT, s.path, tokens, 1, args.connections, start_index=0)
        pids = [pid for p in procs for pid in p.pids()]
        cpu0 = pb.cpu_seconds(pids)
        jg0 = pb.cpu_seconds(jwtgate.pids()) if jwtgate else 0.0
        hits0, misses0 = cache_counts() if jwtgate else (0.0, 0.0)
        r = pb.run_wrk(args, FRONT_PORT, s.path, tokens, args.seconds, args.connections,
                       start_index=args.unique // 2 if s.tokens == "unique" else 0)
        n = max(1, r["requests"])
        r["cpu_us"] = (pb.cpu_seconds(pids) - cpu0) * 1e6 / n
        r["jwtgate_cpu_us"] = (pb.cpu_seconds(jwtgate.pids()) - jg0) * 1e6 / n if jwtgate else None
        r["rss_kib"] = pb.status_kib(pids, "VmHWM")
        if jwtgate:
            hits, misses = cache_counts()
            checked = (hits - hits0) + (misses - misses0)
            r["hit_ratio"] = (hits - hits0) / max(1.0, checked)
            # Every measured request must have been judged by jwtgate, once.
            if not 0.99 * r["requests"] <= checked <= 1.01 * r["requests"] + args.connections:
                raise SystemExit(f"{s.name}: jwtgate checked {checked:.0f} tokens for {r['requests']} requests")
        if r["status_errors"] or r["socket_errors"]:
            raise SystemExit(f"{s.name}: {r['status_errors']} bad statuses, {r['socket_errors']} socket errors")
        return r
    finally:
        for p in reversed(procs):
            p.stop()


# ---------------------------------------------------------------- report

RATIOS = [("b", "a", "forward-auth vs no auth"), ("c", "a", "jwtgate proxy vs no auth"),
          ("b", "c", "forward-auth vs jwtgate proxy")]


def ratio_rows(by):
    """(label, meaning, per-round req/s ratios, per-round gateway CPU ratios) for b/a, c/a, b/c
    and, when run, their unique-token variants."""
    rows = []
    for suffix in ("", " unique"):
        for num, den, what in RATIOS:
            n, d = by.get(num + suffix), by.get(den if den == "a" else den + suffix)
            if n and d:
                pairs = list(zip(n.results, d.results))
                rows.append((f"{num}{suffix} / {d.key}", what + (", unique tokens" if suffix else ""),
                             [x["rps"] / y["rps"] for x, y in pairs],
                             [x["cpu_us"] / y["cpu_us"] for x, y in pairs]))
    return rows


def render(report, sc, args):
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Debian {m['debian']}, kernel {m['kernel']}; "
        f"nginx {m['nginx']}, OpenSSL {m['openssl']}, wrk {m['wrk']}.",
        f"Load: `wrk -t1 -c{args.connections}`, {args.rounds} interleaved rounds of {args.seconds} s; "
        f"nginx in front and jwtgate pinned to CPU {args.proxy_cpu}, wrk and the upstream to CPU {args.load_cpu}; "
        f"{ALG} tokens, repeated set of {pb.REPEATED_TOKENS}"
        + (f", unique set of {args.unique}" if args.unique_tokens else "") + ".",
        "",
        "| setup | what runs | req/s (median) | per round | p50 ms | p99 ms | gateway CPU µs/req | of which jwtgate | peak RSS MiB | cache hits |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    med = {}
    for s in sc:
        rs = s.results
        x = med[s.key] = {
            "rps": statistics.median(r["rps"] for r in rs),
            "rps_per_round": [r["rps"] for r in rs],
            "p50_ms": statistics.median(r["p50_us"] for r in rs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in rs) / 1000,
            "cpu_us": statistics.median(r["cpu_us"] for r in rs),
            "jwtgate_cpu_us": statistics.median(r["jwtgate_cpu_us"] for r in rs) if s.jwtgate else None,
            "rss_mib": max(r["rss_kib"] for r in rs) / 1024,
            "hit_ratio": statistics.median(r["hit_ratio"] for r in rs) if s.jwtgate else None,
        }
        lines.append("| {} | {} | {:,.0f} | {} | {:.2f} | {:.2f} | {:.1f} | {} | {:.1f} | {} |".format(
            s.key, s.name, x["rps"], " · ".join(f"{v:,.0f}" for v in x["rps_per_round"]),
            x["p50_ms"], x["p99_ms"], x["cpu_us"],
            f"{x['jwtgate_cpu_us']:.1f}" if x["jwtgate_cpu_us"] is not None else "—", x["rss_mib"],
            f"{x['hit_ratio'] * 100:.0f}%" if x["hit_ratio"] is not None else ""))
    report["setups"] = med
    lines += ["", "| ratio | meaning | req/s: median of per-round ratios | per round "
                  "| gateway CPU µs/req: median of per-round ratios | per round |",
              "|---|---|---:|---|---:|---|"]
    report["ratios"] = {}
    for label, what, rps, cpu in ratio_rows({s.key: s for s in sc}):
        report["ratios"][label] = {"rps_median": statistics.median(rps), "rps_per_round": rps,
                                   "cpu_median": statistics.median(cpu), "cpu_per_round": cpu}
        lines.append(f"| {label} | {what} | {statistics.median(rps):.2f}× | " + " · ".join(f"{v:.2f}" for v in rps)
                     + f" | {statistics.median(cpu):.2f}× | " + " · ".join(f"{v:.2f}" for v in cpu) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jwtgate", type=Path, default=pb.ROOT / "build-release" / "jwtgate")
    ap.add_argument("--nginx", type=Path, default=Path(pb.default_nginx()),
                    help="Debian's nginx (needs auth_request); default: nginx on PATH, else .deps/nginx")
    ap.add_argument("--work", type=Path, default=Path("/tmp/jwtgate-fa-bench"))
    ap.add_argument("--results", type=Path, default=pb.ROOT / "bench" / "results" / "forward_auth.md")
    ap.add_argument("--rounds", type=int, default=3, help=f"interleaved rounds (1..{MAX_ROUNDS}; default 3)")
    ap.add_argument("--seconds", type=int, default=4, help=f"measured seconds per run (1..{MAX_SECONDS}; default 4)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--unique-tokens", action="store_true",
                    help="also b and c with distinct tokens, more than jwtgate's verified-token cache holds")
    ap.add_argument("--unique", type=int, default=50_000, help="size of the unique-token set (default 50000)")
    ap.add_argument("--only", help="comma-separated setup keys, e.g. a,c (default: all)")
    args = ap.parse_args()
    if not 1 <= args.rounds <= MAX_ROUNDS:
        ap.error(f"--rounds must be 1..{MAX_ROUNDS}")
    if not 1 <= args.seconds <= MAX_SECONDS:
        ap.error(f"--seconds must be 1..{MAX_SECONDS}")
    if not 1 <= args.connections <= 10_000:
        ap.error("--connections must be 1..10000")
    if args.unique < 2 * pb.REPEATED_TOKENS:
        ap.error("--unique is too small")

    cores = os.cpu_count() or 1
    args.proxy_cpu, args.load_cpu = (0, 1) if cores >= 2 else (None, None)
    if cores < 2:
        log("one core only: nothing is pinned")
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing; run bench/run.sh, which installs it")
    if not os.access(args.nginx, os.X_OK):
        raise SystemExit(f"{args.nginx} is missing; run bench/run.sh or scripts/install-deps.sh")
    built = subprocess.run([str(args.nginx), "-V"], capture_output=True, text=True, timeout=10).stderr
    if "--with-http_auth_request_module" not in built:
        raise SystemExit(f"{args.nginx} has no auth_request module")
    if not args.jwtgate.exists():
        raise SystemExit(f"{args.jwtgate} is missing; build it (see bench/README.md)")

    args.work.mkdir(parents=True, exist_ok=True)
    pb.make_material(args.work, args.unique, algs=[ALG])

    sc = setups(args.unique_tokens)
    if args.only:
        want = {k.strip() for k in args.only.split(",")}
        sc = [s for s in sc if s.key in want]
        if not sc:
            ap.error("--only selects nothing")

    report = {"machine": pb.machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    report["machine"]["nginx"] = (m.group(1) if (m := re.search(r"nginx/(\S+)", built)) else "?")
    upstream = pb.start_upstream(args.work, args.load_cpu, port=UPSTREAM_PORT, nginx=args.nginx)
    try:
        for rnd in range(args.rounds):
            for s in sc:
                r = measure(s, args.work, args)
                s.results.append(r)
                log(f"round {rnd + 1}/{args.rounds} {s.key} ({s.name}): {r['rps']:,.0f} req/s, "
                    f"p99 {r['p99_us'] / 1000:.2f} ms, {r['cpu_us']:.1f} µs gateway CPU/req")
    finally:
        upstream.stop()

    table = render(report, sc, args)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    command = "/usr/bin/python3 bench/forward_auth_bench.py " + " ".join(sys.argv[1:])
    args.results.write_text(f"# nginx + jwtgate forward-auth benchmark\n\nCommand: `{command.strip()}`\n\n{table}")
    args.results.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    print(table)
    log(f"wrote {args.results}")


if __name__ == "__main__":
    main()
