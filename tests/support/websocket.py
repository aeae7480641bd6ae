"""A tiny raw-socket WebSocket client for tests: frames built and parsed by hand (RFC 6455 5).

Independent of wsproto on purpose (the server uses wsproto; a test client that shared it would
share its mistakes), and low-level on purpose: a test can send any frame, a broken one too,
split anywhere, and read exactly what the server wrote.

* :func:`encode_frame` / :class:`FrameReader`: one frame out (masked, as a client must), frames
  in (unmasked, as a server sends them; a masked one is decoded too).
* :func:`handshake_request` / :class:`WebSocketClient`: the opening handshake over a socket,
  then frames; :meth:`WebSocketClient.recv_message` reassembles fragments and answers nothing
  on its own (pings are returned to the test as frames when ``control=True``).

For the conformance suite (tests/conformance/test_websocket_conformance.py):

* :func:`parse_extensions`, :class:`DeflateParams`, :func:`negotiated`, :class:`Compressor`,
  :class:`Inflater`: permessage-deflate (RFC 7692) from the client's side: the checks a
  client makes of the server's answer, and compressing and inflating with the agreed
  parameters;
* :class:`StrictClient`: a client that sends bytes exactly as given and reads events
  (messages reassembled and inflated, pings, pongs, the close), checking every frame the
  server sends against what RFC 6455 / 7692 ask of a server.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import zlib
from dataclasses import dataclass, field

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "DEFAULT_KEY",
    "DEFAULT_MASK",
    "PING",
    "PONG",
    "RSV1",
    "TEXT",
    "Close",
    "Compressor",
    "DeflateParams",
    "Event",
    "Frame",
    "FrameReader",
    "HandshakeError",
    "Inflater",
    "Message",
    "Ping",
    "Pong",
    "ProtocolViolation",
    "ServerEventReader",
    "StrictClient",
    "WebSocketClient",
    "accept_for",
    "close_payload",
    "encode_frame",
    "handshake_request",
    "negotiated",
    "parse_extensions",
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
    #: Whether the frame came masked (a server must never mask, RFC 6455 5.1).
    masked: bool = False

    @property
    def rsv(self) -> int:
        """RSV1..RSV3 as a 3-bit number (RSV1 is 4)."""
        return self.rsv1 << 2 | self.rsv2 << 1 | int(self.rsv3)

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
    length_bytes: int | None = None,
) -> bytes:
    """One frame's bytes. ``length`` overrides the announced payload length (to lie);
    ``length_bytes`` forces its encoding (0: 7 bits, 2: 16 bits, 8: 64 bits) where RFC 6455
    5.2 asks for the minimal one."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    first |= (0x10 if rsv3 else 0) | opcode
    size = len(payload) if length is None else length
    mask_bit = 0x80 if mask else 0
    if length_bytes is None:
        length_bytes = 0 if size < 126 else 2 if size < 65536 else 8
    if length_bytes == 0:
        head = struct.pack("!BB", first, mask_bit | size)
    elif length_bytes == 2:
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


def close_payload(code: int | None = 1000, reason: str | bytes = "") -> bytes:
    """A close frame's payload (a ``bytes`` reason is sent as is, invalid UTF-8 too)."""
    if code is None:
        return b""
    return struct.pack("!H", code) + (reason.encode() if isinstance(reason, str) else reason)


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
            masked=bool(second & 0x80),
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


# -- for the conformance suite: permessage-deflate and a checking client -------------------------

#: RFC 7692 7.2.1: the tail every compressed message loses on the wire.
DEFLATE_TAIL = b"\x00\x00\xff\xff"
RSV1, RSV2, RSV3 = 4, 2, 1
#: The masking key of RFC 6455 5.7's examples: any key will do, and a fixed one replays alike.
DEFAULT_MASK = b"\x37\xfa\x21\x3d"
#: A fixed Sec-WebSocket-Key (RFC 6455 1.3's example), so that replays are byte-identical.
DEFAULT_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


