"""The WebSocket conformance harness checked without a server: it must catch what it claims to.

A checker that lets everything through would make every case pass, so each rule the client
holds a server to (support/websocket.py's :class:`ServerEventReader` and :func:`negotiated`)
is shown failing on a frame or answer that breaks it, sans-IO.
"""

from __future__ import annotations

import random
import zlib

import pytest
from test_websocket_conformance import writes
from websocket_cases import CASES, GAPS, Case

from support.websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    Close,
    Compressor,
    DeflateParams,
    FrameReader,
    Message,
    Ping,
    Pong,
    ProtocolViolation,
    ServerEventReader,
    close_payload,
    encode_frame,
    negotiated,
    parse_extensions,
)


def server_frame(opcode: int, payload: bytes = b"", **kwargs: bool) -> bytes:
    """A frame as a server sends it: unmasked."""
    return encode_frame(opcode, payload, mask=False, **kwargs)  # type: ignore[arg-type]


def server_deflate(messages: list[bytes], bits: int = 15, keep_context: bool = True) -> list[bytes]:
    """Compressed payloads as a server would send them (RFC 7692 7.2.1)."""
    out = []
    compressor = zlib.compressobj(9, zlib.DEFLATED, -bits)
    for message in messages:
        data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        out.append(data[:-4])
        if not keep_context:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -bits)
    return out


VIOLATIONS = [
    ("masked frame", encode_frame(TEXT, b"x", mask_key=b"abcd")),
    ("RSV1 without an extension", server_frame(TEXT, b"x", rsv1=True)),
    ("RSV3", server_frame(BINARY, b"x", rsv3=True)),
    ("reserved opcode", server_frame(3)),
    ("ping of 126 bytes", server_frame(PING, b"p" * 126)),
    ("fragmented pong", server_frame(PONG, b"p", fin=False)),
    ("continuation with nothing to continue", server_frame(CONTINUATION, b"x")),
    (
        "text inside a fragmented message",
        server_frame(TEXT, b"a", fin=False) + server_frame(TEXT, b"b"),
    ),
    ("text that is not UTF-8", server_frame(TEXT, b"\xed\xa0\x80")),
    (
        "text cut inside a code point",
        server_frame(TEXT, b"\xe2\x82", fin=False) + server_frame(CONTINUATION, b""),
    ),
    ("close with 1 byte", server_frame(CLOSE, b"\x03")),
    ("close code 1005 (local only)", server_frame(CLOSE, close_payload(1005))),
    ("close code 999", server_frame(CLOSE, close_payload(999))),
    ("close reason not UTF-8", server_frame(CLOSE, close_payload(1000, b"\xff"))),
    ("a frame after the close", server_frame(CLOSE, close_payload(1000)) + server_frame(PING)),
]


