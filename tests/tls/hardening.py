#!/usr/bin/python3
"""TLS listener hardening, end to end: the ways past it a breaker found, kept shut.

  hardening.py --jwtgate PATH [-k SUBSTRING] [--keep]

Each case first shows the attack's setup works (a full handshake, a 200), then that the bypass
does not: judged by what the recording upstream received (tests/support/upstream.py's /__seen).
- a session resumed after client_auth became required, without a certificate;
- a session resumed with a certificate whose CA has since been removed from client_ca_file;
- a ClientHello header declaring 128 KiB, which OpenSSL would reserve memory for until the
  handshake timeout (a 1 KiB one, the control, stays open);
- extra certificates a client appends to its chain reaching the upstream as Client-Cert-Chain;
- tokens bound by a confirmation method jwtgate cannot check (cnf.jkt, cnf.jwk) passing as
  bearer tokens;
and on the upstream side:
- upstream_tls.ca_file rewritten in place (a ConfigMap's ..data swap keeps the path) while a
  verified connection idles in the pool: it must not carry another request;
- an upstream certificate with no subjectAltName whose CN names the host (RFC 9525: no CN
  fallback);
- a close-delimited response cut by a bare FIN, without close_notify, relayed as complete;
- reloads that retire a pool while its requests are in flight leaking those connections.
Reuses tests/tls/e2e.py's PKI, token minting, upstream and jwtgate drivers.
"""
import argparse
import base64
import os
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import (Failure, Jwtgate, Pki, Run, Tokens, Upstream, bearer, client_context, expect, plain, read,  # noqa: E402
                 wait_until, write)

PLAIN_REQUEST = b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def tls_block(pki, auth, ca):
    text = f"tls:\n  cert_file: {pki.ecdsa.crt}\n  key_file: {pki.ecdsa.key}\n  handshake_timeout: 30s\n"
    if auth != "none":
        text += f"  client_ca_file: {ca}\n  client_auth: {auth}\n"
    return text


def request(port, ctx, data, session=None):
    """(status or None, the session, whether it was resumed); None when the handshake or the
    connection failed before a status line came back."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    except (ssl.SSLError, OSError):
        raw.close()
        return None, None, False
    out = b""
    try:
        s.settimeout(5)
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (ssl.SSLError, OSError):
        pass
    sess, reused = s.session, s.session_reused
    s.close()
    try:
        return int(out.split(b" ", 2)[1]), sess, reused
    except (IndexError, ValueError):
        return None, sess, reused


def reload(gate, old, new):
    text = read(gate.config)
    expect(old in text, "the config block to replace is missing")
    write(gate.config + ".new", text.replace(old, new))
    os.rename(gate.config + ".new", gate.config)
    os.kill(gate.proc.proc.pid, signal.SIGHUP)
    time.sleep(1.5)


def resumption_cases(run, args, tmp, pki, tokens, up):
    ca_path = write(os.path.join(tmp, "clients-ca.pem"), read(pki.client_ca.crt))

    def required_after_reload(version):
        gate = Jwtgate("resume-required", args.jwtgate, tmp, body=f"upstream: http://127.0.0.1:{up.port}\n"
                       + tls_block(pki, "optional", ca_path) + e2e.provider_block(tokens, bound=False) + e2e.ROUTES)
        gate.start()
        try:
            ctx = client_context(pki.ca.crt, version=version)  # no client certificate
            up.seen()
            status, session, _ = request(gate.port, ctx, PLAIN_REQUEST)
            expect(status == 200 and session is not None, f"optional, no certificate: {status}")
            reload(gate, "client_auth: optional", "client_auth: required")
            status, _, _ = request(gate.port, ctx, PLAIN_REQUEST)
            expect(status is None, f"required, full handshake without a certificate: {status}")
            up.seen()
            status, _, reused = request(gate.port, ctx, PLAIN_REQUEST, session)
            expect(status is None and not reused,
                   f"required: the ticket from before the reload resumed ({reused}) and answered {status}")
            expect(up.seen() == [], "a request without a certificate reached the upstream")
        finally:
            gate.stop([])

    def ca_removed(version):
        write(ca_path, read(pki.client_ca.crt))
        gate = Jwtgate("resume-ca", args.jwtgate, tmp, body=f"upstream: http://127.0.0.1:{up.port}\n"
                       + tls_block(pki, "optional", ca_path) + e2e.provider_block(tokens) + e2e.ROUTES)
        gate.start()
        try:
            token = tokens.mint({"cnf": {"x5t#S256": pki.client.thumbprint}})
            req = (f"GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
                   "Connection: close\r\n\r\n").encode()
            ctx = client_context(pki.ca.crt, version=version, cert=pki.client)
            up.seen()
            status, session, _ = request(gate.port, ctx, req)
            expect(status == 200, f"bound token with its certificate: {status}")
            # The client CA file now names another CA only: the certificate is no longer trusted.
            write(ca_path + ".new", read(pki.unknown_ca.crt))
            os.rename(ca_path + ".new", ca_path)
            os.kill(gate.proc.proc.pid, signal.SIGHUP)
            time.sleep(1.5)
            up.seen()
            status, _, reused = request(gate.port, ctx, req, session)
            seen = up.seen()
            forwarded = [h for r in seen for h in r["headers"] if h[0] == "Client-Cert"]
            expect(not reused, "the session from before the CA was removed was resumed")
            expect(not forwarded, f"the removed CA's certificate reached the upstream as Client-Cert ({status})")
            expect(status != 200, f"a token bound to the removed CA's certificate got {status}")
        finally:
            gate.stop([])

    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        name = "1.3" if version == ssl.TLSVersion.TLSv1_3 else "1.2"
        run.case(f"TLS {name}: a ticket from before client_auth became required does not resume", required_after_reload,
                 version)
        run.case(f"TLS {name}: a ticket carrying a certificate whose CA was removed does not resume", ca_removed,
                 version)


def oversized_hello_case(run, gate):
    def declared(length):
        record = b"\x16\x03\x01" + struct.pack(">H", 4) + b"\x01" + length.to_bytes(3, "big")
        s = socket.create_connection(("127.0.0.1", gate.port), timeout=10)
        s.sendall(record)
        s.settimeout(2)
        try:
            closed = s.recv(1) == b""
        except socket.timeout:
            closed = False
        except OSError:
            closed = True
        s.close()
        return closed

    def check():
        expect(not declared(1024), "a 1 KiB ClientHello was refused before it arrived (the control)")
        expect(declared(131396), "a ClientHello declaring 128 KiB was held open (OpenSSL reserves memory for it)")

    run.case("a ClientHello declaring more than 16 KiB is refused at once; 1 KiB waits", check)


def chain_case(run, gate, pki, tmp, up):
    def check():
        # pki.client is issued by the client CA itself; everything after it plays no part in verifying it.
        bundle = write(os.path.join(tmp, "client-plus-extras.pem"), read(pki.client.crt) + read(pki.client_int.crt)
                       + read(pki.unknown_ca.crt) + read(pki.client_other.crt))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(pki.ca.crt)
        ctx.load_cert_chain(bundle, pki.client.key)
        up.seen()
        status, _, _ = request(gate.port, ctx, PLAIN_REQUEST)
        expect(status == 200, f"status {status}")
        seen = up.seen()
        expect(len(seen) == 1, f"the upstream received {len(seen)} requests")
        chains = e2e.header_values(seen[0], "Client-Cert-Chain")
        extras = [c for c in (pki.client_int, pki.unknown_ca, pki.client_other)
                  if any(base64.b64encode(c.der).decode() in v for v in chains)]
        expect(not extras, f"certificates the client appended reached the upstream in Client-Cert-Chain: {chains}")
        expect(e2e.header_values(seen[0], "Client-Cert") == [pki.client.rfc9440], "Client-Cert is not the leaf")

    run.case("Client-Cert-Chain is the verified chain, not what the client appended", check)


def confirmation_method_case(run, gate, pki, tokens, up):
    def check():
        for cnf in ({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, {"jwk": {"kty": "EC", "crv": "P-256"}}):
            token = tokens.mint({"cnf": cnf})
            req = (f"GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
                   "Connection: close\r\n\r\n").encode()
            for cert in (pki.client, None):
                up.seen()
                status, _, _ = request(gate.port, client_context(pki.ca.crt, cert=cert), req)
                expect(status == 401, f"cnf {list(cnf)} with certificate {cert is not None}: {status}")
                expect(up.seen() == [], f"a token with cnf {list(cnf)} reached the upstream")

    run.case("a token bound by cnf.jkt or cnf.jwk is refused, with or without a certificate", check)


class CuttingUpstream:
    """A TLS upstream (Python's ssl) that answers every request close-delimited and then ends
    the TCP stream with a bare FIN, no close_notify: what an attacker on the path can forge."""

    def __init__(self, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.chain, cert.key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                continue
            try:
                raw.settimeout(5)
                t = self.ctx.wrap_socket(raw, server_side=True)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = t.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                t.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npartial-body")
                time.sleep(0.2)
                socket.socket.shutdown(t, socket.SHUT_RDWR)  # FIN under the TLS layer
                t.close()
            except (OSError, ssl.SSLError):
                raw.close()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


def upstream_cases(run, args, tmp, pki, tokens):
    token = tokens.mint({})

    def gate_for(name, url, ca):
        return Jwtgate(name, args.jwtgate, tmp, body=f"upstream: {url}\nupstream_tls:\n  ca_file: {ca}\n"
                       + e2e.provider_block(tokens, bound=False) + "routes:\n  - prefix: /\n")

    def in_place_ca_change():
        up = Upstream("inplace", tmp, pki.up_good)
        ca = write(os.path.join(tmp, "inplace-ca.pem"), read(pki.ca.crt))
        gate = gate_for("inplace", f"https://127.0.0.1:{up.port}", ca)
        try:
            gate.start()
            r = plain(gate.port, "/a", bearer(token))
            expect(r.status == 200, f"before the change: {r.status}")
            up.seen()
            # Same path, other content: only an unrelated CA is trusted now.
            write(ca + ".new", read(pki.unknown_ca.crt))
            os.rename(ca + ".new", ca)
            os.kill(gate.proc.proc.pid, signal.SIGHUP)
            wait_until("the reload", lambda: "config reloaded" in gate.proc.tail(50), timeout=10)
            statuses = [plain(gate.port, f"/after{i}", bearer(token)).status for i in range(3)]
            expect(statuses == [502, 502, 502], f"after the CA file changed in place: {statuses}")
            expect(up.seen() == [], "a request (with its token) reached an upstream the new CA file does not trust")
        finally:
            gate.stop([])
            up.stop()

    def no_cn_fallback():
        cn_only = pki.leaf("localhost", pki.ca, "ec", san=None)  # CN=localhost, no subjectAltName
        up = Upstream("cn-only", tmp, cn_only)
        gate = gate_for("cn-only", f"https://localhost:{up.port}", pki.ca.crt)
        try:
            gate.start()
            r = plain(gate.port, "/x", bearer(token))
            expect(r.status == 502, f"a certificate naming the host only in its CN: {r.status}")
            expect(up.seen() == [], "the request reached the upstream")
        finally:
            gate.stop([])
            up.stop()

    def truncated_by_fin():
        up = CuttingUpstream(pki.up_good)
        gate = gate_for("cut", f"https://127.0.0.1:{up.port}", pki.ca.crt)
        try:
            gate.start()
            s = socket.create_connection(("127.0.0.1", gate.port), timeout=10)
            s.sendall(f"GET /x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
            out = b""
            s.settimeout(5)
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            except OSError:
                pass
            s.close()
            expect(b"partial-body" not in out or not out.endswith(b"0\r\n\r\n"),
                   f"a body cut by a FIN without close_notify was relayed as complete: {out[-120:]!r}")
        finally:
            gate.stop([])
            up.stop()

    def retired_pools_close():
        up = Upstream("retire", tmp, pki.up_good)
        cas = [write(os.path.join(tmp, f"retire-ca{i}.pem"), read(pki.ca.crt)) for i in range(2)]
        gate = gate_for("retire", f"https://127.0.0.1:{up.port}", cas[0])

        def established():
            """Established connections to the upstream's port, from the kernel's table (what
            ss would say; ss itself needs netlink, which not every sandbox has)."""
            count = 0
            with open("/proc/net/tcp") as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[3] == "01" and int(fields[2].split(":")[1], 16) == up.port:
                        count += 1
            return count

        try:
            gate.start()
            for round_ in range(3):
                results = []
                threads = [threading.Thread(target=lambda: results.append(
                    plain(gate.port, "/slow?ms=1500", bearer(token)).status)) for _ in range(4)]
                for t in threads:
                    t.start()
                time.sleep(0.5)
                busy = established()
                expect(busy >= 4, f"round {round_}: {busy} upstream connections seen for 4 requests in flight")
                # Another ca_file path: another pool; the busy one is retired mid-request.
                text = read(gate.config)
                write(gate.config, text.replace(cas[round_ % 2], cas[(round_ + 1) % 2]))
                os.kill(gate.proc.proc.pid, signal.SIGHUP)
                for t in threads:
                    t.join(timeout=20)
                expect(sorted(results) == [200] * 4, f"round {round_}: {results}")
            # What the retired pools held closes once released: only the current pool's idle
            # connections (at most the 4 of the last round) may remain.
            wait_until("the retired pools' connections to close", lambda: established() <= 4, timeout=5)
        finally:
            gate.stop([])
            up.stop()

    run.case("upstream: ca_file rewritten in place: a warm pooled connection carries no more requests",
             in_place_ca_change)
    run.case("upstream: a certificate naming the host only in its CN is refused", no_cn_fallback)
    run.case("upstream: a close-delimited body cut by a FIN without close_notify is not relayed as complete",
             truncated_by_fin)
    run.case("upstream: connections of pools a reload retired mid-request close when released", retired_pools_close)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jwtgate", required=True)
    ap.add_argument("-k", help="run only the cases whose name holds this")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.jwtgate = os.path.abspath(args.jwtgate)
    args.testssl = False
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="jwtgate-tls-hardening-")
    run = Run(args, tmp)
    up = gate = None
    try:
        pki = Pki(tmp)
        tokens = Tokens(args.jwtgate, tmp)
        up = Upstream("plain", tmp)
        gate = Jwtgate("optional", args.jwtgate, tmp, body=f"upstream: http://127.0.0.1:{up.port}\n"
                       + tls_block(pki, "optional", pki.client_ca.crt) + e2e.provider_block(tokens) + e2e.ROUTES)
        gate.start()
        oversized_hello_case(run, gate)
        chain_case(run, gate, pki, tmp, up)
        confirmation_method_case(run, gate, pki, tokens, up)
        resumption_cases(run, args, tmp, pki, tokens, up)
        upstream_cases(run, args, tmp, pki, tokens)
    except Failure as e:
        run.failures.append(str(e))
        print(f"FAIL {e}", flush=True)
    finally:
        if gate and gate.proc:
            gate.stop(run.failures)
        if up:
            up.stop()
    return run.finish("tls hardening", started)


if __name__ == "__main__":
    sys.exit(main())
