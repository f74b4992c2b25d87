#!/usr/bin/python3
"""Forward-auth end to end: real nginx and real Caddy in front of a recording upstream, asking
jwtgate's forward_auth listener whether each request may pass.

    e2e.py --jwtgate build/jwtgate --nginx .deps/nginx/usr/sbin/nginx --caddy .deps/caddy/usr/bin/caddy

The gateway configs are the files of deploy/examples/forward-auth/ (nginx.conf,
nginx-path-prefix.conf, Caddyfile) and so are the jwtgate configs beside them, with only ports,
paths and the JWKS source substituted: each substitution must match exactly once, so an example
that drifts from what this test runs fails here instead of going unproven.

The oracle is what the upstream received (tests/smuggling/recording_upstream.py records every
request with its header names as sent), next to what the client got: a denied request must not
reach the upstream at all, an allowed one must carry jwtgate's claim headers and never a copy the
client forged. Each case is reset and read back on its own.

Also: every example's jwtgate.yaml passes `jwtgate check-config`, every claim header a jwtgate.yaml
configures is named by its gateway file, and Envoy-shaped check requests (Envoy is not packaged
for Debian) sent straight to jwtgate running the Envoy example's config get what ext_authz needs.

Debian's /usr/bin/python3, standard library only (the recorder needs python3-h11). Everything
binds 127.0.0.1 on free ports; every wait is bounded.
"""
import argparse
import base64
import http.client
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ports import free_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(ROOT, "deploy", "examples", "forward-auth")
RECORDER = os.path.join(ROOT, "tests", "smuggling", "recording_upstream.py")
PYTHON = "/usr/bin/python3"

ISSUER = "https://idp.example.com/"  # the examples' issuer and audience: tokens are minted for them
AUDIENCE = "orders-api"
LATER_ISSUER = "https://later.example.com/"  # a provider added by the test whose keys never arrive
CLAIM_HEADERS = ("X-Jwt-Sub", "X-Jwt-Email", "X-Jwt-Payload")
FORGED = "forged"
WAIT = 20.0  # seconds for a process to come up


class Failure(Exception):
    pass


def substitute(text, replacements, what):
    """Each old string must occur exactly once: the test runs the example as written, or fails."""
    for old, new in replacements:
        n = text.count(old)
        if n != 1:
            raise Failure(f"{what}: expected {old!r} exactly once, found it {n} times (example changed?)")
        text = text.replace(old, new)
    return text


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(text):
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


# --- processes ---------------------------------------------------------------------------------

class Proc:
    def __init__(self, name, argv, tmp, env=None, stdout=None):
        self.name = name
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout or self.log,
                                     stderr=self.log, env=env, start_new_session=True)

    def tail(self, n=40):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")

    def wait_port(self, port):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise Failure(f"{self.name} did not listen on {port} within {WAIT} s:\n{self.tail()}")

    def stop(self):
        """SIGTERM, then SIGKILL after 15 s; returns the exit status (negative: killed by that signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        return self.proc.returncode


class Recorder:
    """tests/smuggling/recording_upstream.py: the upstream, and the record of what reached it."""

    def __init__(self, tmp):
        self.err = open(os.path.join(tmp, "recorder.log"), "wb")
        self.proc = subprocess.Popen([PYTHON, RECORDER], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        if not line:
            raise Failure("recording upstream did not start (python3-h11 missing? run scripts/install-deps.sh)")
        self.port, control = (int(x) for x in line.split())
        self.control = socket.create_connection(("127.0.0.1", control), timeout=10)
        self.control_file = self.control.makefile("rb")

    def command(self, line):
        self.control.sendall(line.encode() + b"\n")
        reply = self.control_file.readline()
        if not reply:
            raise Failure("recording upstream closed its control connection")
        return reply.decode()

    def reset(self):
        self.command("RESET cl")

    def records(self):
        dump = json.loads(self.command("DUMP"))
        if dump["errors"]:
            raise Failure(f"the upstream could not parse what it received: {dump['errors']}")
        return dump["records"]

    def stop(self):
        self.control_file.close()
        self.control.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.err.close()


# --- HTTP --------------------------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[0] if values else None


def send(port, method, target, headers=(), body=b""):
    """One request as written (no header added but Host, Content-Length and Connection: close)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{n}: {v}" for n, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(10)
        s.sendall(raw)
        resp = http.client.HTTPResponse(s, method=method)
        resp.begin()
        data = resp.read()
        return Response(resp.status, resp.getheaders(), data)