class ProtocolViolation(AssertionError):
    """The server sent something RFC 6455 / 7692 forbids a server to send."""


def parse_extensions(value: str) -> list[tuple[str, dict[str, str | None]]]:
    """A Sec-WebSocket-Extensions value as ``[(name, {param: value or None})]`` (RFC 6455 9.1).

    Raises:
        ProtocolViolation: a parameter is repeated or the syntax is broken.
    """
    out: list[tuple[str, dict[str, str | None]]] = []
    for item in value.split(","):
        if not item.strip():
            continue
        name, *params = (part.strip() for part in item.split(";"))
        parsed: dict[str, str | None] = {}
        for param in params:
            key, eq, val = param.partition("=")
            key = key.strip()
            if not key or key in parsed:
                raise ProtocolViolation(
                    f"extension parameter {key!r} empty or repeated in {value!r}"
                )
            parsed[key] = val.strip().strip('"') if eq else None
        out.append((name, parsed))
    return out


# -- permessage-deflate (RFC 7692) ------------------------------------------------------------


@dataclass(frozen=True)
class DeflateParams:
    """The parameters both ends use once permessage-deflate is agreed (RFC 7692 7.1)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15


def _window_bits(value: str | None, name: str) -> int:
    if (
        value is None
        or not value.isdigit()
        or not 8 <= int(value) <= 15
        or value != str(int(value))
    ):
        raise ProtocolViolation(
            f"{name}={value!r} is not a window size of 8 to 15 (RFC 7692 7.1.2)"
        )
    return int(value)


def negotiated(
    offers: list[dict[str, str | None]], response: dict[str, str | None]
) -> DeflateParams:
    """Check a server's permessage-deflate response against the client's offers.

    The response must fit at least one offer as RFC 7692 7.1 says a server answers: only
    known parameters, ``server_no_context_takeover`` kept when offered, ``server_max_window_bits``
    no larger than offered, ``client_max_window_bits`` only when offered.

    Raises:
        ProtocolViolation: the response fits no offer.
    """
    known = {
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    }
    unknown = set(response) - known
    if unknown:
        raise ProtocolViolation(
            f"unknown permessage-deflate parameters in the response: {sorted(unknown)}"
        )
    for flag in ("server_no_context_takeover", "client_no_context_takeover"):
        if flag in response and response[flag] is not None:
            raise ProtocolViolation(f"{flag} takes no value (RFC 7692 7.1.1)")
    server_bits = 15
    if "server_max_window_bits" in response:
        server_bits = _window_bits(response["server_max_window_bits"], "server_max_window_bits")
    client_bits = 15
    if "client_max_window_bits" in response:
        client_bits = _window_bits(response["client_max_window_bits"], "client_max_window_bits")
    reasons = []
    for offer in offers:
        if "server_no_context_takeover" in offer and "server_no_context_takeover" not in response:
            reasons.append("server_no_context_takeover offered but not in the response (7.1.1.1)")
            continue
        offered_server = offer.get("server_max_window_bits")
        if offered_server is not None and (
            "server_max_window_bits" not in response or server_bits > int(offered_server)
        ):
            reasons.append(
                f"server_max_window_bits={offered_server} offered, "
                f"answered {response.get('server_max_window_bits')} (7.1.2.1)"
            )
            continue
        if "client_max_window_bits" in response and "client_max_window_bits" not in offer:
            reasons.append("client_max_window_bits answered but not offered (7.1.2.2)")
            continue
        offered_client = offer.get("client_max_window_bits")
        if offered_client is not None and client_bits > int(offered_client):
            reasons.append("client_max_window_bits larger than offered (7.1.2.2)")
            continue
        return DeflateParams(
            server_no_context_takeover="server_no_context_takeover" in response,
            # RFC 7692 7.1.1.2: offering it is the client's promise, answered or not.
            client_no_context_takeover="client_no_context_takeover" in response
            or "client_no_context_takeover" in offer,
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
        )
    raise ProtocolViolation(f"the permessage-deflate response {response} fits no offer: {reasons}")


class Compressor:
    """Compress messages as a client with the agreed parameters (RFC 7692 7.2.1)."""

    def __init__(self, window_bits: int = 15, no_context_takeover: bool = False) -> None:
        # zlib cannot make raw deflate streams with an 8-bit window; 9 is the smallest.
        self._bits = max(window_bits, 9)
        self._reset = no_context_takeover
        self._zlib = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self._bits)

    def compress(self, data: bytes) -> bytes:
        """The payload of ``data``'s message: compressed, flushed, the 4-byte tail removed."""
        out = self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        if self._reset:
            self._zlib = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self._bits)
        assert out.endswith(DEFLATE_TAIL)
        return out[:-4]


