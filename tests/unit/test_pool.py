"""Strands: tasks of one connection run in order, one at a time, on the pool or inline."""

from __future__ import annotations

import threading

import pytest

from vestespy._pool import InlineStrand, WorkerPool


def test_strand_runs_tasks_in_order_one_at_a_time() -> None:
    pool = WorkerPool(8)
    try:
        strands = [pool.strand() for _ in range(8)]
        results: dict[int, list[int]] = {i: [] for i in range(8)}
        active: dict[int, int] = dict.fromkeys(range(8), 0)
        overlaps: list[int] = []
        lock = threading.Lock()
        done = threading.Event()
        remaining = [8 * 500]

        def task(strand_id: int, n: int) -> None:
            with lock:
                active[strand_id] += 1
                if active[strand_id] > 1:
                    overlaps.append(strand_id)
            results[strand_id].append(n)
            with lock:
                active[strand_id] -= 1
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

        for n in range(500):
            for strand_id, strand in enumerate(strands):
                strand.post(task, strand_id, n)
        assert done.wait(10)
        assert overlaps == []
        for strand_id in range(8):
            assert results[strand_id] == list(range(500))
    finally:
        pool.shutdown()


def test_strand_uses_pool_threads() -> None:
    pool = WorkerPool(2)
    try:
        names: list[str] = []
        done = threading.Event()
        strand = pool.strand()
        strand.post(lambda: names.append(threading.current_thread().name))
        strand.post(done.set)
        assert done.wait(5)
        assert names[0].startswith("vestespy-worker")
    finally:
        pool.shutdown()


def test_inline_strand_runs_at_once_and_queues_reentrant_posts() -> None:
    strand = InlineStrand()
    order: list[str] = []

    def outer() -> None:
        order.append("outer-start")
        strand.post(order.append, "inner")
        order.append("outer-end")

    strand.post(outer)
    assert order == ["outer-start", "outer-end", "inner"]
    strand.post(order.append, "after")
    assert order[-1] == "after"


def test_worker_pool_zero_is_inline_and_negative_is_rejected() -> None:
    assert isinstance(WorkerPool(0).strand(), InlineStrand)
    with pytest.raises(ValueError, match="max_workers"):
        WorkerPool(-1)


def test_post_after_shutdown_is_dropped_quietly() -> None:
    pool = WorkerPool(1)
    strand = pool.strand()
    pool.shutdown()
    strand.post(lambda: None)  # must not raise
