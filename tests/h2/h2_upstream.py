#!/usr/bin/python3
"""A recording h2c upstream for jwtgate's HTTP/2 tests (the python h2 library, one thread per
connection). Binds 127.0.0.1 on a free port (or --port), prints the port, serves until killed.

Connections that open with the HTTP/2 preface are served as h2c (prior knowledge); anything else
is read as one HTTP/1.1 request and answered with `Connection: close` (recorded with protocol
"http/1.1": a jwtgate that should speak h2c to this upstream and does not shows up that way).

Inbound header validation and normalisation are OFF, so what is recorded is what jwtgate sent,
malformed or not: header names exactly as received (case included), values as bytes decoded
latin-1.

  every request      -> 200, content-type text/plain, body "ok <path>\\n", then the trailers
                        x-upstream-trailer: yes and x-request-trailers: <number received>
                        (HTTP/1.1: no trailers, just the body)
  GET /__seen[?clear=1] (over h2c or HTTP/1.1, sent directly, not recorded)
                     -> JSON [{protocol, stream_id, pseudo: {":method": ..}, headers: [[name, value]..],
                        body_length, trailers: [[name, value]..] | null, ended, reset}] in arrival order

A record is made when a request's HEADERS arrive (before its body), so a request whose body
never ends, or that is reset, is still seen.
"""
import argparse
import json
import socket
import sys
import threading
from urllib.parse import parse_qs, urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SEEN = []
LOCK = threading.Lock()


def text(value):
    return value.decode("latin-1") if isinstance(value, bytes) else value


def seen_json(query):
    with LOCK:
        body = json.dumps(SEEN).encode()
        if parse_qs(query).get("clear"):
            SEEN.clear()
    return body


def recv_exactly_head(sock, first):
    data = first
    while b"\r\n\r\n" not in data and len(data) < 1 << 20:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def serve_http1(sock, first):
    data = recv_exactly_head(sock, first)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    method, target = text(parts[0]), text(parts[1]) if len(parts) > 1 else "/"
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append([text(name), text(value.strip())])
    url = urlsplit(target)
    if url.path == "/__seen":
        body = seen_json(url.query)
        ctype = b"application/json"
    else:
        length = 0
        for name, value in headers:
            if name.lower() == "content-length" and value.isdigit():
                length = int(value)
        got = len(rest)
        sock.settimeout(10)
        while got < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        with LOCK:
            SEEN.append({"protocol": "http/1.1", "stream_id": None, "pseudo": {":method": method, ":path": target},
                         "headers": headers, "body_length": got, "trailers": None, "ended": True, "reset": None})
        body = f"ok {target}\n".encode()
        ctype = b"text/plain"
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: " +
                 str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


class H2Server:
    def __init__(self, sock, first):
        self.sock = sock
        config = h2.config.H2Configuration(client_side=False, validate_inbound_headers=False,
                                           normalize_inbound_headers=False, validate_outbound_headers=False,
                                           header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 20,
        })
        self.records = {}  # stream id -> this connection's record of it
        self.first = first
        self.pending = b""
        self.preface_left = len(PREFACE)

    def next_frame_length(self):
        """Bytes of self.pending up to the end of the next complete frame (the preface first)."""
        if self.preface_left:
            if len(self.pending) < self.preface_left:
                return None
            n, self.preface_left = self.preface_left, 0
            return n
        if len(self.pending) < 9:
            return None
        n = 9 + int.from_bytes(self.pending[:3], "big")
        return n if len(self.pending) >= n else None

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def run(self):
        self.conn.initiate_connection()
        self.flush()
        data = self.first
        while True:
            if data:
                # One frame at a time, so a frame h2 refuses (a DATA frame beyond content-length)
                # does not lose the events of the frames before it in the same read.
                self.pending += data
                while True:
                    n = self.next_frame_length()
                    if n is None:
                        break
                    chunk, self.pending = self.pending[:n], self.pending[n:]
                    try:
                        events = self.conn.receive_data(chunk)
                    except h2.exceptions.ProtocolError:
                        self.flush()
                        return
                    for event in events:
                        self.handle(event)
                self.flush()
            data = self.sock.recv(65536)
            if not data:
                return

    def handle(self, event):
        if isinstance(event, h2.events.RequestReceived):
            pseudo, headers = {}, []
            for name, value in event.headers:
                name, value = text(name), text(value)
                if name.startswith(":"):
                    pseudo[name] = value
                else:
                    headers.append([name, value])
            url = urlsplit(pseudo.get(":path", ""))
            if url.path == "/__seen":
                self.respond(event.stream_id, seen_json(url.query), "application/json", trailers=False)
                return
            record = {"protocol": "h2", "stream_id": event.stream_id, "pseudo": pseudo, "headers": headers,
                      "body_length": 0, "trailers": None, "ended": False, "reset": None}
            self.records[event.stream_id] = record
            with LOCK:
                SEEN.append(record)
            if event.stream_ended is not None:
                self.finish(event.stream_id)
        elif isinstance(event, h2.events.DataReceived):
            record = self.records.get(event.stream_id)
            if record is not None:
                with LOCK:
                    record["body_length"] += len(event.data)
            if event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if event.stream_ended is not None:
                self.finish(event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            record = self.records.get(event.stream_id)
            if record is not None:
                with LOCK:
                    record["trailers"] = [[text(n), text(v)] for n, v in event.headers]
            if event.stream_ended is not None:
                self.finish(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            record = self.records.get(event.stream_id)
            if record is not None:
                with LOCK:
                    record["reset"] = int(event.error_code)

    def finish(self, stream_id):
        record = self.records.get(stream_id)
        if record is None or record["ended"]:
            return
        with LOCK:
            record["ended"] = True
        trailers = len(record["trailers"] or [])
        self.respond(stream_id, f"ok {record['pseudo'].get(':path', '')}\n".encode(), "text/plain",
                     trailers=[("x-upstream-trailer", "yes"), ("x-request-trailers", str(trailers))])

    def respond(self, stream_id, body, ctype, trailers):
        try:
            self.conn.send_headers(stream_id, [(":status", "200"), ("content-type", ctype),
                                               ("content-length", str(len(body)))] if not trailers else
                                   [(":status", "200"), ("content-type", ctype)])
            self.conn.send_data(stream_id, body, end_stream=not trailers)
            if trailers:
                self.conn.send_headers(stream_id, trailers, end_stream=True)
        except (h2.exceptions.ProtocolError, h2.exceptions.FlowControlError):
            pass  # the stream was reset meanwhile, or the body is larger than the window (not here)


def handle(sock):
    try:
        sock.settimeout(300)
        first = b""
        while len(first) < len(PREFACE):
            chunk = sock.recv(len(PREFACE) - len(first))
            if not chunk:
                return
            first += chunk
            if not PREFACE.startswith(first):
                break
        if first == PREFACE:
            H2Server(sock, first).run()
        else:
            serve_http1(sock, first)
    except OSError:
        pass
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    listener = socket.create_server(("127.0.0.1", args.port), backlog=256)
    print(listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
