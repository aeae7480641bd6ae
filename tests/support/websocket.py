"""A raw WebSocket client for tests: exact frames out, every frame in, checked.

RFC 6455 framing written out by hand (not with wsproto), so that tests can send what no
well-behaved library would (reserved bits and opcodes, unmasked or fragmented control
frames, non-minimal lengths, invalid UTF-8, truncated frames) and see precisely what the
server put on the wire. It also speaks permessage-deflate (RFC 7692) from the client side:
offers, the checks a client makes of the server's answer, and compressing and inflating
messages with the negotiated parameters.

The pieces, each usable alone:

* :func:`encode_frame` and :class:`FrameDecoder`: frames to bytes and back (sans-IO);
* :func:`handshake_request`, :func:`accept_key`, :func:`parse_extensions`: the opening
  handshake (RFC 6455 4.1, 4.2.2);
* :class:`DeflateParams`, :func:`negotiated`, :class:`Compressor`, :class:`Inflater`:
  permessage-deflate;
* :class:`WebSocketClient`: a blocking socket that does the handshake, sends bytes as
  given, and reads events (messages reassembled and inflated, pings, pongs, close),
  checking every frame the server sends against what RFC 6455 asks of a server.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import zlib
from dataclasses import dataclass, field

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "PING",
    "PONG",
    "TEXT",
    "Close",
    "Compressor",
    "DeflateParams",
    "Event",
    "Frame",
    "FrameDecoder",
    "Inflater",
    "Message",
    "Ping",
    "Pong",
    "ProtocolViolation",
    "WebSocketClient",
    "accept_key",
    "close_payload",
    "encode_frame",
    "handshake_request",
    "negotiated",
    "parse_extensions",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
#: RFC 6455 1.3: the GUID that turns Sec-WebSocket-Key into Sec-WebSocket-Accept.
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The masking key of RFC 6455 5.7's examples; any key will do, a fixed one replays alike.
DEFAULT_MASK = b"\x37\xfa\x21\x3d"
#: RFC 7692 7.2.1: the tail every compressed message loses on the wire.
DEFLATE_TAIL = b"\x00\x00\xff\xff"
RSV1, RSV2, RSV3 = 4, 2, 1


class ProtocolViolation(AssertionError):
    """The server sent something RFC 6455 / 7692 forbids a server to send."""


# -- frames ------------------------------------------------------------------------------------


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = DEFAULT_MASK,
    length_bytes: int | None = None,
    length: int | None = None,
) -> bytes:
    """One frame as it goes on the wire (RFC 6455 5.2).

    Args:
        opcode: the 4-bit opcode (reserved ones too).
        payload: the unmasked payload.
        fin: the FIN bit.
        rsv: RSV1..RSV3 as a 3-bit number (4 is RSV1, 1 is RSV3).
        mask: the 4-byte masking key, or ``None`` for an unmasked frame.
        length_bytes: force the length encoding: 0 (7 bits), 2 (16 bits) or 8 (64 bits);
            by default the minimal one, as RFC 6455 5.2 requires.
        length: the length announced in the header, when it must differ from the payload's
            (a frame the test will not finish, or an impossible 64-bit length).
    """
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)
    mask_bit = 0x80 if mask is not None else 0
    if length_bytes is None:
        length_bytes = 0 if size <= 125 else 2 if size <= 0xFFFF else 8
    if length_bytes == 0:
        head = struct.pack("!BB", first, mask_bit | size)
    elif length_bytes == 2:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if mask is None:
        return head + payload
    return head + mask + apply_mask(payload, mask)


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (RFC 6455 5.3); its own inverse."""
    if not data:
        return b""
    repeated = (mask * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")


def close_payload(code: int | None = None, reason: bytes = b"") -> bytes:
    """A close frame's payload: the 2-byte code and the reason's bytes (RFC 6455 5.5.1)."""
    return b"" if code is None else struct.pack("!H", code) + reason


@dataclass(frozen=True)
class Frame:
    """One decoded frame, payload unmasked."""

    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0
    masked: bool = False


class FrameDecoder:
    """Bytes in, whole frames out; sans-IO. It checks nothing beyond the frame format."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data`` and return every frame now complete."""
        self._buffer += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    @property
    def pending(self) -> int:
        """How many bytes of an unfinished frame are held."""
        return len(self._buffer)

    def _next(self) -> Frame | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        size = second & 0x7F
        offset = 2
        if size == 126:
            if len(buf) < 4:
                return None
            (size,) = struct.unpack_from("!H", buf, 2)
            offset = 4
        elif size == 127:
            if len(buf) < 10:
                return None
            (size,) = struct.unpack_from("!Q", buf, 2)
            offset = 10
        masked = bool(second & 0x80)
        mask = b""
        if masked:
            if len(buf) < offset + 4:
                return None
            mask = bytes(buf[offset : offset + 4])
            offset += 4
        if len(buf) < offset + size:
            return None
        payload = bytes(buf[offset : offset + size])
        del buf[: offset + size]
        if masked:
            payload = apply_mask(payload, mask)
        return Frame(first & 0xF, payload, bool(first & 0x80), (first >> 4) & 7, masked)


# -- the opening handshake --------------------------------------------------------------------


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for ``key`` (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


#: A fixed Sec-WebSocket-Key (RFC 6455 1.3's example), so that replays are byte-identical.
DEFAULT_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def handshake_request(
    path: str = "/",
    *,
    host: str = "test",
    key: str = DEFAULT_KEY,
    extensions: str | None = None,
    protocols: str | None = None,
    origin: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A client's opening handshake (RFC 6455 4.1)."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    if protocols is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocols}")
    if origin is not None:
        lines.append(f"Origin: {origin}")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


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
                raise ProtocolViolation(f"extension parameter {key!r} empty or repeated in {value!r}")
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
    if value is None or not value.isdigit() or not 8 <= int(value) <= 15 or value != str(int(value)):
        raise ProtocolViolation(f"{name}={value!r} is not a window size of 8 to 15 (RFC 7692 7.1.2)")
    return int(value)


def negotiated(offers: list[dict[str, str | None]], response: dict[str, str | None]) -> DeflateParams:
    """Check a server's permessage-deflate response against the client's offers.

    The response must fit at least one offer as RFC 7692 7.1 says a server answers: only
    known parameters, ``server_no_context_takeover`` kept when offered, ``server_max_window_bits``
    no larger than offered, ``client_max_window_bits`` only when offered.

    Raises:
        ProtocolViolation: the response fits no offer.
    """
    known = {"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits"}
    unknown = set(response) - known
    if unknown:
        raise ProtocolViolation(f"unknown permessage-deflate parameters in the response: {sorted(unknown)}")
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
        if offered_server is not None and ("server_max_window_bits" not in response or server_bits > int(offered_server)):
            reasons.append(f"server_max_window_bits={offered_server} offered, answered {response.get('server_max_window_bits')} (7.1.2.1)")
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
            client_no_context_takeover="client_no_context_takeover" in response,
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
        try:
            data = self._zlib.decompress(payload + DEFLATE_TAIL)
        except zlib.error as exc:
            raise ProtocolViolation(f"the server's compressed message does not inflate: {exc}") from exc
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


#: What :meth:`WebSocketClient.read_event` returns; ``None`` means the server closed TCP.
Event = Message | Ping | Pong | Close


class WebSocketClient:
    """A blocking client: the handshake, raw sends, and checked events.

    Every frame the server sends is checked against what RFC 6455 asks of a server (5.1 no
    mask, 5.2 no RSV bit without an extension, 5.4 and 5.5 control frames whole and short,
    5.4 continuation rules, 8.1 text is UTF-8); a violation raises :class:`ProtocolViolation`.
    """

    def __init__(self, address: tuple[str, int], timeout: float = 10.0) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.connect(address)
        self.decoder = FrameDecoder()
        self.deflate: DeflateParams | None = None
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self._events: list[Event] = []
        self._fragments: list[Frame] = []
        self._inflater: Inflater | None = None
        self.eof = False
        #: Set once a close frame has come: nothing may follow it (RFC 6455 5.5.1).
        self.closed_by_server: Close | None = None

    def __enter__(self) -> WebSocketClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def header(self, name: str) -> str | None:
        lower = name.lower()
        values = [v for n, v in self.headers if n.lower() == lower]
        return ", ".join(values) if values else None

    # -- handshake --

    def handshake(self, request: bytes | None = None, *, key: str = DEFAULT_KEY) -> int:
        """Send an opening handshake and read the response head; return its status.

        On 101 the response is checked (RFC 6455 4.2.2 / 4.1: Upgrade, Connection, the accept
        key) and a permessage-deflate answer is checked against the offers and set up.
        """
        request = request or handshake_request(key=key)
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
        self.headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:])]
        leftover = bytes(head[end:])
        if self.status != 101:
            return self.status
        if (self.header("Upgrade") or "").lower() != "websocket":
            raise ProtocolViolation(f"101 without Upgrade: websocket: {self.headers}")
        if "upgrade" not in (self.header("Connection") or "").lower():
            raise ProtocolViolation(f"101 without Connection: Upgrade: {self.headers}")
        request_key = key
        for line in request.decode("latin-1").split("\r\n"):
            if line.lower().startswith("sec-websocket-key:"):
                request_key = line.split(":", 1)[1].strip()
        if self.header("Sec-WebSocket-Accept") != accept_key(request_key):
            raise ProtocolViolation(f"wrong Sec-WebSocket-Accept: {self.header('Sec-WebSocket-Accept')}")
        self._negotiate(request)
        self._receive(leftover)
        return 101

    def _negotiate(self, request: bytes) -> None:
        offered: list[dict[str, str | None]] = []
        for line in request.decode("latin-1").split("\r\n"):
            if line.lower().startswith("sec-websocket-extensions:"):
                offered += [p for n, p in parse_extensions(line.split(":", 1)[1]) if n == "permessage-deflate"]
        answer = self.header("Sec-WebSocket-Extensions")
        if answer is None:
            return
        accepted = parse_extensions(answer)
        if len(accepted) != 1 or accepted[0][0] != "permessage-deflate" or not offered:
            raise ProtocolViolation(f"extensions answered that were not offered: {answer!r} (RFC 6455 9.1)")
        self.deflate = negotiated(offered, accepted[0][1])
        self._inflater = Inflater(self.deflate.server_max_window_bits, self.deflate.server_no_context_takeover)

    def compressor(self) -> Compressor:
        """A compressor for this connection's messages, as the negotiation allows."""
        assert self.deflate is not None, "permessage-deflate was not negotiated"
        return Compressor(self.deflate.client_max_window_bits, self.deflate.client_no_context_takeover)

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
        while not self._events:
            if self.eof:
                return None
            try:
                chunk = self.sock.recv(262144)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                if self.decoder.pending:
                    raise ProtocolViolation(f"connection closed inside a frame ({self.decoder.pending} bytes held)")
                return None
            self._receive(chunk)
        return self._events.pop(0)

    def _receive(self, data: bytes) -> None:
        for frame in self.decoder.feed(data):
            if self.closed_by_server is not None:
                raise ProtocolViolation(f"a frame after the close frame: {frame}")
            self._check(frame)
            event = self._assemble(frame)
            if event is not None:
                if isinstance(event, Close):
                    self.closed_by_server = event
                self._events.append(event)

    def _check(self, frame: Frame) -> None:
        if frame.masked:
            raise ProtocolViolation("a masked frame from the server (RFC 6455 5.1)")
        allowed_rsv = RSV1 if self.deflate is not None and frame.opcode in (TEXT, BINARY) else 0
        if frame.rsv & ~allowed_rsv:
            raise ProtocolViolation(f"reserved bits {frame.rsv:03b} set by the server (RFC 6455 5.2, RFC 7692 6)")
        if frame.opcode not in (CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG):
            raise ProtocolViolation(f"reserved opcode {frame.opcode} from the server (RFC 6455 5.2)")
        if frame.opcode >= CLOSE and (not frame.fin or len(frame.payload) > 125):
            raise ProtocolViolation(f"a fragmented or long control frame from the server (RFC 6455 5.5): {frame}")
        if frame.opcode == CONTINUATION and not self._fragments:
            raise ProtocolViolation("a continuation frame with no message to continue (RFC 6455 5.4)")
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
                raise ProtocolViolation(f"a text message that is not UTF-8 (RFC 6455 8.1): {exc}") from exc
        return Message(first.opcode == TEXT, payload, compressed)

    @staticmethod
    def _close(payload: bytes) -> Close:
        if len(payload) == 1:
            raise ProtocolViolation("a close frame with a 1-byte payload (RFC 6455 5.5.1)")
        if not payload:
            return Close(None)
        (code,) = struct.unpack("!H", payload[:2])
        if not (1000 <= code <= 1003 or 1007 <= code <= 1011 or 3000 <= code <= 4999):
            raise ProtocolViolation(f"close code {code} may not be sent (RFC 6455 7.4.1, 7.4.2)")
        try:
            payload[2:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolViolation("a close reason that is not UTF-8 (RFC 6455 5.5.1)") from exc
        return Close(code, payload[2:])