@pytest.mark.parametrize(("what", "data"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_reader_refuses(what: str, data: bytes) -> None:
    reader = ServerEventReader()
    with pytest.raises(ProtocolViolation):
        reader.feed(data)


def test_reader_reassembles_fragments_around_control_frames() -> None:
    reader = ServerEventReader()
    wire = (
        server_frame(TEXT, "κό".encode()[:3], fin=False)
        + server_frame(PING, b"p")
        + server_frame(CONTINUATION, "κό".encode()[3:])
        + server_frame(BINARY, b"\xff")
        + server_frame(PONG, b"q")
        + server_frame(CLOSE, close_payload(1000, b"bye"))
    )
    for i in range(len(wire)):  # one byte at a time: frames complete only when whole
        reader.feed(wire[i : i + 1])
    assert reader.events == [
        Ping(b"p"),
        Message(True, "κό".encode()),
        Message(False, b"\xff"),
        Pong(b"q"),
        Close(1000, b"bye"),
    ]


def test_reader_inflates_with_the_agreed_parameters() -> None:
    text = b"the same words, the same words, again and again " * 20
    first, second = server_deflate([text, text])
    reader = ServerEventReader(DeflateParams())
    reader.feed(server_frame(TEXT, first, rsv1=True) + server_frame(TEXT, second, rsv1=True))
    assert reader.events == [Message(True, text), Message(True, text)]
    assert all(isinstance(e, Message) and e.compressed for e in reader.events)


def test_reader_catches_a_server_that_kept_its_context() -> None:
    """server_no_context_takeover agreed, but the second message refers to the first."""
    text = bytes(range(256)) * 4
    first, second = server_deflate([text, text])
    reader = ServerEventReader(DeflateParams(server_no_context_takeover=True))
    reader.feed(server_frame(BINARY, first, rsv1=True))
    with pytest.raises(ProtocolViolation):
        reader.feed(server_frame(BINARY, second, rsv1=True))


def test_reader_catches_a_window_larger_than_agreed() -> None:
    """server_max_window_bits=9 agreed, but the server refers back 4 KiB."""
    block = random.Random(9).randbytes(4096)  # nothing to match but the block's repeat
    (payload,) = server_deflate([block + block], bits=15)
    reader = ServerEventReader(DeflateParams(server_max_window_bits=9))
    with pytest.raises(ProtocolViolation):
        reader.feed(server_frame(BINARY, payload, rsv1=True))


def test_compressor_follows_client_no_context_takeover() -> None:
    text = b"repeat me " * 50
    alone = Compressor(15, no_context_takeover=True)
    assert alone.compress(text) == alone.compress(text)
    shared = Compressor(15)
    assert len(shared.compress(text)) > len(shared.compress(text))


def offer(value: str) -> list[dict[str, str | None]]:
    return [params for _, params in parse_extensions(value)]


NEGOTIATIONS = [
    ("permessage-deflate", "", DeflateParams()),
    (
        "permessage-deflate; client_max_window_bits",
        "client_max_window_bits=10",
        DeflateParams(client_max_window_bits=10),
    ),
    (
        "permessage-deflate; server_no_context_takeover",
        "server_no_context_takeover",
        DeflateParams(server_no_context_takeover=True),
    ),
    (
        "permessage-deflate; server_max_window_bits=10",
        "server_max_window_bits=9",
        DeflateParams(server_max_window_bits=9),
    ),
    (
        "permessage-deflate; client_no_context_takeover",
        "",
        DeflateParams(client_no_context_takeover=True),
    ),
    ("permessage-deflate", "server_max_window_bits=12", DeflateParams(server_max_window_bits=12)),
]
BAD_ANSWERS = [
    ("permessage-deflate; server_no_context_takeover", ""),  # 7.1.1.1: must be kept
    ("permessage-deflate; server_max_window_bits=10", ""),  # 7.1.2.1: must be answered
    ("permessage-deflate; server_max_window_bits=10", "server_max_window_bits=11"),
    ("permessage-deflate", "client_max_window_bits=10"),  # 7.1.2.2: not offered
    ("permessage-deflate", "server_max_window_bits=7"),
    ("permessage-deflate", "server_max_window_bits=09"),
    ("permessage-deflate", "server_no_context_takeover=1"),
    ("permessage-deflate", "x=1"),
]


@pytest.mark.parametrize(("offered", "answer", "params"), NEGOTIATIONS)
def test_negotiated(offered: str, answer: str, params: DeflateParams) -> None:
    assert (
        negotiated(offer(offered), offer(f"permessage-deflate; {answer}".rstrip("; "))[0]) == params
    )


@pytest.mark.parametrize(("offered", "answer"), BAD_ANSWERS)
def test_negotiated_refuses(offered: str, answer: str) -> None:
    with pytest.raises(ProtocolViolation):
        negotiated(offer(offered), offer(f"permessage-deflate; {answer}")[0])


def test_frames_round_trip_at_every_split() -> None:
    frames = [
        encode_frame(TEXT, b"a" * 126, fin=False, rsv1=True),
        encode_frame(CONTINUATION, b"b" * 70000),
        encode_frame(PING, b"", mask=False),
    ]
    wire = b"".join(frames)
    for cut in (1, 2, 3, 9, 130, 70010):
        reader = FrameReader()
        reader.feed(wire[:cut])
        got = []
        while (frame := reader.next_frame()) is not None:
            got.append(frame)
        reader.feed(wire[cut:])
        while (frame := reader.next_frame()) is not None:
            got.append(frame)
        assert [(f.opcode, len(f.payload), f.fin, f.rsv, f.masked) for f in got] == [
            (TEXT, 126, False, 4, True),
            (CONTINUATION, 70000, True, 0, True),
            (PING, 0, True, 0, False),
        ]


@pytest.mark.parametrize("mode", ["whole", "framewise", "bytewise", "split"])
def test_writes_send_every_byte_once(mode: str) -> None:
    frames = [b"abc", b"defgh", b"i" * 3000]
    case = Case("0.0", "t", "RFC 0", ())
    assert b"".join(writes(case, frames, mode, "seed")) == b"".join(frames)
    assert writes(case, frames, mode, "seed") == writes(case, frames, mode, "seed")


def test_gaps_name_cases() -> None:
    ids = {case.id for case in CASES}
    assert {key.strip() for key in GAPS} <= ids
