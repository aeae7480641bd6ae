"""Strands: tasks of one connection run in order, one at a time, on the pool or inline."""

from __future__ import annotations

import sys
import threading

import pytest

from support import poll
from vestespy._pool import InlineStrand, Strand, WorkerPool


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


def test_pool_starts_a_thread_only_when_no_worker_is_free() -> None:
    pool = WorkerPool(8)
    try:
        done = threading.Event()
        pool.submit(done.set)
        assert done.wait(5)
        # Three tasks that can only finish together need three threads at once.
        barrier = threading.Barrier(3, timeout=5)
        finished = threading.Semaphore(0)

        def meet() -> None:
            barrier.wait()
            finished.release()

        for _ in range(3):
            pool.submit(meet)
        for _ in range(3):
            assert finished.acquire(timeout=5)
        assert 3 <= len(pool._threads) <= 4
    finally:
        pool.shutdown()


def test_a_task_that_raises_is_logged_and_its_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = WorkerPool(1)
    try:
        done = threading.Event()

        def broken() -> None:
            raise RuntimeError("bug")

        pool.submit(broken)
        pool.submit(done.set)
        assert done.wait(5)
        assert len(pool._threads) == 1
        assert "worker task" in caplog.text
    finally:
        pool.shutdown()


def test_shutdown_runs_the_tasks_already_queued_and_refuses_new_ones() -> None:
    pool = WorkerPool(1)
    started = threading.Event()
    release = threading.Event()
    ran: list[int] = []

    def blocker() -> None:
        started.set()
        release.wait(5)

    pool.submit(blocker)
    assert started.wait(5)
    pool.submit(ran.append, 1)
    pool.shutdown(wait=False)  # while the only worker is busy: the queued task still runs
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(ran.append, 2)
    release.set()
    pool.shutdown()  # waits for the worker
    assert ran == [1]
    assert pool._threads == []


def test_shutdown_runs_a_burst_queued_behind_the_awake_thread() -> None:
    pool = WorkerPool(4, handoff_delay=10.0)
    release = threading.Event()
    started = threading.Event()
    ran: list[int] = []

    def blocker() -> None:
        started.set()
        release.wait(5)

    pool.submit(blocker)
    assert started.wait(5)
    for i in range(5):
        pool.submit(ran.append, i)  # behind the awake thread: no other thread woken
    release.set()
    pool.shutdown()
    assert ran == [0, 1, 2, 3, 4]


def test_tasks_past_the_cap_wait_for_a_busy_thread() -> None:
    # One thread, busy: later tasks queue (no second thread) and run once it is free.
    pool = WorkerPool(1)
    try:
        release = threading.Event()
        ran: list[int] = []
        done = threading.Event()
        pool.submit(release.wait, 5)
        pool.submit(ran.append, 1)
        pool.submit(ran.append, 2)
        pool.submit(done.set)
        assert len(pool._threads) == 1
        release.set()
        assert done.wait(5)
        assert ran == [1, 2]
        assert len(pool._threads) == 1
    finally:
        pool.shutdown()


def test_an_uncapped_pool_runs_every_task_at_once() -> None:
    pool = WorkerPool(None, name="uncapped")
    try:
        barrier = threading.Barrier(11, timeout=5)
        for _ in range(10):
            pool.submit(barrier.wait)
        barrier.wait()  # only if all ten run at the same time
        assert all(t.name.startswith("uncapped-") for t in pool._threads)
    finally:
        pool.shutdown()


def test_idle_threads_exit_after_the_idle_timeout_and_new_ones_start() -> None:
    pool = WorkerPool(None, idle_timeout=0.05)
    try:
        done = threading.Event()
        pool.submit(done.set)
        assert done.wait(5)
        (first,) = pool._threads
        first.join(5)
        assert not first.is_alive()
        assert pool._threads == []
        done.clear()
        pool.submit(done.set)  # no idle thread is left: a new one starts
        assert done.wait(5)
        assert pool._threads
        assert pool._threads[0] is not first
    finally:
        pool.shutdown()


