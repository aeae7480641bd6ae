"""A response stream pulled by the loop thread as the client reads (inline listeners).

With ``max_workers=0`` a listener runs on the loop thread, which must never wait for a slow
client: :meth:`~vestespy.Response.send_stream` and ``send_chunked`` then hand their stream to
the connection, which pulls a :class:`LoopStream` whenever the wire has room (after a flush
the kernel took whole, or once the client read the backlog). Loop thread only.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .errors import ClientDisconnected

if TYPE_CHECKING:
    from ._exchange import Exchange

__all__ = ["LoopStream", "Pulled"]

logger: logging.Logger = logging.getLogger("vestespy.error")


class Pulled(enum.Enum):
    """What a :meth:`LoopStream.pull` left."""

    #: More of the stream remains: pull again once there is room.
    MORE = "more"
    #: The stream ended and its response with it, or the client went away.
    OVER = "over"
    #: The stream raised (logged): the connection must be aborted.
    FAILED = "failed"


class LoopStream:
    """One response's stream and its exchange, pulled a bufferful at a time."""

    __slots__ = ("_chunks", "_exchange")

    def __init__(self, exchange: Exchange, chunks: Iterator[bytes]) -> None:
        self._exchange = exchange
        self._chunks = chunks

    def pull(self, has_room: Callable[[], bool]) -> Pulled:
        """Move pieces into the response while ``has_room()``; end it when the stream ends."""
        exchange = self._exchange
        try:
            while has_room():
                data = next(self._chunks, None)
                if data is None:
                    exchange.finish()
                    return Pulled.OVER
                exchange.write(data)  # through the exchange: the access log counts it
        except ClientDisconnected:
            return Pulled.OVER
        except Exception:
            logger.exception("response stream failed; closing the connection")
            return Pulled.FAILED
        return Pulled.MORE
