"""The WebSocket conformance cases, as data: frames a client sends and what must come back.

Modelled on the case sections of Autobahn|Testsuite (crossbario/autobahn-testsuite, whose
fuzzing client needs Python 2.7), written from its published case descriptions and
expectations; ``autobahn`` names the case a VestesPy case follows, and cases without one
are VestesPy's own additions for rules of RFC 6455 / RFC 7692 the Autobahn sections leave
out. Each case states the section that decides it.

A case is a list of steps: :class:`Send` (frames, as wire bytes, or a :class:`Deflated`
message the runner compresses with the negotiated parameters) and :class:`Expect` (the
events that must come back, in order, and nothing else). Then an :class:`Outcome`:

* ``clean``: the client closes with 1000 and the server answers 1000, then closes TCP;
* ``reply``: the case itself sent a close frame; the server answers with one of ``codes``
  (``None``: an empty close payload) and closes TCP;
* ``fail``: the server fails the connection (RFC 6455 7.1.7): a close frame with one of
  ``codes`` (1002 protocol error, 1007 invalid data, 1009 too big), nothing after it, then
  TCP closed; with ``drop_ok``, closing TCP without a close frame passes too, as Autobahn
  allows for those cases.

The echo server (conftest.py) sends every message back as it came (text as text).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from support.websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    DEFAULT_MASK,
    PING,
    PONG,
    RSV1,
    TEXT,
    Message,
    Pong,
    close_payload,
    encode_frame,
)

__all__ = ["CASES", "GAPS", "SECTIONS", "Case", "Deflated", "Expect", "Outcome", "Send"]

#: The case sections, numbered as Autobahn|Testsuite numbers them.
SECTIONS: dict[int, str] = {
    1: "Framing",
    2: "Pings and pongs",
    3: "Reserved bits",
    4: "Opcodes",
    5: "Fragmentation",
    6: "UTF-8 handling",
    7: "Close handling",
    9: "Limits (scaled down)",
    12: "permessage-deflate: compressed messages",
    13: "permessage-deflate: negotiation and frames",
}

#: The default ``websocket_max_message_size`` (1 MiB): the limit section 9 works against.
MAX_MESSAGE = 1024 * 1024


@dataclass(frozen=True)
class Deflated:
    """A message the runner compresses with the negotiated permessage-deflate parameters.

    ``fragment`` splits the compressed payload into frames of that many bytes (RSV1 on the
    first only, RFC 7692 6.1); 0 sends one frame.
    """

    text: bool
    payload: bytes
    fragment: int = 0


@dataclass(frozen=True)
class Send:
    """Bytes the client sends: whole frames (or :class:`Deflated` messages), in order."""

    items: tuple[bytes | Deflated, ...]


@dataclass(frozen=True)
class Expect:
    """Events the server must send next, in this order and nothing else (its pings aside)."""

    events: tuple[Message | Pong, ...]


@dataclass(frozen=True)
class Outcome:
    """How the connection must end (see the module docstring)."""

    kind: str
    codes: frozenset[int | None] = frozenset({1000})
    drop_ok: bool = False

    def describe(self) -> str:
        codes = "/".join(
            "empty" if c is None else str(c) for c in sorted(self.codes, key=lambda c: c or 0)
        )
        if self.kind == "clean":
            return "echo; clean close 1000"
        if self.kind == "reply":
            return f"close answered ({codes})"
        return f"fail: close {codes}" + (" or TCP drop" if self.drop_ok else "")


CLEAN = Outcome("clean")


def fail(*codes: int, drop_ok: bool = False) -> Outcome:
    return Outcome("fail", frozenset(codes), drop_ok)


def reply(*codes: int | None) -> Outcome:
    return Outcome("reply", frozenset(codes))


@dataclass(frozen=True)
class Case:
    """One WebSocket conformance case."""

    id: str
    title: str
    rfc: str
    steps: tuple[Send | Expect, ...]
    outcome: Outcome = CLEAN
    #: The Autobahn|Testsuite case this one follows ("" for VestesPy's own).
    autobahn: str = ""
    #: The Sec-WebSocket-Extensions offer, if any.
    offer: str | None = None
    #: Whether the server must accept permessage-deflate (True), decline it (False), or
    #: either (None; only for cases without an offer, where it cannot accept).
    deflate: bool | None = None
    #: Parameters the server's permessage-deflate answer must hold.
    require: tuple[str, ...] = ()
    #: The case needs the client to keep its compression context (RFC 7692 7.2.3.2): it is
    #: skipped when the server's answer asks for client_no_context_takeover.
    client_context: bool = False
    #: How the runner writes the bytes: "whole" (each Send in one write), "framewise" (one
    #: write per frame), "bytewise" (one byte per write), "split" (pieces of seeded random
    #: sizes up to ``chop``, or exactly ``chop`` bytes with ``fixed_chop``).
    modes: tuple[str, ...] = ()
    chop: int = 997
    fixed_chop: bool = False
    note: str = field(default="", compare=False)

    @property
    def section(self) -> int:
        return int(self.id.split(".")[0])

    @property
    def wire_size(self) -> int:
        return sum(
            len(i) if isinstance(i, bytes) else len(i.payload)
            for s in self.steps
            if isinstance(s, Send)
            for i in s.items
        )

    @property
    def send_modes(self) -> tuple[str, ...]:
        if self.modes:
            return self.modes
        return ("whole", "bytewise") if self.wire_size <= BYTEWISE_MAX else ("whole", "split")


#: Cases up to this many bytes are also replayed one byte per write; longer ones in pieces.
BYTEWISE_MAX = 1024

CASES: list[Case] = []

#: Cases VestesPy fails today: case id -> (why, the labels that must all apply: backend
#: name, "pool" or "inline", the send mode; empty for everywhere, whether the failure is
#: certain). Certain ones are strict xfails; a race that sometimes goes the right way is not.
GAPS: dict[str, tuple[str, frozenset[str], bool]] = {}


def add(case: Case) -> None:
    assert all(c.id != case.id for c in CASES), case.id
    CASES.append(case)


# -- frame helpers (client frames are masked, RFC 6455 5.3) -----------------------------------


def wire(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = DEFAULT_MASK,
    length: int | None = None,
    length_bytes: int | None = None,
) -> bytes:
    """A frame's bytes; ``rsv`` as a 3-bit number (4 is RSV1), ``mask=None`` unmasked."""
    return encode_frame(
        opcode,
        payload,
        fin=fin,
        rsv1=bool(rsv & 4),
        rsv2=bool(rsv & 2),
        rsv3=bool(rsv & 1),
        mask=mask is not None,
        mask_key=mask,
        length=length,
        length_bytes=length_bytes,
    )


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    return wire(opcode, payload, fin=fin, rsv=rsv)


def text(data: bytes | str, *, fin: bool = True, rsv: int = 0) -> bytes:
    return frame(TEXT, data.encode() if isinstance(data, str) else data, fin=fin, rsv=rsv)


