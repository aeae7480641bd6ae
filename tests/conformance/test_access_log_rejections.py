"""Every rejection of the conformance suite is in the access log: one line, its status, why.

The suite's invalid cases (a ``Reject`` among their responses, or a client that hangs up
mid-request) are replayed whole against a server whose access log is captured. Each ``Reject``
must give exactly one line marked as the server's, with the status sent and a reason; a case
where the client hangs up mid-request gives none (no response left the server). Every line is
also made in the JSON format, which must parse with ``json.loads`` and say the same.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from conformance_cases import CASES, Case, Echo, Reject
from echo_app import echo
from test_conformance import replay

from support import RawClient, ServerThread, serve
from support.polling import poll
from vestespy import Request
from vestespy.access_log import JSON_FORMAT, AccessLogFormatter, escape

TEXT = AccessLogFormatter()
JSON = AccessLogFormatter(JSON_FORMAT)


class CapturedLog:
    """An access hook that keeps each line, as text and as JSON (any thread)."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str | None, str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, request: Request, status: int, bytes_sent: int, duration: float) -> None:
        text = TEXT(request, status, bytes_sent, duration)
        line = JSON(request, status, bytes_sent, duration)
        with self._lock:
            self.lines.append((status, request.rejection, text, line))

    def take(self) -> list[tuple[int, str | None, str, str]]:
        with self._lock:
            lines, self.lines = self.lines, []
        return lines


@pytest.fixture(scope="module", params=[4, 0], ids=["pool", "inline"])
def logged_server(request: pytest.FixtureRequest) -> Iterator[tuple[ServerThread, CapturedLog]]:
    log = CapturedLog()
    with serve(echo, max_workers=request.param, keep_alive_timeout=10, access_log=log) as thread:
        yield thread, log


def _invalid(case: Case) -> bool:
    return not case.gap and (case.silent or any(isinstance(r, Reject) for r in case.responses))


INVALID = [pytest.param(case, id=case.id) for case in CASES if _invalid(case)]


def test_the_suite_has_invalid_cases() -> None:
    assert len(INVALID) > 50
    statuses = {
        r.status for c in CASES if _invalid(c) for r in c.responses if isinstance(r, Reject)
    }
    assert {400, 414, 417, 431, 501, 505} <= statuses, statuses


@pytest.mark.parametrize("case", INVALID)
def test_each_rejection_has_one_line(
    logged_server: tuple[ServerThread, CapturedLog], case: Case
) -> None:
    thread, log = logged_server
    log.take()
    replay(thread.address, case, "whole")
    # A request on a new connection whose line comes last: the application's lines of the
    # case (its accepted requests) are all in by then, or the hook runs out of order.
    with RawClient(thread.address) as client:
        assert client.request(target="/sentinel").status == 200
    lines = poll(
        lambda: log.lines if any("/sentinel" in text for _, _, text, _ in log.lines) else None,
        5.0,
        "the sentinel's access log line",
    )
    lines = [line for line in log.take() if "/sentinel" not in line[2]]
    if case.closes:  # replay() sent /other on a new connection
        lines = [line for line in lines if "/other" not in line[2]]
    rejected = [line for line in lines if line[1] is not None]
    wanted = [r.status for r in case.responses if isinstance(r, Reject)]
    assert [status for status, _, _, _ in rejected] == wanted, lines
    answered = [line for line in lines if line[1] is None]
    assert len(answered) == sum(isinstance(r, Echo) for r in case.responses), lines
    for status, reason, text, line in rejected:
        assert reason, text
        assert f'" {status} ' in text, text
        assert text.endswith(f' rejected="{escape(reason)}"'), text
        record = json.loads(line)
        assert (record["status"], record["rejected"], record["reason"]) == (status, True, reason)
        assert record["bytes_sent"] > 0 or case.raw.startswith(b"HEAD ")
    for _, _, _, line in answered:
        record = json.loads(line)
        assert record["rejected"] is False
        assert record["reason"] is None
