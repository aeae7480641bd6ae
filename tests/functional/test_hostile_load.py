"""Hostile clients at scale: slowloris, slow bodies, resets, non-readers, a pipelining flood.

Marked ``slow``. The server runs in its own process (support/process.py), so that the load
the test generates does not share its GIL and the server's descriptors, threads and RSS can be
counted alone. Scale, chosen so that the module takes about half a minute per Python on a
2-core machine: 300 slowloris connections and 100 slow-body connections at once, on every
backend; 5,000 mid-request resets; 200 clients that never read a 10 MB response (the issue's
1,000 need 1,000 times the kernel's send buffer, gigabytes of kernel memory on loopback); 20
connections pipelining 1,000 requests each (the issue: 3,000), inline and on a pool. Deadlines
are scaled down (header_timeout 1 s, rate grace 0.5 s) and measured against (upper bounds:
three times the timeout and a second, see support/timing.py).

Latency targets (a normal client answered within 100 ms, a p99 under 50 ms) hold on a machine
with a core to spare. On one already busy (a load average above half the number of CPUs, as
when several test suites share two cores) every process waits its turn and the targets are
relaxed tenfold (support.timing.latency_bound), which still catches a loop that serves a flood
before everyone else (inline, before the fairness slice, the normal client waited 9.4 s).
"""

from __future__ import annotations

import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import vestespy
from support import RawClient, poll
from support.process import Subprocess
from support.timing import deadline_bound, latency_bound

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


@pytest.fixture
def spawn() -> Iterator[Callable[..., Subprocess]]:
    started: list[Subprocess] = []

    def start(backend: str, workers: int, *options: str) -> Subprocess:
        server = Subprocess(backend, str(workers), "+4000", *options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def probe(address: tuple[str, int], latencies: list[float], stop: threading.Event) -> None:
    """A normal client: one request every 20 ms on a keep-alive connection."""
    with RawClient(address) as client:
        while not stop.is_set():
            started = time.monotonic()
            assert client.request().body == b"hello"
            latencies.append(time.monotonic() - started)
            stop.wait(0.02)


@pytest.mark.parametrize("backend", vestespy.available_backends())
def test_slowloris_and_slow_bodies_are_cut_at_their_deadlines(
    backend: str, spawn: Callable[..., Subprocess]
) -> None:
    header_timeout, grace = 1.0, 0.5
    server = spawn(
        backend,
        4,
        f"header_timeout={header_timeout}",
        "min_body_rate=240",
        f"rate_grace_period={grace}",
        "client_timeout=30.0",
        "keep_alive_timeout=30.0",
    )
    latencies: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(server.address, latencies, stop))
    prober.start()  # from before the tricklers connect: their arrival is measured too
    selector = selectors.DefaultSelector()
    heads: dict[socket.socket, float] = {}
    bodies: dict[socket.socket, float] = {}
    closed_after: dict[socket.socket, float] = {}
    for count, group in ((300, heads), (100, bodies)):
        for _ in range(count):
            sock = socket.create_connection(server.address)
            sock.setblocking(False)
            if group is bodies:
                sock.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nx")
            else:
                sock.send(b"G")
            group[sock] = time.monotonic()
            selector.register(sock, selectors.EVENT_READ)
    try:
        deadline = time.monotonic() + 10
        next_byte = time.monotonic()
        while len(closed_after) < 400 and time.monotonic() < deadline:
            if time.monotonic() >= next_byte:  # each trickler: one more byte every 0.1 s
                next_byte += 0.1
                for sock in [*heads, *bodies]:
                    if sock not in closed_after:
                        try:
                            sock.send(b"E" if sock in heads else b"x")
                        except OSError:
                            pass
            for key, _ in selector.select(0.02):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if data.startswith(b"HTTP/1.1 408") or not data:
                    closed_after[sock] = time.monotonic() - heads.get(sock, bodies.get(sock, 0))
                    selector.unregister(sock)
    finally:
        stop.set()
        prober.join()
        for sock in [*heads, *bodies]:
            sock.close()
        selector.close()
    assert len(closed_after) == 400, f"{400 - len(closed_after)} tricklers still open"
    head_times = sorted(closed_after[s] for s in heads)
    body_times = sorted(closed_after[s] for s in bodies)
    print(
        f"\n{backend}: heads cut at {head_times[0]:.2f}-{head_times[-1]:.2f} s, bodies at "
        f"{body_times[0]:.2f}-{body_times[-1]:.2f} s; normal client max "
        f"{max(latencies) * 1000:.1f} ms over {len(latencies)} requests"
    )
    # A head is cut at header_timeout plus up to one sweep (half the shortest timeout), a
    # body at 10 B/s (its first byte came with the head) past the grace period; the upper
    # bounds leave room for a busy machine (support/timing.py).
    assert head_times[0] >= header_timeout
    assert head_times[-1] < deadline_bound(header_timeout)
    assert body_times[0] >= grace
    assert body_times[-1] < deadline_bound(grace)
    assert len(latencies) >= 10
    bound = latency_bound(0.1)
    assert max(latencies) < bound, f"the normal client waited {max(latencies) * 1000:.0f} ms"


