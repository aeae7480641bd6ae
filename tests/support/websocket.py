"""A tiny raw-socket WebSocket client for tests: frames built and parsed by hand (RFC 6455 5).

Independent of wsproto on purpose (the server uses wsproto; a test client that shared it would
share its mistakes), and low-level on purpose: a test can send any frame, a broken one too,
split anywhere, and read exactly what the server wrote.

* :func:`encode_frame` / :class:`FrameReader`: one frame out (masked, as a client must), frames
  in (unmasked, as a server sends them; a masked one is decoded too).
* :func:`handshake_request` / :class:`WebSocketClient`: the opening handshake over a socket,
  then frames; :meth:`WebSocketClient.recv_message` reassembles fragments and answers nothing
  on its own (pings are returned to the test as frames when ``control=True``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import zlib
from dataclasses import dataclass

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "PING",
    "PONG",
    "TEXT",
    "Frame",
    "FrameReader",
    "HandshakeError",
    "WebSocketClient",
    "accept_for",
    "close_payload",
    "encode_frame",
    "handshake_request",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass(frozen=True)
class Frame:
    """A decoded frame."""

    opcode: int
    payload: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    @property
    def close_code(self) -> int | None:
        """The close code of a close frame (None if it has none)."""
        if self.opcode != CLOSE or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])

    @property
    def close_reason(self) -> str:
        """The close reason of a close frame."""
        return self.payload[2:].decode("utf-8", "replace")


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bool = True,
    mask_key: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """One frame's bytes. ``length`` overrides the announced payload length (to lie)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    first |= (0x10 if rsv3 else 0) | opcode
    size = len(payload) if length is None else length
    mask_bit = 0x80 if mask else 0
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + _xor(payload, key)


def _xor(data: bytes, key: bytes) -> bytes:
    if not data:
        return b""
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(data), "big"
    )


def close_payload(code: int | None = 1000, reason: str = "") -> bytes:
    """A close frame's payload."""
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode()


class FrameReader:
    """Parses frames out of bytes fed in any pieces."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def next_frame(self) -> Frame | None:
        """The next whole frame, or None if more bytes are needed."""
        buf = self.buffer
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        size = second & 0x7F
        offset = 2
        if size == 126:
            if len(buf) < 4:
                return None
            size = struct.unpack("!H", buf[2:4])[0]
            offset = 4
        elif size == 127:
            if len(buf) < 10:
                return None
            size = struct.unpack("!Q", buf[2:10])[0]
            offset = 10
        key = b""
        if second & 0x80:
            if len(buf) < offset + 4:
                return None
            key = bytes(buf[offset : offset + 4])
            offset += 4
        if len(buf) < offset + size:
            return None
        payload = bytes(buf[offset : offset + size])
        if key:
            payload = _xor(payload, key)
        del buf[: offset + size]
        return Frame(
            opcode=first & 0x0F,
            payload=payload,
            fin=bool(first & 0x80),
            rsv1=bool(first & 0x40),
            rsv2=bool(first & 0x20),
            rsv3=bool(first & 0x10),
        )


def accept_for(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def handshake_request(
    path: str = "/",
    *,
    key: str | None = None,
    host: str = "localhost",
    headers: tuple[tuple[str, str], ...] = (),
    version: str = "13",
) -> tuple[bytes, str]:
    """An opening handshake's bytes and its key."""
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        f"Sec-WebSocket-Version: {version}",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


class HandshakeError(Exception):
    """The server did not answer 101; ``status`` and ``head`` say what it answered."""

    def __init__(self, status: int, head: str, body: bytes) -> None:
        super().__init__(f"handshake answered {status}")
        self.status = status
        self.head = head
        self.body = body


