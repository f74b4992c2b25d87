#!/usr/bin/python3
"""tests/support/upstream.py served over HTTPS, for jwtgate's upstream TLS tests (Python's ssl,
an implementation independent of jwtgate's). Binds 127.0.0.1 on a free port, prints the port on
stdout, serves until killed.

  tls_upstream.py --cert CHAIN.pem --key KEY.pem [--client-ca CA.pem] [--name NAME]

--client-ca: the handshake requires a client certificate that chains to CA.pem (mTLS).
Every response carries X-Upstream-Connection: the client's port, so a test can tell whether two
requests came over one (pooled) connection, X-Upstream-Client-Cert: the subject CN of the
client certificate, or "none", and X-Upstream-Session-Reused: "True" when the connection's
handshake resumed an earlier session (a ticket this server issued), else "False".

The handshake runs in the connection's own thread, bounded by a 10 s timeout, so a client that
never finishes it cannot stall the accept loop.
"""
import argparse
import os
import socket
import ssl
import sys
from http.server import ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
import upstream  # noqa: E402  (the plain upstream's handler: same endpoints, same /__seen record)


class Handler(upstream.Handler):
    def setup(self):
        self.request.settimeout(10)
        self.request.do_handshake()
        super().setup()

    def end_headers(self):
        self.send_header("X-Upstream-Connection", str(self.client_address[1]))
        cert = self.request.getpeercert()
        cn = "none"
        if cert:
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cn = value
        self.send_header("X-Upstream-Client-Cert", cn)
        self.send_header("X-Upstream-Session-Reused", str(self.request.session_reused))
        super().end_headers()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # refused handshakes are what the tests provoke; jwtgate's side reports them


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca")
    ap.add_argument("--name", default="")
    args = ap.parse_args()
    upstream.NAME = args.name
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    server = Server(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
