"""Conformance fixtures: one echo server per backend x worker mode, and per-backend counts."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from echo_app import echo

import vestespy
from support import ServerThread, serve

_counts: Counter[tuple[str, str, str]] = Counter()


@pytest.fixture(
    scope="module",
    params=[(b, w) for b in vestespy.available_backends() for w in (4, 0)],
    ids=lambda p: f"{p[0]}-{'pool' if p[1] else 'inline'}",
)
def echo_server(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    """A server running :func:`echo`, shared by one module's tests for one backend and mode."""
    backend, workers = request.param
    with serve(echo, select=backend, max_workers=workers, keep_alive_timeout=10) as thread:
        thread.label = f"{backend}/{'pool' if workers else 'inline'}"  # type: ignore[attr-defined]
        yield thread


def echo_websocket(server: vestespy.Server, ws: Any, req: vestespy.Request) -> None:
    """Send every message back as it came: text as text, binary as binary."""
    ws.on("message", lambda ws, data: ws.send(data))


def _websocket_servers() -> list[tuple[str, int]]:
    servers: list[tuple[str, int]] = []
    if hasattr(vestespy, "WebSocket"):
        servers += [(b, w) for b in vestespy.available_backends() for w in (4, 0)]
    if os.environ.get("VESTESPY_WS_REFERENCE") == "1":
        servers.append(("reference", 0))
    return servers


@pytest.fixture(
    scope="module",
    params=_websocket_servers()
    or [
        pytest.param(
            ("none", 0), marks=pytest.mark.skip(reason="this build has no WebSocket support")
        )
    ],
    ids=lambda p: (
        "wsproto-reference" if p[0] == "reference" else f"{p[0]}-{'pool' if p[1] else 'inline'}"
    ),
)
def websocket_server(request: pytest.FixtureRequest) -> Iterator[object]:
    """A WebSocket echo server (default options), shared by one module's tests per backend and mode.

    ``VESTESPY_WS_REFERENCE=1`` adds a plain wsproto server (support/ws_reference.py), to check
    the cases themselves.
    """
    backend, workers = request.param
    if backend == "reference":
        from support.ws_reference import ReferenceServer

        reference = ReferenceServer().start()
        try:
            yield reference
        finally:
            reference.stop()
        return
    with serve(None, select=backend, max_workers=workers) as thread:
        thread.server.on("websocket", echo_websocket)
        thread.label = f"{backend}/{'pool' if workers else 'inline'}"  # type: ignore[attr-defined]
        yield thread


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    props = dict(report.user_properties)
    if "server" in props and (report.when == "call" or report.outcome != "passed"):
        outcome: str = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xpassed" if outcome == "passed" else "xfailed"
        _counts[(str(props["server"]), str(props.get("kind", "case")), outcome)] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _counts:
        return
    terminalreporter.section("conformance per backend")
    servers = sorted({server for server, _, _ in _counts})
    for server in servers:
        row = {(kind, outcome): n for (s, kind, outcome), n in _counts.items() if s == server}
        text = ", ".join(f"{kind} {outcome}: {n}" for (kind, outcome), n in sorted(row.items()))
        terminalreporter.write_line(f"{server}: {text}")