def header_values(record, name):
    return [v for n, v in record["headers"] if n.lower() == name.lower()]


def same_to_cgi(a, b):
    """CGI/WSGI/PHP read X_Jwt_Sub and X-Jwt-Sub as one variable."""
    fold = lambda s: re.sub(r"[^a-z0-9]", "-", s.lower())
    return fold(a) == fold(b)


# --- keys and tokens ---------------------------------------------------------------------------

class Tokens:
    def __init__(self, jwtgate, tmp):
        self.jwtgate = jwtgate
        self.tmp = tmp
        self.key = os.path.join(tmp, "idp")
        self.other = os.path.join(tmp, "other")
        for prefix in (self.key, self.other):
            self.run(["keygen", "--alg", "RS256", "--kid", "k1", "--out", prefix])
        self.jwks = self.key + ".jwks.json"
        now = int(time.time())
        self.alice = self.mint({"sub": "alice", "scope": "read"})  # no email claim
        self.carol = self.mint({"sub": "carol", "email": "carol@example.com", "scope": "read"})
        self.admin = self.mint({"sub": "bob", "email": "bob@example.com", "scope": "read admin"})
        self.unknown_kid = self.mint({"sub": "alice"}, kid="k9")
        self.other_key = self.mint({"sub": "alice"}, key=self.other + ".pem")
        self.expired = self.mint({"sub": "alice", "iat": now - 7200, "exp": now - 3600})
        self.later = self.mint({"sub": "alice", "iss": LATER_ISSUER})
        header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode())
        payload = b64url(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 600}).encode())
        self.alg_none = f"{header}.{payload}."

    def run(self, args):
        r = subprocess.run([self.jwtgate] + args, cwd=self.tmp, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise Failure(f"jwtgate {' '.join(args)}: {r.stderr}")
        return r.stdout.strip()

    def mint(self, claims, kid="k1", key=None):
        full = {"iss": ISSUER, "aud": AUDIENCE, **claims}
        return self.run(["mint", "--key", key or self.key + ".pem", "--alg", "RS256", "--kid", kid,
                         "--claims", json.dumps(full), "--ttl", "10m"])


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


# --- jwtgate and the gateways ------------------------------------------------------------------

def jwtgate_config(example, tmp, fa_port, admin_port, tokens, extra=()):
    """An example's jwtgate.yaml with its listener on fa_port, keys from the test's JWKS file, a
    second provider whose keys never arrive (503) and the admin listener on a free port."""
    text = read(os.path.join(EXAMPLES, example))
    listen = re.findall(r"^  listen: \S+:9001\b.*$", text, re.M)  # 127.0.0.1:9001 or 0.0.0.0:9001
    text = substitute(text, [
        (listen[0] if len(listen) == 1 else "forward_auth.listen on port 9001", f"  listen: 127.0.0.1:{fa_port}"),
        ("uri: https://idp.example.com/.well-known/jwks.json", f"file: {tokens.jwks}"),
        ("\nroutes:\n", f"""
  - name: later
    issuer: {LATER_ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [RS256]
    jwks:
      file: {os.path.join(tmp, "later.jwks.json")}
routes:
"""),
    ] + list(extra), example)
    if re.search(r"^admin", text, re.M):
        raise Failure(f"{example}: the test adds its own admin listener; the example has one")
    text += f"\nadmin:\n  listen: 127.0.0.1:{admin_port}\n"
    return write(os.path.join(tmp, "jwtgate-" + example.replace("/", "-")), text)


class Jwtgate:
    def __init__(self, binary, config, tmp, fa_port, admin_port):
        self.fa_port = fa_port
        self.out_path = os.path.join(tmp, "jwtgate.out")
        self.out = open(self.out_path, "wb")
        self.proc = Proc("jwtgate", [binary, "--config", config], tmp, stdout=self.out)
        self.proc.wait_port(admin_port)
        self.proc.wait_port(fa_port)

    def access_lines(self):
        lines = []
        with open(self.out_path, "rb") as f:
            for raw in f:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(line, dict) and "mode" in line:
                    lines.append(line)
        return lines

    def stop(self, failures, label):
        """A clean exit on SIGTERM is part of the contract (and where a sanitizer build reports)."""
        status = self.proc.stop()
        self.out.close()
        if status != 0:
            failures.append(f"{label}: jwtgate exited with {status} on SIGTERM:\n{self.proc.tail()}")


def start_nginx(binary, example, tmp, port, fa_port, up_port):
    prefix = os.path.join(tmp, "nginx")
    os.makedirs(prefix, exist_ok=True)
    temp_paths = "".join(f"    {d}_temp_path {prefix}/{d}_temp;\n"
                         for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = substitute(read(os.path.join(EXAMPLES, example)), [
        ("worker_processes auto;", "worker_processes 1;"),
        ("http {\n", "http {\n" + temp_paths),
        ("access_log /var/log/nginx/access.log;", f"access_log {prefix}/access.log;"),
        ("server 127.0.0.1:9001;", f"server 127.0.0.1:{fa_port};"),
        ("server 127.0.0.1:3000;", f"server 127.0.0.1:{up_port};"),
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
    ], example)
    path = write(os.path.join(prefix, "nginx.conf"), conf)
    proc = Proc("nginx", [binary, "-p", prefix + "/", "-c", path, "-e", "stderr",
                          "-g", f"daemon off; pid {prefix}/nginx.pid;"], tmp)
    proc.wait_port(port)
    return proc


def start_caddy(binary, example, tmp, port, fa_port, up_port):
    home = os.path.join(tmp, "caddy")
    os.makedirs(home, exist_ok=True)
    conf = substitute(read(os.path.join(EXAMPLES, example)), [
        ("admin localhost:2019", "admin off"),
        (":8080 {", f":{port} {{\n\tbind 127.0.0.1"),
        ("forward_auth 127.0.0.1:9001 {", f"forward_auth 127.0.0.1:{fa_port} {{"),
        ("reverse_proxy 127.0.0.1:3000", f"reverse_proxy 127.0.0.1:{up_port}"),
    ], example)
    path = write(os.path.join(home, "Caddyfile"), conf)
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, "config"),
               XDG_DATA_HOME=os.path.join(home, "data"))
    proc = Proc("caddy", [binary, "run", "--config", path, "--adapter", "caddyfile"], tmp, env=env)
    proc.wait_port(port)
    return proc


