"""Loopback ports for the Python test drivers (tls, forward_auth, smuggling, deploy).

A port from bind(0) is free only until something else takes it, and jwtgate binds its proxy
listener with SO_REUSEPORT: two jwtgates handed the same port would both start and silently share
its connections. So a port is never handed out twice in one run; a loss to an unrelated process
(a client's ephemeral port) still shows up as "address already in use" when the server starts.
"""
import socket

_given = set()


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port
