#!/usr/bin/python3
"""A controllable fake identity provider (JWKS + OIDC discovery) for jwtgate's end-to-end tests
(Python's http.server, an independent implementation). Binds 127.0.0.1, prints the bound port as
the first stdout line, serves HTTP/1.1 with keep-alive until killed.

  usage: idp.py [--port N] [--tls CERTFILE KEYFILE] [--jwks-redirect URL]
    --port N   bind port N (default 0: a free port), so the IdP can be started late on a port
               the proxy already points to
    --tls C K  serve HTTPS with that PEM certificate chain and key
    --jwks-redirect URL
               GET /jwks.json always answers 302 to URL (absolute: another IdP, another
               scheme), whatever the state; for a TLS IdP, which cannot be controlled

  GET  /jwks.json        -> per `mode` (below); Cache-Control: max-age=N when `max_age` is set
  GET  [/prefix]/.well-known/openid-configuration
                         -> 200 {"issuer", "jwks_uri": "<scheme>://127.0.0.1:<port>/jwks.json",
                            "id_token_signing_alg_values_supported": ["ES256","RS256"]};
                            only modes `error` and `reset` apply here ("IdP down")
  GET  /redirect/<k>     -> redirect hops (see `redirects`)
  POST /_control         -> JSON object with any of the state keys below, plus
                            "reset_counts": true to zero the counters; 200 {"ok":true};
                            400 on an unknown key, a bad value or a body that is not a JSON object
  GET  /_counts          -> 200 {"jwks": n, "discovery": m}
  anything else          -> 404

State (all settable through /_control; each default follows the last ';'):
  jwks            the JWKS body (a string, or a JSON object which is re-serialized); {"keys":[]}
  mode            how /jwks.json answers:
                    ok                 200 application/json with `jwks`
                    error              500 with a short text body (discovery too)
                    garbage            200 application/json, body `this is not json {`
                    empty              200 {"keys":[]}
                    oversized          200, a valid JSON document of `oversize_bytes` bytes,
                                       with Content-Length
                    oversized_chunked  the same, Transfer-Encoding: chunked, no Content-Length
                    slow               waits `delay_ms`, then answers like `ok`
                    hang               reads the request, never answers; closes after 60 s (or
                                       as soon as the client goes away)
                    reset              closes the connection at once with no response (a TCP
                                       RST, SO_LINGER 0); discovery too
  max_age         null or an integer N >= 0 (Cache-Control: max-age=N on `ok`/`slow`); null
  issuer          the discovery document's issuer; null means the default
                  "<scheme>://127.0.0.1:<port>" (https under --tls)
  delay_ms        for `slow`; 10000
  oversize_bytes  for `oversized*`; 3 MiB
  redirects       N >= 0; when N > 0 a GET /jwks.json gets exactly N 302 responses before the
                  content: /jwks.json -> /redirect/1 -> ... -> /redirect/N-1 -> /jwks.json?final=1
                  (relative Locations; /jwks.json?final=1 always serves the content); 0

Counters: "jwks" counts every GET whose path (query aside) is /jwks.json, in any mode, so one
fetch through N > 0 redirects counts 2 (the first hit and the final=1 hit; /redirect/<k> hops are
not counted); "discovery" counts every GET of a .../.well-known/openid-configuration path.
"""
import argparse
import json
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MODES = ("ok", "error", "garbage", "empty", "oversized", "oversized_chunked", "slow", "hang", "reset")
EMPTY_JWKS = '{"keys":[]}'
DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
HANG_SECONDS = 60
PIECE = 1 << 16


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.jwks = EMPTY_JWKS
        self.mode = "ok"
        self.max_age = None
        self.issuer = None
        self.delay_ms = 10000
        self.oversize_bytes = 3 * 1024 * 1024
        self.redirects = 0
        self.counts = {"jwks": 0, "discovery": 0}

    def snapshot(self):
        with self.lock:
            return dict(jwks=self.jwks, mode=self.mode, max_age=self.max_age, issuer=self.issuer,
                        delay_ms=self.delay_ms, oversize_bytes=self.oversize_bytes, redirects=self.redirects)

    def count(self, name):
        with self.lock:
            self.counts[name] += 1


def _int(value, key):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer")
    return value


def parse_control(obj):
    """Validates a /_control body; returns the attribute updates and whether to reset counts."""
    if not isinstance(obj, dict):
        raise ValueError("body must be a JSON object")
    updates, reset_counts = {}, False
    for key, value in obj.items():
        if key == "jwks":
            if isinstance(value, str):
                updates["jwks"] = value
            elif isinstance(value, (dict, list)):
                updates["jwks"] = json.dumps(value)
            else:
                raise ValueError("jwks must be a string or a JSON object")
        elif key == "mode":
            if value not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)}")
            updates["mode"] = value
        elif key == "max_age":
            updates["max_age"] = None if value is None else _int(value, key)
        elif key == "issuer":
            if value is not None and not isinstance(value, str):
                raise ValueError("issuer must be a string or null")
            updates["issuer"] = value
        elif key in ("delay_ms", "oversize_bytes", "redirects"):
            updates[key] = _int(value, key)
        elif key == "reset_counts":
            if not isinstance(value, bool):
                raise ValueError("reset_counts must be a boolean")
            reset_counts = value
        else:
            raise ValueError(f"unknown key {key!r}")
    return updates, reset_counts