# --- the cases ---------------------------------------------------------------------------------

def payload_sub(value):
    try:
        return b64url_json(value).get("sub")
    except ValueError:
        return None


class Case:
    """One client request through a gateway: the status the client must get per gateway kind
    (`status` for every kind unless `status_by` names it), and what the upstream must have
    received: nothing (`claims` None) or exactly this one request with these claim headers
    (a value of "" means empty or absent)."""

    def __init__(self, name, method, target, headers=(), status=200, claims=None, body=b"",
                 status_by=None, www_authenticate=None, retry_after=False):
        self.name = name
        self.method = method
        self.target = target
        self.headers = list(headers)
        self.status = status
        self.status_by = status_by or {}
        self.claims = claims
        self.body = body
        self.www_authenticate = www_authenticate  # substring the client's WWW-Authenticate must hold
        self.retry_after = retry_after

    def expected_status(self, kind):
        return self.status_by.get(kind, self.status)


def cases(t):
    forged = [(h, FORGED) for h in CLAIM_HEADERS]
    no_claims = {"X-Jwt-Sub": "", "X-Jwt-Email": "", "X-Jwt-Payload": ""}
    return [
        Case("valid token: claims from the token, the client's forged copies gone", "GET", "/orders/1?x=1",
             bearer(t.alice) + forged, claims={"X-Jwt-Sub": "alice", "X-Jwt-Email": "", "X-Jwt-Payload": "alice"}),
        Case("valid token with email", "GET", "/orders/2", bearer(t.carol),
             claims={"X-Jwt-Sub": "carol", "X-Jwt-Email": "carol@example.com", "X-Jwt-Payload": "carol"}),
        Case("POST with a body passes, body and method intact", "POST", "/orders", bearer(t.carol),
             body=b'{"item": 7}', claims={"X-Jwt-Sub": "carol"}),
        Case("no token: 401 with WWW-Authenticate", "GET", "/orders/1", forged, status=401,
             www_authenticate="Bearer"),
        Case("garbage token: 401", "GET", "/orders/1", bearer("not-a-jwt"), status=401,
             www_authenticate="invalid_token"),
        Case("unknown kid: 401", "GET", "/orders/1", bearer(t.unknown_kid), status=401,
             www_authenticate="invalid_token"),
        Case("signed by another key: 401", "GET", "/orders/1", bearer(t.other_key), status=401,
             www_authenticate="invalid_token"),
        Case("expired: 401", "GET", "/orders/1", bearer(t.expired), status=401, www_authenticate="invalid_token"),
        Case("alg none: 401", "GET", "/orders/1", bearer(t.alg_none), status=401, www_authenticate="invalid_token"),
        Case("no admin scope on /admin: 403", "GET", "/admin/users", bearer(t.alice), status=403),
        Case("admin scope on /admin: 200", "GET", "/admin/users", bearer(t.admin) + forged,
             claims={"X-Jwt-Sub": "bob", "X-Jwt-Email": "bob@example.com", "X-Jwt-Payload": "bob"}),
        Case("client's X-Forwarded-Uri: /public to /admin without token: refused", "GET", "/admin/users",
             [("X-Forwarded-Uri", "/public"), ("X-Forwarded-Method", "GET")], status=401,
             www_authenticate="Bearer"),
        # nginx sets X-Original-URI itself (its proxy_set_header replaces the client's); Caddy
        # passes the client's copy beside its own X-Forwarded-Uri, and jwtgate refuses the pair.
        Case("client's X-Original-URI: /public to /admin without token: refused", "GET", "/admin/users",
             [("X-Original-URI", "/public"), ("X-Original-Method", "GET")], status=401, status_by={"caddy": 400}),
        Case("/public/../admin without token: judged as /admin", "GET", "/public/../admin/users", status=401),
        Case("public path without token: 200, claim headers empty", "GET", "/public/index.html", forged,
             claims=no_claims),
        Case("public path with a token: still no claims (auth none)", "GET", "/public/x", bearer(t.carol),
             claims=no_claims),
        # The original method reaches jwtgate: /public allows GET and HEAD only. nginx turns every
        # answer but 2xx/401/403 into a 500.
        Case("POST to the GET-only public path: 405", "POST", "/public/form", status=405,
             status_by={"nginx": 500}),
        # nginx drops header names with '_' (ignore_invalid_headers); Caddy passes them to jwtgate,
        # which refuses the spelling no gateway overwrites, and Caddy relays the 400.
        Case("X_Jwt_Sub: forged (CGI's spelling)", "GET", "/orders/1", bearer(t.alice) + [("X_Jwt_Sub", FORGED)],
             claims={"X-Jwt-Sub": "alice"}, status_by={"caddy": 400}),
        Case("provider without keys: 503 + Retry-After (nginx: 500)", "GET", "/orders/1", bearer(t.later),
             status=503, status_by={"nginx": 500}, retry_after=True),
    ]


