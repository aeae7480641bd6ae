"""The harness's own clients, pure Python; run as ``python bench/client.py MODE --port P ...``.

Each mode prints one JSON object on stdout. The harness runs this file in its own process
(pinned to the load generator's CPU) so that the client never shares a core with the server.

Modes:
    load    keep-alive requests on N connections, optionally pipelined (used when wrk is
            missing): requests/s
    stream  one GET /stream/SIZE read to the end: MB/s
    upload  one chunked POST /upload of SIZE bytes: MB/s
    close   COUNT sequential-ish new connections, one request each, ``Connection: close``
    idle    N keep-alive connections left open; server RSS per connection and the latency
            of requests made on them meanwhile
    ws-echo SIZE-byte WebSocket messages echoed on N connections: messages/s (wsload.py)
    ws-big  SIZE-byte WebSocket messages echoed on one connection: MB/s (wsload.py)
    ws-idle N WebSockets held open after one SIZE-byte echo each: server RSS per WebSocket
            (wsload.py)
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import selectors
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from httpwire import ResponseParser, request_bytes, rss_kib
from wsload import run_ws_big, run_ws_echo, run_ws_idle

HOST = "127.0.0.1"
PIECE = 64 * 1024


def _connect(port: int, timeout: float | None = 30.0) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_response(sock: socket.socket, parser: ResponseParser) -> int:
    """Block until one whole response is parsed; return its status."""
    while not parser.statuses:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        parser.feed(data)
    return parser.statuses.pop(0)


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    """Closed loop: each connection sends ``depth`` requests in one write, awaits them all."""
    batch = request_bytes(args.method, args.path, body=b"x" * args.body_size) * args.depth
    sel = selectors.DefaultSelector()
    parsers: dict[socket.socket, ResponseParser] = {}
    for _ in range(args.connections):
        sock = _connect(args.port)
        sock.setblocking(False)
        parsers[sock] = ResponseParser()
        sel.register(sock, selectors.EVENT_READ, sock)
    done = errors = 0
    start = time.perf_counter()
    deadline = start + args.duration
    for sock in parsers:
        sock.sendall(batch)
    open_count = len(parsers)
    while open_count:
        for key, _ in sel.select(1.0):
            sock = key.data
            parser = parsers[sock]
            try:
                data = sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                errors += 1
                sel.unregister(sock)
                open_count -= 1
                continue
            parser.feed(data)
            if len(parser.statuses) < args.depth:
                continue
            errors += sum(1 for status in parser.statuses if status != 200)
            done += len(parser.statuses)
            parser.statuses.clear()
            if time.perf_counter() < deadline:
                # The batch is small: the kernel takes it whole on a non-blocking socket.
                sock.sendall(batch)
            else:
                sel.unregister(sock)
                open_count -= 1
        if time.perf_counter() > deadline + 30:
            errors += open_count
            break
    elapsed = time.perf_counter() - start
    for sock in parsers:
        sock.close()
    return {"value": done / elapsed, "unit": "req/s", "requests": done, "errors": errors}


def run_stream(args: argparse.Namespace) -> dict[str, Any]:
    sock = _connect(args.port, timeout=args.timeout)
    buffer = bytearray(1024 * 1024)
    view = memoryview(buffer)
    start = time.perf_counter()
    sock.sendall(request_bytes("GET", f"/stream/{args.size}"))
    # Read the head, then count body bytes without looking at them.
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed before the head")
        head += data
    head, _, first = head.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {head[:80]!r}")
    received = len(first)
    while received < args.size:
        n = sock.recv_into(view)
        if not n:
            break
        received += n
    elapsed = time.perf_counter() - start
    sock.close()
    if received != args.size:
        raise RuntimeError(f"received {received} of {args.size} bytes")
    return {"value": args.size / elapsed / 1e6, "unit": "MB/s", "seconds": elapsed}


def run_upload(args: argparse.Namespace) -> dict[str, Any]:
    sock = _connect(args.port, timeout=args.timeout)
    # Four 64 KiB chunks per write: with one chunk per write the client itself tops out near
    # 1.4 GB/s here (per-call costs), below what the bare loop and some servers can take.
    framed = (b"%x\r\n" % PIECE + b"x" * PIECE + b"\r\n") * 4
    full, rest = divmod(args.size, PIECE * 4)
    head = b"POST /upload HTTP/1.1\r\nHost: bench\r\nTransfer-Encoding: chunked\r\n\r\n"
    start = time.perf_counter()
    sock.sendall(head)
    for _ in range(full):
        sock.sendall(framed)
    while rest:
        piece = min(rest, PIECE)
        sock.sendall(b"%x\r\n" % piece + b"x" * piece + b"\r\n")
        rest -= piece
    sock.sendall(b"0\r\n\r\n")
    parser = ResponseParser(keep_bodies=True)
    status = _read_response(sock, parser)
    elapsed = time.perf_counter() - start
    sock.close()
    if status != 200:
        raise RuntimeError(f"upload answered {status}")
    counted = int(parser.bodies.pop(0))
    # The bare loop counts raw chunked bytes; HTTP servers count the decoded body.
    if counted < args.size:
        raise RuntimeError(f"server counted {counted} of {args.size} bytes")
    return {"value": args.size / elapsed / 1e6, "unit": "MB/s", "seconds": elapsed}


def run_close(args: argparse.Namespace) -> dict[str, Any]:
    """``count`` connections, ``concurrency`` at a time, each one request then closed."""
    request = request_bytes("GET", "/", close=True)
    sel = selectors.DefaultSelector()
    started = finished = errors = 0
    replies: dict[socket.socket, bytearray] = {}

    def open_one() -> None:
        nonlocal started
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect((HOST, args.port))
        sock.sendall(request)
        sock.setblocking(False)
        replies[sock] = bytearray()
        sel.register(sock, selectors.EVENT_READ, sock)
        started += 1

    start = time.perf_counter()
    for _ in range(min(args.concurrency, args.count)):
        open_one()
    while replies:
        events = sel.select(30.0)
        if not events:
            errors += len(replies)
            break
        for key, _ in events:
            sock = key.data
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data, errors = b"", errors + 1
            if data:
                replies[sock] += data
                continue
            # The server closed: the exchange is over.
            if not replies.pop(sock).startswith(b"HTTP/1.1 200"):
                errors += 1
            sel.unregister(sock)
            sock.close()
            finished += 1
            if started < args.count:
                open_one()
    elapsed = time.perf_counter() - start
    return {"value": finished / elapsed, "unit": "conn/s", "errors": errors}


def _raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run_idle(args: argparse.Namespace) -> dict[str, Any]:
    _raise_nofile(args.connections + 100)
    request = request_bytes("GET", "/")
    # Warm the server up (imports, first-request caches) before the baseline RSS.
    warm = _connect(args.port)
    for _ in range(20):
        warm.sendall(request)
        _read_response(warm, ResponseParser())
    time.sleep(0.3)
    rss_before = rss_kib(args.server_pid)
    socks: list[socket.socket] = []
    parsers: list[ResponseParser] = []
    # In batches: connect and send a request on each, then read the answers, so that the
    # listen backlog never overflows and every connection is a served keep-alive one.
    batch = 200
    for first in range(0, args.connections, batch):
        group = [_connect(args.port) for _ in range(min(batch, args.connections - first))]
        for sock in group:
            sock.sendall(request)
        for sock in group:
            parser = ResponseParser()
            if _read_response(sock, parser) != 200:
                raise RuntimeError("an idle connection's first request failed")
            socks.append(sock)
            parsers.append(parser)
    time.sleep(0.5)
    rss_after = rss_kib(args.server_pid)
    rng = random.Random(5)
    latencies = []
    for _ in range(args.requests):
        i = rng.randrange(len(socks))
        t0 = time.perf_counter()
        socks[i].sendall(request)
        if _read_response(socks[i], parsers[i]) != 200:
            raise RuntimeError("a request among the idle connections failed")
        latencies.append(time.perf_counter() - t0)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    for sock in [*socks, warm]:
        # Reset rather than close: 10,000 TIME_WAIT sockets per server would crowd the
        # ephemeral ports for the next server's run.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    per_conn = None
    if rss_before is not None and rss_after is not None:
        per_conn = (rss_after - rss_before) / args.connections
    return {
        "value": per_conn,
        "unit": "KiB/conn",
        "p99_ms": p99 * 1000,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "connections": args.connections,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "mode",
        choices=["load", "stream", "upload", "close", "idle", "ws-echo", "ws-big", "ws-idle"],
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--depth", type=int, default=1, help="requests per write (pipelining)")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path", default="/")
    parser.add_argument("--body-size", type=int, default=0)
    parser.add_argument("--size", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--server-pid", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    runner = {
        "load": run_load,
        "stream": run_stream,
        "upload": run_upload,
        "close": run_close,
        "idle": run_idle,
        "ws-echo": run_ws_echo,
        "ws-big": run_ws_big,
        "ws-idle": run_ws_idle,
    }[args.mode]
    print(json.dumps(runner(args)))


if __name__ == "__main__":
    main()