def oversized_body(size):
    """A syntactically valid JSON document of exactly `size` bytes (at least 11)."""
    head, tail = b'{"keys":[],"pad":"', b'"}'
    if size >= len(head) + len(tail):
        return head + b"x" * (size - len(head) - len(tail)) + tail
    return EMPTY_JWKS.encode().ljust(size, b" ")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()  # here, not in the accepting thread

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True  # the client went away (or broke TLS) mid-exchange

    # -- helpers --

    def _send(self, code, body, content_type="application/json", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for i in range(0, len(body), PIECE):
            self.wfile.write(body[i:i + PIECE])

    def _json(self, obj, code=200):
        self._send(code, json.dumps(obj, separators=(",", ":")))

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _error(self):
        self._send(500, "fake IdP: internal error\n", "text/plain")

    def _reset(self):
        """Closes the connection now without a byte of response: RST rather than FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.rfile.close()       # drop makefile()'s reference so close() really closes
        self.connection.close()  # the server's own shutdown/close afterwards are harmless no-ops

    def _hang(self):
        """Never answers; returns after HANG_SECONDS or once the client closes its side."""
        self.close_connection = True
        deadline = time.monotonic() + HANG_SECONDS
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(PIECE):
                    return
        except (OSError, ValueError):  # includes the timeout
            return

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _base_url(self):
        scheme = "https" if self.server.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    # -- endpoints --

    def do_GET(self):
        url = urlsplit(self.path)
        state = self.server.state
        if url.path == "/jwks.json":
            state.count("jwks")
            if self.server.jwks_redirect:
                return self._redirect(self.server.jwks_redirect)
            return self._jwks(state.snapshot(), parse_qs(url.query).get("final", [""])[0] == "1")
        if url.path.startswith("/redirect/"):
            try:
                k = int(url.path[len("/redirect/"):])
            except ValueError:
                return self._send(404, "not found\n", "text/plain")
            n = state.snapshot()["redirects"]
            return self._redirect(f"/redirect/{k + 1}" if k + 1 < n else "/jwks.json?final=1")
        if url.path.endswith(DISCOVERY_SUFFIX):
            state.count("discovery")
            return self._discovery(state.snapshot())
        if url.path == "/_counts":
            with state.lock:
                counts = dict(state.counts)
            return self._json(counts)
        return self._send(404, "not found\n", "text/plain")

    def do_POST(self):
        if urlsplit(self.path).path != "/_control":
            self._read_body()
            return self._send(404, "not found\n", "text/plain")
        body = self._read_body()
        try:
            updates, reset_counts = parse_control(json.loads(body))
        except (ValueError, UnicodeDecodeError) as e:  # json.JSONDecodeError is a ValueError
            return self._json({"ok": False, "error": str(e)}, 400)
        state = self.server.state
        with state.lock:
            for key, value in updates.items():
                setattr(state, key, value)
            if reset_counts:
                state.counts = {name: 0 for name in state.counts}
        return self._json({"ok": True})

    def _jwks(self, s, final):
        mode = s["mode"]
        if s["redirects"] > 0 and not final:
            return self._redirect("/redirect/1" if s["redirects"] > 1 else "/jwks.json?final=1")
        if mode == "slow":
            time.sleep(s["delay_ms"] / 1000)
            mode = "ok"
        if mode == "ok":
            headers = [] if s["max_age"] is None else [("Cache-Control", f"max-age={s['max_age']}")]
            return self._send(200, s["jwks"], headers=headers)
        if mode == "error":
            return self._error()
        if mode == "garbage":
            return self._send(200, "this is not json {")
        if mode == "empty":
            return self._send(200, EMPTY_JWKS)
        if mode == "oversized":
            return self._send(200, oversized_body(s["oversize_bytes"]))
        if mode == "oversized_chunked":
            body = oversized_body(s["oversize_bytes"])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), PIECE):
                piece = body[i:i + PIECE]
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if mode == "hang":
            return self._hang()
        return self._reset()

    def _discovery(self, s):
        if s["mode"] == "error":
            return self._error()
        if s["mode"] == "reset":
            return self._reset()
        base = self._base_url()
        self._json({"issuer": s["issuer"] if s["issuer"] is not None else base,
                    "jwks_uri": base + "/jwks.json",
                    "id_token_signing_alg_values_supported": ["ES256", "RS256"]})


class Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port, tls, jwks_redirect=None):
        super().__init__(("127.0.0.1", port), Handler)
        self.state = State()
        self.jwks_redirect = jwks_redirect
        self.tls = tls is not None
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile=tls[0], keyfile=tls[1])
            # The handshake runs in each connection's thread (Handler.setup), so a client that
            # never completes it cannot stall the accept loop.
            self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], OSError):  # disconnects, failed TLS handshakes, timeouts
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description="fake identity provider for jwtgate's tests")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls", nargs=2, metavar=("CERTFILE", "KEYFILE"))
    parser.add_argument("--jwks-redirect", metavar="URL")
    args = parser.parse_args()
    server = Server(args.port, args.tls, args.jwks_redirect)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
