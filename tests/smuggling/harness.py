#!/usr/bin/python3
"""Differential HTTP request-smuggling harness for jwtgate.

The oracle is what the upstream actually received. jwtgate runs in front of
recording_upstream.py, which parses every forwarded byte with h11 (independent of llhttp, the
parser jwtgate uses) and records each message. The client side is raw sockets only. For every
case the harness knows how a strict RFC 9112 parser frames the bytes it sent (one or more
"interpretations": a list of expected requests) and which of those requests the routes allow, and
checks that the upstream saw exactly those, and nothing else:

  * a request jwtgate refused (4xx, or 501 for a transfer coding) never reached the upstream; a malformed request ("invalid")
    must be refused, and a request inside another one's body ("never") must never arrive;
  * every message the upstream saw is one of the client's requests (matched by a per-request
    X-Smug-Id header), arrived once, with the same method, the same normalized path, the same
    body bytes (SHA-256 and length) and complete, and its response (X-Rec-Id) is the one the
    client got for that request, in order;
  * its path, normalized the ways an upstream might (percent-decoding, dot segments, ;params,
    backslashes, ASCII case), only reaches /admin with the admin token and / with a valid token;
  * no X-Jwt-* header (names compared case-insensitively, '_' as '-') that did not come from the
    verified token: none without a valid token, exactly one X-Jwt-Sub with the token's sub with
    one; no second, unverified token beside the verified one (Authorization, `jwt` cookie);
  * no X-Original-URL, X-Rewrite-URL, X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override;
  * no h11 error on the upstream, and no bytes left over in an upstream connection (a partial,
    smuggled head waiting to be completed by the next client's request).

Each case runs with Content-Length and with chunked upstream responses, on a fresh client
connection and on a kept-alive one after a warm-up request (pooled upstream connections are
reused throughout: workers: 1). When a case leaves its connection open, a sentinel request is sent
after its responses: the proxy answers in order, so its answer proves everything before it was
done, and it catches a response queue that a smuggled request shifted.

Prints `PASS name@run` or `FAIL name@run: why (what the upstream saw)` per case and run, then
`N passed, M failed`; exits 1 if any failed.

  /usr/bin/python3 tests/smuggling/harness.py --jwtgate build/jwtgate [-k SUBSTRING] [-v]
"""
import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ports import free_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
ISSUER = "https://idp.smuggling.test/"
AUDIENCE = "smuggling-api"
KID = "smug-1"
HOST = "smuggling.test"

READ_TIMEOUT = 0.9  # waiting for the responses of one case, from its last write
SENTINEL_TIMEOUT = 0.5
CONTINUE_TIMEOUT = 0.4  # how long a client waits for 100 Continue before sending the body anyway
HARNESS_BUDGET = 110.0  # seconds; the whole run must stay under two minutes

# The identity headers jwtgate sets from a verified token under this harness's config
# (claims_to_headers maps sub only). Compared as a CGI stack reads names: case ignored, _ as -.
IDENTITY_HEADERS = {"x-jwt-sub"}
# Statuses that mean "refused": a client error, or 501 for a transfer coding jwtgate does not do.
def is_refusal(status):
    return 400 <= status < 500 or status == 501
OVERRIDE_HEADERS = {"x-original-url", "x-rewrite-url", "x-http-method-override", "x-http-method", "x-method-override"}


# --- tokens --------------------------------------------------------------------------------------

class Token:
    def __init__(self, name, value, sub, scopes, valid):
        self.name, self.value, self.sub, self.scopes, self.valid = name, value, sub, scopes, valid

    def __repr__(self):
        return self.name


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_token(sub, scope):
    """An ES256-looking token with sub/scope of our choosing and a signature that is not one."""
    header = b64url(json.dumps({"alg": "ES256", "kid": KID, "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "scope": scope,
                                 "iat": int(time.time()), "exp": int(time.time()) + 900}).encode())
    return f"{header}.{payload}.{b64url(bytes([1]) * 64)}"


# --- the oracle's view of paths and routes -------------------------------------------------------

UNRESERVED = set(string.ascii_letters + string.digits + "-._~")
RANK = {"public": 0, "root": 1, "admin": 2}


def split_target(target):
    """(path, query) of a request target in origin, absolute or asterisk form."""
    if target == "*":
        return "*", ""
    m = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?]*", target)
    if m:
        target = target[m.end():] or "/"
    path, _, query = target.partition("?")
    return path, query


def percent_decode(path, everything):
    out, i = [], 0
    while i < len(path):
        if path[i] == "%" and re.fullmatch(r"[0-9A-Fa-f]{2}", path[i + 1:i + 3] or ""):
            ch = chr(int(path[i + 1:i + 3], 16))
            if everything or ch in UNRESERVED:
                out.append(ch)
                i += 3
                continue
        out.append(path[i])
        i += 1
    return "".join(out)


def normalize(path, aggressive):
    """A path the way an upstream might see it. aggressive: also decode every %XX and treat
    backslashes as slashes (what IIS, some WSGI and Java stacks do)."""
    if path == "*":
        return "*"
    p = percent_decode(path, aggressive)
    if aggressive:
        p = p.replace("\\", "/")
    segs = []
    for seg in p.split("/"):
        seg = seg.split(";", 1)[0]  # matrix parameters (Tomcat, Jetty, Spring) do not name a path
        if seg in ("", "."):
            continue
        if seg == "..":
            if segs:
                segs.pop()
            continue
        segs.append(seg)
    return "/" + "/".join(segs)


def route_of_normalized(p):
    if p == "*":
        return "root"
    first = p.lower().split("/")[1] if p != "/" else ""
    if first == "admin":
        return "admin"
    if first == "public":
        return "public"
    return "root"


def oracle_route(target):
    """The most restrictive route any of the upstream's plausible readings of the path is in."""
    path, _ = split_target(target)
    routes = [route_of_normalized(normalize(path, a)) for a in (False, True)]
    return max(routes, key=RANK.get)


def allowed(route, token):
    if route == "public":
        return True
    if token is None or not token.valid:
        return False
    return route == "root" or "admin" in token.scopes


def norm_header_name(name):
    # As lighttpd's CGI gateways read names: every byte not a letter or digit is one separator.
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in name.strip().lower())


# --- cases ---------------------------------------------------------------------------------------

class Exp:
    """One request as a strict parser frames it, and what may become of it.

    kind: "ok" (well formed: forwarded exactly, or refused with a 4xx (or 501); forwarded only if the
    routes allow it), "invalid" (must be refused with a 4xx or 501, nothing after it forwarded),
    "never" (bytes that must never reach the upstream as a request: a request inside another's
    body, or after a message the server must close after)."""

    def __init__(self, rid, method, target, token=None, body=b"", kind="ok", must_forward=False,
                 incomplete=False, response_optional=False, head=False):
        self.rid, self.method, self.target, self.token, self.body = rid, method, target, token, body
        self.kind, self.must_forward, self.incomplete = kind, must_forward, incomplete
        self.response_optional = response_optional or kind == "never"
        self.why = ""
        self.head = head or method == "HEAD"
        self.route = oracle_route(target)
        path = split_target(target)[0]
        # The least restrictive reading: where jwtgate may legitimately have routed it.
        self.route_min = min((route_of_normalized(normalize(path, a)) for a in (False, True)), key=RANK.get)
        self.may_forward = kind == "ok" and allowed(self.route, token)

    def label(self):
        return f"{self.method} {self.target}" + (f" [{self.token}]" if self.token else "")


class Case:
    def __init__(self, name, steps, interps):
        self.name, self.steps, self.interps = name, steps, interps