def check_case(case, kind, port, recorder):
    recorder.reset()
    resp = send(port, case.method, case.target, case.headers, case.body)
    records = recorder.records()
    problems = []
    expected = case.expected_status(kind)
    if resp.status != expected:
        problems.append(f"client got {resp.status}, expected {expected}")
    if case.www_authenticate and expected == 401:
        value = resp.header("WWW-Authenticate") or ""
        if case.www_authenticate not in value:
            problems.append(f"WWW-Authenticate {value!r} lacks {case.www_authenticate!r}")
    if case.retry_after and expected == 503 and not resp.header("Retry-After"):
        problems.append("no Retry-After on the 503")
    allowed = expected == 200
    if not allowed:
        if records:
            problems.append(f"the upstream received {len(records)} request(s): "
                            f"{[(r['method'], r['target']) for r in records]}")
    else:
        if len(records) != 1:
            problems.append(f"the upstream received {len(records)} requests, expected 1")
        for r in records:
            if (r["method"], r["target"]) != (case.method, case.target):
                problems.append(f"the upstream got {r['method']} {r['target']}")
            if r["body_length"] != len(case.body):
                problems.append(f"the upstream got a body of {r['body_length']} bytes, sent {len(case.body)}")
            for name, value in r["headers"]:
                if value == FORGED:
                    problems.append(f"the upstream got the client's forged {name}: {value}")
            for name, want in (case.claims or {}).items():
                got = header_values(r, name)
                spellings = [n for n, _ in r["headers"] if same_to_cgi(n, name) and n.lower() != name.lower()]
                if spellings:
                    problems.append(f"the upstream got other spellings of {name}: {spellings}")
                if want == "":
                    if got not in ([], [""]):
                        problems.append(f"{name}: expected empty or absent, got {got}")
                elif name == "X-Jwt-Payload":
                    if len(got) != 1 or payload_sub(got[0]) != want:
                        problems.append(f"{name}: expected a payload with sub {want!r}, got {got}")
                elif got != [want]:
                    problems.append(f"{name}: expected [{want!r}], got {got}")
    return problems


