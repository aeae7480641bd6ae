"""Runs the installed connection driver on one protocol core, for the differential test.

Started as ``VESTESPY_H11=<core> python worker.py``; reads pickled lists of byte chunks on
stdin (4-byte big-endian length, then the pickle) and answers with the pickled transcript of
what the driver did with them (:func:`transcript`). Stays up until stdin closes.
"""

from __future__ import annotations

import dataclasses
import pickle
import struct
import sys
from typing import Any

from vestespy._core import CORE_NAME
from vestespy._driver import Driver, PeerClosed, RequestEnded, RequestRejected, RequestStarted, Wait

# The per-request events are plain classes (mypyc compiles their __init__), the rest dataclasses.
_PLAIN_FIELDS = {
    "RequestStarted": ("method", "target", "http_version", "headers", "expects_continue"),
    "BodyReceived": ("data",),
    "RequestEnded": ("trailers",),
}


def event_fields(event: object) -> tuple[Any, ...]:
    """The event's fields, in order, as plain data (an event inside another one too).

    Plain data, because the compiled build's event classes are native: they cannot be
    unpickled on the test's side (a RequestRejected carries the RequestStarted it refused).
    """
    if dataclasses.is_dataclass(event):
        values = [getattr(event, field.name) for field in dataclasses.fields(event)]
    else:
        values = [getattr(event, name) for name in _PLAIN_FIELDS[type(event).__name__]]
    return tuple(
        (type(value).__name__, event_fields(value))
        if type(value).__name__ in _PLAIN_FIELDS
        else value
        for value in values
    )


def transcript(chunks: list[bytes], eof: bool) -> list[Any]:
    """Feed ``chunks`` (then EOF, if ``eof``) to a driver; return what happened, as data.

    Every request that ends gets a small response, so that pipelined requests proceed.
    Driver events are recorded with their fields; exceptions by type name and message.
    """
    out: list[Any] = []
    driver = Driver()

    def drain() -> None:
        for _ in range(10_000):
            event = driver.next_event()
            if isinstance(event, Wait):
                out.append(("wait", event.name))
                return
            fields = event_fields(event)
            out.append((type(event).__name__, fields))
            if isinstance(event, RequestStarted) and event.expects_continue:
                out.append(("continue", driver.send_continue()))
            if isinstance(event, RequestEnded):
                respond()  # each request that ends is owed a response
            if isinstance(event, (RequestRejected, PeerClosed)):
                return  # the driver would repeat it
        out.append(("runaway",))

    def respond() -> None:
        try:
            head = driver.start_response(200, [(b"Content-Length", b"2")])
            body = driver.send_body(b"ok")
            end = driver.end_response()
            out.append(("sent", head, b"".join(body), end, driver.must_close))
        except Exception as exc:  # what the core raises is part of the comparison
            out.append(("send-error", type(exc).__name__, str(exc)))

    for chunk in [*chunks, *([b""] if eof else [])]:
        try:
            driver.receive(chunk)
            drain()
        except Exception as exc:
            out.append(("error", type(exc).__name__, str(exc)))
            break
    return out


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(CORE_NAME.encode().ljust(16))
    stdout.flush()
    while header := stdin.read(4):
        (size,) = struct.unpack(">I", header)
        batch: list[tuple[list[bytes], bool]] = pickle.loads(stdin.read(size))
        reply = pickle.dumps([transcript(chunks, eof) for chunks, eof in batch])
        stdout.write(struct.pack(">I", len(reply)) + reply)
        stdout.flush()


if __name__ == "__main__":
    main()
