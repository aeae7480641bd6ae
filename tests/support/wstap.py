"""A TCP relay between a WebSocket client and the server that counts what crosses the wire.

Tests put a :class:`Tap` between a real client (a browser, Node, ``websockets``) and VestesPy
to see the frames themselves: whether permessage-deflate compressed them (RSV1 set on a
message's first frame, RFC 7692 6) and how many bytes they took on the wire against the
bytes of the messages. The client connects to the tap, the tap to ``upstream``.

Each direction of each connection is read on a thread of its own and parsed independently:
the client's side as one HTTP request head then, if it asked for ``Upgrade: websocket``,
frames; the server's side as one response head then, if it is 101, frames. A connection that
is not a WebSocket (the page, a report POST) is relayed without parsing. With
``parse=False`` (TLS: the bytes are ciphertext) only the byte counts are kept.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from dataclasses import dataclass

__all__ = ["DirectionStats", "Tap"]

_HEAD_LIMIT = 64 * 1024


@dataclass
class DirectionStats:
    """What crossed one direction (``client`` to server, or ``server`` to client)."""

    #: Every byte relayed, heads and non-WebSocket connections included.
    wire_bytes: int = 0
    #: WebSocket frames seen, and those with RSV1 set (a compressed message's first frame).
    frames: int = 0
    compressed_frames: int = 0
    #: The frames' payload bytes as sent (compressed where compressed), of data frames only.
    data_payload_bytes: int = 0
    #: Connections whose head upgraded them to WebSocket, in this direction.
    upgrades: int = 0


class _FrameParser:
    """Counts the frames of one direction's byte stream after its HTTP head."""

    def __init__(self, stats: DirectionStats, lock: threading.Lock, from_client: bool) -> None:
        self.stats = stats
        self.lock = lock
        self.from_client = from_client
        self.head = bytearray()
        self.mode = "head"  # then "frames" or "opaque"
        self.buffer = bytearray()
        self.skip = 0  # payload bytes of the current frame still to pass

    def feed(self, data: bytes) -> None:
        if self.mode == "head":
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > _HEAD_LIMIT:
                    self.mode = "opaque"
                return
            head, rest = bytes(self.head[:end]).lower(), bytes(self.head[end + 4 :])
            self.head.clear()
            if self.from_client:
                upgraded = b"\r\nupgrade: websocket" in head
            else:
                upgraded = head.startswith(b"http/1.1 101")
            self.mode = "frames" if upgraded else "opaque"
            if upgraded:
                with self.lock:
                    self.stats.upgrades += 1
            data = rest
        if self.mode == "frames":
            self._frames(data)

    def _frames(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.skip:
                step = min(self.skip, len(view))
                self.skip -= step
                view = view[step:]
                continue
            self.buffer += view
            view = memoryview(b"")
            header = self._header()
            if header is None:
                return
            length, opcode, rsv1, size = header
            rest = bytes(self.buffer[size:])
            self.buffer.clear()
            with self.lock:
                self.stats.frames += 1
                self.stats.compressed_frames += rsv1
                if opcode < 8:  # continuation, text, binary: not control frames
                    self.stats.data_payload_bytes += length
            self.skip = length
            view = memoryview(rest)

    def _header(self) -> tuple[int, int, int, int] | None:
        """(payload length, opcode, rsv1, header size), or None until the header is whole."""
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        opcode, rsv1 = buffer[0] & 0x0F, (buffer[0] >> 6) & 1
        masked, length = buffer[1] & 0x80, buffer[1] & 0x7F
        size = 2
        if length == 126:
            size, length = 4, int.from_bytes(buffer[2:4], "big") if len(buffer) >= 4 else -1
        elif length == 127:
            size, length = 10, int.from_bytes(buffer[2:10], "big") if len(buffer) >= 10 else -1
        if masked:
            size += 4
        if length < 0 or len(buffer) < size:
            return None
        return length, opcode, rsv1, size


class Tap:
    """Relays every connection made to :attr:`address` to ``upstream``; counts each way."""

    def __init__(self, upstream: tuple[str, int], parse: bool = True) -> None:
        self.upstream = upstream
        self.parse = parse
        self.client = DirectionStats()
        self.server = DirectionStats()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._accepter = threading.Thread(target=self._accept, name="tap-accept", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def snapshot(self) -> tuple[DirectionStats, DirectionStats]:
        """Copies of the (client to server, server to client) counts."""
        with self._lock:
            return dataclasses.replace(self.client), dataclasses.replace(self.server)

    def __enter__(self) -> Tap:
        self._accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accepter.join(10)
        for thread in list(self._threads):
            thread.join(10)
        for sock in sockets:
            sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [downstream, upstream]
            for source, sink, from_client in (
                (downstream, upstream, True),
                (upstream, downstream, False),
            ):
                stats = self.client if from_client else self.server
                thread = threading.Thread(
                    target=self._pump, args=(source, sink, stats, from_client), daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, stats: DirectionStats, from_client: bool
    ) -> None:
        parser = _FrameParser(stats, self._lock, from_client) if self.parse else None
        try:
            while data := source.recv(256 * 1024):
                with self._lock:
                    stats.wire_bytes += len(data)
                if parser is not None:
                    parser.feed(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass
