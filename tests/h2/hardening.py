#!/usr/bin/python3
"""HTTP/2 hardening regressions: the HTTP/2 breaker's reproductions (credit leak, head-of-line
blocking, memory under zero-window clients, request trailers, :authority/host, HTTP/1 -> h2c
header mapping), each with a control proving its setup works. Judged by what the upstreams
received and what the clients got.

    hardening.py --jwtgate build/jwtgate [-k SUBSTRING] [--keep]

Upstreams (each prints its port):
  tests/h2/h2_upstream.py     the recording h2c server; /__seen?clear=1 is the oracle
  tests/h2/evil_h2.py         a bulk h2c server that honours flow control: .../big?size=N
  tests/support/upstream.py   the recording HTTP/1.1 upstream (.../download?size=N)

Each flow-control case gets its own jwtgate (1 worker, so one shared upstream connection per
h2c upstream): a leaked window stays leaked, and must not hide or cause another case's result.
Prints PASS/FAIL per case, exits 1 if any failed. Debian's /usr/bin/python3. Everything binds
127.0.0.1 on free ports; every wait is bounded; every process started is stopped.
"""
import argparse
import os
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
sys.path.insert(0, HERE)
from h2wire import H2Client, SettingsFrame, error_name  # noqa: E402
from e2e import (AUDIENCE, H2_UPSTREAM, ISSUER, MIB, PYTHON, UPSTREAM, Failure, Jwtgate, Run, Server,  # noqa: E402
                 Tokens, auth, expect, fold)

import jwt  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

EVIL = os.path.join(HERE, "evil_h2.py")
ISSUER2 = "https://other-idp.example.com/"
ISSUER3 = "https://api-keys.example.com/"
PROMPT = 5.0  # "promptly" / "within a few seconds"
BIG = 4_000_000  # each attacker stream's response
ATTACK_STREAMS = 20
MEM_STREAMS = 100
MEM_SIZE = 2_000_000
MEM_BUDGET = 48 * MIB
ZERO_WINDOW = {SettingsFrame.INITIAL_WINDOW_SIZE: 0}


def gate_body(t, h2_port, evil_port, plain_port):
    return f"""upstream: h2c://127.0.0.1:{h2_port}
http2:
  enabled: true
  max_concurrent_streams: 100
limits:
  max_header_bytes: 16KiB
  upstream_timeout: 30s
providers:
  - name: main
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [ES256]
    forward_token: false
    jwks:
      file: {t.jwks}
    claims_to_headers:
      sub: X-Jwt-Sub
  - name: cookieprov
    issuer: {ISSUER2}
    audiences: [{AUDIENCE}]
    algorithms: [ES256]
    forward_token: false
    token_sources: [{{cookie: sess}}]
    jwks:
      file: {t.jwks}
    claims_to_headers:
      sub: X-Cookie-Sub
  - name: headerprov
    issuer: {ISSUER3}
    audiences: [{AUDIENCE}]
    algorithms: [ES256]
    forward_token: false
    token_sources: [{{header: X-Api-Token}}]
    jwks:
      file: {t.jwks}
    claims_to_headers:
      sub: X-Api-Sub
routes:
  - prefix: /bulk
    upstream: h2c://127.0.0.1:{evil_port}
    auth: none
  - prefix: /plain/pub
    upstream: http://127.0.0.1:{plain_port}
    auth: none
  - prefix: /plain
    upstream: http://127.0.0.1:{plain_port}
  - prefix: /cookie
    providers: [cookieprov]
  - prefix: /apikey
    providers: [headerprov]
  - prefix: /h2
"""


def mint2(t, issuer=ISSUER2):
    now = int(time.time())
    pem = t.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    return jwt.encode({"iss": issuer, "aud": AUDIENCE, "sub": "mallory", "iat": now - 60, "exp": now + 600}, pem,
                      algorithm="ES256", headers={"kid": "k1"})


