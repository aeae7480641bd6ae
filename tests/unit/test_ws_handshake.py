"""The opening handshake's checks (RFC 6455 4.2.1) and the session's limits, without sockets."""

from __future__ import annotations

import subprocess
import sys
import zlib

import pytest

from vestespy._ws_handshake import Offer, Refusal, accept_token, check_handshake, is_upgrade

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def _fields(**extra: str) -> list[tuple[str, str, str]]:
    fields = {
        "host": "example.com",
        "upgrade": "websocket",
        "connection": "keep-alive, Upgrade",
        "sec-websocket-key": KEY,
        "sec-websocket-version": "13",
    }
    fields.update({name.replace("_", "-"): value for name, value in extra.items()})
    return [(name, name, value) for name, value in fields.items() if value]


def test_the_rfc_example_key() -> None:
    assert accept_token(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3


def test_a_valid_handshake_is_an_offer() -> None:
    offer = check_handshake(
        "GET",
        "1.1",
        _fields(
            sec_websocket_protocol="chat, superchat",
            sec_websocket_extensions="permessage-deflate; client_max_window_bits",
        ),
        (),
    )
    assert offer == Offer(
        KEY, ("chat", "superchat"), ("permessage-deflate; client_max_window_bits",)
    )


def test_upgrade_token_is_case_insensitive() -> None:
    assert is_upgrade([("upgrade", "Upgrade", "WebSocket")])
    assert is_upgrade([("upgrade", "Upgrade", "foo, websocket")])
    assert not is_upgrade([("upgrade", "Upgrade", "h2c")])
    assert not is_upgrade([])


@pytest.mark.parametrize(
    ("method", "version", "extra", "status"),
    [
        ("POST", "1.1", {}, 400),
        ("GET", "1.0", {}, 400),
        ("GET", "1.1", {"connection": "keep-alive"}, 400),
        ("GET", "1.1", {"sec_websocket_key": ""}, 400),
        ("GET", "1.1", {"sec_websocket_key": "c2hvcnQ="}, 400),  # 5 bytes
        ("GET", "1.1", {"sec_websocket_key": "not base64!!"}, 400),
        ("GET", "1.1", {"content_length": "3"}, 400),
        ("GET", "1.1", {"sec_websocket_version": "8"}, 426),
        ("GET", "1.1", {"sec_websocket_version": ""}, 426),
        ("GET", "1.1", {"sec_websocket_version": "13, 8"}, 426),
    ],
)
def test_refusals(method: str, version: str, extra: dict[str, str], status: int) -> None:
    result = check_handshake(method, version, _fields(**extra), ())
    assert isinstance(result, Refusal)
    assert result.status == status
    if status == 426:
        assert result.headers == (("Sec-WebSocket-Version", "13"),)


def test_origins() -> None:
    allowed = ("https://Example.com",)
    assert isinstance(
        check_handshake("GET", "1.1", _fields(origin="https://example.com"), allowed), Offer
    )
    refused = check_handshake("GET", "1.1", _fields(origin="https://evil.com"), allowed)
    assert isinstance(refused, Refusal)
    assert refused.status == 403
    missing = check_handshake("GET", "1.1", _fields(), allowed)
    assert isinstance(missing, Refusal)
    assert missing.status == 403


def test_bounded_deflate_stops_at_the_limit() -> None:
    pytest.importorskip("wsproto")
    from vestespy._ws_deflate import negotiate_deflate
    from vestespy._ws_session import Failed, Received, Session

    negotiated = negotiate_deflate(("x-unknown", "permessage-deflate"), 1000)
    assert negotiated is not None
    extension, answer = negotiated
    assert answer.startswith("permessage-deflate")
    session = Session(1000, [extension])

    def compressed(data: bytes) -> bytes:
        compressor = zlib.compressobj(wbits=-15)
        body = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        payload = body[:-4]
        # One unmasked-length frame, masked with a zero key (a client must mask).
        return bytes([0xC2, 0x80 | len(payload)]) + b"\0\0\0\0" + payload

    (events, more), out = session.receive(compressed(b"a" * 1000), 64)
    assert events == [Received(b"a" * 1000, 1000)]
    assert (more, out) == (False, b"")
    (events, more), out = session.receive(compressed(b"a" * 1001), 64)
    assert [type(event) for event in events] == [Failed]
    assert events[0] == Failed(1009, events[0].reason)  # type: ignore[union-attr]
    assert out[0] == 0x88  # a close frame (FIN, opcode 8), unmasked, with code 1009
    assert out[2:4] == (1009).to_bytes(2, "big")


def test_session_hands_over_a_slice_at_a_time() -> None:
    pytest.importorskip("wsproto")
    from vestespy._ws_session import Closed, Received, Session

    session = Session(1000, [])
    frames = b"".join(bytes([0x81, 0x81, 0, 0, 0, 0]) + bytes([48 + n % 10]) for n in range(10))
    (events, more), _ = session.receive(frames, 4)
    assert [e.data for e in events if isinstance(e, Received)] == ["0", "1", "2", "3"]
    assert more
    (events, more), _ = session.receive(b"", 4)
    assert [e.data for e in events if isinstance(e, Received)] == ["4", "5", "6", "7"]
    # The peer closes: what is buffered comes first, then the loss.
    (events, more), _ = session.receive(None, -1)
    assert events == [Received("8", 1), Received("9", 1), Closed(1006, "")]
    assert not more


@pytest.mark.parametrize(
    ("offer", "rewritten"),
    [
        ("permessage-deflate", "permessage-deflate"),
        ("permessage-deflate;client_max_window_bits", "permessage-deflate; client_max_window_bits"),
        (
            'permessage-deflate; server_max_window_bits="10" ; client_no_context_takeover',
            "permessage-deflate; server_max_window_bits=10; client_no_context_takeover",
        ),
        ("permessage-deflate; server_max_window_bits", None),  # a value is required
        ("permessage-deflate; server_max_window_bits=08", None),  # no leading zero
        ("permessage-deflate; client_max_window_bits=16", None),
        ("permessage-deflate; client_max_window_bits=", None),
        ("permessage-deflate; foo=bar", None),
        ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
        ("permessage-deflate; server_no_context_takeover=1", None),
    ],
)
def test_deflate_offers_outside_rfc_7692_are_declined(offer: str, rewritten: str | None) -> None:
    pytest.importorskip("wsproto")
    from vestespy._ws_deflate import negotiate_deflate, valid_deflate_offer

    assert valid_deflate_offer(offer) == rewritten
    # Declined: not answered (the handshake goes on without it, RFC 7692 5).
    assert (negotiate_deflate((offer,), 1000) is None) == (rewritten is None)


def test_wsproto_is_imported_at_the_first_handshake_only() -> None:
    # A server that never sees a handshake pays nothing for WebSockets, on either build: the
    # compiled one puts _ws_session and _ws_link in the same extension as the rest, whose
    # modules still run their imports only when imported. A new interpreter: this one has
    # imported wsproto in other tests.
    code = (
        "import sys, vestespy\n"
        "server = vestespy.Server(('127.0.0.1', 0))\n"
        "server.on('websocket', lambda server, ws, req: None)\n"
        "server.close()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('wsproto', 'vestespy._ws_s',"
        " 'vestespy._ws_l', 'vestespy._ws_de'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
