#!/usr/bin/python3
"""A gRPC upstream for jwtgate's HTTP/2 tests (grpcio, an independent HTTP/2 implementation).
No protobuf: every method takes and returns raw bytes (generic handlers, identity serializers).

    grpc_server.py [--port N]      binds 127.0.0.1 (port 0: a free one), prints the port, serves until killed

Every method first sends initial metadata `x-seen-metadata`: JSON [[key, value], ...] of the
invocation metadata it received (authorization left out, -bin values base64), so a client can tell
what reached the server on every call kind.

  /echo.Echo/Unary         reply = JSON {"metadata": [[k, v], ...], "request_bytes": N};
                           trailing metadata x-trailer: done
  /echo.Echo/Admin         the same (the route in front of it requires the admin scope)
  /echo.Echo/ServerStream  request JSON {"count": C, "size": S} -> C messages of S bytes each
  /echo.Echo/ClientStream  reply = JSON {"messages": M, "bytes": B} of what the client streamed
  /echo.Echo/Bidi          echoes every message as it arrives
  /echo.Echo/Slow          request JSON {"seconds": T}: waits T s (less if the call is cancelled),
                           then replies like Unary
"""
import argparse
import base64
import json
import sys
import time
from concurrent import futures

import grpc

SERVICE = "echo.Echo"


def metadata_list(context):
    out = []
    for key, value in context.invocation_metadata():
        if key == "authorization":
            continue
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        out.append([key, value])
    return out


def announce(context):
    context.send_initial_metadata((("x-seen-metadata", json.dumps(metadata_list(context))),))


def unary(request, context):
    announce(context)
    context.set_trailing_metadata((("x-trailer", "done"),))
    return json.dumps({"metadata": metadata_list(context), "request_bytes": len(request)}).encode()


def server_stream(request, context):
    announce(context)
    spec = json.loads(request or b"{}")
    count, size = int(spec.get("count", 1)), int(spec.get("size", 1))
    message = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    for _ in range(count):
        if not context.is_active():
            return
        yield message


def client_stream(request_iterator, context):
    announce(context)
    messages = total = 0
    for message in request_iterator:
        messages += 1
        total += len(message)
    return json.dumps({"messages": messages, "bytes": total}).encode()


def bidi(request_iterator, context):
    announce(context)
    for message in request_iterator:
        yield message


def slow(request, context):
    announce(context)
    seconds = float(json.loads(request or b"{}").get("seconds", 1))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and context.is_active():
        time.sleep(0.02)
    context.set_trailing_metadata((("x-trailer", "done"),))
    return json.dumps({"metadata": metadata_list(context), "slept": seconds}).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Admin": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         handlers=(grpc.method_handlers_generic_handler(SERVICE, handlers),),
                         maximum_concurrent_rpcs=200,
                         options=[("grpc.max_receive_message_length", 16 << 20),
                                  ("grpc.max_send_message_length", 16 << 20),
                                  ("grpc.so_reuseport", 0)])
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    if port == 0:
        print(f"grpc_server: cannot bind 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    server.start()
    print(port, flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
