"""Deadlines and minimum rates against clients that trickle, stall or never read.

One smoke test per deadline over real sockets: the connection's wiring of the deadlines,
the sweep, and what the client sees (a 408, a silent close, a reset). The rules themselves,
each at its boundary and against the others, are unit-tested on a fake clock
(tests/unit/test_deadlines.py). Timeouts are short here (a few tenths of a second) so that
each case takes well under a second. The sweep checks deadlines about twice per shortest
timeout, so a deadline trips between its value and about one and a half times it; the upper
bounds leave three times the timeout and a second (support.timing.deadline_bound) for a busy
machine, the lower bounds are exact.
"""

from __future__ import annotations

import time

import pytest

import vestespy
from support import RawClient, Serve
from support.client import build_request
from support.slow_clients import big, echo_length, small_receive_buffer_client, trickle
from support.timing import deadline_bound

# Deadlines are the loop's business, the same code on every backend: the two head and body
# cases run on every backend with a pool and inline on the first; the others on the first
# backend with a pool and inline (each case takes most of a second).
FIRST = vestespy.available_backends()[0]
EVERY_BACKEND = [(backend, 4) for backend in vestespy.available_backends()] + [(FIRST, 0)]


def _mode_id(mode: tuple[str, int]) -> str:
    return f"{mode[0]}-{'pool' if mode[1] else 'inline'}"


@pytest.fixture
def backend() -> str:
    """The timing itself is not backend-specific: the first backend, pool and inline (the
    ``served`` fixture's ``workers``); tests marked ``EVERYWHERE`` run on every backend."""
    return FIRST


#: Every backend with a pool, and the first inline.
EVERYWHERE = pytest.mark.parametrize(
    ("backend", "workers"), EVERY_BACKEND, ids=[_mode_id(mode) for mode in EVERY_BACKEND]
)


HEAD = b"GET / HTTP/1.1\r\nHost: t\r\nX-Padding: " + b"a" * 40 + b"\r\n\r\n"


