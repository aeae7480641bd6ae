"""The server's counters without sockets: histogram buckets, causes, in-flight, sums."""

from __future__ import annotations

import pytest

from vestespy import ServerStats
from vestespy._deadlines import HEAD_TIMED_OUT, KEEP_ALIVE_OVER
from vestespy._stats import DURATION_BOUNDS, Counters, PoolLoad, rejection_reason


class FakeRequest:
    def __init__(self, method: str) -> None:
        self.method = method


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status = status


class FakeExchange:
    """What a meter reads of an exchange."""

    def __init__(self, method: str = "GET", status: int = 200, body: int = 0) -> None:
        self.request = FakeRequest(method)
        self.response = FakeResponse(status)
        self.started_at = 0.0
        self.body_sent = body


def _sent(counters: Counters, started: float, ended: float, **kwargs: object) -> None:
    meter = counters.connection_opened()
    exchange = FakeExchange(**kwargs)  # type: ignore[arg-type]
    meter.request_started(exchange, started)  # type: ignore[arg-type]
    meter.response_sent(exchange, ended)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("duration", "bucket"),
    [
        (0.0, 0),
        (0.005, 0),  # a bound is inclusive (Prometheus' le)
        (0.0050001, 1),
        (0.3, DURATION_BOUNDS.index(0.5)),
        (10.0, len(DURATION_BOUNDS) - 1),
        (10.5, len(DURATION_BOUNDS)),  # +Inf
    ],
)
def test_a_duration_falls_in_the_first_bucket_whose_bound_it_does_not_exceed(
    duration: float, bucket: int
) -> None:
    counters = Counters()
    _sent(counters, 100.0, 100.0 + duration)
    histogram = counters.snapshot().request_duration
    expected = [0] * bucket + [1] * (len(DURATION_BOUNDS) + 1 - bucket)
    assert list(histogram.cumulative) == expected
    assert histogram.count == 1
    assert histogram.sum == pytest.approx(duration)


def test_requests_by_method_and_status_class_with_unknown_methods_as_other() -> None:
    counters = Counters()
    for method, status in [("GET", 200), ("GET", 204), ("POST", 404), ("BREW", 418), ("X", 500)]:
        _sent(counters, 0.0, 0.001, method=method, status=status, body=3)
    stats = counters.snapshot()
    assert dict(stats.requests) == {
        ("GET", "2xx"): 2,
        ("POST", "4xx"): 1,
        ("OTHER", "4xx"): 1,
        ("OTHER", "5xx"): 1,
    }
    assert stats.response_body_bytes == 15
    assert stats.requests_in_flight == 0


def test_the_first_cause_named_wins_and_lingering_without_one_is_the_servers() -> None:
    counters = Counters()
    timed_out = counters.connection_opened()
    timed_out.expired(HEAD_TIMED_OUT)
    timed_out.rejected(408, HEAD_TIMED_OUT.reason, peer_closed=False)
    timed_out.closed(lingering=True)
    idle = counters.connection_opened()
    idle.expired(KEEP_ALIVE_OVER)
    idle.closed(lingering=False)
    polite = counters.connection_opened()
    polite.closed(lingering=True)
    failed = counters.connection_opened()
    failed.closed(lingering=False)
    client = counters.connection_opened()
    client.rejected(400, "whatever", peer_closed=True)  # a truncated request: not a rejection
    client.closed(lingering=False)
    too_big = counters.connection_opened()
    too_big.rejected(431, "too-many-header-fields", peer_closed=False)
    too_big.closed(lingering=True)
    stats = counters.snapshot()
    assert dict(stats.connections_closed) == {
        "head_timed_out": 1,
        "keep_alive_over": 1,
        "server": 1,
        "error": 1,
        "client": 1,
        "limit": 1,
    }
    assert dict(stats.rejections) == {
        (408, "head_timed_out"): 1,
        (431, "too-many-header-fields"): 1,
    }
    assert stats.connections_accepted == 6
    assert stats.connections_open == 0


def test_a_reset_by_the_client_is_its_own_cause_unless_another_was_named() -> None:
    counters = Counters()
    counters.connection_opened().closed(lingering=False, peer_reset=True)
    lingering = counters.connection_opened()
    lingering.closed(lingering=True, peer_reset=True)  # closing after a response already
    timed_out = counters.connection_opened()
    timed_out.expired(KEEP_ALIVE_OVER)
    timed_out.closed(lingering=False, peer_reset=True)
    assert dict(counters.snapshot().connections_closed) == {
        "client_reset": 1,
        "server": 1,
        "keep_alive_over": 1,
    }


def test_a_101_answers_its_request_and_the_websocket_is_not_in_flight() -> None:
    counters = Counters()
    meter = counters.connection_opened()
    exchange = FakeExchange(status=200)  # the 101 does not go through the response object
    meter.request_started(exchange, 1.0)  # type: ignore[arg-type]
    meter.protocol_switched(exchange, 1.002)  # type: ignore[arg-type]
    stats = counters.snapshot()
    assert dict(stats.requests) == {("GET", "1xx"): 1}
    assert stats.requests_in_flight == 0
    assert stats.request_duration.count == 1
    assert stats.request_duration.sum == pytest.approx(0.002)
    meter.closed(lingering=True)
    assert counters.snapshot().requests_in_flight == 0


def test_requests_in_flight_are_given_back_when_their_connection_closes() -> None:
    counters = Counters()
    meter = counters.connection_opened()
    for _ in range(3):
        meter.request_started(FakeExchange(), 0.0)  # type: ignore[arg-type]
    assert counters.snapshot().requests_in_flight == 3
    meter.closed(lingering=False)
    stats = counters.snapshot()
    assert stats.requests_in_flight == 0
    assert dict(stats.requests) == {}  # none was answered


@pytest.mark.parametrize(
    ("status", "reason", "label"),
    [
        (400, "bare-lf", "bare-lf"),
        (408, HEAD_TIMED_OUT.reason, "head_timed_out"),
        (503, "limit_concurrency", "limit_concurrency"),
        (400, "Illegal header line b'\\x01secret'", "malformed"),  # h11's, quoting the client
    ],
)
def test_rejection_reasons_are_bounded(status: int, reason: str, label: str) -> None:
    assert rejection_reason(status, reason) == label


def _stats(n: int) -> ServerStats:
    counters = Counters()
    for i in range(n):
        _sent(counters, 0.0, 0.02 * i, body=i)
        counters.request_body_bytes += 10
    meter = counters.connection_opened()
    meter.rejected(414, "request-line-too-long", peer_closed=False)
    meter.closed(lingering=True)
    counters.connection_opened().request_started(FakeExchange(), 0.0)  # type: ignore[arg-type]
    for _ in range(n):
        counters.accepting_paused("max_connections")
    counters.accepting_paused("resources")
    return counters.snapshot(PoolLoad(threads=n, busy=1, queued=n - 1))


def test_snapshots_sum_figure_by_figure() -> None:
    one, two = _stats(2), _stats(3)
    total = ServerStats.total([one, two])
    assert dict(total.requests) == {("GET", "2xx"): 5}
    assert total.request_duration.cumulative == tuple(
        a + b
        for a, b in zip(
            one.request_duration.cumulative, two.request_duration.cumulative, strict=True
        )
    )
    assert total.request_duration.sum == pytest.approx(0.02 * (1 + 1 + 2))
    assert total.request_body_bytes == 50
    assert total.response_body_bytes == 1 + 1 + 2
    assert total.requests_in_flight == 2
    assert total.connections_accepted == one.connections_accepted + two.connections_accepted
    assert dict(total.connections_closed) == {"limit": 2}
    assert total.connections_open == (2 + 1) + (3 + 1)  # each: n answered, 1 in flight
    assert dict(total.rejections) == {(414, "request-line-too-long"): 2}
    assert total.pool == PoolLoad(threads=5, busy=2, queued=3)
    assert dict(total.accept_paused) == {"max_connections": 5, "resources": 2}
    assert ServerStats.total([]).request_duration.count == 0


def test_a_snapshot_survives_its_json_form() -> None:
    stats = _stats(3)
    assert ServerStats.from_json(stats.to_json()) == stats


def test_a_snapshot_of_an_older_worker_without_accept_pauses_reads() -> None:
    data = _stats(1).to_json()
    del data["accept_paused"]
    assert dict(ServerStats.from_json(data).accept_paused) == {}
