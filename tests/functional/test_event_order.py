"""Event order under real threads: "close" comes once, last, after "end", on every request.

The interleaving that broke it before Connection v2 (a response finished on a pool thread
while the loop was between marking the request ended and posting "end") is forced without
sockets in tests/unit/test_connection.py; here the same promise is checked the way it was first
seen: many pipelined requests, listeners answering at once, and a tiny thread switch interval so
that the loop and the pool threads interleave as finely as the interpreter allows.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from support import RawClient, Serve
from vestespy import Request, Response

CLIENTS = 8
REQUESTS_PER_CLIENT = 250  # 2,000 requests: seconds, not minutes, at the switch interval below


@pytest.fixture
def fine_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.mark.slow
@pytest.mark.usefixtures("fine_switching")
def test_close_follows_end_on_every_pipelined_request(served: Serve, workers: int) -> None:
    orders: list[list[str]] = []  # list.append is atomic: no lock needed

    def on_request(server: object, req: Request, res: Response) -> None:
        seen: list[str] = []
        orders.append(seen)
        req.on("end", lambda *_: seen.append("end"))
        req.on("close", lambda *_: seen.append("close"))
        res.send_all("ok")  # at once: before "end" has been delivered

    request = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
    with served(on_request) as server:

        def client() -> None:
            with RawClient(server.address) as raw:
                raw.send(request * REQUESTS_PER_CLIENT)
                for _ in range(REQUESTS_PER_CLIENT):
                    assert raw.read_response().body == b"ok"

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive()
    # serve() has stopped the server: every connection closed, every "close" delivered.
    assert len(orders) == CLIENTS * REQUESTS_PER_CLIENT
    wrong = [seen for seen in orders if seen != ["end", "close"]]
    assert not wrong, f"{len(wrong)} requests out of order, e.g. {wrong[0]}"