class Builder:
    """Builds one run's cases; every request gets an id unique to the run (X-Smug-Id)."""

    def __init__(self, prefix, tokens):
        self.prefix = prefix
        self.t = tokens

    def id(self, n):
        return f"{self.prefix}-{n:02d}"

    def head(self, method, target, n, token=None, headers=(), version="HTTP/1.1", host=HOST, eol="\r\n"):
        lines = [f"{method} {target} {version}"]
        if host is not None:
            lines.append(f"Host: {host}")
        if n is not None:
            lines.append(f"X-Smug-Id: {self.id(n)}")
        if token is not None:
            lines.append(f"Authorization: Bearer {token.value}")
        lines += list(headers)
        return (eol.join(lines) + eol + eol).encode("latin-1")

    def get(self, target, n, token=None, headers=(), **kw):
        return self.head("GET", target, n, token, headers, **kw)

    def post(self, target, n, body, token=None, headers=(), method="POST", **kw):
        return self.head(method, target, n, token, [f"Content-Length: {len(body)}"] + list(headers), **kw) + body

    def post_chunked(self, target, n, chunks, token=None, headers=(), **kw):
        return self.head("POST", target, n, token, ["Transfer-Encoding: chunked"] + list(headers), **kw) + chunked(chunks)

    def smuggled(self, n, target="/admin", extra=("X-Jwt-Sub: admin",)):
        """A complete request for the upstream to find inside a body: forged identity, no token."""
        return self.get(target, n, headers=extra)

    def exp(self, n, method, target, token=None, body=b"", **kw):
        return Exp(self.id(n), method, target, token, body, **kw)


def chunked(chunks, ext=""):
    out = b""
    for c in chunks:
        out += f"{len(c):x}{ext}\r\n".encode() + c + b"\r\n"
    return out + b"0\r\n\r\n"


# Why a request marked "invalid" must be refused, by case name prefix (first match wins).
WHY = [
    ("cl_te", "Content-Length with Transfer-Encoding (RFC 9112 6.1)"),
    ("te_cl", "Content-Length with Transfer-Encoding (RFC 9112 6.1)"),
    ("split_head_body_cl_te", "Content-Length with Transfer-Encoding (RFC 9112 6.1)"),
    ("te_only_space_before_colon", "whitespace between field name and colon (RFC 9112 5.1)"),
    ("te_space_before_colon", "whitespace between field name and colon (RFC 9112 5.1)"),
    ("te_only_chunked_twice", "chunked applied more than once (RFC 9112 7)"),
    ("te_only", "a transfer coding jwtgate does not implement, or chunked not last (RFC 9112 6.1, 6.3)"),
    ("te_", "an obfuscated Transfer-Encoding beside Content-Length (RFC 9112 6.1, 6.3)"),
    ("cl_underscore_name", "the bytes after the body-less request are not a request line"),
    ("cl_", "an invalid or conflicting Content-Length (RFC 9110 8.6, RFC 9112 6.3)"),
    ("chunk_", "invalid chunked framing (RFC 9112 7.1)"),
    ("bare_lf_hides_te", "a bare LF inside a field line hides a Transfer-Encoding (RFC 9112 2.2)"),
    ("nul_in_path", "NUL in the request target"),
    ("nul_", "NUL in a field name (RFC 9110 5.1)"),
    ("header_name_with_space", "whitespace inside a field name (RFC 9110 5.1)"),
    ("identity_space_before_colon", "whitespace between field name and colon (RFC 9112 5.1)"),
    ("duplicate_host", "more than one Host (RFC 9112 3.2)"),
    ("host_list", "a Host with an invalid value (RFC 9112 3.2)"),
    ("missing_host", "HTTP/1.1 without Host (RFC 9112 3.2)"),
    ("asterisk_form_get", "asterisk-form is only for OPTIONS (RFC 9112 3.2.4)"),
    ("authority_form_connect", "authority-form is only for CONNECT, which a reverse proxy does not serve"),
    ("http09", "an HTTP/0.9 request line"),
    ("h2_preface", "the HTTP/2 preface (h2c prior knowledge) with nothing after it"),
    ("h2_preface_then_http1", "the HTTP/2 preface followed by an HTTP/1.1 request for /admin"),
    ("http10_transfer_encoding", "Transfer-Encoding in HTTP/1.0 (RFC 9112 6.1)"),
]


