"""``vestespy --workers 2`` behind a real nginx and a real HAProxy, with upstream keep-alive.

The proxies are Debian packages (``.ci/run`` installs them); where one is absent its tests skip
and say so. Everything listens on loopback; the client connects from 127.0.0.2 so that the
address nginx or HAProxy appends differs from the proxy's own (127.0.0.1).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import poll
from support.command import Command, write_app
from support.proxies import Proxy

pytestmark = pytest.mark.slow

KINDS = ["nginx", "haproxy"]
CLIENT_ADDRESS = "127.0.0.2"  # loopback too; not a trusted proxy
MB = 1 << 20


@contextlib.contextmanager
def stack(kind: str, directory: Path, trusted: bool) -> Iterator[tuple[Command, Proxy]]:
    """The command with two workers, and the proxy in front of it."""
    if Proxy.binary(kind) is None:
        pytest.skip(f"{kind} is not installed (apt-get install {kind}; .ci/run does)")
    write_app(directory)
    args = ["app:app", "--workers", "2", "--port", "0", "--no-access-log"]
    if trusted:
        args += ["--forwarded-allow-ips", "127.0.0.1"]
    with Command(args, directory) as command:
        host, port = command.wait_ready()
        proxy = Proxy(kind, directory, f"{host}:{port}").start()
        try:
            yield command, proxy
        finally:
            proxy.stop()
            assert command.stop() == 0


@pytest.fixture(scope="module", params=KINDS)
def trusted_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Command, Proxy]]:
    directory = tmp_path_factory.mktemp(request.param)
    with stack(request.param, directory, trusted=True) as pair:
        yield pair


class Client:
    """A keep-alive HTTP/1.1 client of the proxy, from CLIENT_ADDRESS."""

    def __init__(self, proxy: Proxy, timeout: float = 60) -> None:
        self.connection = http.client.HTTPConnection(
            *proxy.address, timeout=timeout, source_address=(CLIENT_ADDRESS, 0)
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers=headers or {})
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def test_2000_requests_through_the_proxy(trusted_stack: tuple[Command, Proxy]) -> None:
    _, proxy = trusted_stack
    outcomes: list[object] = []
    pids: set[bytes] = set()
    lock = threading.Lock()

    def run() -> None:
        client = Client(proxy)
        try:
            for _ in range(500):
                status, body = client.request("GET", "/pid")
                with lock:
                    outcomes.append(status)
                    pids.add(body.split()[0])
        except Exception as exc:
            with lock:
                outcomes.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert outcomes == [200] * 2000
    # Served by the workers, over the proxy's few kept-alive connections (which worker each
    # connection lands on is the kernel's hash: both, or by chance one).
    assert 1 <= len(pids) <= 2


def test_client_address_through_x_forwarded_for(trusted_stack: tuple[Command, Proxy]) -> None:
    _, proxy = trusted_stack
    client = Client(proxy)
    # What the client claims is to the left of what the proxy appends: ignored.
    status, body = client.request("GET", "/client", headers={"X-Forwarded-For": "6.6.6.6"})
    client.close()
    assert status == 200
    address, peer, scheme, _ = body.decode().split("|")
    assert address == CLIENT_ADDRESS
    assert "127.0.0.1" in peer  # the socket peer is the proxy
    assert scheme == "http"


@pytest.mark.parametrize("kind", KINDS)
def test_forwarded_fields_ignored_without_trust(kind: str, tmp_path: Path) -> None:
    with stack(kind, tmp_path, trusted=False) as (_, proxy):
        client = Client(proxy)
        status, body = client.request("GET", "/client", headers={"X-Forwarded-For": "6.6.6.6"})
        client.close()
    assert status == 200
    assert body.decode().split("|")[0] == "127.0.0.1"  # the proxy, as the socket says


def pattern(size: int) -> bytes:
    block = bytes(range(256)) * 256
    return block * (size // len(block))


def test_50_mb_upload_intact(trusted_stack: tuple[Command, Proxy]) -> None:
    _, proxy = trusted_stack
    body = bytes(reversed(pattern(50 * MB)))
    client = Client(proxy)
    status, answer = client.request("POST", "/upload", body=body)
    client.close()
    assert status == 200
    assert answer.decode() == f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def test_50_mb_streamed_download_intact(trusted_stack: tuple[Command, Proxy]) -> None:
    _, proxy = trusted_stack
    client = Client(proxy)
    status, body = client.request("GET", "/big/50")
    client.close()
    assert status == 200
    assert len(body) == 50 * MB
    assert hashlib.sha256(body).digest() == hashlib.sha256(pattern(50 * MB)).digest()


def test_sighup_under_load_fails_no_request(trusted_stack: tuple[Command, Proxy]) -> None:
    command, proxy = trusted_stack
    stop = threading.Event()
    outcomes: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        client = Client(proxy)
        try:
            while not stop.is_set():
                try:
                    # A POST is not retried by the proxies: one cut short would show. The
                    # answer comes 20 ms later, so that a drain finds requests in flight.
                    status, _ = client.request("POST", "/slow/20", body=b"x" * 1000)
                except Exception as exc:
                    status = exc  # type: ignore[assignment]
                    client.close()
                    client = Client(proxy)
                with lock:
                    outcomes.append(status)
        finally:
            client.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    already = command.stderr.count("reloaded: 2 new workers")
    try:
        for count in range(1, 6):
            enough = 100 * count
            poll(lambda n=enough: len(outcomes) > n, 30, "requests between reloads")
            command.send_signal(signal.SIGHUP)
            command.wait_for_log("reloaded: 2 new workers", count=already + count, timeout=30)
        poll(lambda: len(outcomes) > 600, 30, "requests after the reloads")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    failures = [outcome for outcome in outcomes if outcome != 200]
    assert not failures, (failures[:5], proxy.log[-2000:])
    assert len(outcomes) > 600