@pytest.mark.parametrize("workers", [4], ids=["pool"])
def test_5000_mid_request_resets_leave_nothing_behind(
    workers: int, spawn: Callable[..., Subprocess]
) -> None:
    server = spawn("auto", workers)
    before = server.stats()  # after one request: the pool thread and buffers exist
    linger = struct.pack("ii", 1, 0)
    head = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
    for index in range(5000):
        sock = socket.create_connection(server.address)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        sock.send(head[: 10 + index % 40])
        sock.close()  # a reset, mid-request
    poll(lambda: server.stats()["connections"] == 1, 10, "the other connections to close")
    after = server.stats()
    print(f"\nresets: {before} -> {after}")
    # Exactly the descriptors of before; no thread but the pool's (started as needed, up to
    # max_workers); RSS within 16 MiB. Measured: +8 MiB (the allocator's arenas after 5,000
    # connections came and went). A leaked connection (its h11 state, driver, buffers and
    # transport: several KiB) would add tens of MiB over 5,000.
    assert after["fds"] == before["fds"]
    assert after["threads"] <= before["threads"] + workers
    assert after["rss_kib"] - before["rss_kib"] < 16 * 1024


def test_200_clients_that_never_read_a_10_mb_response(spawn: Callable[..., Subprocess]) -> None:
    server = spawn(
        "auto", 4, "client_timeout=30.0", "min_response_rate=240", "rate_grace_period=1.0"
    )
    before = server.stats()
    clients = []
    for _ in range(200):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.connect(server.address)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        clients.append(sock)
    peak = before
    started = time.monotonic()

    def all_cut() -> bool:
        nonlocal peak
        now = server.stats()
        if now["rss_kib"] > peak["rss_kib"]:
            peak = now
        return bool(now["connections"] == 1)

    poll(all_cut, 20, "the non-readers to be cut")
    cut = time.monotonic() - started
    for sock in clients:
        sock.close()

    def memory_back() -> bool:
        # The server hands memory back about a second after the load passed.
        return bool(server.stats()["rss_kib"] - before["rss_kib"] < 20 * 1024)

    poll(memory_back, 10, "memory handed back after the non-readers left")
    after = server.stats()
    print(f"\nnon-readers: {before} -> peak {peak} -> {after}; all cut within {cut:.2f} s")
    # The 10 MB body is one object every response refers to: 200 responses used to cost
    # 200 copies (2 GB). 50 MiB covers the connections' own state and not one copy each.
    assert peak["rss_kib"] - before["rss_kib"] < 50 * 1024
    assert after["rss_kib"] - before["rss_kib"] < 20 * 1024
    assert after["fds"] == before["fds"]
    assert after["threads"] <= before["threads"] + 4  # the pool's, up to max_workers


@pytest.mark.parametrize("workers", [4, 0], ids=["pool", "inline"])
def test_a_pipelining_flood_leaves_others_a_p99_under_50_ms(
    workers: int, spawn: Callable[..., Subprocess]
) -> None:
    server = spawn("auto", workers)
    per_connection = 1000
    # The flood goes on in batches until the normal client has made enough requests under it:
    # a faster server gets through one batch before the prober has 20 (seen: 16, compiled
    # inline). Bounded: at most max_batches per connection, and the deadline below.
    samples, max_batches = 25, 10
    request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    marker = b"HTTP/1.1 200"
    selector = selectors.DefaultSelector()
    counts: dict[socket.socket, int] = {}
    expected: dict[socket.socket, int] = {}
    tails: dict[socket.socket, bytes] = {}
    for _ in range(20):
        sock = socket.create_connection(server.address)
        sock.sendall(request * per_connection)
        sock.setblocking(False)
        counts[sock] = 0
        expected[sock] = per_connection
        tails[sock] = b""
        selector.register(sock, selectors.EVENT_READ)
    latencies: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(server.address, latencies, stop))
    prober.start()
    try:
        deadline = time.monotonic() + 60
        while any(counts[sock] < expected[sock] for sock in counts):
            assert time.monotonic() < deadline, "the flood did not complete"
            for key, _ in selector.select(0.1):
                sock = key.fileobj  # type: ignore[assignment]
                data = tails[sock] + sock.recv(1 << 20)
                counts[sock] += data.count(marker)
                tails[sock] = data[-(len(marker) - 1) :]
                more = len(latencies) < samples and expected[sock] < max_batches * per_connection
                if counts[sock] >= expected[sock] and more:
                    sock.setblocking(True)  # the server has read the last batch: room for this
                    sock.sendall(request * per_connection)
                    sock.setblocking(False)
                    expected[sock] += per_connection
    finally:
        stop.set()
        prober.join()
        for sock in counts:
            sock.close()
        selector.close()
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    print(
        f"\nflood ({'pool' if workers else 'inline'}): normal client p99 {p99 * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms over {len(latencies)} requests"
    )
    assert len(latencies) >= 20
    assert p99 < latency_bound(0.05)
