"""The WebSocket opening handshake (RFC 6455 4.2.1), checked on the parsed request head.

Theory of operation: the connection asks :func:`is_upgrade` of each request head when the server
has ``"websocket"`` listeners; a request that asks for ``Upgrade: websocket`` is then checked as
a whole by :func:`check_handshake`, which returns either the client's offer
(:class:`Offer`: its key, subprotocols and extension offers) or the refusal it is owed
(:class:`Refusal`: 400 for a malformed handshake, 426 with ``Sec-WebSocket-Version: 13`` for
another version, 403 for an origin not allowed). :func:`accept_token` computes
``Sec-WebSocket-Accept``.

Pure functions of the head; stdlib only (wsproto is imported by the session, not here).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Offer", "Refusal", "accept_token", "check_handshake", "is_upgrade"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Header fields as the driver hands them: (lowercase name, name as received, value).
Fields = Sequence[tuple[str, str, str]]


@dataclass(frozen=True, slots=True)
class Offer:
    """A valid opening handshake: what the client offered."""

    key: str
    #: The subprotocols the client offered, in its order of preference.
    subprotocols: tuple[str, ...]
    #: The ``Sec-WebSocket-Extensions`` offers, one string each (``name; params``).
    extensions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """An opening handshake refused: the status, why, and header fields for the answer."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


def _tokens(fields: Fields, name: str) -> list[str]:
    """The comma-separated tokens of every ``name`` field, stripped, lowercase kept."""
    out: list[str] = []
    for field, _, value in fields:
        if field == name:
            out.extend(token.strip() for token in value.split(",") if token.strip())
    return out


def is_upgrade(fields: Fields) -> bool:
    """Whether the request asks to upgrade to the WebSocket protocol (``Upgrade: websocket``)."""
    return any(token.lower() == "websocket" for token in _tokens(fields, "upgrade"))


def check_handshake(
    method: str, http_version: str, fields: Fields, allowed_origins: Sequence[str]
) -> Offer | Refusal:
    """Check an upgrade request against RFC 6455 4.2.1 and the allowed origins.

    Args:
        method: The request method.
        http_version: ``"1.0"`` or ``"1.1"``.
        fields: The request's header fields.
        allowed_origins: Origins allowed (exact, case-insensitive); empty allows any.
    """
    if method != "GET" or http_version != "1.1":
        return Refusal(400, "a WebSocket handshake must be a GET over HTTP/1.1")
    if "upgrade" not in (token.lower() for token in _tokens(fields, "connection")):
        return Refusal(400, "a WebSocket handshake needs Connection: upgrade")
    for name, _, value in fields:
        if (name == "content-length" and value.strip() != "0") or name == "transfer-encoding":
            return Refusal(400, "a WebSocket handshake has no body")
    keys = [value for name, _, value in fields if name == "sec-websocket-key"]
    if len(keys) != 1 or not _valid_key(keys[0].strip()):
        return Refusal(400, "Sec-WebSocket-Key must be one base64-encoded 16-byte value")
    versions = _tokens(fields, "sec-websocket-version")
    if versions != ["13"]:
        return Refusal(426, "unsupported WebSocket version", (("Sec-WebSocket-Version", "13"),))
    if allowed_origins:
        origins = [value.strip() for name, _, value in fields if name == "origin"]
        allowed = {origin.lower() for origin in allowed_origins}
        if len(origins) != 1 or origins[0].lower() not in allowed:
            return Refusal(403, "origin not allowed")
    return Offer(
        key=keys[0].strip(),
        subprotocols=tuple(_tokens(fields, "sec-websocket-protocol")),
        extensions=tuple(_tokens(fields, "sec-websocket-extensions")),
    )


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


def accept_token(key: str) -> str:
    """``Sec-WebSocket-Accept`` for ``key`` (RFC 6455 4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")