class _PostOnEmptyRelease:
    """A strand's lock that posts a task the moment a runner releases it after finding no task
    left: the window where the runner has said it stopped running, and a new task starts
    another runner."""

    def __init__(self, strand: Strand, task: object) -> None:
        self._lock = threading.Lock()
        self._strand = strand
        self._task = task
        self.armed = False

    def acquire(self) -> bool:
        return self._lock.acquire()

    def release(self) -> None:
        self._lock.release()
        if self.armed and not self._strand._running:
            self.armed = False
            self._strand.post(self._task)


def test_a_task_posted_as_a_runner_stops_runs_once_on_the_next_runner() -> None:
    pool = WorkerPool(2)
    try:
        strand = pool.strand()
        assert isinstance(strand, Strand)
        runs: list[str] = []
        done = threading.Event()

        def late() -> None:
            runs.append(threading.current_thread().name)
            done.set()

        lock = _PostOnEmptyRelease(strand, late)
        strand._lock = lock  # type: ignore[assignment]
        lock.armed = True
        strand.post(lambda: None)  # its runner finds nothing more, and stops: late() is posted
        assert done.wait(10)
        poll(lambda: not strand._running, 10, "the strand to stop running")
        assert len(runs) == 1, runs
    finally:
        pool.shutdown()


def test_a_deferred_call_runs_once_after_the_strands_last_task() -> None:
    pool = WorkerPool(2)
    try:
        strand = pool.strand()
        assert isinstance(strand, Strand)
        events: list[str] = []
        done = threading.Event()
        release = threading.Event()

        def first() -> None:
            assert strand.defer(lambda: events.append("deferred"))
            events.append("first")
            assert release.wait(10)

        strand.post(first)
        strand.post(lambda: events.append("second"))  # queued while first() runs
        # Deferred again while the tasks run (from any thread): one call, the last given,
        # after every queued task.
        poll(lambda: events == ["first"], 10, "the first task to run")
        assert strand.defer(lambda: (events.append("deferred last"), done.set()))
        release.set()
        assert done.wait(10)
        assert events == ["first", "second", "deferred last"]
        # Once the tasks are over, nothing is deferred: the caller acts at once.
        poll(lambda: not strand._running, 10, "the strand to stop running")
        assert not strand.defer(lambda: events.append("refused"))
    finally:
        pool.shutdown()


# -- the listener pool's hand-off: one thread awake takes a burst, watch() adds threads ------


def test_with_a_handoff_delay_a_task_waits_for_the_awake_thread() -> None:
    pool = WorkerPool(4, handoff_delay=10.0)
    try:
        release = threading.Event()
        started = threading.Event()
        ran_on: list[str] = []
        done = threading.Event()

        def blocker() -> None:
            ran_on.append(threading.current_thread().name)
            started.set()
            assert release.wait(5)

        def second() -> None:
            ran_on.append(threading.current_thread().name)
            done.set()

        pool.submit(blocker)
        assert started.wait(5)
        pool.submit(second)
        assert pool.load() == (1, 1, 1)  # one thread, busy; the second task waits for it
        release.set()
        assert done.wait(5)
        assert ran_on[0] == ran_on[1]
        assert len(pool._threads) == 1
    finally:
        pool.shutdown()


def test_watch_wakes_a_thread_for_a_task_stuck_behind_a_blocked_one() -> None:
    pool = WorkerPool(4, handoff_delay=1.0)
    try:
        release = threading.Event()
        started = threading.Event()
        done = threading.Event()

        def blocker() -> None:
            started.set()
            assert release.wait(10)

        assert pool.watch(0.0) is None  # no thread awake: nothing to watch
        pool.submit(blocker)
        assert started.wait(5)
        pool.submit(done.set)
        assert pool.watch(100.0) == 1.0  # a task was taken since the last look: progress
        assert pool.watch(100.25) == 0.75
        assert not done.is_set()
        assert len(pool._threads) == 1
        assert pool.watch(101.0) == 1.0  # no task taken for handoff_delay: a second thread
        assert done.wait(5)
        assert not release.is_set()  # ... while the first is still blocked
        assert len(pool._threads) == 2
        release.set()
        poll(lambda: pool.load() == (2, 0, 0), 5, "both threads to park")
        assert pool.watch(200.0) is None
    finally:
        release.set()
        pool.shutdown()


