"""Every WebSocket conformance case against every backend, pooled and inline, over real sockets.

The cases (websocket_cases.py) are data; this module replays each one in the send modes it
names (in one write, a frame per write, a byte per write, or in chops) against the echo
server of conftest.py, reading and checking every frame the server sends
(support/websocket.py checks each against what RFC 6455 / 7692 ask of a server). Known gaps
(:data:`GAPS`) are strict xfails, so they stay visible and a fix shows up as an XPASS.
"""

from __future__ import annotations

import random

import pytest
from websocket_cases import CASES, GAPS, Case, Deflated, Expect, Outcome, Send

from support.websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    DEFAULT_MASK,
    PONG,
    TEXT,
    Close,
    Event,
    Ping,
    ProtocolViolation,
    StrictClient,
    close_payload,
    encode_frame,
)

#: Where the wsproto reference server (VESTESPY_WS_REFERENCE=1) departs from the cases.
REFERENCE_GAPS: dict[str, str] = {
    "13.11.3": "wsproto accepts server_max_window_bits without a value (RFC 7692 7.1.2.1: decline)",
    "13.11.5": "wsproto ignores unknown permessage-deflate parameters (RFC 7692 5: decline)",
    "13.11.6": "wsproto accepts a repeated parameter (RFC 7692 5: decline)",
    "13.11.7": "wsproto accepts a value on server_no_context_takeover (RFC 7692 7.1.1.1: decline)",
    "13.12.12": "wsproto loses a message's compression when a ping comes between its fragments",
}


def encode_items(client: StrictClient, step: Send) -> list[bytes]:
    """The step's frames as wire bytes; :class:`Deflated` messages compressed now."""
    out: list[bytes] = []
    for item in step.items:
        if isinstance(item, bytes):
            out.append(item)
            continue
        payload = client.compressor().compress(item.payload)
        size = item.fragment or max(len(payload), 1)
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        for index, piece in enumerate(pieces):
            opcode = (TEXT if item.text else BINARY) if index == 0 else CONTINUATION
            out.append(
                encode_frame(
                    opcode,
                    piece,
                    fin=index == len(pieces) - 1,
                    rsv1=index == 0,
                    mask_key=DEFAULT_MASK,
                )
            )
    return out


def writes(case: Case, frames: list[bytes], mode: str, seed: str) -> list[bytes]:
    """The socket writes that send ``frames`` in ``mode``."""
    if mode == "framewise":
        return frames
    data = b"".join(frames)
    if mode == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    if mode == "split":
        if case.fixed_chop:
            return [data[i : i + case.chop] for i in range(0, len(data), case.chop)]
        rng = random.Random(seed)  # the same pieces on every run and backend
        out = []
        while data:
            size = rng.randint(1, case.chop)
            out.append(data[:size])
            data = data[size:]
        return out
    return [data]


def next_event(client: StrictClient) -> Event | None:
    """The server's next event, its pings answered and skipped (it may ping at any time)."""
    while True:
        event = client.read_event()
        if isinstance(event, Ping):
            client.send(encode_frame(PONG, event.payload, mask_key=DEFAULT_MASK))
            continue
        return event


def check_end(client: StrictClient, outcome: Outcome) -> None:
    """Check how the server ends the connection (the case's :class:`Outcome`)."""
    if outcome.kind == "clean":
        client.send(encode_frame(CLOSE, close_payload(1000), mask_key=DEFAULT_MASK))
    event = next_event(client)
    if event is None:
        dropped = f"the server dropped the connection; expected {outcome.describe()}"
        assert outcome.kind == "fail", dropped
        assert outcome.drop_ok, dropped
        return
    assert isinstance(event, Close), f"expected {outcome.describe()}, got {event!r}"
    assert event.code in outcome.codes, (
        f"expected {outcome.describe()}, got close {event.code} {event.reason!r}"
    )
    if outcome.kind == "fail":
        # RFC 6455 5.5.1: answer the server's close; then it closes TCP (7.1.1).
        client.send(encode_frame(CLOSE, close_payload(event.code), mask_key=DEFAULT_MASK))
    # Nothing may follow the close frame (the client checks) but the end of TCP.
    assert client.read_event() is None


def replay(address: tuple[str, int], case: Case, mode: str) -> None:
    """Replay ``case`` in ``mode`` and check every event and the end of the connection."""
    with StrictClient(address) as client:
        status = client.handshake(extensions=case.offer)
        assert status == 101, (status, client.headers)
        if case.deflate is not None:
            accepted = client.deflate is not None
            assert accepted == case.deflate, (
                f"permessage-deflate {'not ' if case.deflate else ''}accepted: "
                f"{client.header('Sec-WebSocket-Extensions')!r}"
            )
        answer = client.header("Sec-WebSocket-Extensions") or ""
        for param in case.require:
            assert param in answer, f"{param} missing from the answer {answer!r} (RFC 7692 7.1)"
        if (
            case.client_context
            and client.deflate is not None
            and client.deflate.client_no_context_takeover
        ):
            pytest.skip(
                "the server asked for client_no_context_takeover; "
                "the case needs the client's context"
            )
        sending = True
        for number, step in enumerate(case.steps):
            if isinstance(step, Send):
                if not sending:
                    break
                for piece in writes(case, encode_items(client, step), mode, f"{case.id}/{number}"):
                    if not client.send(piece):
                        sending = False  # the server failed the connection: read why
                        break
            else:
                assert isinstance(step, Expect)
                for want in step.events:
                    got = next_event(client)
                    assert got == want, f"step {number}: expected {want!r}, got {got!r}"
        check_end(client, case.outcome)


def _params() -> list[object]:
    params = []
    for case in CASES:
        for mode in case.send_modes:
            params.append(pytest.param(case, mode, id=f"{case.id}-{mode}"))
    return params


@pytest.mark.parametrize(("case", "mode"), _params())
def test_websocket_case(
    websocket_server: object, case: Case, mode: str, request: pytest.FixtureRequest
) -> None:
    label: str = websocket_server.label  # type: ignore[attr-defined]
    request.node.user_properties.append(("server", label))
    request.node.user_properties.append(("kind", "websocket"))
    if label == "wsproto-reference":
        if case.id in REFERENCE_GAPS:
            request.applymarker(pytest.mark.xfail(strict=True, reason=REFERENCE_GAPS[case.id]))
    else:
        for key, (reason, where, certain) in GAPS.items():
            if key.strip() == case.id and where <= {*label.split("/"), mode}:
                raises = (AssertionError, TimeoutError, ProtocolViolation)
                request.applymarker(pytest.mark.xfail(strict=certain, reason=reason, raises=raises))
    replay(websocket_server.address, case, mode)  # type: ignore[attr-defined]


def test_cases_are_well_formed() -> None:
    """Every case names its RFC section, a known section, and an outcome it can reach."""
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert case.rfc.startswith("RFC "), case.id
        assert case.outcome.kind in ("clean", "reply", "fail"), case.id
        assert all(isinstance(step, (Send, Expect)) for step in case.steps), case.id
        if any(isinstance(i, Deflated) for s in case.steps if isinstance(s, Send) for i in s.items):
            assert case.deflate, f"{case.id} compresses without negotiating"
        assert set(case.send_modes) <= {"whole", "framewise", "bytewise", "split"}, case.id
    assert {case.section for case in CASES} == {1, 2, 3, 4, 5, 6, 7, 9, 12, 13}
