#!/usr/bin/python3
"""The recording upstream of the request-smuggling harness (tests/smuggling/harness.py).

It parses every byte jwtgate forwards with h11 (a strict HTTP/1.1 implementation independent of
llhttp, which jwtgate uses) and records each message it received, per connection: method, target,
headers as sent (name/value list, original spelling), the body's SHA-256 and length, and whether
the message was complete. An h11 protocol error is recorded too: the upstream not understanding
what jwtgate sent is itself a finding.

Every request gets a small response, framed per the current mode: `cl` (Content-Length) or
`chunked` (Transfer-Encoding: chunked, in two chunks). Connections are kept alive, so jwtgate
reuses them from its pool. Each response names its record in an `X-Rec-Id` header, so the harness
can tell which upstream message a response the client received belongs to.

Binds 127.0.0.1 on two free ports and prints "DATA_PORT CONTROL_PORT" as its first stdout line.
The control port takes one command per line and answers one line:

  RESET cl|chunked   closes the connections left in the middle of a message (so one case's
                     leftovers never become the next case's bytes), forgets everything recorded,
                     starts a new epoch, sets the response framing -> "OK <connections closed>"
  DUMP               first reads whatever is waiting on every upstream connection, then
                     -> one JSON object {"records": [...], "errors": [...], "pending": [...]}
                     for the current epoch (see dump()).

Run with Debian's /usr/bin/python3 (python3-h11). Single-threaded: one selectors loop serves
both ports, so a DUMP sees everything that reached the socket buffers before it.
"""
import hashlib
import json
import select
import selectors
import socket
import sys

import h11

MAX_RECV = 65536


class State:
    def __init__(self):
        self.epoch = 0
        self.mode = "cl"
        self.next_rec = 1
        self.next_conn = 1
        self.records = []  # every record of the current epoch, in arrival order
        self.errors = []  # protocol errors seen in the current epoch


STATE = State()


def preview(data, limit=200):
    return data[:limit].decode("latin-1")