class Inflater:
    """Inflate a server's compressed messages with the agreed parameters (RFC 7692 7.2.2)."""

    def __init__(self, window_bits: int = 15, no_context_takeover: bool = False) -> None:
        self._bits = window_bits
        self._reset = no_context_takeover
        self._zlib = zlib.decompressobj(-window_bits)

    def inflate(self, payload: bytes) -> bytes:
        """One whole message's payload (all its frames joined) inflated.

        Raises:
            ProtocolViolation: the data does not inflate within the agreed window (a server
                that ignored server_max_window_bits or server_no_context_takeover).
        """
        # zlib checks a back-reference against the window only when it reaches behind the
        # output of the current call: below 15 bits, inflate in pieces much smaller than the
        # window, so that a server reaching further back than agreed is caught.
        step = 0 if self._bits >= 15 else max(64, (1 << self._bits) // 8)
        try:
            if not step:
                data = self._zlib.decompress(payload + DEFLATE_TAIL)
            else:
                pieces = [self._zlib.decompress(payload + DEFLATE_TAIL, step)]
                while self._zlib.unconsumed_tail:
                    pieces.append(self._zlib.decompress(self._zlib.unconsumed_tail, step))
                data = b"".join(pieces)
        except zlib.error as exc:
            raise ProtocolViolation(
                f"the server's compressed message does not inflate: {exc}"
            ) from exc
        if self._reset:
            self._zlib = zlib.decompressobj(-self._bits)
        return data


# -- events a client reads --------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A whole data message: text (opcode 1) or binary, reassembled and inflated."""

    text: bool
    payload: bytes
    #: Whether it came compressed (RSV1 on its first frame); ``None`` when not compared.
    compressed: bool | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        shown = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        kind = "text" if self.text else "binary"
        return f"Message({kind}, {len(self.payload)} bytes: {shown!r})"


@dataclass(frozen=True)
class Ping:
    """A ping from the server."""

    payload: bytes


@dataclass(frozen=True)
class Pong:
    """A pong from the server."""

    payload: bytes


@dataclass(frozen=True)
class Close:
    """The server's close frame: its code (``None`` for an empty payload) and reason bytes."""

    code: int | None
    reason: bytes = b""


#: What :meth:`StrictClient.read_event` returns; ``None`` means the server closed TCP.
Event = Message | Ping | Pong | Close


class ServerEventReader:
    """Bytes from a server in, checked events out; sans-IO (no socket, no clock).

    Every frame is checked against what RFC 6455 asks of a server (5.1 no mask, 5.2 no RSV
    bit without an extension, 5.4 and 5.5 control frames whole and short, 5.4 continuation
    rules, 8.1 text is UTF-8, 7.4 close codes a server may send, nothing after its close) and
    compressed messages are inflated with the negotiated parameters (RFC 7692 7.2.2); a
    violation raises :class:`ProtocolViolation`.

    Args:
        deflate: The negotiated permessage-deflate parameters, or None.
    """

    def __init__(self, deflate: DeflateParams | None = None) -> None:
        self.reader = FrameReader()
        self.deflate = deflate
        self.events: list[Event] = []
        self._fragments: list[Frame] = []
        self._inflater = (
            Inflater(deflate.server_max_window_bits, deflate.server_no_context_takeover)
            if deflate is not None
            else None
        )
        #: Set once a close frame has come: nothing may follow it (RFC 6455 5.5.1).
        self.closed_by_server: Close | None = None

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held."""
        return len(self.reader.buffer)

    def feed(self, data: bytes) -> None:
        """Read ``data``; the events of every frame it completes go to :attr:`events`."""
        self.reader.feed(data)
        while (frame := self.reader.next_frame()) is not None:
            if self.closed_by_server is not None:
                raise ProtocolViolation(f"a frame after the close frame: {frame}")
            self._check(frame)
            event = self._assemble(frame)
            if event is not None:
                if isinstance(event, Close):
                    self.closed_by_server = event
                self.events.append(event)

    def _check(self, frame: Frame) -> None:
        if frame.masked:
            raise ProtocolViolation("a masked frame from the server (RFC 6455 5.1)")
        allowed_rsv = RSV1 if self.deflate is not None and frame.opcode in (TEXT, BINARY) else 0
        if frame.rsv & ~allowed_rsv:
            raise ProtocolViolation(
                f"reserved bits {frame.rsv:03b} set by the server (RFC 6455 5.2, RFC 7692 6)"
            )
        if frame.opcode not in (CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG):
            raise ProtocolViolation(
                f"reserved opcode {frame.opcode} from the server (RFC 6455 5.2)"
            )
        if frame.opcode >= CLOSE and (not frame.fin or len(frame.payload) > 125):
            raise ProtocolViolation(
                f"a fragmented or long control frame from the server (RFC 6455 5.5): {frame}"
            )
        if frame.opcode == CONTINUATION and not self._fragments:
            raise ProtocolViolation(
                "a continuation frame with no message to continue (RFC 6455 5.4)"
            )
        if frame.opcode in (TEXT, BINARY) and self._fragments:
            raise ProtocolViolation("a new message inside a fragmented one (RFC 6455 5.4)")

    def _assemble(self, frame: Frame) -> Event | None:
        if frame.opcode == PING:
            return Ping(frame.payload)
        if frame.opcode == PONG:
            return Pong(frame.payload)
        if frame.opcode == CLOSE:
            return self._close(frame.payload)
        self._fragments.append(frame)
        if not frame.fin:
            return None
        first, frames = self._fragments[0], self._fragments
        self._fragments = []
        payload = b"".join(f.payload for f in frames)
        compressed = bool(first.rsv & RSV1)
        if compressed:
            assert self._inflater is not None
            payload = self._inflater.inflate(payload)
        if first.opcode == TEXT:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolViolation(
                    f"a text message that is not UTF-8 (RFC 6455 8.1): {exc}"
                ) from exc
        return Message(first.opcode == TEXT, payload, compressed)

    @staticmethod
    def _close(payload: bytes) -> Close:
        if len(payload) == 1:
            raise ProtocolViolation("a close frame with a 1-byte payload (RFC 6455 5.5.1)")
        if not payload:
            return Close(None)
        (code,) = struct.unpack("!H", payload[:2])
        # 1012-1014: registered with IANA after RFC 6455 (restart, try again, bad gateway).
        if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
            raise ProtocolViolation(f"close code {code} may not be sent (RFC 6455 7.4.1, 7.4.2)")
        try:
            payload[2:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolViolation("a close reason that is not UTF-8 (RFC 6455 5.5.1)") from exc
        return Close(code, payload[2:])


class StrictClient:
    """A blocking client: the handshake, raw sends, and the checked events of a
    :class:`ServerEventReader`."""

    def __init__(self, address: tuple[str, int], timeout: float = 10.0) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.connect(address)
        self.events = ServerEventReader()
        self.deflate: DeflateParams | None = None
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.eof = False

    def __enter__(self) -> StrictClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def header(self, name: str) -> str | None:
        lower = name.lower()
        values = [v for n, v in self.headers if n.lower() == lower]
        return ", ".join(values) if values else None

    # -- handshake --

    def handshake(
        self, path: str = "/", *, extensions: str | None = None, key: str = DEFAULT_KEY
    ) -> int:
        """Send an opening handshake and read the response head; return its status.

        On 101 the response is checked (RFC 6455 4.2.2 / 4.1: Upgrade, Connection, the accept
        key) and a permessage-deflate answer is checked against the ``extensions`` offered
        and set up.
        """
        headers = (("Sec-WebSocket-Extensions", extensions),) if extensions is not None else ()
        request, key = handshake_request(path, key=key, headers=headers)
        self.sock.sendall(request)
        head = bytearray()
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolViolation(f"connection closed during the handshake: {bytes(head)!r}")
            head += chunk
        end = head.index(b"\r\n\r\n") + 4
        lines = bytes(head[: end - 4]).decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        self.headers = [
            (n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:])
        ]
        leftover = bytes(head[end:])
        if self.status != 101:
            return self.status
        if (self.header("Upgrade") or "").lower() != "websocket":
            raise ProtocolViolation(f"101 without Upgrade: websocket: {self.headers}")
        if "upgrade" not in (self.header("Connection") or "").lower():
            raise ProtocolViolation(f"101 without Connection: Upgrade: {self.headers}")
        if self.header("Sec-WebSocket-Accept") != accept_for(key):
            raise ProtocolViolation(
                f"wrong Sec-WebSocket-Accept: {self.header('Sec-WebSocket-Accept')}"
            )
        self._negotiate(extensions)
        self.events = ServerEventReader(self.deflate)
        self.events.feed(leftover)
        return 101

    def _negotiate(self, extensions: str | None) -> None:
        answer = self.header("Sec-WebSocket-Extensions")
        if answer is None:
            return
        # Parsed only once answered: a case may offer what parse_extensions refuses (a
        # repeated parameter), which the server must decline; accepting it fails here.
        offered: list[dict[str, str | None]] = []
        if extensions is not None:
            offered = [
                params
                for name, params in parse_extensions(extensions)
                if name == "permessage-deflate"
            ]
        accepted = parse_extensions(answer)
        if len(accepted) != 1 or accepted[0][0] != "permessage-deflate" or not offered:
            raise ProtocolViolation(
                f"extensions answered that were not offered: {answer!r} (RFC 6455 9.1)"
            )
        self.deflate = negotiated(offered, accepted[0][1])

    def compressor(self) -> Compressor:
        """A compressor for this connection's messages, as the negotiation allows."""
        assert self.deflate is not None, "permessage-deflate was not negotiated"
        return Compressor(
            self.deflate.client_max_window_bits, self.deflate.client_no_context_takeover
        )

    # -- sending --

    def send(self, data: bytes) -> bool:
        """Send ``data`` as is; ``False`` when the server has already closed the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    # -- receiving --

    def read_event(self) -> Event | None:
        """The next event from the server, or ``None`` once it has closed TCP.

        A reset after the server's close frame counts as its end of the connection; before it,
        as the connection dropped (``None`` too, with :attr:`eof` set).

        Raises:
            TimeoutError: nothing came within the socket's timeout.
            ProtocolViolation: the server broke a rule of RFC 6455 / 7692.
        """
        while not self.events.events:
            if self.eof:
                return None
            try:
                chunk = self.sock.recv(262144)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                if self.events.pending:
                    raise ProtocolViolation(
                        f"connection closed inside a frame ({self.events.pending} bytes held)"
                    )
                return None
            self.events.feed(chunk)
        return self.events.events.pop(0)