class World:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.t = Tokens(tmp)
        self.token2 = mint2(self.t)
        self.token3 = mint2(self.t, ISSUER3)
        self.servers, self.gates = [], []
        self.h2up = self.server("h2_upstream", H2_UPSTREAM)
        self.evil = self.server("evil_h2", EVIL)
        self.plain = self.server("upstream", UPSTREAM)
        self.named = {}

    def server(self, name, script):
        s = Server(name, ["nice", "-n", "10", PYTHON, script], self.tmp)
        self.servers.append(s)
        return s

    def gate(self, name):
        """Starts jwtgate NAME once; a start that failed fails every later case that needs it."""
        if name in self.named:
            if isinstance(self.named[name], Failure):
                raise self.named[name]
            return self.named[name]
        g = Jwtgate(name, self.args.jwtgate, self.tmp, gate_body(self.t, self.h2up.port, self.evil.port,
                                                                  self.plain.port), workers=1)
        self.gates.append(g)
        try:
            self.named[name] = g.start()
        except Failure as e:
            self.named[name] = Failure(f"jwtgate {name} did not start: {e}")
            raise self.named[name]
        return g

    def main_gate(self):
        return self.gate("main")

    def stop(self, failures):
        for g in self.gates:
            if g.proc is not None and not g.alive():
                failures.append(f"jwtgate {g.name} is no longer running:\n{g.proc.tail()}")
            try:
                g.stop(failures)
            except Exception as e:  # noqa: BLE001 - stopping everything matters more
                failures.append(f"stopping jwtgate {g.name}: {e}")
        for s in self.servers:
            try:
                s.stop()
            except Exception as e:  # noqa: BLE001
                failures.append(f"stopping {s.name}: {e}")


# --- clients -------------------------------------------------------------------------------------

def h2_fetch(port, path, headers=(), timeout=PROMPT):
    """GET on a fresh h2 connection; (stream, seconds)."""
    started = time.monotonic()
    c = H2Client(port, timeout=timeout)
    try:
        s = c.wait(c.request("GET", path, headers), timeout)
    finally:
        c.close()
    return s, time.monotonic() - started


def dechunk(data):
    out = b""
    while True:
        line, sep, rest = data.partition(b"\r\n")
        if not sep:
            return None
        try:
            n = int(line.split(b";")[0], 16)
        except ValueError:
            return None
        if n == 0:
            return out
        if len(rest) < n + 2:
            return None
        out += rest[:n]
        data = rest[n + 2:]