def build_cases(b):
    U, A, F = b.t["user"], b.t["admin"], b.t["forged"]
    cases = []

    def add(name, steps, *interps):
        if isinstance(steps, bytes):
            steps = [steps]
        why = next((w for key, w in WHY if name.startswith(key)), "malformed HTTP/1.1")
        for interp in interps:
            for e in interp:
                if e.kind == "invalid":
                    e.why = why
        cases.append(Case(name, steps, list(interps)))

    # --- controls: if these do not pass, nothing else means anything ---
    add("control_public_get", b.get("/public/hello", 1), [b.exp(1, "GET", "/public/hello", must_forward=True)])
    add("control_root_user", b.get("/orders", 1, U), [b.exp(1, "GET", "/orders", U, must_forward=True)])
    add("control_admin_admin", b.get("/admin/panel", 1, A), [b.exp(1, "GET", "/admin/panel", A, must_forward=True)])
    add("control_admin_user_refused", b.get("/admin", 1, U), [b.exp(1, "GET", "/admin", U)])
    add("control_root_no_token_refused", b.get("/orders", 1), [b.exp(1, "GET", "/orders")])
    add("control_forged_token_refused", b.get("/admin", 1, F), [b.exp(1, "GET", "/admin", F)])
    body = b"hello=world&x=1"
    add("control_post_cl", b.post("/public/form", 1, body),
        [b.exp(1, "POST", "/public/form", body=body, must_forward=True)])
    add("control_post_chunked", b.post_chunked("/public/form", 1, [b"hello", b"=world"]),
        [b.exp(1, "POST", "/public/form", body=b"hello=world", must_forward=True)])

    # --- CL.TE and TE.CL -----------------------------------------------------------------------
    smug = b.smuggled(2)
    cl_te_body = b"0\r\n\r\n" + smug
    te_interp = lambda: [b.exp(1, "POST", "/public/x", body=b""), b.exp(2, "GET", "/admin", kind="never")]
    add("cl_te", b.head("POST", "/public/x", 1, headers=[f"Content-Length: {len(cl_te_body)}",
                                                          "Transfer-Encoding: chunked"]) + cl_te_body,
        [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")],
        te_interp())
    inner = b"G" + b.smuggled(2)[1:]  # "GET /admin ..." as the chunk's data
    te_cl_body = f"{len(inner):x}\r\n".encode() + inner + b"\r\n0\r\n\r\n"
    add("te_cl", b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked", "Content-Length: 4"]) + te_cl_body,
        [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")],
        [b.exp(1, "POST", "/public/x", body=inner), b.exp(2, "GET", "/admin", kind="never")])
    add("cl_te_get_root_user", b.head("GET", "/orders", 1, U, [f"Content-Length: {len(cl_te_body)}",
                                                               "Transfer-Encoding: chunked"]) + cl_te_body,
        [b.exp(1, "GET", "/orders", U, kind="invalid"), b.exp(2, "GET", "/admin", kind="never")],
        [b.exp(1, "GET", "/orders", U, body=b""), b.exp(2, "GET", "/admin", kind="never")])

    # --- TE.TE obfuscations, each beside a Content-Length that frames the smuggled request as body ---
    def te_te(name, te_lines, te_understood):
        body = b"0\r\n\r\n" + b.smuggled(2)
        raw = b.head("POST", "/public/x", 1, headers=[f"Content-Length: {len(body)}"] + te_lines) + body
        interps = [[b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")]]
        if te_understood:
            # RFC 9112 6.1: a server may process by Transfer-Encoding alone, then must close.
            interps.append([b.exp(1, "POST", "/public/x", body=b""), b.exp(2, "GET", "/admin", kind="never")])
        add(name, raw, *interps)

    te_te("te_xchunked_with_cl", ["Transfer-Encoding: xchunked"], False)
    te_te("te_leading_space_with_cl", ["Transfer-Encoding:  chunked"], True)
    te_te("te_chunked_identity_with_cl", ["Transfer-Encoding: chunked, identity"], False)
    te_te("te_identity_chunked_with_cl", ["Transfer-Encoding: identity, chunked"], False)
    te_te("te_tab_value_with_cl", ["Transfer-Encoding:\tchunked"], True)
    te_te("te_tab_before_value_with_cl", ["Transfer-Encoding: \tchunked"], True)
    te_te("te_duplicated_with_cl", ["Transfer-Encoding: chunked", "Transfer-Encoding: x"], False)
    te_te("te_duplicated_chunked_with_cl", ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], False)
    te_te("te_space_before_colon_with_cl", ["Transfer-Encoding : chunked"], False)
    te_te("te_uppercase_with_cl", ["Transfer-Encoding: CHUNKED"], True)
    te_te("te_quoted_with_cl", ['Transfer-Encoding: "chunked"'], False)
    te_te("te_vertical_tab_with_cl", ["Transfer-Encoding:\x0bchunked"], False)
    te_te("te_obs_fold_with_cl", ["Transfer-Encoding:", " chunked"], False)
    body = b"0\r\n\r\n" + b.smuggled(2)
    add("te_underscore_name_with_cl",  # Transfer_Encoding is just another header: the body is framed by Content-Length
        b.head("POST", "/public/x", 1, headers=[f"Content-Length: {len(body)}", "Transfer_Encoding: chunked"]) + body,
        [b.exp(1, "POST", "/public/x", body=body), b.exp(2, "GET", "/admin", kind="never")])

    # Obfuscated TE alone, with a chunked body that hides a second request.
    def te_only(name, te_line, valid):
        payload = b.smuggled(2)
        body = chunked([payload])
        raw = b.head("POST", "/public/x", 1, headers=[te_line]) + body
        if valid:
            add(name, raw, [b.exp(1, "POST", "/public/x", body=payload), b.exp(2, "GET", "/admin", kind="never")])
        else:
            add(name, raw, [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")])

    te_only("te_only_tab", "Transfer-Encoding:\tchunked", True)
    te_only("te_only_leading_space", "Transfer-Encoding:  chunked", True)
    te_only("te_only_xchunked", "Transfer-Encoding: xchunked", False)
    te_only("te_only_space_before_colon", "Transfer-Encoding : chunked", False)
    te_only("te_only_chunked_twice", "Transfer-Encoding: chunked, chunked", False)
    te_only("te_only_gzip_chunked", "Transfer-Encoding: gzip, chunked", False)
    te_only("te_only_identity", "Transfer-Encoding: identity", False)

    # --- Content-Length variants -------------------------------------------------------------------
    five = b"AAAAA"

    def cl_case(name, cl_lines, valid_body):
        # The client sends five body bytes and then a complete request: a parser that reads the
        # Content-Length differently puts the boundary elsewhere.
        raw = b.head("POST", "/public/x", 1, headers=cl_lines) + five + b.smuggled(2)
        if valid_body is None:
            add(name, raw, [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")])
        else:
            add(name, raw, [b.exp(1, "POST", "/public/x", body=valid_body), b.exp(2, "GET", "/admin", response_optional=True)])

    cl_case("cl_list_5_5", ["Content-Length: 5, 5"], five)  # RFC 9110 8.6: may be read as one 5
    cl_case("cl_twice_5_5", ["Content-Length: 5", "Content-Length: 5"], five)
    cl_case("cl_conflicting_5_6", ["Content-Length: 5", "Content-Length: 6"], None)
    cl_case("cl_list_5_6", ["Content-Length: 5, 6"], None)
    cl_case("cl_negative", ["Content-Length: -5"], None)
    cl_case("cl_plus", ["Content-Length: +5"], None)
    cl_case("cl_hex", ["Content-Length: 0x5"], None)
    cl_case("cl_decimal_point", ["Content-Length: 5.0"], None)
    cl_case("cl_leading_zeros", ["Content-Length: 005"], five)
    cl_case("cl_overflow", ["Content-Length: 18446744073709551621"], None)
    cl_case("cl_space_inside", ["Content-Length: 5 5"], None)
    cl_case("cl_space_before_colon", ["Content-Length : 5"], None)
    # Content_Length is just another header: no body, and the five bytes start a malformed request.
    add("cl_underscore_name", b.head("POST", "/public/x", 1, headers=["Content_Length: 5"]) + five + b.smuggled(2),
        [b.exp(1, "POST", "/public/x"), b.exp(2, "AAAAAGET", "/admin", kind="invalid")])
    cl_case("cl_empty", ["Content-Length:"], None)

    # --- Connection-listed framing and identity headers, with a smuggled forged request as body ---
    def conn_listed(name, option, target="/public/x", token=None, extra=()):
        payload = b.smuggled(2)
        raw = b.post(target, 1, payload, token, [f"Connection: {option}"] + list(extra))
        add(name, raw, [b.exp(1, "POST", target, token, body=payload), b.exp(2, "GET", "/admin", kind="never")])

    conn_listed("connection_content_length", "Content-Length")
    conn_listed("connection_keepalive_content_length", "keep-alive, Content-Length")
    conn_listed("connection_host", "Host")
    conn_listed("connection_x_jwt_sub", "X-Jwt-Sub", extra=["X-Jwt-Sub: admin"])
    conn_listed("connection_x_jwt_sub_root_user", "X-Jwt-Sub", "/orders", U, ["X-Jwt-Sub: admin"])
    conn_listed("connection_authorization", "Authorization", "/orders", U)
    payload = b.smuggled(2)
    add("connection_transfer_encoding",
        b.post_chunked("/public/x", 1, [payload], headers=["Connection: Transfer-Encoding"]),
        [b.exp(1, "POST", "/public/x", body=payload), b.exp(2, "GET", "/admin", kind="never")])
    add("connection_content_length_root_user",
        b.post("/orders", 1, payload, U, ["Connection: Content-Length"]),
        [b.exp(1, "POST", "/orders", U, body=payload), b.exp(2, "GET", "/admin", kind="never")])

    # --- chunked bodies ----------------------------------------------------------------------------
    add("chunk_size_overflow",
        b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked"]) + b"ffffffffffffffffff1\r\n" + b.smuggled(2)
        + b"\r\n0\r\n\r\n",
        [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")])
    add("chunk_size_64bit_wrap",
        b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked"]) + b"10000000000000005\r\nAAAAA\r\n0\r\n\r\n"
        + b.smuggled(2),
        [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")])
    add("chunk_extension", b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked"]) + chunked([five], ";ext=1"),
        [b.exp(1, "POST", "/public/x", body=five)])
    add("chunk_extension_quoted_crlf",
        b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked"]) + b'5;ext="a\r\n' + five + b'"\r\n0\r\n\r\n',
        [b.exp(1, "POST", "/public/x", kind="invalid")])
    add("chunk_size_hex_prefix",
        b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked"]) + b"0x5\r\nAAAAA\r\n0\r\n\r\n" + b.smuggled(2),
        [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")])
    add("chunk_data_longer_than_size",
        b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked"]) + b"3\r\nAAAAA\r\n0\r\n\r\n" + b.smuggled(2),
        [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")])
    add("chunk_lf_only_terminators",
        b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked"]) + b"5\nAAAAA\n0\n\n" + b.smuggled(2),
        [b.exp(1, "POST", "/public/x", body=five), b.exp(2, "GET", "/admin", response_optional=True)],
        [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")])
    add("chunked_trailer_identity",
        b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked", "Trailer: X-Jwt-Sub"])
        + b"5\r\nAAAAA\r\n0\r\nX-Jwt-Sub: admin\r\nX-Original-URL: /admin\r\n\r\n",
        [b.exp(1, "POST", "/public/x", body=five)])
    add("chunked_trailer_content_length",
        b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked"])
        + b"5\r\nAAAAA\r\n0\r\nContent-Length: 40\r\n\r\n" + b.get("/public/after", 2),
        [b.exp(1, "POST", "/public/x", body=five), b.exp(2, "GET", "/public/after", response_optional=True)])

    # --- line endings, control characters, folding --------------------------------------------------
    add("bare_lf_request", b.get("/public/lf", 1, eol="\n"), [b.exp(1, "GET", "/public/lf")])
    body = b"0\r\n\r\n" + b.smuggled(2)
    add("bare_lf_hides_te",
        b"POST /public/x HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX-Smug-Id: " + b.id(1).encode()
        + f"\r\nContent-Length: {len(body)}\r\nX-A: b\nTransfer-Encoding: chunked\r\n\r\n".encode() + body,
        [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")])
    add("bare_cr_in_header",
        b"POST /public/x HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX-Smug-Id: " + b.id(1).encode()
        + b"\r\nContent-Length: 5\r\nX-A: b\rTransfer-Encoding: chunked\r\n\r\n" + five + b.smuggled(2),
        [b.exp(1, "POST", "/public/x", body=five), b.exp(2, "GET", "/admin", response_optional=True)])
    add("nul_in_header_value", b.get("/public/nul", 1, headers=["X-A: a\x00b"]), [b.exp(1, "GET", "/public/nul")])
    add("nul_in_header_name", b.get("/public/nul", 1, headers=["X-A\x00: b"]), [b.exp(1, "GET", "/public/nul", kind="invalid")])
    add("nul_in_identity_header", b.get("/public/nul", 1, headers=["X-Jwt-Sub\x00: admin"]),
        [b.exp(1, "GET", "/public/nul", kind="invalid")])
    add("nul_in_path", b.get("/public/x\x00/../../admin", 1), [b.exp(1, "GET", "/public/x\x00/../../admin", kind="invalid")])
    add("obs_fold_plain", b.get("/public/fold", 1, headers=["X-A: a", " b"]), [b.exp(1, "GET", "/public/fold")])
    add("obs_fold_identity", b.get("/public/fold", 1, headers=["X-Jwt-Sub:", " admin"]), [b.exp(1, "GET", "/public/fold")])
    add("obs_fold_after_request_line",
        f"GET /public/fold HTTP/1.1\r\n X-Jwt-Sub: admin\r\nHost: {HOST}\r\nX-Smug-Id: {b.id(1)}\r\n\r\n".encode(),
        [b.exp(1, "GET", "/public/fold")])
    add("obs_fold_authorization",
        b.get("/admin", 1, headers=["Authorization: Bearer", " " + U.value]), [b.exp(1, "GET", "/admin", U)])
    add("header_name_with_space", b.get("/public/x", 1, headers=["X Jwt Sub: admin"]),
        [b.exp(1, "GET", "/public/x", kind="invalid")])

    # --- Host ----------------------------------------------------------------------------------------
    add("duplicate_host", b.get("/public/host", 1, headers=["Host: evil.test"]),
        [b.exp(1, "GET", "/public/host", kind="invalid")])
    add("host_list", b.get("/public/host", 1, host=f"{HOST}, evil.test"), [b.exp(1, "GET", "/public/host", kind="invalid")])
    add("missing_host_http11", b.get("/public/host", 1, host=None), [b.exp(1, "GET", "/public/host", kind="invalid")])

    # --- request targets -----------------------------------------------------------------------------
    add("absolute_form_admin", b.get("http://evil/admin", 1), [b.exp(1, "GET", "http://evil/admin")])
    add("absolute_form_admin_user", b.get("http://evil/admin", 1, U), [b.exp(1, "GET", "http://evil/admin", U)])
    add("absolute_form_public_dotdot", b.get("http://evil/public/../admin", 1),
        [b.exp(1, "GET", "http://evil/public/../admin")])
    add("absolute_form_public", b.get(f"http://{HOST}/public/abs", 1), [b.exp(1, "GET", f"http://{HOST}/public/abs")])
    add("asterisk_form_options", b.head("OPTIONS", "*", 1), [b.exp(1, "OPTIONS", "*")])
    add("asterisk_form_get", b.get("*", 1), [b.exp(1, "GET", "*", kind="invalid")])
    add("authority_form_connect", b.head("CONNECT", "evil.test:443", 1), [b.exp(1, "CONNECT", "evil.test:443", kind="invalid")])
    add("http09_request", "GET /admin\r\n\r\n".encode(), [b.exp(1, "GET", "/admin", kind="invalid")])
    # The preface starts h2c (prior knowledge): what follows is HTTP/2 frames or a protocol
    # error, never an HTTP/1 request that reaches the upstream. On a connection that has already
    # spoken HTTP/1 (the keepalive runs) it is an HTTP/1 request line instead, refused with 400.
    add("h2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", [b.exp(1, "PRI", "*", kind="never")],
        [b.exp(1, "PRI", "*", kind="invalid")])
    add("h2_preface_then_http1", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b.get("/admin", 2),
        [b.exp(1, "PRI", "*", kind="never"), b.exp(2, "GET", "/admin", kind="never")],
        [b.exp(1, "PRI", "*", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")])
    add("lowercase_method", b.head("get", "/admin", 1), [b.exp(1, "get", "/admin")])
    add("unknown_method_admin", b.head("FOO", "/admin", 1), [b.exp(1, "FOO", "/admin")])
    add("tab_separated_request_line", f"GET\t/admin\tHTTP/1.1\r\nHost: {HOST}\r\nX-Smug-Id: {b.id(1)}\r\n\r\n".encode(),
        [b.exp(1, "GET", "/admin")])
    add("fragment_in_target", b.get("/public/x#/../../admin", 1), [b.exp(1, "GET", "/public/x#/../../admin")])

    # --- path variants: without a token (the public route) and with a token that lacks admin scope ---
    variants = [("semicolon_before_admin", "/;x/admin"), ("uppercase", "/ADMIN"), ("capitalised_slash", "/Admin/"),
                ("mixed_case_subpath", "/aDmIn/x"), ("public_dotdot", "/public/../admin"),
                ("public_pct2e_dotdot", "/public/%2e%2e/admin"), ("public_pct2E_dotdot", "/public/%2E%2E/admin"),
                ("public_half_encoded_dotdot", "/public/.%2e/admin"), ("public_pct2f_admin", "/public%2fadmin"),
                ("public_dotdot_pct2f", "/public/..%2fadmin"), ("public_encoded_dotdot_slash", "/public/%2e%2e%2fadmin"),
                ("double_slash", "//admin"), ("admin_semicolon", "/admin;x"), ("dot_segment", "/./admin"),
                ("pct61_admin", "/%61dmin"), ("tomcat_dotdot_semicolon", "/public/..;/admin"),
                ("public_semicolon_dotdot", "/public;/../admin"), ("backslash_dotdot", "/public\\..\\admin"),
                ("admin_pct2f", "/admin%2f"), ("pct2f_admin", "/%2fadmin"), ("admin_trailing_slash", "/admin/")]
    for slug, v in variants:
        add(f"path_{slug}", b.get(v, 1), [b.exp(1, "GET", v)])
        add(f"path_{slug}_user", b.get(v, 1, U), [b.exp(1, "GET", v, U)])
    add("path_public_dotdot_admin_with_admin", b.get("/public/../admin", 1, A), [b.exp(1, "GET", "/public/../admin", A)])
    add("path_query_does_not_route", b.get("/orders?/public", 1), [b.exp(1, "GET", "/orders?/public")])

    # --- spellings of the identity header, and other X-Jwt-* names ------------------------------------
    for name, hdr in [("identity_underscore", "X_Jwt_Sub"), ("identity_lowercase", "x-jwt-sub"),
                      ("identity_dots", "X.Jwt.Sub"), ("identity_tildes", "X~Jwt~Sub"),
                      ("identity_uppercase", "X-JWT-SUB"), ("identity_mixed_underscore", "x_JWT-sub")]:
        add(f"{name}_public", b.get("/public/id", 1, headers=[f"{hdr}: admin"]), [b.exp(1, "GET", "/public/id")])
        add(f"{name}_root_user", b.get("/orders", 1, U, headers=[f"{hdr}: admin"]), [b.exp(1, "GET", "/orders", U)])
    add("identity_twice_root_user", b.get("/orders", 1, U, headers=["X-Jwt-Sub: admin", "X-Jwt-Sub: root"]),
        [b.exp(1, "GET", "/orders", U)])
    add("identity_space_before_colon", b.get("/public/id", 1, headers=["X-Jwt-Sub : admin"]),
        [b.exp(1, "GET", "/public/id", kind="invalid")])
    # X-Jwt-Roles is no header jwtgate sets here (only sub is mapped): it passes like any other, and
    # the check is that it does not turn into an identity header.
    add("identity_unmapped_x_jwt_roles", b.get("/public/id", 1, headers=["X-Jwt-Roles: admin"]), [b.exp(1, "GET", "/public/id")])

    # --- override headers -------------------------------------------------------------------------------
    for name, hdr in [("x_original_url", "X-Original-URL: /admin"), ("x_rewrite_url", "X-Rewrite-URL: /admin"),
                      ("x_http_method_override", "X-HTTP-Method-Override: DELETE"),
                      ("x_http_method", "X-HTTP-Method: DELETE"), ("x_method_override", "X-Method-Override: DELETE"),
                      ("x_original_url_underscore", "X_Original_URL: /admin"),
                      ("x_original_url_lowercase", "x-original-url: /admin")]:
        add(f"override_{name}", b.get("/public/ov", 1, headers=[hdr]), [b.exp(1, "GET", "/public/ov")])
    add("override_x_original_url_root_user", b.get("/orders", 1, U, headers=["X-Original-URL: /admin"]),
        [b.exp(1, "GET", "/orders", U)])

    # --- tokens: two of them, duplicate cookies ------------------------------------------------------
    add("two_authorization_headers", b.get("/orders", 1, U, headers=[f"Authorization: Bearer {F.value}"]),
        [b.exp(1, "GET", "/orders", U)])
    add("cookie_token", b.get("/orders", 1, headers=[f"Cookie: jwt={U.value}"]), [b.exp(1, "GET", "/orders", U)])
    add("cookie_duplicate_same_header", b.get("/orders", 1, headers=[f"Cookie: jwt={U.value}; jwt={F.value}"]),
        [b.exp(1, "GET", "/orders", U)])
    add("cookie_duplicate_two_headers", b.get("/orders", 1, headers=[f"Cookie: jwt={U.value}", f"Cookie: jwt={F.value}"]),
        [b.exp(1, "GET", "/orders", U)])
    add("cookie_duplicate_case", b.get("/orders", 1, headers=[f"Cookie: jwt={U.value}; JWT={F.value}"]),
        [b.exp(1, "GET", "/orders", U)])
    add("cookie_duplicate_space", b.get("/orders", 1, headers=[f"Cookie: jwt={U.value}; jwt ={F.value}"]),
        [b.exp(1, "GET", "/orders", U)])
    add("cookie_and_bearer_differ", b.get("/orders", 1, U, headers=[f"Cookie: jwt={F.value}"]), [b.exp(1, "GET", "/orders", U)])
    add("cookie_comma_separated", b.get("/admin", 1, headers=[f"Cookie: jwt={U.value}, jwt={A.value}"]),
        [b.exp(1, "GET", "/admin", U)])

    # --- pipelining after bodies -------------------------------------------------------------------------
    body = b"a=1&b=2"
    add("pipeline_post_cl_then_get", b.post("/public/p1", 1, body) + b.get("/public/p2", 2),
        [b.exp(1, "POST", "/public/p1", body=body), b.exp(2, "GET", "/public/p2")])
    add("pipeline_post_chunked_then_get", b.post_chunked("/public/p1", 1, [b"a=1", b"&b=2"]) + b.get("/public/p2", 2),
        [b.exp(1, "POST", "/public/p1", body=b"a=1&b=2"), b.exp(2, "GET", "/public/p2")])
    add("pipeline_post_then_admin_no_token", b.post("/public/p1", 1, body) + b.smuggled(2),
        [b.exp(1, "POST", "/public/p1", body=body), b.exp(2, "GET", "/admin", response_optional=True)])
    add("pipeline_user_then_forged_admin", b.get("/orders", 1, U) + b.smuggled(2) + b.get("/orders", 3, U),
        [b.exp(1, "GET", "/orders", U), b.exp(2, "GET", "/admin", response_optional=True),
         b.exp(3, "GET", "/orders", U, response_optional=True)])
    add("pipeline_three_mixed", b.get("/public/a", 1) + b.post("/orders", 2, body, U) + b.post_chunked("/public/c", 3, [body]),
        [b.exp(1, "GET", "/public/a"), b.exp(2, "POST", "/orders", U, body=body), b.exp(3, "POST", "/public/c", body=body)])
    inner = b.smuggled(2)
    add("get_with_cl_body_holding_request", b.post("/public/g", 1, inner, method="GET"),
        [b.exp(1, "GET", "/public/g", body=inner), b.exp(2, "GET", "/admin", kind="never")])
    add("head_with_body_then_get", b.post("/public/h", 1, five, method="HEAD") + b.get("/public/after", 2),
        [b.exp(1, "HEAD", "/public/h", body=five), b.exp(2, "GET", "/public/after")])
    add("pipeline_head_then_get", b.head("HEAD", "/public/h", 1) + b.get("/public/after", 2),
        [b.exp(1, "HEAD", "/public/h"), b.exp(2, "GET", "/public/after")])
    add("pipeline_burst_of_six", b"".join(b.get(f"/public/b{i}", i) for i in range(1, 6)) + b.post("/orders", 6, body, U),
        [b.exp(i, "GET", f"/public/b{i}") for i in range(1, 6)] + [b.exp(6, "POST", "/orders", U, body=body)])
    add("post_cl_zero_then_get", b.post("/public/z", 1, b"") + b.get("/public/after", 2),
        [b.exp(1, "POST", "/public/z"), b.exp(2, "GET", "/public/after")])
    add("delete_with_body_root_user", b.post("/orders/7", 1, body, U, method="DELETE"),
        [b.exp(1, "DELETE", "/orders/7", U, body=body)])
    add("upgrade_refused_then_smuggle",
        b.get("/public/ws", 1, headers=["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
                                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]) + b.smuggled(2),
        [b.exp(1, "GET", "/public/ws"), b.exp(2, "GET", "/admin", response_optional=True)])
    add("h2c_upgrade_then_smuggle",
        b.get("/public/h2c", 1, headers=["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__"])
        + b.smuggled(2),
        [b.exp(1, "GET", "/public/h2c"), b.exp(2, "GET", "/admin", response_optional=True)])

    # --- HTTP/1.0 ----------------------------------------------------------------------------------------
    add("http10_keep_alive_pipelined",
        b.get("/public/a", 1, headers=["Connection: keep-alive"], version="HTTP/1.0")
        + b.get("/public/b", 2, headers=["Connection: keep-alive"], version="HTTP/1.0"),
        [b.exp(1, "GET", "/public/a"), b.exp(2, "GET", "/public/b", response_optional=True)])
    add("http10_close_then_admin", b.get("/public/a", 1, version="HTTP/1.0") + b.smuggled(2),
        [b.exp(1, "GET", "/public/a"), b.exp(2, "GET", "/admin", response_optional=True)])
    add("http10_transfer_encoding",
        b.head("POST", "/public/x", 1, headers=["Transfer-Encoding: chunked"], version="HTTP/1.0") + chunked([five]) + b.smuggled(2),
        [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")],
        [b.exp(1, "POST", "/public/x", body=five), b.exp(2, "GET", "/admin", kind="never")])
    add("http_version_1_9", b.get("/public/v", 1, version="HTTP/1.9"), [b.exp(1, "GET", "/public/v")])
    add("http_version_2_0", b.get("/public/v", 1, version="HTTP/2.0"), [b.exp(1, "GET", "/public/v")])

    # --- split across writes ----------------------------------------------------------------------------
    body = b"k=v"
    raw = b.post("/public/s1", 1, body) + b.get("/public/s2", 2)
    add("split_bytewise_pipeline", [("bytes", raw)],
        [b.exp(1, "POST", "/public/s1", body=body), b.exp(2, "GET", "/public/s2")])
    raw = b.post_chunked("/public/s1", 1, [b"abc", b"defg"]) + b.get("/orders", 2, U)
    add("split_bytewise_chunked_then_user", [("bytes", raw)],
        [b.exp(1, "POST", "/public/s1", body=b"abcdefg"), b.exp(2, "GET", "/orders", U)])
    payload = b.smuggled(2)
    add("split_bytewise_connection_content_length", [("bytes", b.post("/public/x", 1, payload, headers=["Connection: Content-Length"]))],
        [b.exp(1, "POST", "/public/x", body=payload), b.exp(2, "GET", "/admin", kind="never")])
    raw = b.head("POST", "/public/x", 1, headers=[f"Content-Length: {len(cl_te_body)}", "Transfer-Encoding: chunked"]) + cl_te_body
    add("split_head_body_cl_te", [raw[:len(raw) - len(cl_te_body)], cl_te_body],
        [b.exp(1, "POST", "/public/x", kind="invalid"), b.exp(2, "GET", "/admin", kind="never")],
        [b.exp(1, "POST", "/public/x", body=b""), b.exp(2, "GET", "/admin", kind="never")])

    # --- Expect: 100-continue ---------------------------------------------------------------------------
    body = b"expected-body"
    head = b.head("POST", "/public/e", 1, headers=[f"Content-Length: {len(body)}", "Expect: 100-continue"])
    add("expect_100_continue", [head, ("await100",), body], [b.exp(1, "POST", "/public/e", body=body)])
    head = b.head("POST", "/admin", 1, headers=[f"Content-Length: {len(body)}", "Expect: 100-continue"])
    add("expect_100_continue_admin_no_token", [head, ("await100",), body], [b.exp(1, "POST", "/admin", body=body)])
    head = b.head("POST", "/public/e", 1, headers=[f"Content-Length: {len(body)}", "Expect: 100-continue"])
    add("expect_100_continue_body_at_once_then_get", head + body + b.get("/public/after", 2),
        [b.exp(1, "POST", "/public/e", body=body), b.exp(2, "GET", "/public/after")])
    head = b.head("POST", "/admin", 1, headers=[f"Content-Length: {len(payload)}", "Expect: 100-continue"])
    add("expect_100_continue_admin_refused_body_smuggles", head + payload,
        [b.exp(1, "POST", "/admin", body=payload), b.exp(2, "GET", "/admin", kind="never")])

    # --- a body shorter than announced: the client then gives up ------------------------------------
    add("cl_body_short", b.head("POST", "/public/short", 1, headers=["Content-Length: 50"]) + five,
        [b.exp(1, "POST", "/public/short", body=five + b"?" * 45, incomplete=True, response_optional=True)])
    return cases


# --- the client: raw sockets, a small response parser ------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self.rec_id = None
        for n, v in headers:
            if n.lower() == "x-rec-id":
                try:
                    self.rec_id = int(v)
                except ValueError:
                    pass

    def describe(self):
        src = f"upstream #{self.rec_id}" if self.rec_id is not None else "jwtgate"
        return f"{self.status} from {src}"


class Client:
    def __init__(self, port, deadline):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.finals = []
        self.interim = []
        self.head_flags = []  # per expected final response: True when it answers a HEAD
        self.deadline = deadline
        self.garbage = None  # bytes that are not an HTTP response

    def send(self, data, bytewise=False):
        try:
            if bytewise:
                for i in range(len(data)):
                    self.sock.sendall(data[i:i + 1])
                    time.sleep(0.0003)  # shapes the writes; nothing waits on it
            else:
                self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _parse(self):
        while self.garbage is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
            if not m:
                self.garbage = self.buf[:200]
                return
            status = int(m.group(1))
            headers = []
            for line in lines[1:]:
                n, _, v = line.partition(":")
                headers.append((n.strip(), v.strip()))
            lower = {n.lower(): v for n, v in headers}
            rest = self.buf[end + 4:]
            if 100 <= status < 200:
                self.interim.append(Response(status, headers, b""))
                self.buf = rest
                continue
            is_head = len(self.finals) < len(self.head_flags) and self.head_flags[len(self.finals)]
            if is_head or status in (204, 304):
                body, used = b"", 0
            elif "chunked" in lower.get("transfer-encoding", "").lower():
                body, used = b"", 0
                while True:
                    le = rest.find(b"\r\n", used)
                    if le < 0:
                        return
                    try:
                        size = int(rest[used:le].split(b";")[0], 16)
                    except ValueError:
                        self.garbage = rest[used:used + 200]
                        return
                    if size == 0:
                        te = rest.find(b"\r\n\r\n", le)
                        if rest[le:le + 4] == b"\r\n\r\n":
                            used = le + 4
                        elif te >= 0:
                            used = te + 4
                        else:
                            return
                        break
                    if len(rest) < le + 2 + size + 2:
                        return
                    body += rest[le + 2:le + 2 + size]
                    used = le + 2 + size + 2
            elif "content-length" in lower:
                n = int(lower["content-length"])
                if len(rest) < n:
                    return
                body, used = rest[:n], n
            else:
                if not self.eof:
                    return
                body, used = rest, len(rest)
            self.finals.append(Response(status, headers, body))
            self.buf = rest[used:]

    def read_until(self, pred, timeout):
        """Reads until pred() holds, the connection closes, or timeout (bounded by the case's deadline)."""
        until = min(time.monotonic() + timeout, self.deadline)
        self._parse()
        while not pred() and not self.eof and self.garbage is None:
            left = until - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return pred()
            except OSError:
                data = b""
            if not data:
                self.eof = True
            self.buf += data
            self._parse()
        return pred()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- the recorder's control connection ---------------------------------------------------------------

class Recorder:
    def __init__(self, workdir):
        self.proc = subprocess.Popen([PYTHON, os.path.join(HERE, "recording_upstream.py")], stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(workdir, "recorder.log"), "wb"))
        self.log = os.path.join(workdir, "recorder.log")
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2:
            raise RuntimeError("the recording upstream did not start (is python3-h11 installed for /usr/bin/python3?)")
        self.port, self.control_port = int(line[0]), int(line[1])
        self.ctl = socket.create_connection(("127.0.0.1", self.control_port), timeout=5)
        self.ctl_buf = b""

    def command(self, line):
        self.ctl.sendall(line.encode() + b"\n")
        while b"\n" not in self.ctl_buf:
            data = self.ctl.recv(1 << 20)
            if not data:
                raise RuntimeError("the recording upstream went away:\n" + open(self.log, errors="replace").read()[-3000:])
            self.ctl_buf += data
        reply, self.ctl_buf = self.ctl_buf.split(b"\n", 1)
        return reply.decode()

    def reset(self, mode):
        return int(self.command(f"RESET {mode}").split()[1])

    def dump(self):
        return json.loads(self.command("DUMP"))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- the oracle --------------------------------------------------------------------------------------

def rec_ids(rec):
    return [v for n, v in rec["headers"] if n.lower() == "x-smug-id"]


def describe_rec(rec):
    hdrs = ", ".join(f"{n}: {v[:40]}" for n, v in rec["headers"]
                     if norm_header_name(n).startswith("x-jwt-") or norm_header_name(n) in OVERRIDE_HEADERS
                     or n.lower() in ("x-smug-id", "content-length", "transfer-encoding"))
    state = "" if rec["complete"] else (" ABORTED" if rec.get("aborted") else " INCOMPLETE")
    return f"#{rec['id']} {rec['method']} {rec['target'][:80]} body={rec['body_length']}B{state} [{hdrs}]"


def tokens_in(rec):
    """Every token-looking value the upstream can read: Authorization bearer values, jwt cookies."""
    found = []
    for n, v in rec["headers"]:
        ln = n.lower()
        if ln == "authorization":
            parts = v.split(None, 1)
            found.append((n, parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else v))
        elif ln == "cookie":
            for pair in re.split(r"[;,]", v):
                name, eq, value = pair.partition("=")
                if eq and name.strip().lower() == "jwt":
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] == '"':
                        value = value[1:-1]
                    found.append((f"{n}: {name.strip()}=", value))
    return found


def check_record_against(rec, e, partial=False):
    """The upstream message rec answers expected request e: is it what the client framed and may it
    be here? partial: rec is the beginning of a request jwtgate then refused or abandoned (a
    streaming proxy sends the head before it has seen all of the body); it must still be allowed
    to reach its route, carry clean headers and a prefix of the client's body."""
    errs = []
    if partial:
        if not allowed(e.route, e.token):
            errs.append(f"not authorised for route {e.route} but (partly) reached the upstream")
    elif e.kind == "invalid":
        errs.append(f"must be refused ({e.why}) but reached the upstream")
    elif e.kind == "never":
        errs.append("a smuggled request reached the upstream")
    elif not e.may_forward:
        errs.append(f"not authorised for route {e.route} but reached the upstream")
    if rec["method"] != e.method:
        errs.append(f"method {rec['method']!r}, the client sent {e.method!r}")
    got_path, want_path = normalize(split_target(rec["target"])[0], False), normalize(split_target(e.target)[0], False)
    if got_path != want_path:
        errs.append(f"path {rec['target']!r}, the client sent {e.target!r}")
    route = oracle_route(rec["target"])
    if not allowed(route, e.token):
        errs.append(f"upstream path {rec['target']!r} is in route {route}, which "
                    f"{'the ' + e.token.name if e.token else 'a request without a token'} may not reach")
    if e.kind != "ok":
        pass  # already reported: there is no body the client framed to compare with
    elif e.incomplete or partial:
        n = rec["body_length"]
        if n > len(e.body) or hashlib.sha256(e.body[:n]).hexdigest() != rec["body_sha256"]:
            errs.append(f"body {n}B is not what the client sent")
    else:
        if not rec["complete"]:
            errs.append(f"the upstream got an incomplete message ({rec['body_length']}B of {len(e.body)}B body)")
        elif rec["body_length"] != len(e.body) or rec["body_sha256"] != hashlib.sha256(e.body).hexdigest():
            errs.append(f"body {rec['body_length']}B sha256 {rec['body_sha256'][:12]}, the client framed "
                        f"{len(e.body)}B sha256 {hashlib.sha256(e.body).hexdigest()[:12]}")
    # Identity headers: only from the verified token.
    ident = [(n, v) for n, v in rec["headers"] + rec.get("trailers", []) if norm_header_name(n) in IDENTITY_HEADERS]
    verified = e.token if (e.token is not None and e.token.valid and e.route_min != "public" and e.may_forward) else None
    if verified is None:
        token_ok = e.token is not None and e.token.valid
        allowed_ident = ident == [("X-Jwt-Sub", e.token.sub)] if token_ok else False
        if ident and not allowed_ident:
            errs.append(f"identity header(s) without a verified token: {ident}")
    else:
        if len(ident) != 1 or norm_header_name(ident[0][0]) != "x-jwt-sub" or ident[0][1] != verified.sub:
            errs.append(f"identity headers {ident}, expected exactly X-Jwt-Sub: {verified.sub}")
        others = [where for where, t in tokens_in(rec) if t != verified.value]
        if others:
            errs.append(f"an unverified token beside the verified one reaches the upstream (in {', '.join(others)})")
    overrides = [(n, v) for n, v in rec["headers"] + rec.get("trailers", []) if norm_header_name(n) in OVERRIDE_HEADERS]
    if overrides:
        errs.append(f"override header(s) reached the upstream: {overrides}")
    return errs


def check_interp(interp, client, records, sentinel):
    errs = []
    expected = list(interp) + ([sentinel] if sentinel else [])
    by_rid = {}
    for rec in records:
        ids = rec_ids(rec)
        if len(ids) != 1:
            continue  # reported by the caller
        by_rid.setdefault(ids[0], []).append(rec)
    by_rec = {rec["id"]: rec for rec in records}
    known = {e.rid for e in expected}
    ci = 0
    refused = False
    for e in expected:
        rs = by_rid.get(e.rid, [])
        if e.kind == "never":
            for rec in rs:
                errs.append(f"smuggled request {e.label()} reached the upstream ({describe_rec(rec)})")
            continue
        if len(rs) > 1:
            errs.append(f"the upstream received {e.label()} {len(rs)} times")
        c = client.finals[ci] if ci < len(client.finals) else None
        if c is None:
            for rec in rs:
                if rec["complete"]:
                    errs.append(f"the upstream received {e.label()} but the client got no response ({describe_rec(rec)})")
                else:
                    errs += [f"{e.label()}: {x} ({describe_rec(rec)})" for x in check_record_against(rec, e, partial=True)]
            if rs:
                pass
            elif e.kind == "invalid" and not refused:
                errs.append(f"{e.label()} must be refused ({e.why}) but got no response")
            elif not refused and not e.response_optional:
                errs.append(f"no response to {e.label()}")
            continue
        ci += 1
        if c.rec_id is not None:
            rec = by_rec.get(c.rec_id)
            if rec is None:
                errs.append(f"the response to {e.label()} names upstream message #{c.rec_id}, not recorded in this case")
                continue
            if rec not in rs:
                errs.append(f"the response to {e.label()} belongs to another upstream message: {describe_rec(rec)}")
            errs += [f"{e.label()}: {x} ({describe_rec(rec)})" for x in check_record_against(rec, e)]
        else:
            if is_refusal(c.status):
                refused = True
                if e.must_forward:
                    errs.append(f"control request {e.label()} refused with {c.status}")
                for rec in rs:
                    if rec["complete"]:
                        errs.append(f"{e.label()} was refused with {c.status} but the upstream received it ({describe_rec(rec)})")
                    else:
                        errs += [f"{e.label()}: {x} ({describe_rec(rec)})" for x in check_record_against(rec, e, partial=True)]
            else:
                errs.append(f"jwtgate answered {e.label()} with {c.status}"
                            + (f" and the upstream received it ({describe_rec(rs[0])})" if rs else ""))
    if ci < len(client.finals):
        extra = client.finals[ci:]
        errs.append("the client got more responses than it sent requests: " + ", ".join(r.describe() for r in extra))
    for rid, rs in by_rid.items():
        if rid not in known:
            for rec in rs:
                errs.append(f"the upstream received a message that is not one of this case's requests ({describe_rec(rec)})")
    return errs


def judge(case_interps, client, dump, sentinel):
    records = dump["records"]
    common = []
    for err in dump["errors"]:
        common.append(f"h11 {err['kind']} error on the upstream: {err['error']} (unparsed: {err['unparsed'][:80]!r})")
    for p in dump["pending"]:
        where = "inside a body" if p["in_body"] else "as a partial request head"
        common.append(f"{p['bytes']}B left waiting on an upstream connection {where}: {p['preview'][:80]!r}")
    for rec in records:
        ids = rec_ids(rec)
        if len(ids) != 1:
            common.append(f"the upstream received a message with {len(ids)} X-Smug-Id headers ({describe_rec(rec)})")
    if client.garbage is not None:
        common.append(f"the client got bytes that are not an HTTP response: {client.garbage[:80]!r}")
    best = None
    for interp in case_interps:
        errs = check_interp(interp, client, records, sentinel)
        if not errs:
            return common
        if best is None:
            best = errs
    return common + best


# --- running ---------------------------------------------------------------------------------------

def http_get(port, path, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
            return int(m.group(1)) if m else 0
    except OSError:
        return 0


class Gate:
    def __init__(self, binary, workdir, upstream_port):
        self.binary, self.workdir = binary, workdir
        subprocess.run([binary, "keygen", "--alg", "ES256", "--kid", KID, "--out", os.path.join(workdir, "key")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10)
        self.tokens = {
            "user": Token("user-token", self.mint("alice", "read"), "alice", {"read"}, True),
            "admin": Token("admin-token", self.mint("root", "admin read"), "root", {"admin", "read"}, True),
            "forged": Token("forged-token", forged_token("admin", "admin"), "admin", {"admin"}, False),
        }
        for attempt in range(3):
            self.port, admin = free_port(), free_port()
            cfg = os.path.join(workdir, "jwtgate.yaml")
            with open(cfg, "w") as f:
                f.write(f"""listen: 127.0.0.1:{self.port}
admin_listen: 127.0.0.1:{admin}
upstream: http://127.0.0.1:{upstream_port}
workers: 1
providers:
  - name: main
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [ES256]
    jwks: {{file: {os.path.join(workdir, 'key.jwks.json')}}}
    token_sources:
      - {{header: Authorization, prefix: "Bearer "}}
      - {{cookie: jwt}}
    claims_to_headers: {{sub: X-Jwt-Sub}}
routes:
  - prefix: /public
    auth: none
  - prefix: /admin
    require_scopes: [admin]
  - prefix: /
limits: {{header_timeout: 3s, idle_timeout: 10s, upstream_timeout: 3s}}
log: {{level: warn, access_log: false}}
""")
            self.out = open(os.path.join(workdir, f"jwtgate.{attempt}.log"), "wb")
            self.proc = subprocess.Popen([binary, "--config", cfg], stdout=self.out, stderr=subprocess.STDOUT)
            until = time.monotonic() + 10
            while time.monotonic() < until and self.proc.poll() is None:
                if http_get(admin, "/readyz", 0.5) == 200:
                    return
                time.sleep(0.02)  # polling a server that is starting; nothing else to wait on
            self.stop()
        log = open(os.path.join(workdir, f"jwtgate.{attempt}.log"), "rb").read().decode(errors="replace")
        raise RuntimeError(f"jwtgate did not become ready:\n{log[-3000:]}")

    def mint(self, sub, scope):
        claims = json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "scope": scope})
        out = subprocess.run([self.binary, "mint", "--key", os.path.join(self.workdir, "key.pem"), "--alg", "ES256",
                              "--kid", KID, "--claims", claims, "--ttl", "15m"],
                             check=True, capture_output=True, timeout=10)
        return out.stdout.decode().strip()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


RUNS = [("cl", "cl", False), ("chunked", "chunked", False), ("keepalive-cl", "cl", True),
        ("keepalive-chunked", "chunked", True)]


def run_case(case, run_name, mode, keepalive, gate, recorder, builder, flush_needed):
    start = time.monotonic()
    deadline = start + 1.9
    if recorder.reset(mode) or flush_needed:
        # An upstream connection was left in the middle of a message (already a finding); it is
        # closed now. One retryable request lets jwtgate notice before the case runs.
        try:
            fc = Client(gate.port, deadline)
            fc.head_flags = [False]
            fc.send(builder.get("/public/flush", None))
            fc.read_until(lambda: len(fc.finals) >= 1, 0.5)
            fc.close()
        except OSError:
            pass
        recorder.reset(mode)
    interps = case.interps
    prefix = []
    if keepalive:
        prefix = [builder.exp(90, "GET", "/public/warmup", must_forward=True)]
        interps = [prefix + list(i) for i in interps]
    primary = interps[0]
    client = Client(gate.port, deadline)
    client.head_flags = [e.head for e in primary if e.kind != "never"]
    if keepalive:
        client.send(builder.get("/public/warmup", 90))
        client.read_until(lambda: len(client.finals) >= 1, READ_TIMEOUT)
    for step in case.steps:
        if client.eof:
            break
        if isinstance(step, bytes):
            if not client.send(step):
                break
        elif step[0] == "bytes":
            if not client.send(step[1], bytewise=True):
                break
        elif step[0] == "await100":
            n = len(client.finals)
            client.read_until(lambda: client.interim or len(client.finals) > n, CONTINUE_TIMEOUT)
            if len(client.finals) > n:
                break  # answered without 100 Continue: the client does not send the body
    want = len([e for e in primary if e.kind != "never"])
    client.read_until(lambda: len(client.finals) >= want, READ_TIMEOUT)
    sentinel = None
    closing = client.finals and any(n.lower() == "connection" and "close" in v.lower() for n, v in client.finals[-1].headers)
    if not client.eof and not closing and len(client.finals) >= want and client.garbage is None:
        sentinel = builder.exp(99, "GET", "/public/sentinel", must_forward=True)
        client.head_flags = [e.head for e in primary if e.kind != "never"] + [False] * 8
        if client.send(builder.get("/public/sentinel", 99)):
            client.read_until(lambda: len(client.finals) > want, SENTINEL_TIMEOUT)
        if len(client.finals) <= want and client.eof:
            sentinel = None  # closed before the sentinel was read: the case's own checks decide
    client.close()
    dump = recorder.dump()
    errs = judge(interps, client, dump, sentinel)
    if not gate.alive():
        errs.insert(0, "jwtgate exited")
    bad_upstream = bool(dump["errors"] or dump["pending"])
    return errs, bad_upstream, dump, client


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jwtgate", help="the jwtgate binary (required unless --list)")
    ap.add_argument("-k", dest="filter", default="", help="only cases whose name contains this")
    ap.add_argument("--runs", default=",".join(r[0] for r in RUNS), help="comma-separated runs: " + ", ".join(r[0] for r in RUNS))
    ap.add_argument("-v", "--verbose", action="store_true", help="print what the upstream saw for every case")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args()

    if args.list:
        dummy = {k: Token(k, "t", "s", set(), True) for k in ("user", "admin", "forged")}
        for c in build_cases(Builder("0000", dummy)):
            print(c.name)
        return 0

    if not args.jwtgate:
        ap.error("--jwtgate is required")
    t0 = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="jwtgate-smuggling-")
    recorder = gate = None
    passed = failed = 0
    try:
        recorder = Recorder(workdir)
        gate = Gate(os.path.abspath(args.jwtgate), workdir, recorder.port)
        runs = [r for r in RUNS if r[0] in args.runs.split(",")]
        run_no = 0
        flush = False
        for run_name, mode, keepalive in runs:
            names = [c.name for c in build_cases(Builder("0000", gate.tokens))]
            for idx, name in enumerate(names):
                if args.filter and args.filter not in name:
                    continue
                run_no += 1
                builder = Builder(f"{run_no:04d}", gate.tokens)
                case = build_cases(builder)[idx]
                label = f"{case.name}@{run_name}"
                if time.monotonic() - t0 > HARNESS_BUDGET:
                    print(f"FAIL {label}: not run, the harness ran out of its time budget", flush=True)
                    failed += 1
                    continue
                try:
                    errs, flush, dump, client = run_case(case, run_name, mode, keepalive, gate, recorder, builder, flush)
                except OSError as e:
                    errs, flush, dump, client = [f"client error: {e}"], True, None, None
                if errs:
                    failed += 1
                    print(f"FAIL {label}: " + "; ".join(dict.fromkeys(errs)), flush=True)
                else:
                    passed += 1
                    print(f"PASS {label}", flush=True)
                if args.verbose and dump:
                    for rec in dump["records"]:
                        print(f"    upstream saw {describe_rec(rec)}")
                    print("    client got " + (", ".join(r.describe() for r in client.finals) or "no response")
                          + (" and the connection closed" if client.eof else ""))
                if not gate.alive():
                    print("jwtgate exited; its log:\n" + open(gate.out.name, "rb").read().decode(errors="replace")[-2000:])
                    raise RuntimeError("jwtgate exited")
    except Exception as e:  # the harness itself failed: say so, and count it
        print(f"FAIL harness: {type(e).__name__}: {e}", flush=True)
        failed += 1
    finally:
        if gate:
            gate.stop()
        if recorder:
            recorder.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