def test_watch_gives_every_waiting_task_a_thread_up_to_the_cap() -> None:
    pool = WorkerPool(3, handoff_delay=1.0)
    try:
        release = threading.Event()
        running = threading.Semaphore(0)

        def blocker() -> None:
            running.release()
            assert release.wait(10)

        for _ in range(4):
            pool.submit(blocker)
        assert running.acquire(timeout=5)
        assert pool.watch(0.0) == 1.0
        assert pool.watch(1.0) == 1.0  # stalled: two more threads, the cap
        assert running.acquire(timeout=5)
        assert running.acquire(timeout=5)
        assert pool.load() == (3, 3, 1)  # the fourth waits for a thread to finish
        release.set()
        assert running.acquire(timeout=5)
    finally:
        release.set()
        pool.shutdown()


def test_on_first_wake_is_called_when_a_task_wakes_the_first_thread() -> None:
    woken: list[str] = []
    pool = WorkerPool(2, handoff_delay=1.0, on_first_wake=lambda: woken.append("x"))
    try:
        release = threading.Event()
        started = threading.Event()
        done = threading.Event()

        def blocker() -> None:
            started.set()
            assert release.wait(5)

        pool.submit(blocker)
        assert started.wait(5)
        pool.submit(lambda: None)  # a thread is awake: it takes this one, no wake-up
        assert woken == ["x"]
        release.set()
        poll(lambda: pool.load()[1] == 0, 5, "the thread to park")
        pool.submit(done.set)
        assert done.wait(5)
        assert woken == ["x", "x"]
    finally:
        release.set()
        pool.shutdown()


def test_a_handoff_delay_must_be_positive() -> None:
    with pytest.raises(ValueError, match="handoff_delay"):
        WorkerPool(1, handoff_delay=0)


class GatedTasks:
    """Four tasks, each holding its thread until its gate opens; the first submitted and
    running, the other three queued behind it (the thread is awake: none is woken)."""

    def __init__(self, pool: WorkerPool) -> None:
        self.gates = [threading.Event() for _ in range(4)]
        self.started = [threading.Event() for _ in range(4)]
        pool.submit(self._task, 0)
        assert self.started[0].wait(5)
        for i in (1, 2, 3):
            pool.submit(self._task, i)

    def _task(self, i: int) -> None:
        self.started[i].set()
        assert self.gates[i].wait(10)

    def open_all(self) -> None:
        for gate in self.gates:
            gate.set()


def test_watch_wakes_threads_when_tasks_queue_behind_a_thread_too_slow_for_them() -> None:
    # The awake thread keeps taking tasks (progress), but each holds it long: the tasks
    # behind it age, and watch() gives them threads, doubling the awake ones per look.
    pool = WorkerPool(4, handoff_delay=1.0)
    tasks = GatedTasks(pool)
    try:
        assert pool.watch(0.0) == 1.0  # the mark: four tasks submitted so far
        tasks.gates[0].set()
        assert tasks.started[1].wait(5)  # the thread took the next task
        assert pool.watch(0.6) == pytest.approx(0.4)
        assert not tasks.started[2].is_set()
        # Tasks from before the mark still wait: one more thread, as many as are awake.
        assert pool.watch(1.0) == 1.0
        assert tasks.started[2].wait(5)
        assert len(pool._threads) == 2
        assert not tasks.started[3].is_set()
        # Its taking task 2 is progress, too slow still: the pool doubles, within its tasks.
        assert pool.watch(2.0) == 1.0
        assert tasks.started[3].wait(5)
        assert len(pool._threads) == 3
    finally:
        tasks.open_all()
        pool.shutdown()


def test_watch_leaves_a_busy_process_alone_while_its_thread_takes_tasks() -> None:
    # Tasks taken and the process busy: the thread runs Python, and the GIL is the limit.
    # No thread is woken until no task is taken for the delay (a long listener).
    cpu = [0.0]
    pool = WorkerPool(4, handoff_delay=1.0, cpu_clock=lambda: cpu[0])
    tasks = GatedTasks(pool)
    try:
        assert pool.watch(0.0) == 1.0  # the mark
        tasks.gates[0].set()
        assert tasks.started[1].wait(5)
        cpu[0] = 0.8  # 0.8 s of CPU in 1 s: busy
        assert pool.watch(1.0) == 1.0  # a new mark, nobody woken
        assert len(pool._threads) == 1
        cpu[0] = 1.0  # then task 1 holds the thread: no task taken for the delay
        assert pool.watch(2.0) == 1.0
        assert tasks.started[2].wait(5)
        assert tasks.started[3].wait(5)
        assert len(pool._threads) == 3
    finally:
        tasks.open_all()
        pool.shutdown()


