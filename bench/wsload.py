"""The harness's WebSocket load generator (pure Python): echo messages on N connections.

Used by ``bench/client.py``'s modes ``ws-echo`` (many connections, small messages: messages/s),
``ws-big`` (one connection, large messages: MB/s) and ``ws-idle`` (many WebSockets held open:
the server's RSS growth per WebSocket). Each connection opens ``GET /ws`` with
an RFC 6455 handshake that offers no extension (so no server compresses), then runs a closed
loop: one binary message sent, its echo awaited, the next sent. A message is framed once and
the same bytes are sent every time, masked with the all-zero key (legal, RFC 6455 5.3, and
free: the payload goes out as it is), so the client spends its time on the sockets, not on
masking; the server still unmasks every byte.
"""

from __future__ import annotations

import base64
import os
import resource
import selectors
import socket
import time
from typing import Any

from httpwire import rss_kib

HOST = "127.0.0.1"
PATH = "/ws"


def frame(payload: bytes) -> bytes:
    """One final binary frame from the client, masked with the zero key."""
    size = len(payload)
    if size < 126:
        header = bytes([0x82, 0x80 | size])
    elif size < 1 << 16:
        header = bytes([0x82, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x82, 0x80 | 127]) + size.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


def send_upgrade(sock: socket.socket, port: int) -> None:
    """Send the opening handshake of a WebSocket on ``/ws`` (a fresh key each time)."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )


def read_101(sock: socket.socket) -> bytes:
    """Read the handshake's answer (and whatever came with it); raise unless it is a 101."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("closed during the WebSocket handshake")
        head += data
    if not head.startswith(b"HTTP/1.1 101"):
        status = head.split(b"\r\n", 1)[0]
        raise ConnectionError(f"handshake refused: {status!r}")
    return head


