"""--timeout's judgement of a worker's heartbeats, on a fake clock."""

from __future__ import annotations

from dataclasses import dataclass

from vestespy._watchdog import beat_interval, overdue


@dataclass
class FakeWorker:
    pid: int
    ready: bool = True
    stopping: bool = False
    last_beat: float = 100.0


def test_a_worker_is_overdue_only_past_the_timeout() -> None:
    worker = FakeWorker(1)
    assert overdue([worker], 100.0 + 30.0, 30.0) == []
    assert overdue([worker], 100.0 + 30.01, 30.0) == [worker]
    worker.last_beat = 129.0  # a beat came
    assert overdue([worker], 130.01, 30.0) == []


def test_starting_and_stopping_workers_and_timeout_zero_are_not_judged() -> None:
    starting = FakeWorker(1, ready=False)
    stopping = FakeWorker(2, stopping=True)
    hung = FakeWorker(3)
    assert overdue([starting, stopping, hung], 1000.0, 30.0) == [hung]
    assert overdue([hung], 1000.0, 0.0) == []


def test_beats_four_per_timeout_within_bounds() -> None:
    assert beat_interval(2.0) == 0.5
    assert beat_interval(30.0) == 1.0
    assert beat_interval(0.1) == 0.05