def h1_raw(port, request, timeout=PROMPT):
    """Sends REQUEST on a fresh connection, reads until EOF or TIMEOUT; (status, headers, body or None, secs).
    The body is None when it is incomplete."""
    started = time.monotonic()
    deadline = started + timeout
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(request)
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = s.recv(1 << 16)
            except socket.timeout:
                break
            except OSError:
                break
            if not d:
                break
            out += d
    finally:
        s.close()
    elapsed = time.monotonic() - started
    head, sep, rest = out.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, None, elapsed
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        status = None
    headers = {}
    for line in lines[1:]:
        n, _, v = line.partition(":")
        headers[n.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = dechunk(rest)
    elif "content-length" in headers:
        n = int(headers["content-length"])
        body = rest[:n] if len(rest) >= n else None
    else:
        body = rest
    return status, headers, body, elapsed


def h1_get(port, path, timeout=PROMPT):
    return h1_raw(port, f"GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode(), timeout)


def complete(s, size):
    return s.status == 200 and s.ended and s.reset is None and len(s.data) == size


def expect_h2_body(port, path, size, what):
    s, secs = h2_fetch(port, path)
    expect(complete(s, size), f"{what}: h2 client got status {s.status}, {len(s.data)} of {size} body bytes, "
                              f"ended {s.ended}, reset {s.reset and error_name(s.reset)} after {secs:.1f} s "
                              f"(limit {PROMPT:.0f} s)")
    return secs


def expect_h1_body(port, path, size, what):
    status, _, body, secs = h1_get(port, path)
    got = "incomplete" if body is None else f"{len(body)} bytes"
    expect(status == 200 and body is not None and len(body) == size,
           f"{what}: HTTP/1 client got status {status}, body {got} of {size} after {secs:.1f} s "
           f"(limit {PROMPT:.0f} s)")
    return secs


class Attacker:
    """A client that never reads: SETTINGS_INITIAL_WINDOW_SIZE 0, no WINDOW_UPDATE."""

    def __init__(self, port, path, n):
        self.c = H2Client(port, settings=ZERO_WINDOW, auto_window=False)
        self.sids = [self.c.request("GET", path) for _ in range(n)]
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not all(self.c.streams[s].headers for s in self.sids):
            if not self.c.pump(0.2):
                break
        self.c.pump(0.5)  # give the upstream time to fill the windows jwtgate offers it

    def check_holding(self, what):
        heads = sum(1 for s in self.sids if self.c.streams[s].status == 200)
        data = sum(len(self.c.streams[s].data) for s in self.sids)
        done = [s for s in self.sids if self.c.streams[s].done]
        expect(heads == len(self.sids) and data == 0 and not done and not self.c.closed,
               f"{what}: the attacker's {len(self.sids)} zero-window streams should all hold a 200 head and no "
               f"body; got {heads} heads, {data} body bytes, {len(done)} ended/reset, connection "
               f"{self.c.closed or 'open'}")
        return f"{heads} streams holding a 200 head, 0 body bytes"

    def close(self):
        self.c.close()


# --- 1. credit leak --------------------------------------------------------------------------------

def leak_cases(run, w):
    for mode in ("close", "reset"):
        state = {}

        def setup(mode=mode, state=state):
            if "gate" not in state:
                state["gate"] = w.gate(f"leak-{mode}")
            return state["gate"]

        def control(mode=mode, state=state):
            g = setup()
            a = expect_h2_body(g.port, "/bulk/before/big?size=100000", 100000, "before the attack")
            b = expect_h1_body(g.port, "/bulk/before/big?size=100000", 100000, "before the attack")
            state["attacker"] = Attacker(g.port, f"/bulk/leak/big?size={BIG}", ATTACK_STREAMS)
            note = state["attacker"].check_holding("the attack")
            return f"before: h2 {a:.1f} s, HTTP/1 {b:.1f} s; {note}"

        def attack(mode=mode, state=state):
            g = setup()
            if "attacker" not in state:
                state["attacker"] = Attacker(g.port, f"/bulk/leak/big?size={BIG}", ATTACK_STREAMS)
            a = state.pop("attacker")
            if mode == "reset":
                for sid in a.sids:
                    a.c.rst(sid, 8)
                a.c.pump(0.5)
            a.close()
            time.sleep(1.0)
            x = expect_h2_body(g.port, "/bulk/after/big?size=100000", 100000,
                               f"after {ATTACK_STREAMS} zero-window streams were {mode}")
            y = expect_h1_body(g.port, "/bulk/after/big?size=100000", 100000,
                               f"after {ATTACK_STREAMS} zero-window streams were {mode}")
            return f"h2 {x:.1f} s, HTTP/1 {y:.1f} s"

        how = "the client closes" if mode == "close" else "the client resets them (RST_STREAM CANCEL)"
        run.case(f"credit leak ({mode}) control: 100 KB from the h2c upstream over h2 and HTTP/1 before; "
                 f"{ATTACK_STREAMS} zero-window streams hold 200 heads", control)
        run.case(f"credit leak ({mode}): {ATTACK_STREAMS} zero-window streams of {BIG // 1000000} MB, {how}; then "
                 f"fresh h2 and HTTP/1 clients each get 100 KB within {PROMPT:.0f} s", attack)


# --- 2. head-of-line blocking ------------------------------------------------------------------------

def hol_cases(run, w):
    state = {}

    def setup():
        if "gate" not in state:
            state["gate"] = w.gate("hol")
        return state["gate"]

    def control():
        g = setup()
        a = expect_h2_body(g.port, "/bulk/v/big?size=300000", 300000, "victim before the attack")
        b = expect_h2_body(g.port, "/bulk/v/small", len(b"ok /bulk/v/small\n"), "victim before the attack")
        state["attacker"] = Attacker(g.port, f"/bulk/hol/big?size={BIG}", ATTACK_STREAMS)
        return f"victim 300 KB {a:.1f} s, small {b:.1f} s; " + state["attacker"].check_holding("the attack")

    def attack():
        g = setup()
        if "attacker" not in state:
            state["attacker"] = Attacker(g.port, f"/bulk/hol/big?size={BIG}", ATTACK_STREAMS)
        a = state["attacker"]
        try:
            x = expect_h2_body(g.port, "/bulk/v/big?size=300000", 300000,
                               f"victim while {ATTACK_STREAMS} zero-window streams are held")
            y = expect_h2_body(g.port, "/bulk/v/small", len(b"ok /bulk/v/small\n"),
                               f"victim while {ATTACK_STREAMS} zero-window streams are held")
            a.c.pump(0.1)
            expect(not a.c.closed, f"the attacker's connection ended during the case ({a.c.closed}): the "
                                   "victims were not tested against a held upstream")
        finally:
            a.close()
            state.pop("attacker", None)
        return f"300 KB in {x:.1f} s, small in {y:.1f} s"

    run.case("head-of-line control: a victim gets 300 KB and a small body; the attacker's zero-window streams "
             "hold 200 heads", control)
    run.case(f"head-of-line: while {ATTACK_STREAMS} zero-window streams hold the shared h2c upstream, a victim on "
             f"another connection gets 300 KB and a small body within {PROMPT:.0f} s each", attack)


# --- 3. memory --------------------------------------------------------------------------------------

def mem_cases(run, w):
    state = {}

    def setup():
        if "gate" not in state:
            g = state["gate"] = w.gate("mem")
            for i in range(3):  # warm up both upstream paths before the baseline
                expect_h2_body(g.port, f"/bulk/warm/big?size=100000", 100000, "warm-up")
                status, _, body, _ = h1_get(g.port, "/plain/pub/download?size=100000")
                expect(status == 200 and body is not None and len(body) == 100000, f"warm-up download: {status}")
            time.sleep(0.3)
            state["base"] = g.rss()
        return state["gate"]

    def control():
        g = setup()
        expect_h2_body(g.port, "/bulk/m/big?size=300000", 300000, "h2c bulk download")
        status, _, body, secs = h1_get(g.port, f"/plain/pub/download?size=300000")
        expect(status == 200 and body is not None and len(body) == 300000,
               f"HTTP/1 upstream download through jwtgate: {status}, {None if body is None else len(body)} bytes")
        return f"baseline RSS {state['base'] / MIB:.1f} MiB"

    def attack():
        g = setup()
        base = state["base"]
        conns = []
        peak = base
        started = time.monotonic()
        try:
            for path in (f"/bulk/mem/big?size={MEM_SIZE}", f"/plain/pub/download?size={MEM_SIZE}"):
                c = H2Client(g.port, settings=ZERO_WINDOW, auto_window=False)
                conns.append((path, c, [c.request("GET", path) for _ in range(MEM_STREAMS)]))
            # Sample until no stream has got its head for 3 s (at most 15 s). Not every stream need
            # get one: upstream.py listens with a backlog of 5, and a jwtgate that holds a bounded
            # amount per client connection may stop reading further upstream responses.
            deadline, heads, quiet = time.monotonic() + 15.0, -1, time.monotonic() + 3.0
            while time.monotonic() < min(deadline, quiet):
                for _, c, _ in conns:
                    c.pump(0.05)
                peak = max(peak, g.rss())
                if peak - base > MEM_BUDGET:
                    break  # already over: no need to let it pull the rest
                now = sum(1 for _, c, sids in conns for s in sids if c.streams[s].headers)
                if now != heads:
                    heads, quiet = now, time.monotonic() + 3.0
                time.sleep(0.2)
            heads = [sum(1 for s in sids if c.streams[s].status == 200) for _, c, sids in conns]
            data = sum(len(c.streams[s].data) for _, c, sids in conns for s in sids)
        finally:
            for _, c, _ in conns:
                c.close()
        growth = peak - base
        note = (f"RSS {base / MIB:.1f} -> peak {peak / MIB:.1f} MiB (+{growth / MIB:.1f}), heads {heads} of "
                f"{MEM_STREAMS} each, {time.monotonic() - started:.1f} s")
        expect(min(heads) >= MEM_STREAMS // 5 and data == 0,
               f"setup: expected at least {MEM_STREAMS // 5} downloads under way (200 heads, no body bytes) on each "
               f"zero-window connection: {note}, {data} body bytes")
        expect(growth < MEM_BUDGET, f"jwtgate holds too much for zero-window clients: {note}; budget "
                                    f"{MEM_BUDGET // MIB} MiB")
        time.sleep(0.5)
        expect_h2_body(g.port, "/bulk/m/big?size=100000", 100000, "after the zero-window connections closed")
        return note

    run.case("memory control: bulk downloads through jwtgate from the h2c and the HTTP/1 upstream complete", control)
    run.case(f"memory: 2 zero-window connections x {MEM_STREAMS} streams of {MEM_SIZE // 1000000} MB downloads "
             f"(h2c upstream, HTTP/1 upstream) keep RSS growth under {MEM_BUDGET // MIB} MiB", attack)


# --- 4. request trailers ----------------------------------------------------------------------------

def trailer_cases(run, w):
    t = w.t

    def send(path, trailers):
        g = w.main_gate()
        w.h2up.seen()
        c = H2Client(g.port)
        try:
            s = c.wait(c.request("POST", path, auth(t.valid) + [("te", "trailers")], body=b"payload",
                                 trailers=trailers), 8)
        finally:
            c.close()
        time.sleep(0.05)
        return s, [r for r in w.h2up.seen() if r["pseudo"].get(":path") == path]

    def control():
        s, recs = send("/h2/trailer-control", [("x-checksum", "abc123")])
        expect(s.status == 200 and s.ended, f"client got {s.describe()}")
        expect(len(recs) == 1 and recs[0]["trailers"] == [["x-checksum", "abc123"]] and recs[0]["body_length"] == 7,
               f"the upstream should get the body and trailer x-checksum: abc123, got {recs}")

    def forbidden(index, blocks, names):
        bad_names = {fold(n) for n in names}
        leaked, notes = [], []
        for j, block in enumerate(blocks):
            path = f"/h2/trailer-{index}-{j}"
            s, recs = send(path, block + [("x-checksum", "abc123")])
            for r in recs:
                for n, v in r["trailers"] or ():
                    if fold(n) in bad_names:
                        leaked.append(f"{n}: {v[:40]}")
            notes.append(f"{block[0][0]}: " + (s.describe()[:40] if s.status is None else f"{s.status}") +
                         (f", upstream trailers {[n for n, _ in (recs[0]['trailers'] or ())]}" if recs else
                          ", not at the upstream"))
        expect(not leaked, f"request trailers reached the h2c upstream: {leaked}")
        return "; ".join(notes)

    attempts = [
        ("x-forwarded-for", [[("x-forwarded-for", "6.6.6.6")]], ["x-forwarded-for"]),
        ("authorization (a second token, forward_token false)", [[("authorization", f"Bearer {t.admin}")]],
         ["authorization"]),
        ("cookie (the cookie provider's sess token)", [[("cookie", f"sess={w.token2}")]], ["cookie"]),
        ("forwarded", [[("forwarded", "for=6.6.6.6;host=evil.example")]], ["forwarded"]),
        ("x-real-ip", [[("x-real-ip", "6.6.6.6")]], ["x-real-ip"]),
        ("x-jwt-sub in any spelling", [[("x-jwt-sub", "mallory")], [("x_jwt_sub", "mallory")],
                                       [("x.jwt.sub", "mallory")], [("X-JWT-SUB", "mallory")]], ["x-jwt-sub"]),
        ("x-api-token (the header provider's token source) and its claim header x-api-sub",
         [[("x-api-token", w.token3)], [("x-api-sub", "mallory")], [("x_api_sub", "mallory")]],
         ["x-api-token", "x-api-sub"]),
    ]
    run.case("trailers control: a harmless request trailer (x-checksum) reaches the h2c upstream", control)
    for i, (label, blocks, names) in enumerate(attempts):
        run.case(f"trailers: {label} in request trailers never reaches the h2c upstream", forbidden, i, blocks, names)


# --- 5. :authority / host -----------------------------------------------------------------------------

def authority_cases(run, w):
    t = w.t
    targets = (("/h2", w.h2up, lambda r: r["pseudo"].get(":path")), ("/plain", w.plain, lambda r: r["path"]))

    def send(fields):
        g = w.main_gate()
        c = H2Client(g.port)
        try:
            sid = c.new_stream_id()
            s = c.wait(c.request("GET", "", sid=sid, raw_block=c.encode(fields, huffman=False)), 8)
            gone = c.goaway
        finally:
            c.close()
        return s, gone

    def fields(path, authority=None, host=None):
        out = [(":method", "GET"), (":scheme", "http")]
        if authority is not None:
            out.append((":authority", authority))
        out.append((":path", path))
        if host is not None:
            out.append(("host", host))
        return out + auth(t.valid)

    def control(prefix, up, path_of):
        path = f"{prefix}/authority-control"
        up.seen()
        s, _ = send(fields(path, authority="good.example"))
        seen = up.seen()
        expect(s.status == 200, f"a normal :authority good.example: {s.describe()}")
        expect([path_of(r) for r in seen] == [path], f"the upstream saw {[path_of(r) for r in seen]}")

    def attack(prefix, up, path_of, index, authority, host):
        path = f"{prefix}/authority-{index}"
        up.seen()
        s, gone = send(fields(path, authority=authority, host=host))
        time.sleep(0.05)
        seen = [r for r in up.seen() if (path_of(r) or "").startswith(path)]
        expect(not seen, f"reached the upstream: {[(path_of(r), r.get('pseudo'), r.get('headers')) for r in seen]}")
        expect(s.status == 400, f"expected 400, got {s.describe()[:200]}"
                                f"{'; GOAWAY ' + error_name(gone[0]) if gone else ''}")

    attempts = [(":authority good.example,evil.example", "good.example,evil.example", None),
                (":authority good.example;x=1", "good.example;x=1", None),
                ("no :authority, host a.example,b.example", None, "a.example,b.example")]
    for prefix, up, path_of in targets:
        kind = "h2c" if prefix == "/h2" else "HTTP/1"
        run.case(f"authority control ({kind} upstream): :authority good.example reaches it", control, prefix, up,
                 path_of)
        for i, (label, authority, host) in enumerate(attempts):
            run.case(f"authority ({kind} upstream): {label} -> 400, never reaches it", attack, prefix, up, path_of,
                     i, authority, host)


# --- 6. HTTP/1 client -> h2c upstream -------------------------------------------------------------------

def h1_to_h2c_cases(run, w):
    t = w.t
    token = f"Authorization: Bearer {t.valid}\r\n".encode()

    def send(path, request):
        g = w.main_gate()
        w.h2up.seen()
        status, _, _, _ = h1_raw(g.port, request, timeout=5)
        time.sleep(0.05)
        return status, [r for r in w.h2up.seen() if r["pseudo"].get(":path") == path]

    def settings_control():
        path = "/h2/h1-control"
        status, recs = send(path, f"GET {path} HTTP/1.1\r\nHost: good.example\r\nX-Control: yes\r\n".encode() + token +
                            b"Connection: close\r\n\r\n")
        expect(status == 200 and len(recs) == 1, f"status {status}, upstream records {recs}")
        expect(recs[0]["protocol"] == "h2", f"reached the upstream over {recs[0]['protocol']}, not h2c")
        expect(["x-control", "yes"] in recs[0]["headers"], f"X-Control did not arrive: {recs[0]['headers']}")
        expect(recs[0]["pseudo"].get(":authority") == "good.example", f"pseudo {recs[0]['pseudo']}")

    def settings():
        path = "/h2/h1-settings"
        status, recs = send(path, f"GET {path} HTTP/1.1\r\nHost: good.example\r\nHTTP2-Settings: "
                                  f"AAMAAABkAARAAAAAAAIAAAAA\r\nX-Control: yes\r\n".encode() + token +
                            b"Connection: close\r\n\r\n")
        expect(len(recs) == 1, f"the request should still reach the upstream (status {status}): {recs}")
        leaked = [h for h in recs[0]["headers"] if fold(h[0]) == "http2-settings"]
        expect(not leaked, f"HTTP2-Settings was forwarded to the h2c upstream: {leaked}")
        expect(["x-control", "yes"] in recs[0]["headers"], f"X-Control did not arrive: {recs[0]['headers']}")
        expect(status == 200, f"status {status}")

    def http10():
        path = "/h2/h1-http10"
        status, recs = send(path, f"GET {path} HTTP/1.0\r\n".encode() + token + b"\r\n")
        expect(len(recs) == 1, f"an HTTP/1.0 request without Host should reach the upstream (status {status}): "
                               f"{recs}")
        authority = recs[0]["pseudo"].get(":authority")
        host = [v for n, v in recs[0]["headers"] if n.lower() == "host"]
        expect(authority, f"it reached the h2c upstream with :authority {authority!r} (host fields {host}), "
                          f"pseudo {recs[0]['pseudo']}")
        expect(status == 200, f"status {status}")
        return f":authority {authority!r}"

    run.case("HTTP/1 -> h2c control: an HTTP/1.1 request arrives over h2c with X-Control and :authority from Host",
             settings_control)
    run.case("HTTP/1 -> h2c: HTTP2-Settings is not forwarded", settings)
    run.case("HTTP/1 -> h2c: HTTP/1.0 without Host arrives with a non-empty :authority", http10)


# --- main -----------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jwtgate", required=True, help="the jwtgate binary")
    ap.add_argument("-k", help="run only the cases whose name holds this")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    args = ap.parse_args()
    args.jwtgate = os.path.abspath(args.jwtgate)
    if not os.access(args.jwtgate, os.X_OK):
        print(f"h2 hardening: jwtgate binary {args.jwtgate} is missing", file=sys.stderr)
        return 1
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="jwtgate-h2-hardening-")
    run = Run(args, tmp)
    w = None
    try:
        w = World(args, tmp)
        trailer_cases(run, w)
        authority_cases(run, w)
        h1_to_h2c_cases(run, w)
        leak_cases(run, w)
        hol_cases(run, w)
        mem_cases(run, w)
    except Failure as e:
        run.failures.append(str(e))
        print(f"FAIL {e}", flush=True)
    finally:
        if w is not None:
            w.stop(run.failures)
    return run.finish("h2 hardening", started)


if __name__ == "__main__":
    sys.exit(main())