def check_access_log(gate, failures, label):
    """The forward-auth access log line names the ORIGINAL request (method, path)."""
    want = [("GET", "/admin/users", 403), ("POST", "/public/form", 405)]
    deadline = time.monotonic() + 5
    missing = want
    while time.monotonic() < deadline:
        lines = gate.access_lines()
        missing = [w for w in want if not any(
            (l.get("mode"), l.get("method"), l.get("path"), l.get("status"), l.get("client")) ==
            ("forward_auth", w[0], w[1], w[2], "127.0.0.1") for l in lines)]
        if not missing:
            break
        time.sleep(0.1)
    if missing:
        failures.append(f"{label}: no access log line with mode forward_auth for {missing} "
                        f"(lines with a mode: {gate.access_lines()[-5:]})")
    else:
        print(f"PASS {label}: access log lines say mode forward_auth and the original method and path")


def run_gateway(kind, label, start, gateway_example, jwtgate_example, args, tmp, tokens, recorder, failures):
    fa_port, admin_port, gw_port = free_port(), free_port(), free_port()
    sub = os.path.join(tmp, re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-"))
    os.makedirs(sub)
    config = jwtgate_config(jwtgate_example, sub, fa_port, admin_port, tokens)
    gate = Jwtgate(args.jwtgate, config, sub, fa_port, admin_port)
    gateway = None
    try:
        gateway = start(getattr(args, kind), gateway_example, sub, gw_port, fa_port, recorder.port)
        for case in cases(tokens):
            problems = check_case(case, kind, gw_port, recorder)
            if problems:
                failures.append(f"{label}: {case.name}: " + "; ".join(problems))
                print(f"FAIL {label}: {case.name}: " + "; ".join(problems))
            else:
                print(f"PASS {label}: {case.name}")
        check_access_log(gate, failures, label)
    finally:
        if gateway:
            gateway.stop()
        gate.stop(failures, label)


# --- Envoy-shaped requests straight to jwtgate -------------------------------------------------

def run_envoy_shaped(args, tmp, tokens, failures):
    """Envoy's ext_authz HTTP service sends the original method and path_prefix + the original
    path, with Host, Authorization and allowed_headers only, and allows only an exact 200; it
    copies allowed_upstream_headers. This is the test's own client, a peer jwtgate does not
    trust, so its X-Forwarded-Uri must be ignored too."""
    fa_port, admin_port = free_port(), free_port()
    sub = os.path.join(tmp, "envoy-shaped")
    os.makedirs(sub)
    config = jwtgate_config("envoy/jwtgate.yaml", sub, fa_port, admin_port, tokens)
    gate = Jwtgate(args.jwtgate, config, sub, fa_port, admin_port)
    label = "envoy-shaped (envoy/jwtgate.yaml)"
    checks = []

    def check(name, method, target, headers, status, claims=None, www=None, retry_after=False):
        resp = send(fa_port, method, target, headers)
        problems = []
        if resp.status != status:
            problems.append(f"got {resp.status}, expected {status}")
        if resp.header("Location"):
            problems.append(f"a Location header: {resp.header('Location')}")
        if status == 200:
            if resp.body or resp.header("Content-Length") != "0":
                problems.append(f"a 200 with a body or without Content-Length: 0 ({resp.header('Content-Length')})")
            for name_, want in (claims or {}).items():
                got = [v for n, v in resp.headers if n.lower() == name_.lower()]
                if name_ == "X-Jwt-Payload" and want:
                    ok = len(got) == 1 and payload_sub(got[0]) == want
                else:
                    ok = got == [want]  # present even when empty: Envoy copies what is there
                if not ok:
                    problems.append(f"{name_}: expected [{want!r}], got {got}")
        if www and www not in (resp.header("WWW-Authenticate") or ""):
            problems.append(f"WWW-Authenticate {resp.header('WWW-Authenticate')!r} lacks {www!r}")
        if retry_after and not resp.header("Retry-After"):
            problems.append("no Retry-After")
        checks.append((name, problems))

    try:
        check("valid token: exactly 200, every claim header present", "GET", "/authz/orders/1?x=1",
              bearer(tokens.alice), 200, {"X-Jwt-Sub": "alice", "X-Jwt-Email": "", "X-Jwt-Payload": "alice"})
        check("POST keeps its method", "POST", "/authz/orders", bearer(tokens.carol), 200, {"X-Jwt-Sub": "carol"})
        check("POST to the GET-only public path: 405", "POST", "/authz/public/form", [], 405)
        check("public path: 200, claim headers present and empty", "GET", "/authz/public/x", [], 200,
              {"X-Jwt-Sub": "", "X-Jwt-Email": "", "X-Jwt-Payload": ""})
        check("no token: 401", "GET", "/authz/orders/1", [], 401, www="Bearer")
        check("expired: 401", "GET", "/authz/orders/1", bearer(tokens.expired), 401, www="invalid_token")
        check("no admin scope: 403", "GET", "/authz/admin/users", bearer(tokens.alice), 403)
        check("untrusted peer's X-Forwarded-Uri: /public is ignored", "GET", "/authz/admin/users",
              [("X-Forwarded-Uri", "/public"), ("X-Forwarded-Method", "GET"),
               ("X-Original-URI", "/public"), ("X-Original-Method", "GET")], 401, www="Bearer")
        check("/authz/public/../admin: judged as /admin", "GET", "/authz/public/../admin", [], 401)
        check("path outside path_prefix: 404", "GET", "/orders/1", bearer(tokens.alice), 404)
        check("provider without keys: 503 + Retry-After (failure_mode_allow would let it through)",
              "GET", "/authz/orders/1", bearer(tokens.later), 503, retry_after=True)
    finally:
        gate.stop(failures, label)
    for name, problems in checks:
        if problems:
            failures.append(f"{label}: {name}: " + "; ".join(problems))
            print(f"FAIL {label}: {name}: " + "; ".join(problems))
        else:
            print(f"PASS {label}: {name}")


# --- static checks of the examples -------------------------------------------------------------

EXAMPLE_PAIRS = [  # (jwtgate config, the gateway file that must name its claim headers)
    ("nginx/jwtgate.yaml", "nginx/nginx.conf"),
    ("nginx/jwtgate-path-prefix.yaml", "nginx/nginx-path-prefix.conf"),
    ("caddy/jwtgate.yaml", "caddy/Caddyfile"),
    ("traefik/jwtgate.yaml", "traefik/compose.yaml"),
    ("envoy/jwtgate.yaml", "envoy/envoy.yaml"),
]


def check_examples(jwtgate, failures):
    for config, gateway in EXAMPLE_PAIRS:
        path = os.path.join(EXAMPLES, config)
        r = subprocess.run([jwtgate, "check-config", "--config", path], capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or "valid (0 warnings)" not in r.stdout:
            failures.append(f"check-config {config}: exit {r.returncode}: {r.stdout}{r.stderr}")
            print(f"FAIL check-config {config}: {r.stdout}{r.stderr}")
        else:
            print(f"PASS check-config {config}")
        text = read(path)
        headers = re.findall(r"^\s+[\w.]+:\s+(X-[A-Za-z0-9-]+)", text, re.M)  # claims_to_headers and
        headers = list(dict.fromkeys(headers))                                # forward_payload_header
        # Comments do not count: every file here comments with '#', and none uses '#' otherwise.
        gateway_text = re.sub(r"#.*", "", read(os.path.join(EXAMPLES, gateway))).lower()
        missing = [h for h in headers if h.lower() not in gateway_text]
        if not headers or missing:
            failures.append(f"{gateway} does not name {config}'s claim headers {missing or '(none found)'}")
            print(f"FAIL {gateway}: claim headers {missing or '(none found)'}")
        else:
            print(f"PASS {gateway} names {config}'s claim headers {headers}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jwtgate", required=True)
    ap.add_argument("--nginx", default=os.path.join(ROOT, ".deps/nginx/usr/sbin/nginx"))
    ap.add_argument("--caddy", default=os.path.join(ROOT, ".deps/caddy/usr/bin/caddy"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (configs and logs)")
    args = ap.parse_args()
    for name in ("jwtgate", "nginx", "caddy"):  # the keys are made in the temporary directory
        setattr(args, name, os.path.abspath(getattr(args, name)))
    for name in ("jwtgate", "nginx", "caddy"):
        path = getattr(args, name)
        if not os.access(path, os.X_OK):
            print(f"forward_auth e2e: {name} binary {path} is missing: run scripts/install-deps.sh", file=sys.stderr)
            return 1

    tmp = tempfile.mkdtemp(prefix="jwtgate-fa-e2e-")
    failures = []
    recorder = None
    try:
        check_examples(args.jwtgate, failures)
        tokens = Tokens(args.jwtgate, tmp)
        recorder = Recorder(tmp)
        run_gateway("nginx", "nginx (X-Original-URI, trusted)", start_nginx, "nginx/nginx.conf",
                    "nginx/jwtgate.yaml", args, tmp, tokens, recorder, failures)
        run_gateway("nginx", "nginx (path_prefix, trusts nobody)", start_nginx, "nginx/nginx-path-prefix.conf",
                    "nginx/jwtgate-path-prefix.yaml", args, tmp, tokens, recorder, failures)
        run_gateway("caddy", "caddy (X-Forwarded-Uri, trusted)", start_caddy, "caddy/Caddyfile",
                    "caddy/jwtgate.yaml", args, tmp, tokens, recorder, failures)
        run_envoy_shaped(args, tmp, tokens, failures)
    except Failure as e:
        failures.append(str(e))
        print(f"FAIL {e}")
    finally:
        if recorder:
            recorder.stop()
        if args.keep or failures:
            print(f"forward_auth e2e: configs and logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"\n{len(failures)} failure(s):", *failures, sep="\n  ")
        return 1
    print("forward_auth e2e: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
