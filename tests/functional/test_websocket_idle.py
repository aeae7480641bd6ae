"""1,000 idle WebSockets on epoll: all stay open, each still echoes, and the server's memory per
WebSocket is reported and bounded.

The server runs in a subprocess (tests/support/rlimit_server.py, ``--websocket``: an echo
listener), so that its resident set size (``VmRSS`` of ``/proc/PID/status``) is the server's
alone: the test's 1,000 client sockets and buffers are not in it. RSS rather than tracemalloc
because it is what an operator pays for: wsproto's and VestesPy's objects, but also the
allocator's slack, the socket objects and the selector's registrations; tracemalloc sees Python
allocations only (and slows the server it traces). What the kernel holds for each socket (its
buffers) is in neither.

The figure is printed; the bound asserted (:data:`MAX_KIB_PER_WEBSOCKET`) is generous, to catch a
regression by an order of magnitude (a buffer kept per connection), not to pin the figure,
which depends on the Python version and the build. Measured: see docs/websocket.rst.
"""

from __future__ import annotations

import resource
import select
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import vestespy
from support.process import Subprocess
from support.websocket import BINARY, FrameReader, accept_for, encode_frame, handshake_request

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll and /proc: Linux"),
]

#: The idle WebSockets held open at once.
IDLE = 1000
#: WebSockets opened (and kept) before the baseline: imports, the pool's threads and the
#: first-use caches are not per-connection costs.
WARM = 20
#: Descriptors the test needs: the idle clients here and their server ends in the subprocess
#: (both under the same hard limit), with room for the rest of each process.
NEEDED_NOFILE = 2 * (IDLE + WARM) + 60
#: Handshakes sent before their answers are read: the listen backlog (1024) never overflows.
BATCH = 100
#: The bound on the server's RSS growth per idle WebSocket (KiB): about ten times the figure
#: measured on the pure build (docs/websocket.rst), so that only a gross regression fails.
MAX_KIB_PER_WEBSOCKET = 100
TIMEOUT = 60.0


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def open_websockets(address: tuple[str, int], count: int, into: list[socket.socket]) -> None:
    """Open ``count`` WebSockets on ``/ws`` (each into ``into`` at once, for the caller to
    close whatever happens); each handshake must be answered with 101 and the right token."""
    opened = 0
    while opened < count:
        batch = []
        for _ in range(min(BATCH, count - opened)):
            sock = socket.create_connection(address, timeout=TIMEOUT)
            into.append(sock)
            request, key = handshake_request("/ws")
            sock.sendall(request)
            batch.append((sock, key))
        for sock, key in batch:
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(4096)
                assert data, "the server closed a WebSocket during its handshake"
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            status, *lines = head.decode("latin-1").split("\r\n")
            fields = {
                name.lower(): value.strip() for name, _, value in (x.partition(":") for x in lines)
            }
            assert status.startswith("HTTP/1.1 101 "), head
            assert fields.get("sec-websocket-accept") == accept_for(key), head
            assert not rest, rest  # nothing is sent before the client's first message
            opened += 1


def echo_on_each(socks: list[socket.socket], payload: bytes) -> None:
    """Send one binary message on every WebSocket, then read each echo back."""
    frame = encode_frame(BINARY, payload)
    for sock in socks:
        sock.sendall(frame)
    for sock in socks:
        reader = FrameReader()
        while True:
            received = reader.next_frame()
            if received is not None:
                assert (received.opcode, received.payload) == (BINARY, payload), received
                break
            data = sock.recv(4096)
            assert data, "the server closed an idle WebSocket"
            reader.feed(data)
        assert not reader.buffer


def assert_quiet(socks: list[socket.socket]) -> None:
    """No WebSocket was closed (nor sent anything) while it sat idle: none is readable."""
    poller = select.poll()  # not select(): the descriptors go past FD_SETSIZE (1024)
    for sock in socks:
        poller.register(sock, select.POLLIN | select.POLLRDHUP)
    assert poller.poll(0) == []


@pytest.fixture
def nofile() -> Iterator[None]:
    """The soft descriptor limit raised to the hard one for this test (restored after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < NEEDED_NOFILE:
        pytest.skip(
            f"the hard RLIMIT_NOFILE is {hard}; {IDLE} idle WebSockets need {NEEDED_NOFILE} "
            "descriptors (clients here, server ends in the subprocess): raise it (ulimit -Hn)"
        )
    # No hard limit: as many as needed (an infinite soft limit may exceed the kernel's nr_open).
    raised = max(soft, NEEDED_NOFILE) if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("nofile")
def test_thousand_idle_websockets_on_epoll(
    workers: int, capsys: pytest.CaptureFixture[str]
) -> None:
    if "epoll" not in vestespy.available_backends():
        pytest.skip("no epoll backend")
    # No pings: the raw clients here do not answer them (the ping path has tests of its own),
    # and a test slowed by a busy machine would see its idle WebSockets closed as dead.
    server = Subprocess(
        "epoll",
        str(workers),
        f"+{IDLE + WARM + 100}",
        "max_connections=None",
        "websocket_ping_interval=None",
        "--websocket",
    )
    socks: list[socket.socket] = []
    try:
        address = server.address
        open_websockets(address, WARM, socks)
        echo_on_each(socks, b"warm")
        before = rss_kib(server.process.pid)
        open_websockets(address, IDLE, socks)
        idle = socks[WARM:]
        # Each WebSocket has carried a message each way: its state is that of one in use
        # (wsproto's buffers and parser made), not only just after the handshake.
        echo_on_each(idle, b"first")
        after = rss_kib(server.process.pid)
        stats = server.stats()
        assert stats["connections"] >= IDLE + WARM, stats
        per_websocket = (after - before) / IDLE
        with capsys.disabled():
            build = vestespy.build_info()
            # The server inherits this process's environment: in Python's development mode
            # (PYTHONDEVMODE set, even to "0") its debug allocator adds some 3 KiB to the figure.
            mode = ", Python development mode" if sys.flags.dev_mode else ""
            print(
                f"\n{IDLE} idle WebSockets on epoll, "
                f"{'pool' if workers else 'inline'}, {build}{mode}: server RSS "
                f"{before} -> {after} KiB, {per_websocket:.1f} KiB per WebSocket"
            )
        # All still open and idle, and every one still served: one more message each, echoed.
        assert_quiet(socks)
        echo_on_each(socks, b"again")
        assert server.process.poll() is None
        assert per_websocket < MAX_KIB_PER_WEBSOCKET, (before, after)
    finally:
        for sock in socks:
            sock.close()
        stderr = server.stop()
    assert "Traceback" not in stderr, stderr
