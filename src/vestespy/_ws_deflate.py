"""permessage-deflate (RFC 7692) for the WebSocket session: the offer checked, the extension
negotiated, and its inflated output bounded by the message size limit.

Theory of operation: :func:`negotiate_deflate` takes the client's ``Sec-WebSocket-Extensions``
offers in order, declines the invalid ones (:func:`valid_deflate_offer`: wsproto's own parsing
accepts unknown or repeated parameters) and answers the first wsproto can serve with a
:class:`BoundedDeflate`, wsproto's ``PerMessageDeflate`` whose inflated message is bounded by
``websocket_max_message_size``, so that a small compressed frame cannot inflate to gigabytes
(a "decompression bomb").

Kept apart from ``_ws_session`` because it subclasses a wsproto class: mypyc compiles the
session (a native class cannot inherit from an interpreted one), this module stays Python.
"""

from __future__ import annotations

import zlib

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = ["BoundedDeflate", "negotiate_deflate", "valid_deflate_offer"]


class BoundedDeflate(PerMessageDeflate):
    """permessage-deflate (RFC 7692) whose inflated message is bounded by ``max_size``."""

    def __init__(self, max_size: int) -> None:
        super().__init__()
        self._max_size = max_size
        self._inflated = 0
        # The frame being read is a control frame: a ping may come between a compressed
        # message's fragments (RFC 6455 5.4), and must leave that message's state alone;
        # wsproto's hooks would mark the message uncompressed at the ping's end.
        self._control = False

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        """Start a frame: a data frame's compression state, or nothing for a control one."""
        self._control = opcode.iscontrol()
        if not self._control:
            return super().frame_inbound_header(proto, opcode, rsv, payload_length)
        if rsv.rsv1:
            return CloseReason.PROTOCOL_ERROR  # control frames are never compressed
        return RsvBits(True, False, False)

    def _bounded(self, data: bytes) -> bytes | CloseReason:
        decompressor = self._decompressor
        assert decompressor is not None
        room = self._max_size - self._inflated + 1  # one byte over is enough to know
        try:
            out = decompressor.decompress(data, room)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self._max_size:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        """Inflate a piece of a compressed frame, at most to the size limit."""
        if self._control or not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        return self._bounded(bytes(data))

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        """End a frame; at a compressed message's end, inflate its tail (bounded too)."""
        if not fin or self._control:
            return None
        compressed = self._inbound_compressed and self._inbound_is_compressible
        if not compressed:
            self._inbound_compressed = None
            return None
        out = self._bounded(b"\x00\x00\xff\xff")
        self._inflated = 0
        self._inbound_compressed = None
        if self.client_no_context_takeover:
            self._decompressor = None
        return out


#: permessage-deflate's parameters (RFC 7692 7.1) -> whether a value is required (True),
#: optional (None) or not allowed (False).
_DEFLATE_PARAMETERS: dict[str, bool | None] = {
    "server_no_context_takeover": False,
    "client_no_context_takeover": False,
    "server_max_window_bits": True,
    "client_max_window_bits": None,
}

#: A window size: a decimal integer from 8 to 15 without leading zeroes (RFC 7692 7.1.2).
_WINDOW_BITS = frozenset(str(bits) for bits in range(8, 16))


def valid_deflate_offer(offer: str) -> str | None:
    """A permessage-deflate offer rewritten for wsproto (quotes taken off values), or None if
    it must be declined: an unknown parameter, one given twice, a value missing, one not
    allowed or out of range (RFC 7692 5, 7.1). wsproto's own parsing accepts all of those."""
    name, *parameters = (piece.strip() for piece in offer.split(";"))
    names: set[str] = set()
    kept = [name]
    for parameter in parameters:
        key, equals, value = (part.strip() for part in parameter.partition("="))
        if key not in _DEFLATE_PARAMETERS or key in names:
            return None
        names.add(key)
        needs = _DEFLATE_PARAMETERS[key]
        if not equals:
            if needs:
                return None
            kept.append(key)
            continue
        if needs is False:
            return None
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]  # a quoted-string (RFC 7692 7.1)
        if value not in _WINDOW_BITS:
            return None
        kept.append(f"{key}={value}")
    return "; ".join(kept)


def negotiate_deflate(offers: tuple[str, ...], max_size: int) -> tuple[BoundedDeflate, str] | None:
    """Accept the first valid permessage-deflate offer (:func:`valid_deflate_offer`) that
    wsproto can serve: the extension and its ``Sec-WebSocket-Extensions`` answer, or None."""
    for given in offers:
        if given.split(";", 1)[0].strip() != "permessage-deflate":
            continue
        offer = valid_deflate_offer(given)
        if offer is None:
            continue  # RFC 7692 5: decline it; the handshake goes on without it
        extension = BoundedDeflate(max_size)
        answer = extension.accept(offer)
        if answer is None or answer is False:
            continue
        if isinstance(answer, str) and answer:
            return extension, f"permessage-deflate; {answer}"
        return extension, "permessage-deflate"
    return None
