"""``--metrics-bind`` with ``--workers 2``: the supervisor serves the workers' sum, and a
worker killed mid-run keeps the counts it had published."""

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


def _scrape(address: tuple[str, int]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


NOT_FOUND = ("vestespy_requests_total", (("method", "GET"), ("status_class", "4xx")))
TOO_MANY_FIELDS = (
    "vestespy_rejections_total",
    (("reason", "too-many-header-fields"), ("status", "431")),
)


def _reaches(address: tuple[str, int], key: object, value: float) -> bool:
    return _scrape(address).get(key) == value  # type: ignore[call-overload]


def _too_many_fields(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=10) as sock:
        fields = b"".join(b"X-%d: 1\r\n" % i for i in range(200))
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 431 ")


def test_the_supervisor_sums_its_workers_and_keeps_a_killed_workers_counts(
    tmp_path: Path,
) -> None:
    pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
    write_app(tmp_path)
    args = ["app:app", "--port", "0", "--workers", "2", "--metrics-bind", "127.0.0.1:0"]
    with Command(args, tmp_path) as command:
        address = command.wait_ready()
        line = command.wait_for_log(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")[0]
        metrics = ("127.0.0.1", int(line))
        assert metrics[1] != address[1]
        for _ in range(10):
            assert get(address, "/missing")[0] == 404
        _too_many_fields(address)
        poll(lambda: _reaches(metrics, NOT_FOUND, 10), 20, "the 404s to be published")
        poll(lambda: _reaches(metrics, TOO_MANY_FIELDS, 1), 20, "the 431 to be published")
        victim = int(get(address, "/pid")[2].split()[0])
        os.kill(victim, signal.SIGKILL)
        command.wait_for_log(rf"worker {victim} died \(killed by SIGKILL\)")
        for _ in range(5):
            assert get(address, "/missing")[0] == 404
        _too_many_fields(address)
        poll(lambda: _reaches(metrics, NOT_FOUND, 15), 20, "the later 404s to be published")
        poll(lambda: _reaches(metrics, TOO_MANY_FIELDS, 2), 20, "the later 431")
        scraped = _scrape(metrics)
        assert scraped[("vestespy_workers_alive", ())] == 2
        assert scraped[("vestespy_workers_replaced_total", (("cause", "died"),))] == 1
        for cause in ("timeout", "max_requests", "reload", "failed_start"):
            assert scraped[("vestespy_workers_replaced_total", (("cause", cause),))] == 0
        assert scraped[("vestespy_requests_in_flight", ())] == 0
        assert command.stop() == 0
