"""Connection bounds: max_connections, accept() out of descriptors, select past FD_SETSIZE.

The file descriptor tests run the server in a subprocess (tests/support/rlimit_server.py), so
that lowering or raising ``RLIMIT_NOFILE`` touches no other test.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest

import vestespy
from support import RawClient, Serve, poll
from support.client import build_request
from support.process import Subprocess
from support.timing import latency_bound

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX descriptor limits")


def hello(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    res.send_all("hello")


def assert_unanswered(client: RawClient, wait: float = 0.3) -> None:
    """Nothing arrives for ``wait`` seconds (the server has not accepted the connection)."""
    client.sock.settimeout(wait)
    with pytest.raises(TimeoutError):
        client.sock.recv(1)
    client.sock.settimeout(10)


def test_max_connections_under_at_and_over(served: Serve) -> None:
    with served(hello, max_connections=3) as thread:
        clients = [RawClient(thread.address) for _ in range(4)]
        try:
            for client in clients[:3]:  # one under, then at the limit
                assert client.request().body == b"hello"
            waiting = clients[3]  # over: its handshake completes in the listen queue
            waiting.send(build_request())
            assert_unanswered(waiting)
            clients[0].close()  # a slot frees: the waiting client is accepted and answered
            started = time.monotonic()
            assert waiting.read_response().body == b"hello"
            # At once, not at a timer: a second (ten on a busy machine) is plenty.
            assert time.monotonic() - started < latency_bound(1.0)
            assert clients[1].request().body == b"hello"  # the others were served throughout
        finally:
            for client in clients:
                client.close()


def test_max_connections_must_be_positive_or_none() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        vestespy.ServerOptions(max_connections=0)
    assert vestespy.ServerOptions(max_connections=None).max_connections is None
    assert vestespy.ServerOptions().max_connections == 1000


@pytest.fixture
def spawn() -> Iterator[list[Subprocess]]:
    started: list[Subprocess] = []
    yield started
    for process in started:
        process.stop()


def connect_many(address: tuple[str, int], count: int) -> list[RawClient]:
    return [RawClient(address) for _ in range(count)]


@pytest.mark.parametrize(
    ("backend", "workers"),
    [(backend, 4) for backend in vestespy.available_backends()]
    + [(vestespy.available_backends()[0], 0)],
    ids=lambda value: str(value),
)
def test_out_of_descriptors_accept_backs_off_and_serves_the_open_connections(
    backend: str, workers: int, spawn: list[Subprocess]
) -> None:
    # 12 descriptors to spare, 40 clients: accept() fails with EMFILE after about 12.
    server = Subprocess(backend, str(workers), "+12", "max_connections=None")
    spawn.append(server)
    connecting = time.monotonic()  # no accept() has failed before this
    clients = connect_many(server.address, 40)
    try:
        first = clients[0]  # accepted first (the listen queue is FIFO)
        # The accept loop must not spin while the descriptors are short: the open
        # connection keeps being served, and accept() is retried with a back-off.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert first.request().body == b"hello"
            time.sleep(0.1)  # pacing the probe, not waiting for an event
        failed = server.failed_accepts(first)
        elapsed = time.monotonic() - connecting
        # The back-off doubles from 0.05 s to 1 s while the shortage lasts (no connection
        # closes meanwhile): 5 retries in its first 1.55 s, then one a second, so at most
        # 7 + elapsed however slow the machine. A spinning loop fails thousands of times a
        # second, and a fixed 0.05 s pause 20 times.
        assert 1 <= failed <= 7 + elapsed, (failed, elapsed)
        # Each client that is answered and leaves frees a descriptor for the next one.
        started = time.monotonic()
        for client in clients:
            client.send(build_request())
        for client in clients:
            assert client.read_response().body == b"hello"
            client.close()
        assert time.monotonic() - started < 10
    finally:
        for client in clients:
            client.close()
    stderr = server.stop()
    assert "accepting paused" in stderr
    assert "Too many open files" in stderr
    # One warning per episode of shortage, not one per retry.
    assert stderr.count("accepting paused") <= 5, stderr


def test_max_connections_below_the_descriptor_limit_avoids_emfile(
    backend: str, spawn: list[Subprocess]
) -> None:
    server = Subprocess(backend, "4", "+12", "max_connections=8")
    spawn.append(server)
    clients = connect_many(server.address, 20)
    try:
        for client in clients[:8]:
            assert client.request().body == b"hello"
        for client in clients[8:]:
            client.send(build_request())
        assert_unanswered(clients[8])
        for client in clients[:8]:
            client.close()
        for client in clients[8:]:
            assert client.read_response().body == b"hello"
            client.close()
    finally:
        for client in clients:
            client.close()
    stderr = server.stop()
    assert "accept failed" not in stderr, stderr


def test_select_refuses_sockets_past_fd_setsize_and_survives(spawn: list[Subprocess]) -> None:
    if "select" not in vestespy.available_backends():
        pytest.skip("no select backend")
    import resource

    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1200:
        pytest.skip("the hard descriptor limit is below 1200")
    # Descriptors up to 1030 are taken, so the next sockets land past FD_SETSIZE (1024).
    server = Subprocess("select", "4", "1200", "--pad", "1030")
    spawn.append(server)
    with RawClient(server.address) as refused:
        refused.send(build_request())
        assert refused.is_closed_by_server()  # closed at once: no response, no hang
    assert server.process.poll() is None  # the process is alive
    assert server.send("unpad") == "unpadded"

    # Accepting resumes within the back-off (at most 1 s): low descriptors are free again.
    def served() -> bool:
        try:
            with RawClient(server.address, timeout=2) as client:
                return client.request().body == b"hello"
        except (ConnectionError, TimeoutError):
            return False

    poll(served, 5, "select to resume accepting")
    stderr = server.stop()
    assert "FD_SETSIZE (1024)" in stderr
    assert "Traceback" not in stderr