def binary(data: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    return frame(BINARY, data, fin=fin, rsv=rsv)


def cont(data: bytes | str, *, fin: bool = True, rsv: int = 0) -> bytes:
    return frame(CONTINUATION, data.encode() if isinstance(data, str) else data, fin=fin, rsv=rsv)


def ping(data: bytes | str = b"") -> bytes:
    return frame(PING, data.encode() if isinstance(data, str) else data)


def pong(data: bytes | str = b"") -> bytes:
    return frame(PONG, data.encode() if isinstance(data, str) else data)


def close(code: int | None = 1000, reason: bytes = b"") -> bytes:
    return frame(CLOSE, close_payload(code, reason))


def echo_text(data: bytes | str) -> Message:
    return Message(True, data.encode() if isinstance(data, str) else data)


def echo_binary(data: bytes) -> Message:
    return Message(False, data)


def send(*items: bytes | Deflated) -> Send:
    return Send(tuple(items))


def expect(*events: Message | Pong) -> Expect:
    return Expect(tuple(events))


RFC_FRAMING = "RFC 6455 5.2, 5.6"

# -- 1 Framing --------------------------------------------------------------------------------

LENGTHS = (0, 125, 126, 127, 128, 65535, 65536)
for sub, (kind, make, echo, filler) in enumerate(
    (("text", text, echo_text, b"*"), ("binary", binary, echo_binary, b"\xfe")), start=1
):
    for index, length in enumerate(LENGTHS, start=1):
        payload = filler * length
        add(
            Case(
                f"1.{sub}.{index}",
                f"{kind} message, payload of {length} bytes",
                RFC_FRAMING
                + (
                    " (16-bit length)"
                    if 126 <= length <= 65535
                    else " (64-bit length)"
                    if length > 65535
                    else ""
                ),
                (send(make(payload)), expect(echo(payload))),
                autobahn=f"1.{sub}.{index}",
            )
        )
    add(
        Case(
            f"1.{sub}.8",
            f"{kind} message of 65536 bytes sent in chops of 997 bytes",
            RFC_FRAMING,
            (send(make(filler * 65536)), expect(echo(filler * 65536))),
            autobahn=f"1.{sub}.8",
            modes=("split",),
            fixed_chop=True,
        )
    )

add(
    Case(
        "1.3.1",
        "unmasked text frame from the client",
        "RFC 6455 5.1, 5.3",
        (send(wire(TEXT, b"Hello", mask=None)),),
        fail(1002),
    )
)
add(
    Case(
        "1.3.2",
        "length 5 written in the 16-bit form (not minimal)",
        "RFC 6455 5.2",
        (send(wire(TEXT, b"Hello", length_bytes=2)),),
        fail(1002),
    )
)
add(
    Case(
        "1.3.3",
        "length 200 written in the 64-bit form (not minimal)",
        "RFC 6455 5.2",
        (send(wire(TEXT, b"*" * 200, length_bytes=8)),),
        fail(1002),
    )
)
add(
    Case(
        "1.3.4",
        "64-bit length with its most significant bit set (header and 16 bytes only)",
        "RFC 6455 5.2",
        (send(wire(BINARY, b"\xfe" * 16, length=1 << 63 | 16)[: 2 + 8 + 4 + 16]),),
        fail(1002, 1009),
        note="the rest of the frame is never sent: the server must act on the header",
    )
)
add(
    Case(
        "1.3.5",
        "a text and a binary message in one write, echoed in order",
        RFC_FRAMING,
        (
            send(text("first"), binary(b"\x00second\xff")),
            expect(echo_text("first"), echo_binary(b"\x00second\xff")),
        ),
    )
)
add(
    Case(
        "1.3.6",
        "masking key of four zero bytes (a valid key)",
        "RFC 6455 5.3",
        (send(wire(TEXT, b"zero mask", mask=b"\0\0\0\0")), expect(echo_text("zero mask"))),
    )
)

# -- 2 Pings and pongs ------------------------------------------------------------------------

RFC_PING = "RFC 6455 5.5.2, 5.5.3"
PINGS: list[tuple[str, bytes]] = [
    ("ping without payload", b""),
    ("ping with a small text payload", b"Hello, world!"),
    ("ping with a small binary (non UTF-8) payload", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"),
    ("ping with a binary payload of 125 bytes", b"\xfe" * 125),
]
for index, (title, payload) in enumerate(PINGS, start=1):
    add(
        Case(
            f"2.{index}",
            title,
            RFC_PING,
            (send(ping(payload)), expect(Pong(payload))),
            autobahn=f"2.{index}",
        )
    )
add(
    Case(
        "2.5",
        "ping with a payload of 126 bytes (control frames carry at most 125)",
        "RFC 6455 5.5",
        (send(frame(PING, b"\xfe" * 126)),),
        fail(1002),
        autobahn="2.5",
    )
)
add(
    Case(
        "2.6",
        "ping of 125 bytes sent a byte at a time",
        RFC_PING,
        (send(ping(b"\xfe" * 125)), expect(Pong(b"\xfe" * 125))),
        autobahn="2.6",
        modes=("bytewise",),
    )
)
add(
    Case(
        "2.7",
        "unsolicited pong without payload: nothing comes back",
        "RFC 6455 5.5.3",
        (send(pong()),),
        autobahn="2.7",
    )
)
add(
    Case(
        "2.8",
        "unsolicited pong with payload: nothing comes back",
        "RFC 6455 5.5.3",
        (send(pong("unsolicited pong payload")),),
        autobahn="2.8",
    )
)
add(
    Case(
        "2.9",
        "unsolicited pong, then a ping: only the ping is answered",
        "RFC 6455 5.5.3",
        (
            send(pong("unsolicited pong payload"), ping("ping payload")),
            expect(Pong(b"ping payload")),
        ),
        autobahn="2.9",
    )
)
TEN_PINGS = [f"payload-{i}".encode() for i in range(10)]
add(
    Case(
        "2.10",
        "10 pings in one write: 10 pongs, in order",
        "RFC 6455 5.5.3",
        (send(*(ping(p) for p in TEN_PINGS)), expect(*(Pong(p) for p in TEN_PINGS))),
        autobahn="2.10",
        modes=("whole",),
        note="RFC 6455 5.5.3 lets an endpoint answer only the last of several pings; "
        "Autobahn (and VestesPy) expect every one answered",
    )
)
add(
    Case(
        "2.11",
        "10 pings sent a byte at a time: 10 pongs, in order",
        "RFC 6455 5.5.3",
        (send(*(ping(p) for p in TEN_PINGS)), expect(*(Pong(p) for p in TEN_PINGS))),
        autobahn="2.11",
        modes=("bytewise",),
    )
)
add(
    Case(
        "2.12",
        "pong with a payload of 126 bytes",
        "RFC 6455 5.5",
        (send(frame(PONG, b"\xfe" * 126)),),
        fail(1002),
    )
)

# -- 3 Reserved bits --------------------------------------------------------------------------

RFC_RSV = "RFC 6455 5.2 (RSV1-3 must be 0 without an extension)"
add(
    Case(
        "3.1",
        "small text message with RSV = 1",
        RFC_RSV,
        (send(text("Hello, world!", rsv=1)),),
        fail(1002),
        autobahn="3.1",
    )
)
for index, rsv in ((2, 2), (3, 3), (4, 4)):
    add(
        Case(
            f"3.{index}",
            f"text message, then the same with RSV = {rsv}, then a ping: echo, then fail, no pong",
            RFC_RSV,
            (
                send(text("Hello, world!")),
                expect(echo_text("Hello, world!")),
                send(text("Hello, world!", rsv=rsv), ping()),
            ),
            fail(1002),
            autobahn=f"3.{index}",
            note="RSV = 4 is RSV1, permessage-deflate's bit, not negotiated here"
            if rsv == 4
            else "",
        )
    )
add(
    Case(
        "3.5",
        "small binary message with RSV = 5",
        RFC_RSV,
        (send(binary(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5)),),
        fail(1002),
        autobahn="3.5",
    )
)
add(
    Case(
        "3.6",
        "ping with RSV = 6",
        RFC_RSV,
        (send(frame(PING, b"Hello, world!", rsv=6)),),
        fail(1002),
        autobahn="3.6",
    )
)
add(
    Case(
        "3.7",
        "close with RSV = 7",
        RFC_RSV,
        (send(frame(CLOSE, close_payload(1000), rsv=7)),),
        fail(1002),
        autobahn="3.7",
    )
)

# -- 4 Opcodes --------------------------------------------------------------------------------

RFC_OPCODE = "RFC 6455 5.2 (an unknown opcode fails the connection)"
for group, opcodes in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
    kind = "non-control" if group == 1 else "control"
    for index, opcode in enumerate(opcodes, start=1):
        payload = b"reserved opcode payload" if index % 2 == 0 or index == 5 else b""
        what = f"frame with reserved {kind} opcode {opcode}" + (" and a payload" if payload else "")
        if index in (1, 2):
            add(
                Case(
                    f"4.{group}.{index}",
                    what,
                    RFC_OPCODE,
                    (send(frame(opcode, payload)),),
                    fail(1002),
                    autobahn=f"4.{group}.{index}",
                )
            )
        else:
            add(
                Case(
                    f"4.{group}.{index}",
                    f"text message, then a {what}, then a ping: echo, then fail, no pong",
                    RFC_OPCODE,
                    (
                        send(text("Hello, world!")),
                        expect(echo_text("Hello, world!")),
                        send(frame(opcode, payload), ping()),
                    ),
                    fail(1002),
                    autobahn=f"4.{group}.{index}",
                )
            )

# -- 5 Fragmentation --------------------------------------------------------------------------

RFC_FRAG = "RFC 6455 5.4"
add(
    Case(
        "5.1",
        "ping fragmented into 2 frames",
        "RFC 6455 5.4, 5.5",
        (send(frame(PING, b"fragment1", fin=False), cont("fragment2")),),
        fail(1002),
        autobahn="5.1",
    )
)
add(
    Case(
        "5.2",
        "pong fragmented into 2 frames",
        "RFC 6455 5.4, 5.5",
        (send(frame(PONG, b"fragment1", fin=False), cont("fragment2")),),
        fail(1002),
        autobahn="5.2",
    )
)
for index, mode in ((3, "whole"), (4, "framewise"), (5, "bytewise")):
    add(
        Case(
            f"5.{index}",
            f"text message in 2 fragments ({mode})",
            RFC_FRAG,
            (
                send(text("fragment1", fin=False), cont("fragment2")),
                expect(echo_text("fragment1fragment2")),
            ),
            autobahn=f"5.{index}",
            modes=(mode,),
        )
    )
for index, mode in ((6, "whole"), (7, "framewise"), (8, "bytewise")):
    add(
        Case(
            f"5.{index}",
            f"text message in 2 fragments, a ping between them: pong, then echo ({mode})",
            "RFC 6455 5.4, 5.5 (control frames may come between fragments)",
            (
                send(text("fragment1", fin=False), ping("ping payload"), cont("fragment2")),
                expect(Pong(b"ping payload"), echo_text("fragment1fragment2")),
            ),
            autobahn=f"5.{index}",
            modes=(mode,),
        )
    )
for base, fin in ((9, True), (12, False)):
    for offset, mode in enumerate(("whole", "framewise", "bytewise")):
        add(
            Case(
                f"5.{base + offset}",
                f"continuation (FIN = {str(fin).lower()}), nothing to continue, then text ({mode})",
                RFC_FRAG,
                (send(cont("non-continuation payload", fin=fin), text("Hello, world!")),),
                fail(1002),
                autobahn=f"5.{base + offset}",
                modes=(mode,),
            )
        )
add(
    Case(
        "5.15",
        "text in 2 fragments, then a continuation with nothing to continue, then text: "
        "echo, then fail",
        RFC_FRAG,
        (
            send(text("fragment1", fin=False), cont("fragment2")),
            expect(echo_text("fragment1fragment2")),
            send(cont("fragment3", fin=False), text("fragment4")),
        ),
        fail(1002),
        autobahn="5.15",
        note="Autobahn sends all in one chop; here the echo is awaited first, fixing the order",
    )
)
for index, fin in ((16, False), (17, True)):
    frames = (cont("fragment1", fin=fin), text("fragment2", fin=False), cont("fragment3")) * 2
    add(
        Case(
            f"5.{index}",
            f"twice: a continuation (FIN = {str(fin).lower()}) with nothing to continue, "
            "then text in 2 fragments",
            RFC_FRAG,
            (send(*frames),),
            fail(1002),
            autobahn=f"5.{index}",
        )
    )
add(
    Case(
        "5.18",
        "text in 2 fragments, both with the text opcode",
        RFC_FRAG,
        (send(text("fragment1", fin=False), text("fragment2")),),
        fail(1002),
        autobahn="5.18",
    )
)
for index, mode in ((19, "whole"), (20, "framewise")):
    add(
        Case(
            f"5.{index}",
            "text in 5 fragments with 2 pings between: the first pong before the message ends, "
            f"then the second pong and the echo ({mode})",
            "RFC 6455 5.4, 5.5",
            (
                send(text("fragment1", fin=False), cont("fragment2", fin=False), ping("pongme 1!")),
                expect(Pong(b"pongme 1!")),
                send(
                    cont("fragment3", fin=False),
                    cont("fragment4", fin=False),
                    ping("pongme 2!"),
                    cont("fragment5"),
                ),
                expect(
                    Pong(b"pongme 2!"), echo_text("fragment1fragment2fragment3fragment4fragment5")
                ),
            ),
            autobahn=f"5.{index}",
            modes=(mode,),
            note="Autobahn waits 1 s after the first ping; here the client awaits the pong",
        )
    )
add(
    Case(
        "5.21",
        "close frame fragmented into 2 frames",
        "RFC 6455 5.4, 5.5",
        (send(frame(CLOSE, b"\x03", fin=False), cont(b"\xe8")),),
        fail(1002),
    )
)
add(
    Case(
        "5.22",
        "text in 3 fragments with an unsolicited pong between: echo only",
        "RFC 6455 5.4, 5.5.3",
        (
            send(text("a", fin=False), pong("p"), cont("b", fin=False), cont("c")),
            expect(echo_text("abc")),
        ),
    )
)
ONE_BYTE_FRAGMENTS = bytes(range(100))
add(
    Case(
        "5.23",
        "binary message in 100 fragments of 1 byte",
        RFC_FRAG,
        (
            send(
                binary(ONE_BYTE_FRAGMENTS[:1], fin=False),
                *(cont(ONE_BYTE_FRAGMENTS[i : i + 1], fin=i == 99) for i in range(1, 100)),
            ),
            expect(echo_binary(ONE_BYTE_FRAGMENTS)),
        ),
    )
)
add(
    Case(
        "5.24",
        "binary message started, then a text frame inside it",
        RFC_FRAG,
        (send(binary(b"\x01", fin=False), text("x")),),
        fail(1002),
    )
)
add(
    Case(
        "5.25",
        "messages after a fragmented one are read afresh",
        RFC_FRAG,
        (
            send(binary(b"\x01", fin=False), cont(b"\x02"), text("next"), binary(b"\x03")),
            expect(echo_binary(b"\x01\x02"), echo_text("next"), echo_binary(b"\x03")),
        ),
    )
)

# -- 6 UTF-8 handling -------------------------------------------------------------------------

RFC_UTF8 = "RFC 6455 5.6, 8.1; RFC 3629"
INVALID_UTF8 = fail(1007)
add(
    Case(
        "6.1.1",
        "text message of length 0",
        RFC_UTF8,
        (send(text(b"")), expect(echo_text(b""))),
        autobahn="6.1.1",
    )
)
add(
    Case(
        "6.1.2",
        "text message in 3 fragments of length 0",
        RFC_UTF8,
        (send(text(b"", fin=False), cont(b"", fin=False), cont(b"")), expect(echo_text(b""))),
        autobahn="6.1.2",
    )
)
add(
    Case(
        "6.1.3",
        "text message in 3 fragments, the first and last empty",
        RFC_UTF8,
        (
            send(text(b"", fin=False), cont("middle frame payload", fin=False), cont(b"")),
            expect(echo_text("middle frame payload")),
        ),
        autobahn="6.1.3",
    )
)
HELLO_UTF8 = "Hello-µ@ßöäüàá-UTF-8!!".encode()
KOSME = "κόσμε".encode()
add(
    Case(
        "6.2.1",
        "valid UTF-8 text in one frame",
        RFC_UTF8,
        (send(text(HELLO_UTF8)), expect(echo_text(HELLO_UTF8))),
        autobahn="6.2.1",
    )
)
add(
    Case(
        "6.2.2",
        "valid UTF-8 text in 2 fragments split on a code point boundary",
        RFC_UTF8,
        (
            send(text(HELLO_UTF8[:14], fin=False), cont(HELLO_UTF8[14:])),
            expect(echo_text(HELLO_UTF8)),
        ),
        autobahn="6.2.2",
    )
)


def one_byte_fragments(data: bytes, opcode: int = TEXT) -> tuple[bytes, ...]:
    """``data`` as a message of 1-byte fragments (frames ending inside code points)."""
    first = frame(opcode, data[:1], fin=len(data) <= 1)
    return (first, *(cont(data[i : i + 1], fin=i == len(data) - 1) for i in range(1, len(data))))


add(
    Case(
        "6.2.3",
        "valid UTF-8 text in fragments of 1 byte",
        RFC_UTF8,
        (send(*one_byte_fragments(HELLO_UTF8)), expect(echo_text(HELLO_UTF8))),
        autobahn="6.2.3",
        modes=("whole",),
    )
)
add(
    Case(
        "6.2.4",
        "valid UTF-8 text (κόσμε) in fragments of 1 byte",
        RFC_UTF8,
        (send(*one_byte_fragments(KOSME)), expect(echo_text(KOSME))),
        autobahn="6.2.4",
    )
)
INVALID_KOSME = KOSME + b"\xed\xa0\x80" + b"edited"
add(
    Case(
        "6.3.1",
        "invalid UTF-8 text (a surrogate) in one frame",
        RFC_UTF8,
        (send(text(INVALID_KOSME)),),
        INVALID_UTF8,
        autobahn="6.3.1",
    )
)
add(
    Case(
        "6.3.2",
        "invalid UTF-8 text in fragments of 1 byte",
        RFC_UTF8,
        (send(*one_byte_fragments(INVALID_KOSME)),),
        INVALID_UTF8,
        autobahn="6.3.2",
        modes=("whole",),
    )
)

# 6.4: fail fast. Autobahn waits a second after each part; here a ping after a part that must
# be accepted proves it was (its pong comes back), and the part that makes the text invalid
# is followed by a ping whose pong must not come: the close 1007 must come instead, before
# the rest of the message is ever sent.
FAST_PART1 = KOSME
for index, part2, _part3 in (
    (1, b"\xf4\x90\x80\x80", b"edited"),
    (2, b"\xf4\x90", b"\x80\x80edited"),
):
    add(
        Case(
            f"6.4.{index}",
            f"fail fast: text in 3 fragments, the 2nd holds {part2.hex(' ')} (invalid); "
            "the 3rd is never sent",
            "RFC 6455 8.1 (fail as soon as the text is invalid)",
            (
                send(text(FAST_PART1, fin=False), ping("part 1 read")),
                expect(Pong(b"part 1 read")),
                send(cont(part2, fin=False), ping("no pong after part 2")),
            ),
            INVALID_UTF8,
            autobahn=f"6.4.{index}",
        )
    )
for index, part2, part3 in (
    (3, b"\xf4\x90\x80\x80", b"edited"),
    (4, b"\xf4\x90", b"\x80\x80edited"),
):
    whole = wire(TEXT, FAST_PART1 + part2 + part3)
    cut = len(whole) - len(part3)
    add(
        Case(
            f"6.4.{index}",
            f"fail fast: one text frame whose payload turns invalid at {part2.hex(' ')}; "
            f"its last {len(part3)} bytes are never sent",
            "RFC 6455 8.1 (fail as soon as the text is invalid)",
            (send(whole[:cut]),),
            INVALID_UTF8,
            autobahn=f"6.4.{index}",
        )
    )


def utf8_sequences() -> list[tuple[str, list[tuple[bool, bytes]]]]:
    """Markus Kuhn's UTF-8 decoder test sequences, as Autobahn groups them (6.5 onwards)."""
    groups: list[tuple[str, list[tuple[bool, bytes]]]] = []
    kosme = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
    groups.append(
        (
            "Some valid UTF-8 sequences",
            [
                (True, b"hello\x24world"),
                (True, b"hello\xc2\xa2world"),
                (True, b"hello\xe2\x82\xacworld"),
                (True, b"hello\xf0\xa4\xad\xa2world"),
                (True, kosme),
            ],
        )
    )

    def valid(data: bytes) -> bool:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    groups.append(
        (
            "All prefixes of a valid UTF-8 string that contains multi-byte code points",
            [(valid(kosme[:i]), kosme[:i]) for i in range(1, len(kosme) + 1)],
        )
    )
    groups.append(
        (
            "First possible sequence of a certain length",
            [
                (True, b"\x00"),
                (True, b"\xc2\x80"),
                (True, b"\xe0\xa0\x80"),
                (True, b"\xf0\x90\x80\x80"),
            ],
        )
    )
    groups.append(
        (
            "First possible sequence length 5/6 (invalid codepoints)",
            [(False, b"\xf8\x88\x80\x80\x80"), (False, b"\xfc\x84\x80\x80\x80\x80")],
        )
    )
    groups.append(
        (
            "Last possible sequence of a certain length",
            [
                (True, b"\x7f"),
                (True, b"\xdf\xbf"),
                (True, b"\xef\xbf\xbf"),
                (True, b"\xf4\x8f\xbf\xbf"),
            ],
        )
    )
    groups.append(
        (
            "Last possible sequence length 4/5/6 (invalid codepoints)",
            [
                (False, b"\xf7\xbf\xbf\xbf"),
                (False, b"\xfb\xbf\xbf\xbf\xbf"),
                (False, b"\xfd\xbf\xbf\xbf\xbf\xbf"),
            ],
        )
    )
    groups.append(
        (
            "Other boundary conditions",
            [
                (True, b"\xed\x9f\xbf"),
                (True, b"\xee\x80\x80"),
                (True, b"\xef\xbf\xbd"),
                (True, b"\xf4\x8f\xbf\xbf"),
                (False, b"\xf4\x90\x80\x80"),
            ],
        )
    )
    continuation = [
        b"\x80",
        b"\xbf",
        b"\x80\xbf",
        b"\x80\xbf\x80",
        b"\x80\xbf\x80\xbf",
        b"\x80\xbf\x80\xbf\x80",
        b"\x80\xbf\x80\xbf\x80\xbf",
        bytes(range(0x80, 0xBF)),
    ]
    groups.append(("Unexpected continuation bytes", [(False, s) for s in continuation]))
    lonely = [
        b"".join(bytes([i, 0x20]) for i in range(lo, hi))
        for lo, hi in ((0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD))
    ]
    groups.append(("Lonely start characters", [(False, s) for s in lonely]))
    missing = [
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xf8\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        b"\xfb\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf",
    ]
    groups.append(("Sequences with last continuation byte missing", [(False, s) for s in missing]))
    groups.append(("Concatenation of incomplete sequences", [(False, b"".join(missing))]))
    groups.append(
        ("Impossible bytes", [(False, b"\xfe"), (False, b"\xff"), (False, b"\xfe\xfe\xff\xff")])
    )
    groups.append(
        (
            "Examples of an overlong ASCII character",
            [
                (False, s)
                for s in (
                    b"\xc0\xaf",
                    b"\xe0\x80\xaf",
                    b"\xf0\x80\x80\xaf",
                    b"\xf8\x80\x80\x80\xaf",
                    b"\xfc\x80\x80\x80\x80\xaf",
                )
            ],
        )
    )
    groups.append(
        (
            "Maximum overlong sequences",
            [
                (False, s)
                for s in (
                    b"\xc1\xbf",
                    b"\xe0\x9f\xbf",
                    b"\xf0\x8f\xbf\xbf",
                    b"\xf8\x87\xbf\xbf\xbf",
                    b"\xfc\x83\xbf\xbf\xbf\xbf",
                )
            ],
        )
    )
    groups.append(
        (
            "Overlong representation of the NUL character",
            [
                (False, s)
                for s in (
                    b"\xc0\x80",
                    b"\xe0\x80\x80",
                    b"\xf0\x80\x80\x80",
                    b"\xf8\x80\x80\x80\x80",
                    b"\xfc\x80\x80\x80\x80\x80",
                )
            ],
        )
    )
    singles = [
        b"\xed\xa0\x80",
        b"\xed\xad\xbf",
        b"\xed\xae\x80",
        b"\xed\xaf\xbf",
        b"\xed\xb0\x80",
        b"\xed\xbe\x80",
        b"\xed\xbf\xbf",
    ]
    groups.append(("Single UTF-16 surrogates", [(False, s) for s in singles]))
    high, low = singles[:4], (b"\xed\xb0\x80", b"\xed\xbf\xbf")
    groups.append(("Paired UTF-16 surrogates", [(False, h + lo) for h in high for lo in low]))
    nonchars = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for z1 in b"\xf0\xf1\xf2\xf3\xf4":
        for z2 in b"\x8f\x9f\xaf\xbf":
            if z1 == 0xF4 and z2 != 0x8F:
                continue  # above U+10FFFF
            nonchars += [
                bytes([z1, z2, 0xBF, z3]) for z3 in (0xBE, 0xBF) if not (z1 == 0xF0 and z2 == 0x8F)
            ]
    groups.append(("Non-character code points (valid UTF-8)", [(True, s) for s in nonchars]))
    groups.append(
        (
            "Unicode specials (i.e. replacement char)",
            [(True, bytes([0xEF, 0xBF, b])) for b in range(0xB9, 0xC0)],
        )
    )
    return groups


for group_index, (group, sequences) in enumerate(utf8_sequences(), start=5):
    for index, (is_valid, payload) in enumerate(sequences, start=1):
        case_id = f"6.{group_index}.{index}"
        if is_valid:
            add(
                Case(
                    case_id,
                    f"{group}: {payload.hex(' ')} (valid)",
                    RFC_UTF8,
                    (send(text(payload)), expect(echo_text(payload))),
                    autobahn=case_id,
                    modes=("whole",),
                )
            )
        else:
            add(
                Case(
                    case_id,
                    f"{group}: {payload.hex(' ')} (invalid)",
                    RFC_UTF8,
                    (send(text(payload)),),
                    INVALID_UTF8,
                    autobahn=case_id,
                    modes=("whole",),
                )
            )

# 6.24 (VestesPy's own): sequences cut across fragments, at every inner position.
SPLIT_GROUP = 24
split_index = 0
for payload, is_valid in (
    (b"ab\xe2\x82\xacyz", True),  # U+20AC
    (b"ab\xf0\xa4\xad\xa2yz", True),  # U+24B62
    (b"ab\xed\xa0\x80yz", False),  # a surrogate
    (b"ab\xc0\xafyz", False),  # overlong '/'
    (b"ab\xf4\x90\x80\x80yz", False),  # above U+10FFFF
):
    for cut in range(3, len(payload.rstrip(b"yz"))):
        split_index += 1
        steps: tuple[Send | Expect, ...]
        if is_valid:
            steps = (
                send(text(payload[:cut], fin=False), cont(payload[cut:])),
                expect(echo_text(payload)),
            )
        else:
            steps = (send(text(payload[:cut], fin=False), cont(payload[cut:])),)
        verdict = "valid" if is_valid else "invalid"
        add(
            Case(
                f"6.{SPLIT_GROUP}.{split_index}",
                f"{payload.hex(' ')} ({verdict}) in 2 fragments cut after byte {cut}",
                RFC_UTF8,
                steps,
                CLEAN if is_valid else INVALID_UTF8,
                modes=("whole",),
            )
        )
# 6.25: a message ending inside a code point, and fail fast across a frame boundary.
add(
    Case(
        "6.25.1",
        "text ends inside a code point (e2 82, then an empty final fragment)",
        RFC_UTF8,
        (send(text(b"ab\xe2\x82", fin=False), cont(b"")),),
        INVALID_UTF8,
    )
)
add(
    Case(
        "6.25.2",
        "text ends inside a code point (one frame: 61 62 e2 82)",
        RFC_UTF8,
        (send(text(b"ab\xe2\x82")),),
        INVALID_UTF8,
    )
)
add(
    Case(
        "6.25.3",
        "fail fast across frames: ed ends fragment 1 (valid so far), a0 80 starts fragment 2",
        "RFC 6455 8.1 (fail as soon as the text is invalid)",
        (
            send(text(b"ab\xed", fin=False), ping("first part read")),
            expect(Pong(b"first part read")),
            send(cont(b"\xa0\x80", fin=False), ping("no pong after the surrogate")),
        ),
        INVALID_UTF8,
    )
)
add(
    Case(
        "6.25.4",
        "fail fast: a lone continuation byte in fragment 1 of an unfinished message",
        "RFC 6455 8.1 (fail as soon as the text is invalid)",
        (send(text(b"ab\x80", fin=False), ping("no pong after the invalid byte")),),
        INVALID_UTF8,
    )
)
add(
    Case(
        "6.25.5",
        "a binary message may hold any bytes (no UTF-8 check)",
        "RFC 6455 5.6",
        (
            send(binary(b"\xed\xa0\x80\xff\xfe", fin=False), cont(b"\xc0")),
            expect(echo_binary(b"\xed\xa0\x80\xff\xfe\xc0")),
        ),
    )
)

# -- 7 Close handling -------------------------------------------------------------------------

RFC_CLOSE = "RFC 6455 5.5.1, 7.1"
add(
    Case(
        "7.1.1",
        "a message, then a close frame: echo, then close 1000",
        RFC_CLOSE,
        (send(text("Hello World!"), close(1000)), expect(echo_text("Hello World!"))),
        reply(1000),
        autobahn="7.1.1",
    )
)
add(
    Case(
        "7.1.2",
        "two close frames: the second ignored",
        RFC_CLOSE,
        (send(close(1000), close(1000)),),
        reply(1000),
        autobahn="7.1.2",
    )
)
add(
    Case(
        "7.1.3",
        "a ping after the close frame: no pong",
        RFC_CLOSE,
        (send(close(1000), ping("ping after close")),),
        reply(1000),
        autobahn="7.1.3",
    )
)
add(
    Case(
        "7.1.4",
        "a text message after the close frame: no echo",
        RFC_CLOSE,
        (send(close(1000), text("text after close")),),
        reply(1000),
        autobahn="7.1.4",
    )
)
add(
    Case(
        "7.1.5",
        "fragment 1, then a close frame, then fragment 2",
        RFC_CLOSE,
        (send(text("fragment1", fin=False), close(1000), cont("fragment2")),),
        reply(1000),
        autobahn="7.1.5",
    )
)
add(
    Case(
        "7.3.1",
        "close frame with an empty payload (no code, no reason)",
        RFC_CLOSE,
        (send(close(None)),),
        reply(None, 1000),
        autobahn="7.3.1",
    )
)
add(
    Case(
        "7.3.2",
        "close frame with a payload of 1 byte",
        "RFC 6455 5.5.1",
        (send(frame(CLOSE, b"\x03")),),
        fail(1002, drop_ok=True),
        autobahn="7.3.2",
    )
)
add(
    Case(
        "7.3.3",
        "close frame with a code only",
        RFC_CLOSE,
        (send(close(1000)),),
        reply(1000),
        autobahn="7.3.3",
    )
)
add(
    Case(
        "7.3.4",
        "close frame with a code and a reason",
        RFC_CLOSE,
        (send(close(1000, b"Hello World!")),),
        reply(1000),
        autobahn="7.3.4",
    )
)
add(
    Case(
        "7.3.5",
        "close reason of the maximum length (123 bytes)",
        RFC_CLOSE,
        (send(close(1000, b"*" * 123)),),
        reply(1000),
        autobahn="7.3.5",
    )
)
add(
    Case(
        "7.3.6",
        "close reason of 124 bytes (a 126-byte control frame)",
        "RFC 6455 5.5",
        (send(frame(CLOSE, close_payload(1000, b"*" * 124))),),
        fail(1002, drop_ok=True),
        autobahn="7.3.6",
    )
)
add(
    Case(
        "7.5.1",
        "close reason that is not UTF-8",
        "RFC 6455 5.5.1, 8.1",
        (send(close(1000, INVALID_KOSME)),),
        fail(1002, 1007, drop_ok=True),
        autobahn="7.5.1",
    )
)
for index, code in enumerate(
    (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999), start=1
):
    add(
        Case(
            f"7.7.{index}",
            f"close with the valid code {code}",
            "RFC 6455 7.4.1, 7.4.2",
            (send(close(code)),),
            reply(1000, code),
            autobahn=f"7.7.{index}",
        )
    )
for index, code in enumerate((0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999), start=1):
    add(
        Case(
            f"7.9.{index}",
            f"close with the invalid code {code}",
            "RFC 6455 7.4.1, 7.4.2",
            (send(close(code)),),
            fail(1002, drop_ok=True),
            autobahn=f"7.9.{index}",
        )
    )
for index, code in enumerate((5000, 65535), start=1):
    add(
        Case(
            f"7.13.{index}",
            f"close with the undefined code {code}",
            "RFC 6455 7.4.2",
            (send(close(code)),),
            fail(1002, drop_ok=True),
            autobahn=f"7.13.{index}",
            note="Autobahn: 'actual events are undefined by the spec'; "
            "VestesPy refuses codes outside 1000-4999",
        )
    )
add(
    Case(
        "7.14.1",
        "close reason with multi-byte UTF-8 (κόσμε)",
        RFC_CLOSE,
        (send(close(1000, KOSME)),),
        reply(1000),
    )
)
add(
    Case(
        "7.14.2",
        "a ping and a close frame in one write: pong, then the close answered",
        RFC_CLOSE,
        (send(ping("before close"), close(1001)), expect(Pong(b"before close"))),
        reply(1000, 1001),
    )
)

# -- 9 Limits (scaled down to the default 1 MiB maximum message size) -------------------------

RFC_LIMIT = "RFC 6455 7.4.1, 10.4 (1009: message too big)"


def corpus_text(size: int, seed: int) -> bytes:
    """``size`` bytes of word-like ASCII text (compressible, deterministic)."""
    rng = random.Random(seed)
    words = [
        bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(300)
    ]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + (b"\n" if rng.random() < 0.1 else b" ")
    return bytes(out[:size])


def corpus_binary(size: int, seed: int) -> bytes:
    """``size`` bytes of binary data with repeats (compressible, deterministic)."""
    rng = random.Random(seed)
    blocks = [rng.randbytes(rng.randint(8, 64)) for _ in range(64)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(blocks)
    return bytes(out[:size])


for sub, (kind, make, echo) in enumerate(
    (("text", text, echo_text), ("binary", binary, echo_binary)), start=1
):
    for index, size in enumerate((64 * 1024, 256 * 1024, MAX_MESSAGE), start=1):
        data = corpus_text(size, index) if kind == "text" else corpus_binary(size, index)
        add(
            Case(
                f"9.{sub}.{index}",
                f"{kind} message of {size // 1024} KiB"
                + (" (exactly the limit)" if size == MAX_MESSAGE else ""),
                RFC_FRAMING,
                (send(make(data)), expect(echo(data))),
                autobahn=f"9.{sub}.{index}",
                modes=("whole",),
            )
        )
    over = (b"*" if kind == "text" else b"\xfe") * (MAX_MESSAGE + 1)
    add(
        Case(
            f"9.{sub}.4",
            f"{kind} message of 1 MiB + 1 byte (over the limit)",
            RFC_LIMIT,
            (send(make(over)),),
            fail(1009),
            modes=("whole",),
        )
    )
    announced = wire(TEXT if kind == "text" else BINARY, over, length=16 * MAX_MESSAGE)
    add(
        Case(
            f"9.{sub}.5",
            f"{kind} frame announcing 16 MiB: fail once past 1 MiB, before the rest is sent",
            RFC_LIMIT,
            (send(announced),),
            fail(1009),
            modes=("whole",),
            note="the frame is never finished: the limit is checked while receiving",
        )
    )
FRAGMENTED = 256 * 1024
for sub, (kind, opcode, echo) in (
    (3, ("text", TEXT, echo_text)),
    (4, ("binary", BINARY, echo_binary)),
):
    data = corpus_text(FRAGMENTED, 7) if kind == "text" else corpus_binary(FRAGMENTED, 7)
    for index, size in enumerate((64, 256, 1024, 4096, 16384, 65536, 262144), start=1):
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        frames = [
            frame(opcode if i == 0 else CONTINUATION, p, fin=i == len(pieces) - 1)
            for i, p in enumerate(pieces)
        ]
        add(
            Case(
                f"9.{sub}.{index}",
                f"{kind} message of 256 KiB in fragments of {size} bytes",
                RFC_FRAG,
                (send(*frames), expect(echo(data))),
                autobahn=f"9.{sub}.{index}",
                modes=("whole",),
                note="Autobahn sends 4 MiB; scaled down by 16",
            )
        )
    piece = 64 * 1024
    count = MAX_MESSAGE // piece + 1
    big = (b"*" if kind == "text" else b"\xfe") * piece
    add(
        Case(
            f"9.{sub}.8",
            f"{kind} message in {count} fragments of 64 KiB (over the limit in total)",
            RFC_LIMIT,
            (
                send(
                    frame(opcode, big, fin=False),
                    *(cont(big, fin=i == count - 1) for i in range(1, count)),
                ),
            ),
            fail(1009),
            modes=("whole",),
        )
    )
    exact = MAX_MESSAGE // piece
    add(
        Case(
            f"9.{sub}.9",
            f"{kind} message in {exact} fragments of 64 KiB (exactly the limit in total)",
            RFC_LIMIT,
            (
                send(
                    frame(opcode, big, fin=False),
                    *(cont(big, fin=i == exact - 1) for i in range(1, exact)),
                ),
                expect(echo(big * exact)),
            ),
            modes=("whole",),
        )
    )
for sub, (kind, make, echo) in (
    (5, ("text", text, echo_text)),
    (6, ("binary", binary, echo_binary)),
):
    data = corpus_text(FRAGMENTED, 11) if kind == "text" else corpus_binary(FRAGMENTED, 11)
    for index, (autobahn, chop) in enumerate(((1, 64), (4, 512), (6, 2048)), start=1):
        add(
            Case(
                f"9.{sub}.{index}",
                f"{kind} message of 256 KiB sent in chops of {chop} bytes",
                RFC_FRAMING,
                (send(make(data)), expect(echo(data))),
                autobahn=f"9.{sub}.{autobahn}",
                modes=("split",),
                chop=chop,
                fixed_chop=True,
                note="Autobahn sends 1 MiB; scaled down by 4",
            )
        )
MANY = [f"message {i:04}".encode() for i in range(1000)]
add(
    Case(
        "9.7.1",
        "1,000 small text messages in one write, echoed in order",
        RFC_FRAMING,
        (send(*(text(m) for m in MANY)), expect(*(echo_text(m) for m in MANY))),
        modes=("whole",),
    )
)
add(
    Case(
        "9.8.1",
        "1,000 small binary messages in one write, echoed in order",
        RFC_FRAMING,
        (send(*(binary(m) for m in MANY)), expect(*(echo_binary(m) for m in MANY))),
        modes=("whole",),
    )
)

# -- 12 permessage-deflate: compressed messages -----------------------------------------------

RFC_PMD = "RFC 7692 6, 7.2"
#: The row of Autobahn's MSG_SIZES (case12_x_x.py) for a message size, and for a size with a
#: fragment size (its auto-fragmented rows).
AUTOBAHN_SIZE_INDEX = {16: 1, 64: 2, 256: 3, 1024: 4, 4096: 5, 16384: 7, 65536: 9, 131072: 10}
AUTOBAHN_FRAGMENT_INDEX = {
    (8192, 256): 11,
    (65536, 256): 14,
    (131072, 1024): 16,
    (131072, 32768): 18,
}
DEFAULT_OFFER = "permessage-deflate; client_max_window_bits"
COUNT = 10
for sub, (kind, is_text, make_data) in (
    (1, ("text", True, corpus_text)),
    (2, ("binary", False, corpus_binary)),
):
    for index, size in enumerate((16, 64, 256, 1024, 4096, 16384, 65536, 131072), start=1):
        count = COUNT if size < 65536 else 3
        messages = [make_data(size, 100 * index + n) for n in range(count)]
        add(
            Case(
                f"12.{sub}.{index}",
                f"{count} compressed {kind} messages of {size} bytes",
                RFC_PMD,
                (
                    send(*(Deflated(is_text, m) for m in messages)),
                    expect(*(Message(is_text, m) for m in messages)),
                ),
                offer=DEFAULT_OFFER,
                deflate=True,
                modes=("whole",),
                autobahn=f"12.{sub}.{AUTOBAHN_SIZE_INDEX[size]}",
                note="Autobahn sends 1,000 messages of each size; 10 here (3 of 64 KiB and more)",
            )
        )
for index, (size, fragment) in enumerate(
    ((8192, 256), (65536, 256), (131072, 1024), (131072, 32768)), start=1
):
    count = COUNT if size < 65536 else 3
    messages = [corpus_text(size, 200 + n) for n in range(count)]
    add(
        Case(
            f"12.3.{index}",
            f"{count} compressed text messages of {size} bytes, "
            f"compressed payload in frames of {fragment}",
            "RFC 7692 6.1 (RSV1 on the first frame only)",
            (
                send(*(Deflated(True, m, fragment) for m in messages)),
                expect(*(Message(True, m) for m in messages)),
            ),
            offer=DEFAULT_OFFER,
            deflate=True,
            autobahn=f"12.1.{AUTOBAHN_FRAGMENT_INDEX[size, fragment]}",
            modes=("whole",),
        )
    )

# -- 13 permessage-deflate: negotiation parameters and frames ---------------------------------

PMD = "permessage-deflate; client_max_window_bits"
OFFERS: list[tuple[str, tuple[str, ...]]] = [
    ("permessage-deflate; client_max_window_bits", ()),
    (
        "permessage-deflate; client_max_window_bits; server_no_context_takeover",
        ("server_no_context_takeover",),
    ),
    (
        "permessage-deflate; client_max_window_bits; server_max_window_bits=9",
        ("server_max_window_bits",),
    ),
    (
        "permessage-deflate; client_max_window_bits; server_max_window_bits=15",
        ("server_max_window_bits",),
    ),
    (
        f"{PMD}; server_no_context_takeover; server_max_window_bits=9",
        ("server_no_context_takeover", "server_max_window_bits"),
    ),
    (
        f"{PMD}; server_no_context_takeover; server_max_window_bits=15",
        ("server_no_context_takeover", "server_max_window_bits"),
    ),
    (
        f"{PMD}; server_no_context_takeover; server_max_window_bits=9, "
        f"{PMD}; server_no_context_takeover, {PMD}",
        (),
    ),
    ("permessage-deflate; client_max_window_bits=9", ()),
    ("permessage-deflate; client_no_context_takeover", ()),
    (
        "permessage-deflate; client_no_context_takeover; client_max_window_bits=10; "
        "server_max_window_bits=10",
        ("server_max_window_bits",),
    ),
]
for sub, (offer, required) in enumerate(OFFERS, start=1):
    for index, size in enumerate((64, 1024, 16384), start=1):
        messages = [corpus_text(size, 300 + n) for n in range(COUNT)]
        add(
            Case(
                f"13.{sub}.{index}",
                f"offer '{offer}': {COUNT} compressed text messages of {size} bytes",
                "RFC 7692 7.1 (the answer fits the offer; the server compresses as agreed)",
                (
                    send(*(Deflated(True, m) for m in messages)),
                    expect(*(Message(True, m) for m in messages)),
                ),
                autobahn=f"13.{sub}.{index}" if sub <= 7 else "",
                offer=offer,
                deflate=True,
                require=required,
                modes=("whole",),
            )
        )

DECLINE_SUB = len(OFFERS) + 1
DECLINED = [
    (
        "permessage-deflate; server_max_window_bits=7",
        "server_max_window_bits below 8 (RFC 7692 7.1.2.1)",
    ),
    ("permessage-deflate; server_max_window_bits=16", "server_max_window_bits above 15"),
    ("permessage-deflate; server_max_window_bits", "server_max_window_bits without a value"),
    (
        "permessage-deflate; client_max_window_bits=7",
        "client_max_window_bits below 8 (RFC 7692 7.1.2.2)",
    ),
    ("permessage-deflate; foo=bar", "an unknown parameter (RFC 7692 5)"),
    (
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "a parameter given twice (RFC 7692 5)",
    ),
    (
        "permessage-deflate; server_no_context_takeover=1",
        "a value on a parameter that takes none (RFC 7692 7.1.1.1)",
    ),
    ("x-webkit-deflate-frame", "an unknown extension only (RFC 6455 9.1)"),
]
for index, (offer, why) in enumerate(DECLINED, start=1):
    add(
        Case(
            f"13.{DECLINE_SUB}.{index}",
            f"offer declined, handshake kept: {why}",
            "RFC 7692 5, 7.1; RFC 6455 9.1",
            (send(text("not compressed")), expect(echo_text("not compressed"))),
            offer=offer,
            deflate=False,
        )
    )
add(
    Case(
        f"13.{DECLINE_SUB}.{len(DECLINED) + 1}",
        "an invalid offer, then a valid one: the valid one accepted",
        "RFC 7692 5 (decline an offer, accept the next)",
        (send(Deflated(True, b"Hello")), expect(echo_text("Hello"))),
        offer="permessage-deflate; server_max_window_bits=7, permessage-deflate",
        deflate=True,
    )
)
add(
    Case(
        f"13.{DECLINE_SUB}.{len(DECLINED) + 2}",
        "an unknown extension, then permessage-deflate: only permessage-deflate accepted",
        "RFC 6455 9.1; RFC 7692 5",
        (send(Deflated(True, b"Hello")), expect(echo_text("Hello"))),
        offer="x-unknown-extension, permessage-deflate",
        deflate=True,
    )
)

FRAMES_SUB = DECLINE_SUB + 1
PMD_FRAMES: list[tuple[str, str, tuple[Send | Expect, ...], Outcome, bool]] = [
    (
        "RFC 7692 7.2.3.1's 'Hello'",
        "RFC 7692 7.2.3.1",
        (send(text(bytes.fromhex("f248cdc9c90700"), rsv=RSV1)), expect(echo_text("Hello"))),
        CLEAN,
        False,
    ),
    (
        "RFC 7692 7.2.3.2: 'Hello' twice, the second sharing the first's window",
        "RFC 7692 7.2.3.2",
        (
            send(
                text(bytes.fromhex("f248cdc9c90700"), rsv=RSV1),
                text(bytes.fromhex("f200110000"), rsv=RSV1),
            ),
            expect(echo_text("Hello"), echo_text("Hello")),
        ),
        CLEAN,
        True,
    ),
    (
        "RFC 7692 7.2.3.3: a stored (uncompressed) DEFLATE block",
        "RFC 7692 7.2.3.3",
        (send(text(bytes.fromhex("000500faff48656c6c6f00"), rsv=RSV1)), expect(echo_text("Hello"))),
        CLEAN,
        False,
    ),
    (
        "RFC 7692 7.2.3.4: a compressed message in 2 fragments",
        "RFC 7692 7.2.3.4, 6.1",
        (
            send(
                text(bytes.fromhex("f248cd"), rsv=RSV1, fin=False), cont(bytes.fromhex("c9c90700"))
            ),
            expect(echo_text("Hello")),
        ),
        CLEAN,
        False,
    ),
    (
        "RFC 7692 7.2.3.5: a DEFLATE block with BFINAL set",
        "RFC 7692 7.2.3.5",
        (send(text(bytes.fromhex("f348cdc9c90700"), rsv=RSV1)), expect(echo_text("Hello"))),
        CLEAN,
        False,
    ),
    (
        "an empty compressed message (a single 00 byte)",
        "RFC 7692 7.2.3.6",
        (send(text(b"\x00", rsv=RSV1)), expect(echo_text(b""))),
        CLEAN,
        False,
    ),
    (
        "an uncompressed message (RSV1 clear) is allowed",
        "RFC 7692 6",
        (send(text("plain")), expect(echo_text("plain"))),
        CLEAN,
        False,
    ),
    (
        "RSV1 on a continuation frame",
        "RFC 7692 6.1",
        (
            send(
                text(bytes.fromhex("f248cd"), rsv=RSV1, fin=False),
                cont(bytes.fromhex("c9c90700"), rsv=RSV1),
            ),
        ),
        fail(1002),
        False,
    ),
    ("RSV1 on a ping", "RFC 7692 6.1", (send(frame(PING, b"x", rsv=RSV1)),), fail(1002), False),
    (
        "RSV2 on a text frame",
        "RFC 6455 5.2; RFC 7692 6",
        (send(text("x", rsv=2)),),
        fail(1002),
        False,
    ),
    (
        "compressed data that does not inflate",
        "RFC 7692 6.2",
        (send(text(b"\xff\xff\xff\xff", rsv=RSV1)),),
        fail(1002, 1007),
        False,
    ),
]
PMD_FRAMES.append(
    (
        "a compressed message in 2 fragments with a ping between: pong, then the echo",
        "RFC 7692 6.1; RFC 6455 5.4",
        (
            send(
                text(bytes.fromhex("f248cd"), rsv=RSV1, fin=False),
                ping("between"),
                cont(bytes.fromhex("c9c90700")),
            ),
            expect(Pong(b"between"), echo_text("Hello")),
        ),
        CLEAN,
        False,
    )
)
for index, (title, rfc, steps, outcome, shared) in enumerate(PMD_FRAMES, start=1):
    add(
        Case(
            f"13.{FRAMES_SUB}.{index}",
            title,
            rfc,
            steps,
            outcome,
            offer="permessage-deflate",
            deflate=True,
            client_context=shared,
        )
    )
index = len(PMD_FRAMES)
add(
    Case(
        f"13.{FRAMES_SUB}.{index + 1}",
        "compressed text that inflates to invalid UTF-8",
        "RFC 6455 8.1; RFC 7692 6.2",
        (send(Deflated(True, INVALID_KOSME)),),
        INVALID_UTF8,
        offer="permessage-deflate",
        deflate=True,
    )
)
add(
    Case(
        f"13.{FRAMES_SUB}.{index + 2}",
        "compressed message inflating to exactly 1 MiB (the limit)",
        "RFC 7692 6.2",
        (send(Deflated(False, bytes(MAX_MESSAGE))), expect(echo_binary(bytes(MAX_MESSAGE)))),
        offer="permessage-deflate",
        deflate=True,
        modes=("whole",),
    )
)
add(
    Case(
        f"13.{FRAMES_SUB}.{index + 3}",
        "decompression bomb: 2 KiB inflating to 2 MiB is refused at the limit",
        "RFC 6455 7.4.1 (1009); RFC 7692 8.1",
        (send(Deflated(False, bytes(2 * MAX_MESSAGE))),),
        fail(1009),
        offer="permessage-deflate",
        deflate=True,
        modes=("whole",),
    )
)
add(
    Case(
        f"13.{FRAMES_SUB}.{index + 4}",
        "decompression bomb in fragments of 64 bytes: refused once the inflated total passes 1 MiB",
        "RFC 6455 7.4.1 (1009); RFC 7692 8.1",
        (send(Deflated(False, bytes(2 * MAX_MESSAGE), fragment=64)),),
        fail(1009),
        offer="permessage-deflate",
        deflate=True,
        modes=("whole",),
    )
)
add(
    Case(
        f"13.{FRAMES_SUB}.{index + 5}",
        "a ping of 125 bytes with permessage-deflate agreed (control frames are never compressed)",
        "RFC 7692 6.1",
        (send(ping(b"\xfe" * 125)), expect(Pong(b"\xfe" * 125))),
        offer="permessage-deflate",
        deflate=True,
    )
)