def test_watch_gives_a_thread_a_gil_turn_while_the_watcher_itself_was_running() -> None:
    # No task taken for the delay, but the watcher (the loop thread) used the CPU all that
    # time: the awake thread waits for the GIL, not on I/O. Waking others would only add
    # turns; after a GIL turn with still nothing taken, the thread counts as stuck.
    watcher = [0.0]
    pool = WorkerPool(4, handoff_delay=1.0, watcher_clock=lambda: watcher[0], gil_turn=3.0)
    tasks = GatedTasks(pool)
    try:
        assert pool.watch(0.0) == 1.0  # the mark
        watcher[0] = 1.0  # the watcher ran for the whole second
        assert pool.watch(1.0) == 2.0  # given until the mark is a GIL turn old
        watcher[0] = 2.0
        assert pool.watch(2.0) == 1.0
        assert len(pool._threads) == 1
        assert not tasks.started[1].is_set()
        assert pool.watch(3.0) == 1.0  # a turn passed with nothing taken: threads woken
        assert tasks.started[1].wait(5)
        assert tasks.started[2].wait(5)
        assert tasks.started[3].wait(5)
        assert len(pool._threads) == 4
    finally:
        tasks.open_all()
        pool.shutdown()


def test_watch_wakes_at_once_when_the_watcher_was_idle_while_nothing_was_taken() -> None:
    watcher = [0.0]
    pool = WorkerPool(4, handoff_delay=1.0, watcher_clock=lambda: watcher[0], gil_turn=3.0)
    tasks = GatedTasks(pool)
    try:
        assert pool.watch(0.0) == 1.0
        watcher[0] = 0.5  # the watcher ran half the time: the thread had its chances
        assert pool.watch(1.0) == 1.0
        assert tasks.started[1].wait(5)
        assert len(pool._threads) == 4
    finally:
        tasks.open_all()
        pool.shutdown()


def test_watch_wakes_one_thread_at_a_time_behind_a_task_that_runs_python() -> None:
    # Nothing taken for the delay while the process was busy and its watcher was not: the
    # awake thread itself ran (one long task, under the GIL). One more thread gives the
    # waiting tasks a turn; a thread per waiting task would only take turns with the others.
    cpu = [0.0]
    watcher = [0.0]
    pool = WorkerPool(
        4,
        handoff_delay=1.0,
        cpu_clock=lambda: cpu[0],
        watcher_clock=lambda: watcher[0],
        gil_turn=3.0,
    )
    tasks = GatedTasks(pool)
    try:
        assert pool.watch(0.0) == 1.0  # the mark
        cpu[0], watcher[0] = 0.9, 0.2  # busy: 0.7 s of it the awake thread's
        assert pool.watch(1.0) == 1.0
        assert tasks.started[1].wait(5)
        assert len(pool._threads) == 2
        assert not tasks.started[2].is_set()
        # The new thread's taking task 1 counts as progress: a new mark, nobody woken.
        cpu[0], watcher[0] = 1.8, 0.4
        assert pool.watch(2.0) == 1.0
        assert len(pool._threads) == 2
        # Task 1 holds that thread too, and nothing is taken for another delay: one more.
        cpu[0], watcher[0] = 2.7, 0.6
        assert pool.watch(3.0) == 1.0
        assert tasks.started[2].wait(5)
        assert len(pool._threads) == 3
        assert not tasks.started[3].is_set()
    finally:
        tasks.open_all()
        pool.shutdown()


def test_the_gil_turn_defaults_to_twice_the_switch_interval() -> None:
    pool = WorkerPool(1, handoff_delay=1.0)
    assert pool._gil_turn() == 2 * sys.getswitchinterval()
