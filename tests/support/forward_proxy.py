#!/usr/bin/python3
"""An HTTP forward proxy that records what goes through it, for jwtgate's proxy tests (Python's
http.server, an independent implementation). Binds 127.0.0.1, prints the bound port as the first
stdout line, then one line per request it receives, flushed at once:

  CONNECT 127.0.0.1:4443 HTTP/1.1      (the tunnel is then opened to that address)
  GET http://127.0.0.1:8080/jwks.json HTTP/1.1

  usage: forward_proxy.py [--serve FILE]
    --serve FILE  answer every request that is not a CONNECT itself, 200 application/json with
                  FILE's content: what a hostile proxy does to a plain-http fetch. Without it
                  such requests get 502.

CONNECT goes only to 127.0.0.1 (anything else: 403); a tunnel ends when either side closes or
after 30 s without traffic.
"""
import argparse
import select
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDLE_SECONDS = 30


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _record(self):
        print(self.requestline, flush=True)

    def _answer(self, code, body, content_type="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self):
        self._record()
        host, _, port = self.path.rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            self.close_connection = True
            return self._answer(403, b"this test proxy only connects to 127.0.0.1\n")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            self.close_connection = True
            return self._answer(502, b"cannot connect\n")
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        self._tunnel(self.connection, upstream)

    @staticmethod
    def _tunnel(client, upstream):
        peers = {client: upstream, upstream: client}
        try:
            while True:
                ready, _, _ = select.select(list(peers), [], [], IDLE_SECONDS)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except OSError:
            return
        finally:
            upstream.close()

    def _plain(self):
        self._record()
        length = int(self.headers.get("Content-Length", "0") or "0")
        if length:
            self.rfile.read(length)
        if self.server.serve is None:
            return self._answer(502, b"this test proxy forwards nothing\n")
        return self._answer(200, self.server.serve, "application/json")

    do_GET = do_POST = _plain


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, serve):
        super().__init__(("127.0.0.1", 0), Handler)
        self.serve = serve

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description="recording forward proxy for jwtgate's tests")
    parser.add_argument("--serve")
    args = parser.parse_args()
    serve = None
    if args.serve:
        with open(args.serve, "rb") as f:
            serve = f.read()
    server = Server(serve)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
