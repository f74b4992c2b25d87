"""A raw HTTP/2 client for jwtgate's h2 tests: frames built with hyperframe, header blocks with
hpack, and nothing validated on the way out, so a test can send what a well-behaved client
library refuses to (upper-case names, CR/LF/NUL in values, connection-specific headers, pseudo
headers out of order, floods). Responses are decoded and kept per stream.

    c = H2Client(port)                       # preface + SETTINGS, reads the server's SETTINGS
    sid = c.request("GET", "/h2/x", [("authorization", "Bearer ...")])
    r = c.wait(sid, 10)                      # r.status, r.headers, r.data, r.trailers, r.reset
    c.close()
"""
import socket
import ssl
import threading
import time

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame,
                              RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR", 4: "SETTINGS_TIMEOUT",
          5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR",
          10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}
REFUSED_STREAM = 7
MAX_CONCURRENT_STREAMS = 0x3


def error_name(code):
    return ERRORS.get(code, str(code))


def b(value):
    return value if isinstance(value, bytes) else str(value).encode("latin-1")


def grpc_frame(payload, compressed=False):
    """One gRPC length-prefixed message."""
    return bytes([1 if compressed else 0]) + len(payload).to_bytes(4, "big") + payload


def grpc_messages(data):
    out = []
    while len(data) >= 5:
        n = int.from_bytes(data[1:5], "big")
        out.append(data[5:5 + n])
        data = data[5 + n:]
    return out


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None  # the first HEADERS block: [(name, value)] as str
        self.informational = []
        self.trailers = None
        self.data = b""
        self.data_frames = 0
        self.ended = False
        self.reset = None  # the RST_STREAM error code
        self.first_byte_at = None

    @property
    def status(self):
        return int(self.header(":status")) if self.headers and self.header(":status") else None

    def header(self, name, where=None):
        for n, v in (where if where is not None else self.headers) or ():
            if n == name:
                return v
        return None

    def trailer(self, name):
        return self.header(name, self.trailers or [])

    @property
    def done(self):
        return self.ended or self.reset is not None

    def describe(self):
        if self.reset is not None:
            return f"stream {self.sid} reset {error_name(self.reset)}"
        if self.headers is None:
            return f"stream {self.sid}: no response"
        return (f"stream {self.sid}: status {self.status}, headers {self.headers}, {len(self.data)} body bytes "
                f"{self.data[:200]!r}, trailers {self.trailers}, ended {self.ended}")


