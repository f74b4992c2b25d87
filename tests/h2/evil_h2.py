#!/usr/bin/python3
"""A bulk h2c upstream for tests/h2/hardening.py (python h2, validation off, one thread per
connection and one per response). Binds 127.0.0.1 on a free port, prints the port, serves until
killed. It honours HTTP/2 flow control: it sends only what the receiver's windows allow, so a
proxy that never reads (or never credits the windows back) leaves it waiting.

  any path ending in /big?size=N   200 application/octet-stream, N bytes of 'x', then END_STREAM
  anything else                    200 text/plain "ok <path>\\n"
"""
import socket
import sys
import threading
from urllib.parse import parse_qs, urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Conn:
    def __init__(self, sock):
        self.sock = sock
        cfg = h2.config.H2Configuration(client_side=False, validate_inbound_headers=False,
                                        normalize_inbound_headers=False, validate_outbound_headers=False,
                                        header_encoding=None)
        self.c = h2.connection.H2Connection(cfg)
        self.cv = threading.Condition()
        self.alive = True

    def flush(self):
        data = self.c.data_to_send()
        if data:
            self.sock.sendall(data)

    def run(self):
        with self.cv:
            self.c.initiate_connection()
            self.flush()
        while self.alive:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            with self.cv:
                try:
                    events = self.c.receive_data(data)
                except h2.exceptions.ProtocolError:
                    break
                for e in events:
                    if isinstance(e, h2.events.RequestReceived):
                        path = dict(e.headers).get(b":path", b"/").decode("latin-1")
                        threading.Thread(target=self.serve, args=(e.stream_id, path), daemon=True).start()
                    elif isinstance(e, h2.events.DataReceived) and e.flow_controlled_length:
                        self.c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                self.cv.notify_all()
                try:
                    self.flush()
                except OSError:
                    break
        with self.cv:
            self.alive = False
            self.cv.notify_all()

    def serve(self, sid, path):
        url = urlsplit(path)
        try:
            with self.cv:
                if url.path.endswith("/big"):
                    size = int(parse_qs(url.query).get("size", ["1000000"])[0])
                    self.c.send_headers(sid, [(":status", "200"), ("content-type", "application/octet-stream")])
                    self.flush()
                    sent = 0
                    while sent < size and self.alive:
                        n = min(self.c.local_flow_control_window(sid), self.c.max_outbound_frame_size, size - sent)
                        if n <= 0:
                            self.cv.wait(1.0)
                            continue
                        self.c.send_data(sid, b"x" * n)
                        sent += n
                        self.flush()
                    if self.alive:
                        self.c.end_stream(sid)
                else:
                    body = f"ok {path}\n".encode()
                    self.c.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")])
                    while self.alive and self.c.local_flow_control_window(sid) < len(body):
                        self.cv.wait(1.0)
                    if self.alive:
                        self.c.send_data(sid, body, end_stream=True)
                self.flush()
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError, OSError, KeyError):
            pass  # the stream was reset or the connection went away


def handle(sock):
    try:
        sock.settimeout(300)
        first = b""
        while len(first) < len(PREFACE):
            chunk = sock.recv(len(PREFACE) - len(first))
            if not chunk:
                return
            first += chunk
        if first != PREFACE:
            return
        conn = Conn(sock)
        conn.c.initiate_connection()
        conn.flush()
        conn.c.receive_data(first)
        conn.c.initiate_connection = lambda: None
        conn.run()
    except (OSError, h2.exceptions.ProtocolError):
        pass
    finally:
        sock.close()


def main():
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)
    print(listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