class WebSocketClient:
    """A client over a real socket: the handshake, then frames in and out.

    Args:
        address: The server's ``(host, port)``.
        path: The request path.
        headers: Extra handshake header fields.
        after_handshake: Bytes sent in the same write as the handshake (frames a client sends
            before it has the 101).
        deflate: Offer permessage-deflate (``compress`` then deflates text/binary messages).
        timeout: The socket's timeout.
    """

    def __init__(
        self,
        address: tuple[str, int],
        path: str = "/",
        *,
        headers: tuple[tuple[str, str], ...] = (),
        after_handshake: bytes = b"",
        deflate: bool = False,
        timeout: float = 10.0,
        connect: bool = True,
    ) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.reader = FrameReader()
        self.status = 0
        self.head = ""
        self.response_headers: dict[str, str] = {}
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        if deflate:
            headers = (*headers, ("Sec-WebSocket-Extensions", "permessage-deflate"))
        if connect:
            try:
                self.handshake(path, headers, after_handshake)
            except BaseException:
                self.sock.close()
                raise

    def handshake(
        self,
        path: str,
        headers: tuple[tuple[str, str], ...] = (),
        after: bytes = b"",
        version: str = "13",
    ) -> None:
        """Send the handshake and read the 101 (raise :class:`HandshakeError` otherwise)."""
        request, key = handshake_request(path, headers=headers, version=version)
        self.sock.sendall(request + after)
        data = b""
        while b"\r\n\r\n" not in data:
            piece = self.sock.recv(65536)
            if not piece:
                raise HandshakeError(0, data.decode("latin-1"), b"")
            data += piece
        head, _, rest = data.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        lines = self.head.split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.response_headers[name.strip().lower()] = value.strip()
        if self.status != 101:
            body = rest
            length = int(self.response_headers.get("content-length", "0"))
            while len(body) < length:
                piece = self.sock.recv(65536)
                if not piece:
                    break
                body += piece
            raise HandshakeError(self.status, self.head, body)
        assert self.response_headers["sec-websocket-accept"] == accept_for(key)
        if "permessage-deflate" in self.response_headers.get("sec-websocket-extensions", ""):
            self._compressor = zlib.compressobj(wbits=-15)
            self._decompressor = zlib.decompressobj(wbits=-15)
        self.reader.feed(rest)

    @property
    def deflate(self) -> bool:
        """Whether permessage-deflate was negotiated."""
        return self._compressor is not None

    # -- sending --------------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes = b"", **kwargs: object) -> None:
        self.sock.sendall(encode_frame(opcode, payload, **kwargs))  # type: ignore[arg-type]

    def send(self, message: str | bytes, *, compress: bool = False) -> None:
        """Send a whole message as one frame."""
        opcode = TEXT if isinstance(message, str) else BINARY
        payload = message.encode() if isinstance(message, str) else message
        if compress:
            assert self._compressor is not None, "permessage-deflate not negotiated"
            payload = self._compressor.compress(payload) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
            payload = payload[:-4]  # RFC 7692 7.2.1: without the empty block's tail
            self.send_frame(opcode, payload, rsv1=True)
        else:
            self.send_frame(opcode, payload)

    def close(self, code: int | None = 1000, reason: str = "") -> None:
        self.send_frame(CLOSE, close_payload(code, reason))

    # -- receiving ------------------------------------------------------------------------------

    def recv_frame(self) -> Frame:
        """The next frame (raise ``ConnectionError`` if the server closed first)."""
        while True:
            frame = self.reader.next_frame()
            if frame is not None:
                return frame
            data = self.sock.recv(262144)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.reader.feed(data)

    def recv_message(self, *, control: bool = False) -> str | bytes | Frame:
        """The next message (text as ``str``), or a close frame; pings and pongs are skipped
        unless ``control`` (then returned as frames)."""
        pieces: list[bytes] = []
        opcode = None
        compressed = False
        while True:
            frame = self.recv_frame()
            if frame.opcode in (PING, PONG):
                if control:
                    return frame
                continue
            if frame.opcode == CLOSE:
                return frame
            if opcode is None:
                opcode = frame.opcode
                compressed = frame.rsv1
            pieces.append(frame.payload)
            if frame.fin:
                break
        payload = b"".join(pieces)
        if compressed:
            assert self._decompressor is not None
            payload = self._decompressor.decompress(payload + b"\x00\x00\xff\xff")
        return payload.decode() if opcode == TEXT else payload

    def recv_eof(self) -> bool:
        """Read until the server closes; True if it did (False: a frame came first)."""
        try:
            frame = self.reader.next_frame()
            if frame is not None:
                return False
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True

    def close_socket(self) -> None:
        self.sock.close()

    def __enter__(self) -> WebSocketClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