class H2Client:
    def __init__(self, port, tls=None, settings=None, rcvbuf=None, timeout=10.0, auto_window=True,
                 read_settings=True, host="127.0.0.1"):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(timeout)
        raw.connect((host, port))
        self.sock = tls.wrap_socket(raw, server_hostname="localhost") if tls else raw
        self.alpn = self.sock.selected_alpn_protocol() if tls else None
        self.port = port
        self.authority = f"{host}:{port}"
        self.scheme = "https" if tls else "http"
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.decoder.max_allowed_table_size = 1 << 16
        self.streams = {}
        self.next_id = 1
        self.server_settings = {}
        self.settings_received = False
        self.goaway = None  # (error code, last stream id, debug data)
        self.closed = None  # why the connection ended, when it did
        self.buf = b""
        self.pending_block = None  # (stream id, end_stream, bytes) while CONTINUATION frames come
        self.auto_window = auto_window
        self.pings_acked = 0
        self.settings_acked = 0
        self.frames_received = 0
        self.lock = threading.Lock()
        self.sock.sendall(PREFACE + self.frame(SettingsFrame(0, settings or {})))
        if read_settings and not self.pump_until(lambda: self.settings_received, timeout):
            self.close()
            raise ConnectionError(f"no HTTP/2 SETTINGS from 127.0.0.1:{port} within {timeout} s "
                                  f"(connection {self.closed or 'still open'}): the listener does not speak "
                                  f"HTTP/2{' (ALPN ' + repr(self.alpn) + ')' if tls else ' (h2c prior knowledge)'}")

    # -- sending ---------------------------------------------------------------------------------
    @staticmethod
    def frame(f):
        return f.serialize()

    def send(self, data):
        self.sock.sendall(data)

    def new_stream_id(self):
        sid = self.next_id
        self.next_id += 2
        self.streams[sid] = Stream(sid)
        return sid

    def encode(self, headers, huffman=True):
        return self.encoder.encode([(b(n), b(v)) for n, v in headers], huffman=huffman)

    def header_frames(self, sid, block, end_stream, max_frame=16384):
        """HEADERS (+ CONTINUATION) frames carrying BLOCK, END_HEADERS on the last."""
        chunks = [block[i:i + max_frame] for i in range(0, len(block), max_frame)] or [b""]
        out = []
        first = HeadersFrame(sid, chunks[0])
        if end_stream:
            first.flags.add("END_STREAM")
        if len(chunks) == 1:
            first.flags.add("END_HEADERS")
        out.append(self.frame(first))
        for i, chunk in enumerate(chunks[1:], 1):
            c = ContinuationFrame(sid, chunk)
            if i == len(chunks) - 1:
                c.flags.add("END_HEADERS")
            out.append(self.frame(c))
        return b"".join(out)

    def request_headers(self, method, path, headers=(), authority=None):
        return [(":method", method), (":scheme", self.scheme), (":authority", authority or self.authority),
                (":path", path)] + list(headers)

    def request(self, method, path, headers=(), body=None, trailers=None, end=True, sid=None, raw_block=None,
                send=True):
        """Sends one request; returns its stream id (or, with send=False, (sid, bytes))."""
        sid = sid or self.new_stream_id()
        if sid not in self.streams:
            self.streams[sid] = Stream(sid)
        block = raw_block if raw_block is not None else self.encode(self.request_headers(method, path, headers))
        only_headers = body is None and trailers is None
        out = [self.header_frames(sid, block, end and only_headers)]
        if body is not None:
            for i in range(0, max(len(body), 1), 16384):
                d = DataFrame(sid, body[i:i + 16384])
                if end and trailers is None and i + 16384 >= len(body):
                    d.flags.add("END_STREAM")
                out.append(self.frame(d))
        if trailers is not None:
            out.append(self.header_frames(sid, self.encode(trailers), end))
        data = b"".join(out)
        if not send:
            return sid, data
        self.send(data)
        return sid

    def rst(self, sid, code=8):
        self.send(self.frame(RstStreamFrame(sid, code)))

    def ping(self, payload=b"\0" * 8):
        return self.frame(PingFrame(0, payload))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- receiving -------------------------------------------------------------------------------
    def pump(self, timeout):
        """Reads what arrives within TIMEOUT (at least one recv); False once the connection ended."""
        if self.closed:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, ssl.SSLWantReadError):
            return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError) as e:
            self.closed = f"{type(e).__name__}: {e}"
            return False
        if not data:
            self.closed = "EOF"
            return False
        self.buf += data
        self.parse()
        return True

    def pump_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or not self.pump(min(left, 0.5)):
                return predicate()
        return True

    def wait(self, sid, timeout=10.0):
        s = self.streams[sid]
        self.pump_until(lambda: s.done or (self.goaway is not None and sid > self.goaway[1]), timeout)
        return s

    def drain(self, timeout):
        """Reads until the connection ends or TIMEOUT passes; True when it ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pump(min(0.5, deadline - time.monotonic())):
                return True
        return self.closed is not None

    def parse(self):
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                return
            head, body, self.buf = self.buf[:9], self.buf[9:9 + length], self.buf[9 + length:]
            try:
                f, _ = Frame.parse_frame_header(memoryview(head))
                f.parse_body(memoryview(body))
            except Exception as e:  # an unknown frame type parses as ExtensionFrame; anything else is odd
                self.closed = f"unparseable frame from the server: {e}"
                return
            self.frames_received += 1
            self.on_frame(f)

    def stream(self, sid):
        if sid not in self.streams:
            self.streams[sid] = Stream(sid)
        return self.streams[sid]

    def on_frame(self, f):
        if isinstance(f, SettingsFrame):
            if "ACK" in f.flags:
                self.settings_acked += 1
            else:
                self.server_settings.update(f.settings)
                self.settings_received = True
                try:
                    self.send(self.frame(SettingsFrame(0, flags=["ACK"])))
                except OSError:
                    pass
        elif isinstance(f, PingFrame):
            if "ACK" in f.flags:
                self.pings_acked += 1
            else:
                try:
                    self.send(self.frame(PingFrame(0, f.opaque_data, flags=["ACK"])))
                except OSError:
                    pass
        elif isinstance(f, GoAwayFrame):
            self.goaway = (f.error_code, f.last_stream_id, bytes(f.additional_data))
        elif isinstance(f, RstStreamFrame):
            self.stream(f.stream_id).reset = f.error_code
        elif isinstance(f, (HeadersFrame, ContinuationFrame)):
            if isinstance(f, HeadersFrame):
                self.pending_block = (f.stream_id, "END_STREAM" in f.flags, bytes(f.data))
            elif self.pending_block:
                sid, end, data = self.pending_block
                self.pending_block = (sid, end, data + bytes(f.data))
            if "END_HEADERS" in f.flags and self.pending_block:
                sid, end, data = self.pending_block
                self.pending_block = None
                headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.decoder.decode(data, raw=True)]
                s = self.stream(sid)
                if s.first_byte_at is None:
                    s.first_byte_at = time.monotonic()
                status = dict(headers).get(":status", "")
                if s.headers is None and status.startswith("1"):
                    s.informational.append(headers)
                elif s.headers is None:
                    s.headers = headers
                else:
                    s.trailers = headers
                if end:
                    s.ended = True
        elif isinstance(f, DataFrame):
            s = self.stream(f.stream_id)
            s.data += bytes(f.data)
            s.data_frames += 1
            if "END_STREAM" in f.flags:
                s.ended = True
            if self.auto_window and f.flow_controlled_length:
                self.window_update(f.stream_id, f.flow_controlled_length, stream_too=not s.ended)

    def window_update(self, sid, n, stream_too=True):
        try:
            data = self.frame(WindowUpdateFrame(0, n))
            if stream_too:
                data += self.frame(WindowUpdateFrame(sid, n))
            self.send(data)
        except OSError:
            pass
