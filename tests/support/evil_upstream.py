#!/usr/bin/env python3
"""A malicious (or broken) upstream for the response-path tests: it reads each request head and
answers with raw bytes chosen by the request path, /s/<scenario>, whatever HTTP says.

Usage: evil_upstream.py PORT. It records (connection number, path) for every request it reads;
GET /__log on its own port returns that record as JSON lines and clears it. Everything binds
to 127.0.0.1 and every loop is bounded.
"""
import gzip
import json
import socket
import sys
import threading
import time

FAKE = b"HTTP/1.1 200 OK\r\nSet-Cookie: session=forged\r\nContent-Length: 6\r\n\r\nforged"
REAL = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"
GZ = gzip.compress(b"hello world", mtime=0)
BYTEWISE = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nreal\r\n0\r\nX-T: y\r\n\r\n")


def big_head(total):
    # One response head of about `total` bytes, sent in 64 KiB pieces.
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    yield b"HTTP/1.1 200 OK\r\n"
    sent = 0
    piece = line * 64
    while sent < total:
        yield piece
        sent += len(piece)
    yield b"Content-Length: 2\r\n\r\nok"


SCENARIOS = {
    # A 1xx "body" that is a whole forged response, then the real one.
    "interim-body": [b"HTTP/1.1 150 X\r\nContent-Length: %d\r\n\r\n" % len(FAKE) + FAKE + REAL],
    "interim-chunked": [b"HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nforged\r\n0\r\n\r\n" + REAL],
    "interim-ok": [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + REAL],
    "interim-flood": [b"HTTP/1.1 103 Early Hints\r\n\r\n" * 1000 + REAL],
    "huge-head": lambda: big_head(100 * 1024 * 1024),
    "many-fields": [b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(300)) +
                    b"Content-Length: 2\r\n\r\nok"],
    "head-under-cap": [b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 50000 + b"\r\nContent-Length: 2\r\n\r\nok"],
    "reason-ctl": [b"HTTP/1.1 200 O\x01K\x7f\r\nContent-Length: 2\r\n\r\nok"],
    "reason-crlf": [b"HTTP/1.1 200 OK\rHTTP/1.1 302 Found\r\nContent-Length: 2\r\n\r\nok"],
    "status-000": [b"HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\nok"],
    "status-099": [b"HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok"],
    "status-600": [b"HTTP/1.1 600 High\r\nContent-Length: 2\r\n\r\nok"],
    "status-999": [b"HTTP/1.1 999 Nine\r\nContent-Length: 2\r\n\r\nok"],
    "status-599": [b"HTTP/1.1 599 Whatever\r\nContent-Length: 2\r\n\r\nok"],
    "status-418": [b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 2\r\n\r\nok"],
    "conn-cl": [b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"],
    "conn-te": [b"HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\n\r\n"],
    "cl-spelling": [b"HTTP/1.1 200 OK\r\nContent_Length: 99\r\nContent-Length: 5\r\n\r\nhello"],
    "head-cl": [b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"],
    "no-content-cl": [b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"],
    "leftover": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                 b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"],
    "switch": [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw-tunnel-bytes"],
    "switch-no-upgrade": [b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\nraw"],
    "ok": [REAL],
    # --- break-resp additions (attacks on d38ec72) ---
    # A whole 1xx/final sequence, one byte per TCP segment: every read boundary is exercised.
    "bytewise": "BYTEWISE",
    "interim-16": [b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" * 16 + REAL],
    "interim-17": [b"HTTP/1.1 103 Early Hints\r\n\r\n" * 17 + REAL],
    "interim-close": [b"HTTP/1.1 103 Early Hints\r\n\r\n", 0.05, "CLOSE"],
    "interim-cl0": [b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n" + REAL],
    "fields-200": [b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(199)) +
                   b"Content-Length: 2\r\n\r\nok"],
    "long-reason": [b"HTTP/1.1 200 " + b"R" * 70000 + b"\r\nContent-Length: 2\r\n\r\nok"],
    "ows-flood": [b"HTTP/1.1 200 OK\r\nX-A:" + b" " * (1024 * 1024) + b"v\r\nContent-Length: 2\r\n\r\nok"],
    "split-fields": [b"HTTP/1.1 200 OK\r\n"] + [item for i in range(150) for item in (b"X-F%d: " % i + b"v" * 150, 0.001, b"v" * 150 + b"\r\n")] +
                    [b"Content-Length: 2\r\n\r\nok"],
    "te-cl": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
    "cl-dup-equal": [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"],
    "cl-dup-differ": [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 2\r\n\r\nhello"],
    "cl-plus": [b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"],
    "cl-zeros": [b"HTTP/1.1 200 OK\r\nContent-Length: 0005\r\n\r\nhello"],
    "obs-fold": [b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 5\r\n\r\nhello"],
    "value-nul": [b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 5\r\n\r\nhello"],
    "name-space": [b"HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 5\r\n\r\nhello"],
    "chunk-overflow": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc"],
    "chunk-ext": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;" + b"e" * 100000 + b"=\"x\"\r\nreal\r\n0\r\n\r\n"],
    "trailers": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n4\r\nreal\r\n0\r\n"
                 b"X-T: 1\r\nSet-Cookie: t=forged\r\n\r\n"],
    "trailer-cl": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nreal\r\n0\r\nContent-Length: 99\r\n\r\n"],
    "chunked": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nreal\r\n0\r\n\r\n"],
    "no-content-te-late": [b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", 0.05,
                           b"6\r\nforged\r\n0\r\n\r\n"],
    "not-modified-body": [b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: %d\r\n\r\n" % len(FAKE) + FAKE],
    "http10-keepalive": [b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nreal"],
    "http10-eof": [b"HTTP/1.0 200 OK\r\n\r\nreal", "CLOSE"],
    "switch-cl": [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Content-Length: 3\r\n\r\nraw-tunnel-bytes"],
    "switch-h2c": [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nh2c-bytes"],
    "early-next": [REAL, 0.3, FAKE],
    # Exposing (fail on d38ec72):
    "te-gzip-chunked": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n%x\r\n" % len(GZ) + GZ +
                        b"\r\n0\r\n\r\n"],
    "te-gzip-eof": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" + GZ, "CLOSE"],
    "version-2": [b"HTTP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nreal"],
    "version-09": [b"HTTP/0.9 200 OK\r\nContent-Length: 4\r\n\r\nreal"],
    "connect-ok": [b"HTTP/1.1 200 Connection Established\r\n\r\nupstream-tunnel-bytes"],
    # A HEAD answered with a body (a common upstream bug), the body a few ms late: the pooled
    # connection is reused at once and that body is read as the next request's response.
    "head-late-body": [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(FAKE), 0.3, FAKE],
    # The body names the request it answers.
    "echo": "ECHO",
}

log = []
log_lock = threading.Lock()
counter = [0]


def read_head(conn, buf):
    while b"\r\n\r\n" not in buf:
        if len(buf) > 65536:
            return None, b""
        data = conn.recv(65536)
        if not data:
            return None, b""
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def serve(conn, number):
    buf = b""
    try:
        for _ in range(100):
            head, buf = read_head(conn, buf)
            if head is None:
                return
            path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
            if path == "/__log":
                with log_lock:
                    body = "".join(json.dumps(e) + "\n" for e in log).encode()
                    log.clear()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                continue
            with log_lock:
                log.append([number, path])
            name = path.split("?", 1)[0].rsplit("/", 1)[-1]
            if path.startswith("/s/") and name in SCENARIOS:
                pieces = SCENARIOS[name]
                if callable(pieces):
                    pieces = pieces()
                elif pieces == "BYTEWISE":
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    pieces = [item for i in range(len(BYTEWISE)) for item in (BYTEWISE[i:i + 1], 0.002)]
                elif pieces == "ECHO":
                    body = path.encode("latin-1")
                    pieces = [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body]
                for piece in pieces:
                    if isinstance(piece, float):
                        time.sleep(piece)
                    elif piece == "CLOSE":
                        return
                    else:
                        conn.sendall(piece)
            else:
                conn.sendall(REAL)
    except OSError:
        return
    finally:
        conn.close()


def main():
    port = int(sys.argv[1])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    print(port, flush=True)
    while True:
        conn, _ = listener.accept()
        counter[0] += 1
        threading.Thread(target=serve, args=(conn, counter[0]), daemon=True).start()


if __name__ == "__main__":
    main()
