#!/usr/bin/python3
"""A real HTTP/1.1 upstream for jwtgate's proxy tests (Python's http.server, an independent
implementation). Binds 127.0.0.1 on a free port, prints the port on stdout, serves until killed.

  GET  /anything            -> 200 JSON {"method","path","headers":[[name,value]...]}
  POST /upload              -> 200 JSON {"length", "sha256"} of the body (Content-Length or chunked)
  GET  .../download?size=N[&chunked=1] -> N bytes of a repeating pattern, streamed
  GET  /slow?ms=N           -> waits N ms, then answers like /anything
  GET  /close-mid           -> promises 100000 bytes, sends 10, closes
  GET  /status?code=N       -> empty response with that status
  GET  /ws                  -> WebSocket upgrade; echoes text/binary frames
  GET  /close-next          -> answers, then closes the connection when the next request on it
                               arrives, without answering it (a pooled connection gone stale)
  GET  /stall-body?ms=N     -> promises 20 bytes, sends 10, waits N ms, sends the rest
  POST .../early            -> answers 200 (promising 100 bytes, sending 10) before reading the body
  GET  /__seen[?clear=1]    -> (sent directly, not through jwtgate) every request head this
                               upstream has parsed so far, as JSON [{method, path, headers}]

With --name NAME every response carries X-Upstream: NAME (tests with several upstreams).
"""
import base64
import hashlib
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PATTERN = bytes(range(256)) * 256  # 64 KiB
SEEN = []  # every request head parsed, for tests whose oracle is what the upstream received
SEEN_LOCK = threading.Lock()
NAME = sys.argv[sys.argv.index("--name") + 1] if "--name" in sys.argv else ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def end_headers(self):
        if NAME:
            self.send_header("X-Upstream", NAME)
        super().end_headers()

    def parse_request(self):
        if not super().parse_request():
            return False
        if self.path.startswith("/__seen"):
            return True
        with SEEN_LOCK:
            SEEN.append({"method": self.command, "path": self.path, "headers": list(self.headers.items())})
        if getattr(self, "close_next", False):
            self.close_connection = True
            return False  # read, never answered: the connection just closes
        return True

    def _json(self, obj, code=200):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self):
        digest, total = hashlib.sha256(), 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, 1 << 16))
                    digest.update(data)
                    total += len(data)
                    remaining -= len(data)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length", "0"))
            while remaining:
                data = self.rfile.read(min(remaining, 1 << 16))
                if not data:
                    break
                digest.update(data)
                total += len(data)
                remaining -= len(data)
        return total, digest.hexdigest()

    def _echo(self):
        total, digest = self._read_body()
        self._json({"method": self.command, "path": self.path, "headers": list(self.headers.items()),
                    "body_length": total, "body_sha256": digest})

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/__seen":
            with SEEN_LOCK:
                seen = list(SEEN)
                if query.get("clear"):
                    SEEN.clear()
            return self._json(seen)
        if url.path.endswith("/close-next"):
            self.close_next = True
            return self._echo()
        if url.path.endswith("/stall-body"):
            self.send_response(200)
            self.send_header("Content-Length", "20")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            time.sleep(int(query.get("ms", ["1000"])[0]) / 1000)
            self.wfile.write(b"abcdefghij")
            return
        if url.path.endswith("/download"):
            size = int(query.get("size", ["0"])[0])
            chunked = query.get("chunked", ["0"])[0] == "1"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(size))
            self.end_headers()
            sent = 0
            while sent < size:
                n = min(len(PATTERN), size - sent)
                if chunked:
                    self.wfile.write(b"%x\r\n" % n + PATTERN[:n] + b"\r\n")
                else:
                    self.wfile.write(PATTERN[:n])
                sent += n
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            return
        if url.path.endswith("/slow"):
            time.sleep(int(query.get("ms", ["1000"])[0]) / 1000)
            return self._echo()
        if url.path.endswith("/close-mid"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if url.path.endswith("/status"):
            self.send_response(int(query.get("code", ["200"])[0]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if url.path.endswith("/ws") and self.headers.get("Upgrade", "").lower() == "websocket":
            return self._websocket()
        return self._echo()

    def do_POST(self):
        if urlsplit(self.path).path.endswith("/early"):
            # Answers before reading the body, promising more than it sends, then waits.
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            time.sleep(3)
            self.close_connection = True
            return
        return self._echo()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _echo

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "1234")
        self.end_headers()

    def _websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(self.rfile.read(2), "big")
            elif length == 127:
                length = int.from_bytes(self.rfile.read(8), "big")
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                return
            frame = bytes([0x80 | opcode])
            if len(payload) < 126:
                frame += bytes([len(payload)])
            else:
                frame += bytes([126]) + len(payload).to_bytes(2, "big")
            self.wfile.write(frame + payload)
            self.wfile.flush()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