class UpstreamConn:
    def __init__(self, sock, sel):
        self.sock = sock
        self.sel = sel
        self.id = STATE.next_conn
        STATE.next_conn += 1
        self.h11 = h11.Connection(our_role=h11.SERVER, max_incomplete_event_size=64 * 1024)
        self.current = None  # the record of the message being received
        self.closed = False
        self.messages = 0  # on this connection, all epochs

    def record_error(self, kind, detail):
        unparsed, _ = self.h11.trailing_data
        STATE.errors.append({
            "conn": self.id,
            "kind": kind,
            "error": detail,
            "record": self.current["id"] if self.current else None,
            "unparsed": preview(unparsed),
        })

    def on_readable(self):
        try:
            data = self.sock.recv(MAX_RECV)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        self.feed(data)
        return bool(data)

    def feed(self, data):
        if self.closed:
            return
        try:
            self.h11.receive_data(data)
        except RuntimeError:
            # Data after the connection is already in an error/closed state.
            self.close()
            return
        self.process()
        if not data and not self.closed:
            self.close()

    def process(self):
        while not self.closed:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                closed = self.h11.trailing_data[1]
                if closed and self.current is not None and not self.current["complete"]:
                    # The peer closed in the middle of a body: incomplete, not malformed.
                    self.current["aborted"] = True
                elif closed:
                    self.record_error("eof_in_head", str(e))
                else:
                    self.record_error("protocol", str(e))
                self.close()
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                    self.h11.start_next_cycle()
                    continue
                return
            if isinstance(event, h11.Request):
                self.messages += 1
                self.current = {
                    "id": STATE.next_rec,
                    "epoch": STATE.epoch,
                    "conn": self.id,
                    "conn_message": self.messages,
                    "method": event.method.decode("latin-1"),
                    "target": event.target.decode("latin-1"),
                    "http_version": event.http_version.decode("latin-1"),
                    "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in event.headers.raw_items()],
                    "body_sha256": None,
                    "body_length": 0,
                    "trailers": [],
                    "complete": False,
                    "aborted": False,
                    "_digest": hashlib.sha256(),
                }
                STATE.next_rec += 1
                STATE.records.append(self.current)
                if self.h11.they_are_waiting_for_100_continue:
                    self.send(h11.InformationalResponse(status_code=100, headers=[]))
            elif isinstance(event, h11.Data):
                self.current["_digest"].update(event.data)
                self.current["body_length"] += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.current["complete"] = True
                self.current["trailers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in event.headers.raw_items()]
                self.respond(self.current)
                if self.h11.our_state is h11.MUST_CLOSE:
                    self.close()
                    return
                if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                    self.h11.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                self.close()
                return

    def respond(self, rec):
        body = json.dumps({"rec": rec["id"], "method": rec["method"], "target": rec["target"]}).encode()
        headers = [("X-Rec-Id", str(rec["id"])), ("Content-Type", "application/json")]
        # A HEAD response carries the same framing headers as GET would, and no body.
        if STATE.mode == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
            pieces = [body[: len(body) // 2], body[len(body) // 2:]]
        else:
            headers.append(("Content-Length", str(len(body))))
            pieces = [body]
        try:
            self.send(h11.Response(status_code=200, headers=headers))
            if rec["method"] != "HEAD":
                for p in pieces:
                    self.send(h11.Data(data=p))
            self.send(h11.EndOfMessage())
        except h11.LocalProtocolError as e:
            self.record_error("local", str(e))
            self.close()

    def send(self, event):
        out = self.h11.send(event)
        if out:
            try:
                self.sock.setblocking(True)
                self.sock.sendall(out)
            except OSError:
                pass
            finally:
                self.sock.setblocking(False)

    def pending(self):
        """Bytes that arrived but are not (yet) a complete head or body: a partial message."""
        unparsed, closed = self.h11.trailing_data
        in_body = self.h11.their_state is h11.SEND_BODY
        return unparsed, in_body

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()


CONNS = {}


def drain_all(sel):
    """Reads whatever is already waiting on the upstream connections, until nothing is."""
    while True:
        open_conns = {c.sock: c for c in CONNS.values() if not c.closed}
        if not open_conns:
            return
        ready, _, _ = select.select(list(open_conns), [], [], 0)
        if not ready:
            return
        for sock in ready:
            open_conns[sock].on_readable()


def public(rec):
    out = {k: v for k, v in rec.items() if not k.startswith("_")}
    out["body_sha256"] = rec["_digest"].hexdigest()
    return out


def dump(sel):
    drain_all(sel)
    pending = []
    for conn in CONNS.values():
        if conn.closed:
            continue
        unparsed, in_body = conn.pending()
        if unparsed:
            pending.append({"conn": conn.id, "bytes": len(unparsed), "preview": preview(unparsed), "in_body": in_body})
    return {
        "epoch": STATE.epoch,
        "records": [public(r) for r in STATE.records],
        "errors": list(STATE.errors),
        "pending": pending,
    }


class ControlConn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""


def handle_control(ctl, sel):
    try:
        data = ctl.sock.recv(MAX_RECV)
    except OSError:
        data = b""
    if not data:
        sel.unregister(ctl.sock)
        ctl.sock.close()
        return
    ctl.buf += data
    while b"\n" in ctl.buf:
        line, ctl.buf = ctl.buf.split(b"\n", 1)
        words = line.decode().split()
        if not words:
            continue
        if words[0] == "RESET":
            drain_all(sel)
            dropped = 0
            for conn in list(CONNS.values()):
                unparsed, _ = conn.h11.trailing_data if not conn.closed else (b"", True)
                if not conn.closed and (unparsed or conn.h11.their_state is not h11.IDLE):
                    print(f"reset: closing conn {conn.id}: their_state={conn.h11.their_state} our_state={conn.h11.our_state} unparsed={unparsed[:60]!r}", file=sys.stderr, flush=True)
                    conn.close()
                    dropped += 1
            STATE.epoch += 1
            STATE.records = []
            STATE.errors = []
            if len(words) > 1:
                STATE.mode = words[1]
            reply = f"OK {dropped}\n".encode()
        elif words[0] == "DUMP":
            reply = json.dumps(dump(sel)).encode() + b"\n"
        else:
            reply = b"ERR unknown command\n"
        ctl.sock.setblocking(True)
        ctl.sock.sendall(reply)
        ctl.sock.setblocking(False)


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    s.setblocking(False)
    return s


def main():
    sel = selectors.DefaultSelector()
    data_l, ctl_l = listener(), listener()
    sel.register(data_l, selectors.EVENT_READ, "data-listen")
    sel.register(ctl_l, selectors.EVENT_READ, "ctl-listen")
    print(f"{data_l.getsockname()[1]} {ctl_l.getsockname()[1]}", flush=True)
    while True:
        for key, _ in sel.select():
            what = key.data
            if what == "data-listen":
                try:
                    sock, _ = data_l.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = UpstreamConn(sock, sel)
                CONNS[conn.id] = conn
                sel.register(sock, selectors.EVENT_READ, conn)
            elif what == "ctl-listen":
                try:
                    sock, _ = ctl_l.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                sel.register(sock, selectors.EVENT_READ, ControlConn(sock))
            elif isinstance(what, ControlConn):
                handle_control(what, sel)
            else:
                what.on_readable()
        for cid in [c for c, conn in CONNS.items() if conn.closed]:
            del CONNS[cid]


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
