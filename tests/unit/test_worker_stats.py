"""The supervisor's sum of its workers' published figures (no processes: files written here)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from vestespy._stats import Counters, PoolLoad
from vestespy._worker_stats import REPLACED_CAUSES, StatsBoard


@pytest.fixture
def board() -> Iterator[StatsBoard]:
    board = StatsBoard()
    yield board
    board.close()


def _publish(board: StatsBoard, pid: int, accepted: int, closed: int, in_flight: int) -> None:
    counters = Counters()
    meters = [counters.connection_opened() for _ in range(accepted)]
    for meter in meters[:closed]:
        meter.closed(lingering=True)
    for _ in range(in_flight):
        meters[-1].request_started(_Exchange(), 0.0)  # type: ignore[arg-type]
    stats = counters.snapshot(PoolLoad(threads=4, busy=in_flight, queued=0))
    with open(board.path(pid), "w") as file:
        json.dump(stats.to_json(), file)


class _Exchange:
    started_at = 0.0


def test_live_workers_are_summed_and_a_gone_workers_counts_stay(board: StatsBoard) -> None:
    board.started(1)
    board.started(2)
    board.started(3)  # not published yet: counts nothing
    _publish(board, 1, accepted=5, closed=3, in_flight=1)
    _publish(board, 2, accepted=7, closed=7, in_flight=0)
    total = board.total()
    assert total.connections_accepted == 12
    assert total.connections_open == 2
    assert total.requests_in_flight == 1
    assert total.pool == PoolLoad(threads=8, busy=1, queued=0)

    board.exited(1, "died")
    total = board.total()
    assert total.connections_accepted == 12  # worker 1's counts stay
    assert dict(total.connections_closed) == {"server": 10, "worker_exit": 2}
    assert total.connections_open == 0
    assert total.requests_in_flight == 0  # its levels go
    assert total.pool == PoolLoad(threads=4, busy=0, queued=0)

    board.exited(3, None)  # the command is stopping: not a replacement
    _publish(board, 4, accepted=1, closed=1, in_flight=0)
    board.started(4)
    assert board.total().connections_accepted == 13


def test_the_worker_metrics_count_the_alive_and_the_replaced(board: StatsBoard) -> None:
    pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
    for pid in (1, 2, 3):
        board.started(pid)
    board.exited(1, "died")
    board.exited(2, "max_requests")
    families = {family.name: family for family in board.worker_metrics()}
    assert [s.value for s in families["vestespy_workers_alive"].samples] == [1]
    replaced = {
        s.labels["cause"]: s.value
        for s in families["vestespy_workers_replaced"].samples
        if s.name.endswith("_total")
    }
    assert replaced == dict.fromkeys(REPLACED_CAUSES, 0) | {"died": 1, "max_requests": 1}
