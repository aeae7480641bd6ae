"""``--metrics-bind`` with ``--workers 2``: the supervisor serves the workers' sum of a known
mix of traffic (good requests of several classes, rejections of three kinds, a deadline), and
a worker killed mid-run keeps the counts it had published.

Exact figures are checked for what only the test sends; ``GET 2xx`` (the readiness probes,
which a busy machine may repeat) and the ``client`` closes that go with them are not. The
killed worker is the one that answered the test's one ``PUT /pid``, so its counts are in the
sum for certain: the test waits until the sum shows that request before killing it.
"""

from __future__ import annotations

import os
import signal
import socket
import urllib.request
from pathlib import Path

import pytest

from support import poll
from support.command import Command, get, write_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes need os.fork"),
]

Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(address: tuple[str, int]) -> Scrape:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _requests(method: str, status_class: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("vestespy_requests_total", (("method", method), ("status_class", status_class)))


def _rejections(status: int, reason: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("vestespy_rejections_total", (("reason", reason), ("status", str(status))))


def _closed(cause: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("vestespy_connections_closed_total", (("cause", cause),))


def _reaches(address: tuple[str, int], expected: Scrape) -> Scrape | None:
    scraped = _scrape(address)
    return scraped if all(scraped.get(k) == v for k, v in expected.items()) else None


def _refused(address: tuple[str, int], data: bytes, status: int) -> None:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(data)
        assert sock.recv(100).startswith(b"HTTP/1.1 %d " % status)


def _rejections_of_three_kinds(address: tuple[str, int]) -> None:
    _refused(address, b"GET /pid HTTP/1.1\nHost: x\n\n", 400)
    _refused(address, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)
    fields = b"".join(b"X-%d: 1\r\n" % i for i in range(200))
    _refused(address, b"GET /pid HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n", 431)


def _good_requests(address: tuple[str, int], missing: int, uploads: int) -> None:
    for _ in range(missing):
        assert get(address, "/missing")[0] == 404
    for _ in range(uploads):
        assert get(address, "/upload", method="POST", body=b"x" * 100)[0] == 200


def test_the_supervisor_sums_its_workers_and_keeps_a_killed_workers_counts(
    tmp_path: Path,
) -> None:
    pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
    write_app(tmp_path)
    args = [
        "app:app",
        "--port",
        "0",
        "--workers",
        "2",
        "--metrics-bind",
        "127.0.0.1:0",
        "--header-timeout",
        "1",
    ]
    with Command(args, tmp_path) as command:
        address = command.wait_ready()
        line = command.wait_for_log(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")[0]
        metrics = ("127.0.0.1", int(line))
        assert metrics[1] != address[1]
        # A deadline: part of a head, then nothing (408 after --header-timeout).
        slow = socket.create_connection(address, timeout=10)
        slow.sendall(b"GET /pid HTTP/1.1\r\n")
        _good_requests(address, missing=6, uploads=2)
        _rejections_of_three_kinds(address)
        assert slow.recv(100).startswith(b"HTTP/1.1 408 ")
        slow.close()
        # The worker to kill answers a request of its own.
        status, _, body = get(address, "/pid", method="PUT")
        assert status == 200
        victim = int(body.split()[0])
        before = {
            _requests("GET", "4xx"): 6,
            _requests("POST", "2xx"): 2,
            _requests("PUT", "2xx"): 1,
            _rejections(400, "bare-lf"): 1,
            _rejections(414, "request-line-too-long"): 1,
            _rejections(431, "too-many-header-fields"): 1,
            _rejections(408, "head_timed_out"): 1,
            _closed("head_timed_out"): 1,
            ("vestespy_request_body_bytes_total", ()): 200,
        }
        poll(lambda: _reaches(metrics, before), 20, "the first mix to be published")
        os.kill(victim, signal.SIGKILL)
        command.wait_for_log(rf"worker {victim} died \(killed by SIGKILL\)")
        _good_requests(address, missing=4, uploads=1)
        _rejections_of_three_kinds(address)
        after = {
            **before,
            _requests("GET", "4xx"): 10,
            _requests("POST", "2xx"): 3,
            _rejections(400, "bare-lf"): 2,
            _rejections(414, "request-line-too-long"): 2,
            _rejections(431, "too-many-header-fields"): 2,
            ("vestespy_request_body_bytes_total", ()): 300,
        }
        scraped = poll(lambda: _reaches(metrics, after), 20, "the later mix to be published")
        # Nothing more than the mix: no other class, rejection or cause counted.
        requests = {k for k, v in scraped.items() if k[0] == "vestespy_requests_total" and v}
        assert requests == {k for k in after if k[0] == "vestespy_requests_total"} | {
            _requests("GET", "2xx")
        }
        rejections = {k for k, v in scraped.items() if k[0] == "vestespy_rejections_total"}
        assert rejections == {k for k in after if k[0] == "vestespy_rejections_total"}
        causes = {k[1][0][1]: v for k, v in scraped.items() if k[0] == _closed("")[0] and v}
        assert causes.keys() == {"client", "head_timed_out", "protocol_error", "limit"}
        assert causes["protocol_error"] == 2
        assert causes["limit"] == 4
        assert scraped[("vestespy_workers_alive", ())] == 2
        assert scraped[("vestespy_workers_replaced_total", (("cause", "died"),))] == 1
        for cause in ("timeout", "max_requests", "reload", "failed_start"):
            assert scraped[("vestespy_workers_replaced_total", (("cause", cause),))] == 0
        assert scraped[("vestespy_requests_in_flight", ())] == 0
        assert command.stop() == 0