def hello(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    res.send_all("hello")


def closed_after(client: RawClient, started: float) -> float:
    """Read until the server closes; return when, from ``started``."""
    try:
        client.read_until_close()
    except ConnectionResetError:
        pass
    return time.monotonic() - started


@EVERYWHERE
def test_a_head_trickled_past_header_timeout_gets_408(served: Serve) -> None:
    with served(hello, header_timeout=0.3, keep_alive_timeout=30, client_timeout=30) as thread:
        started = time.monotonic()
        with RawClient(thread.address) as client:
            # A byte every 50 ms: the silence timeouts never trip, the head deadline does.
            trickle(client, HEAD, 0.05, started + 2)
            response = client.read_response()
            elapsed = time.monotonic() - started
            assert response.status == 408
            assert response.closes
            assert client.is_closed_by_server()
        assert 0.3 <= elapsed < deadline_bound(0.3), elapsed


def test_a_head_trickled_within_header_timeout_is_served(served: Serve) -> None:
    with (
        served(hello, header_timeout=3.0, keep_alive_timeout=30) as thread,
        RawClient(thread.address) as client,
    ):
        started = time.monotonic()
        # 66 bytes in about 0.5 s: slow (longer than the sweep's interval), but in time.
        # Past header_timeout the answer would be a 408, so the body is the check.
        for index in range(0, len(HEAD), 6):
            client.send(HEAD[index : index + 6])
            time.sleep(0.045)  # the pace of the trickle
        assert client.read_response().body == b"hello"
        assert time.monotonic() - started >= 0.45


def test_header_timeout_counts_from_the_first_byte_of_a_later_head(served: Serve) -> None:
    with (
        served(hello, header_timeout=0.25, keep_alive_timeout=30) as thread,
        RawClient(thread.address) as client,
    ):
        assert client.request().body == b"hello"
        # Idle longer than header_timeout between requests: keep_alive_timeout applies.
        deadline = time.monotonic() + 0.4
        client.sock.settimeout(0.4)
        with pytest.raises(TimeoutError):
            client.sock.recv(1)
        assert time.monotonic() >= deadline - 0.05
        client.sock.settimeout(10)
        assert client.request().body == b"hello"
        started = time.monotonic()
        trickle(client, HEAD, 0.05, started + 2)
        assert client.read_response().status == 408
        assert 0.25 <= time.monotonic() - started < deadline_bound(0.25)


def test_a_silent_new_connection_is_closed_at_header_timeout_without_a_response(
    served: Serve,
) -> None:
    with served(hello, header_timeout=0.25, keep_alive_timeout=30) as thread:
        started = time.monotonic()
        with RawClient(thread.address) as client:
            assert client.read_until_close() == b""  # no 408 to a client that sent nothing
            assert 0.25 <= time.monotonic() - started < deadline_bound(0.25)


def test_a_client_that_never_closes_is_cut_at_linger_timeout(served: Serve) -> None:
    options = {"linger_timeout": 0.5, "keep_alive_timeout": 30, "client_timeout": 30}
    with served(hello, **options) as thread, RawClient(thread.address) as client:
        started = time.monotonic()
        client.send(build_request(headers=[("Connection", "close")]))
        assert client.read_response().closes
        assert client.read_until_close() == b""  # the FIN; the server lingers, reading
        # What the client sends now is read and thrown away, and does not extend the linger.
        # Once the server has closed for good, its kernel answers with a reset.
        while True:
            try:
                client.send(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            assert time.monotonic() - started < deadline_bound(0.5), "still lingering"
            time.sleep(0.05)  # the pace of the client's bytes
        assert time.monotonic() - started >= 0.5


@EVERYWHERE
def test_a_body_trickled_below_min_body_rate_gets_408(served: Serve) -> None:
    options = {"min_body_rate": 240, "rate_grace_period": 0.3, "client_timeout": 30}
    with served(echo_length, **options) as thread, RawClient(thread.address) as client:
        client.send(build_request("POST", headers=[("Content-Length", "100000")]))
        client.send(b"x" * 50)
        started = time.monotonic()
        # 20 bytes a second: each byte refreshes client_timeout, the rate rule trips.
        trickle(client, b"x" * 1000, 0.05, started + 3)
        response = client.read_response()
        assert response.status == 408
        assert response.closes
        # The grace period, then the average must reach 240 B/s (50 B cover 0.2 s).
        assert 0.3 <= time.monotonic() - started < deadline_bound(0.3)


def test_a_slow_but_steady_body_is_served(served: Serve) -> None:
    options = {"min_body_rate": 240, "rate_grace_period": 0.3}
    with served(echo_length, **options) as thread, RawClient(thread.address) as client:
        client.send(build_request("POST", headers=[("Content-Length", "1000")]))
        started = time.monotonic()
        for _ in range(12):  # 1,000 B/s for 0.6 s, four times the minimum
            client.send(b"x" * 50)
            time.sleep(0.05)
        client.send(b"x" * 400)
        assert client.read_response().body == b"1000"
        assert time.monotonic() - started >= 0.6


def test_a_response_left_unread_is_closed_at_min_response_rate(served: Serve) -> None:
    options = {"min_response_rate": 240, "rate_grace_period": 0.3, "client_timeout": 30}
    with served(big, **options) as thread, small_receive_buffer_client(thread.address) as client:
        client.send(build_request())
        started = time.monotonic()
        # Not reading: the kernel buffers fill within milliseconds, then nothing moves.
        client.sock.settimeout(3)
        time.sleep(0.7)  # let the deadline pass while not reading (measured below)
        received = 0
        try:
            while chunk := client.sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < 10 * 1024 * 1024  # cut short
        # Closed at the grace period and up to a sweep (0.45 s), before the sleep ends: the
        # read above ends at once, not at its 3 s timeout.
        assert time.monotonic() - started < deadline_bound(0.3)


def test_client_timeout_applies_to_a_response_left_unread(served: Serve) -> None:
    # The case: client_timeout=5, keep_alive_timeout=20 closed at 20 s; scaled down.
    options = {"client_timeout": 0.3, "keep_alive_timeout": 30, "min_response_rate": 0}
    with served(big, **options) as thread, small_receive_buffer_client(thread.address) as client:
        client.send(build_request())
        started = time.monotonic()
        time.sleep(0.6)  # not reading, past client_timeout (measured below)
        client.sock.settimeout(3)
        received = 0
        try:
            while chunk := client.sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < 10 * 1024 * 1024
        assert time.monotonic() - started < deadline_bound(0.3)


def test_a_reader_above_min_response_rate_gets_everything(served: Serve) -> None:
    # Progress is what the kernel takes, and a loopback send buffer holds megabytes: the
    # reader must drain a third of it within the grace period for the server to see any.
    options = {"min_response_rate": 100_000, "rate_grace_period": 0.5}
    with served(big, **options) as thread, RawClient(thread.address) as client:
        client.send(build_request())
        started = time.monotonic()
        response = client.read_head()
        assert response.status == 200
        body = len(client.buffer)  # what came with the head
        while body < 10 * 1024 * 1024:  # ~10 MB/s at most, in reads of 128 KiB
            chunk = client.sock.recv(131072)
            assert chunk, f"closed after {body} bytes"
            body += len(chunk)
            time.sleep(0.01)
        assert time.monotonic() - started > 0.5  # it did run past the grace period


def test_an_early_response_to_a_large_upload_says_close(served: Serve) -> None:
    # RFC 9110 10.1.1: a 405 to a 20 MB POST the client has not sent (it waits for
    # 100 Continue) tells it the connection closes.
    def refuse(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.status = 405
        res.send_all("no")

    with served(refuse) as thread, RawClient(thread.address) as client:
        headers = [("Content-Length", str(20 * 1024 * 1024)), ("Expect", "100-continue")]
        client.send(build_request("POST", headers=headers))
        response = client.read_response()
        assert response.status == 405
        assert response.closes
        assert client.is_closed_by_server()
        with RawClient(thread.address) as client:
            # A small body is read and discarded: the connection stays open.
            client.send(build_request("POST", headers=[("Content-Length", "10")]))
            response = client.read_response()
            assert response.status == 405
            assert not response.closes
            client.send(b"0123456789")
            assert client.request().status == 405