def handshake(port: int, timeout: float = 30.0) -> socket.socket:
    """Open a WebSocket on ``/ws``; return the socket with the 101 read off it."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    send_upgrade(sock, port)
    head = read_101(sock)
    if head.index(b"\r\n\r\n") + 4 != len(head):
        raise ConnectionError("the server sent data before the first message")
    return sock


class EchoCounter:
    """Counts the server's whole messages in one connection's byte stream (unmasked frames)."""

    __slots__ = ("_buffer", "_final", "_left", "messages")

    def __init__(self) -> None:
        self._buffer = b""  # an incomplete frame header
        self._left = 0  # payload bytes of the current frame still to come
        self._final = False  # whether the current frame ends a data message
        self.messages = 0

    def feed(self, data: bytes) -> None:
        if self._buffer:
            data, self._buffer = self._buffer + data, b""
        position, end = 0, len(data)
        while position < end:
            if self._left:
                step = min(self._left, end - position)
                self._left -= step
                position += step
                if not self._left and self._final:
                    self.messages += 1
                continue
            if end - position < 2:
                self._buffer = data[position:]
                return
            first, length = data[position], data[position + 1] & 0x7F
            header = 4 if length == 126 else 10 if length == 127 else 2
            if end - position < header:
                self._buffer = data[position:]
                return
            if header > 2:
                length = int.from_bytes(data[position + 2 : position + header], "big")
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("the server closed the WebSocket")
            # Control frames (pings, pongs) are skipped; a data frame counts at its end.
            self._final = bool(first & 0x80) and opcode < 8
            self._left = length
            position += header
            if not length and self._final:
                self.messages += 1


def echo_load(port: int, connections: int, size: int, duration: float) -> dict[str, Any]:
    """``connections`` WebSockets each echoing ``size``-byte messages for ``duration`` s."""
    message = frame(b"x" * size)
    sel = selectors.DefaultSelector()
    counters: dict[socket.socket, EchoCounter] = {}
    for _ in range(connections):
        sock = handshake(port)
        sock.setblocking(False)
        counters[sock] = EchoCounter()
        sel.register(sock, selectors.EVENT_READ, sock)
    # Sends block (briefly) on a big message: the closed loop has one in flight per socket.
    for sock in counters:
        sock.setblocking(True)
        sock.sendall(message)
        sock.setblocking(False)
    done = 0
    start = time.perf_counter()
    deadline = start + duration
    pending = len(counters)
    while pending:
        for key, _ in sel.select(1.0):
            sock = key.data
            counter = counters[sock]
            try:
                data = sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                raise ConnectionError("the server closed a WebSocket")
            before = counter.messages
            counter.feed(data)
            if counter.messages > before:
                done += counter.messages - before
                if time.perf_counter() < deadline:
                    sock.setblocking(True)
                    sock.sendall(message)
                    sock.setblocking(False)
                else:
                    sel.unregister(sock)
                    pending -= 1
        if time.perf_counter() > deadline + 60:
            raise TimeoutError(f"{pending} echoes still missing a minute after the run")
    elapsed = time.perf_counter() - start
    for sock in counters:
        sock.close()
    return {"messages": done, "seconds": elapsed, "bytes": done * size}


def run_ws_echo(args: Any) -> dict[str, Any]:
    """Mode ``ws-echo``: messages/s over ``--connections`` of ``--size``-byte messages."""
    result = echo_load(args.port, args.connections, args.size, args.duration)
    return {"value": result["messages"] / result["seconds"], "unit": "msg/s", **result}


def run_ws_big(args: Any) -> dict[str, Any]:
    """Mode ``ws-big``: MB/s of ``--size``-byte messages echoed on one connection."""
    result = echo_load(args.port, 1, args.size, args.duration)
    return {"value": result["bytes"] / result["seconds"] / 1e6, "unit": "MB/s", **result}


#: Handshakes sent before their answers are read: the listen backlog never overflows.
IDLE_BATCH = 100


def open_idle(port: int, count: int, into: list[socket.socket]) -> None:
    """Open ``count`` WebSockets on ``/ws`` in batches (into ``into``), each answered 101."""
    opened = 0
    while opened < count:
        batch = []
        for _ in range(min(IDLE_BATCH, count - opened)):
            sock = socket.create_connection((HOST, port), timeout=60)
            into.append(sock)
            send_upgrade(sock, port)
            batch.append(sock)
        for sock in batch:
            read_101(sock)
            opened += 1


def echo_each(socks: list[socket.socket], message: bytes) -> None:
    """One message sent on each WebSocket, then each echo read back (pings skipped)."""
    for sock in socks:
        sock.sendall(message)
    for sock in socks:
        counter = EchoCounter()
        while not counter.messages:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed an idle WebSocket")
            counter.feed(data)


def run_ws_idle(args: Any) -> dict[str, Any]:
    """Mode ``ws-idle``: ``--connections`` WebSockets held open after one echo each; the
    server's RSS growth (``/proc/PID/status``) per WebSocket, then one more echo on each."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.connections + 100
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    message = frame(b"x" * args.size)
    socks: list[socket.socket] = []
    try:
        # Warm-up WebSockets, kept open: imports, threads and caches are not per-WebSocket.
        open_idle(args.port, 20, socks)
        echo_each(socks, message)
        time.sleep(0.3)  # a server's other threads settle (bench only: not a test)
        before = rss_kib(args.server_pid)
        open_idle(args.port, args.connections, socks)
        echo_each(socks[20:], message)
        time.sleep(0.5)
        after = rss_kib(args.server_pid)
        echo_each(socks, message)  # every one still open and served
    finally:
        for sock in socks:
            # Reset rather than close: thousands of TIME_WAIT sockets per server would crowd
            # the ephemeral ports for the next server's run.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            sock.close()
    per_websocket = None
    if before is not None and after is not None:
        per_websocket = (after - before) / args.connections
    return {"value": per_websocket, "unit": "KiB/ws", "connections": args.connections}
