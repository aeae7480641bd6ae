"""The event loop: cross-thread calls, timers and end-of-pass hooks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from vestespy._backends import EVENT_READ, ReadyCallback, create_backend
from vestespy._loop import LAZY_DELAY, EventLoop


def run_loop(loop: EventLoop) -> threading.Thread:
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    return thread


def test_calls_from_many_threads_all_run_without_a_lost_wakeup(backend: str) -> None:
    # No timers run in this loop, so a lost wake-up would leave a call queued forever.
    loop = EventLoop(create_backend(backend))
    thread = run_loop(loop)
    count = [0]
    senders = 4
    per_sender = 3000
    done = threading.Event()

    def bump() -> None:
        count[0] += 1
        if count[0] == senders * per_sender:
            done.set()

    def sender() -> None:
        for n in range(per_sender):
            loop.call_soon(bump)
            if n % 100 == 0:
                # Let the loop go back to waiting, which is where a lost wake-up hangs.
                time.sleep(0)

    workers = [threading.Thread(target=sender) for _ in range(senders)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    try:
        assert done.wait(10), f"only {count[0]} of {senders * per_sender} calls ran"
    finally:
        loop.stop()
        thread.join(5)
        loop.close()
    assert not thread.is_alive()


def test_timers_run_in_order_and_cancelled_ones_do_not() -> None:
    loop = EventLoop(create_backend("auto"))
    order: list[str] = []
    finished = threading.Event()

    def schedule() -> None:
        loop.call_later(0.02, order.append, "late")
        loop.call_later(0.01, order.append, "early")
        loop.call_later(0.015, order.append, "cancelled").cancel()
        loop.call_later(0.03, finished.set)
        loop.call_later(0.03, loop.stop)

    loop.call_soon(schedule)
    thread = run_loop(loop)
    assert finished.wait(5)
    thread.join(5)
    loop.close()
    assert order == ["early", "late"]


def test_a_failing_callback_does_not_stop_the_loop() -> None:
    loop = EventLoop(create_backend("auto"))
    ran = threading.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    def end_of_pass_then_stop() -> None:
        loop.at_end_of_pass(ran.set)
        loop.at_end_of_pass(loop.stop)

    loop.call_soon(fail)
    loop.call_soon(end_of_pass_then_stop)
    thread = run_loop(loop)
    assert ran.wait(5)
    thread.join(5)
    loop.close()
    assert not thread.is_alive()


class WakeCountingBackend:
    """The platform's backend, counting the waits the loop's wake-up socket ended (it is the
    first thing the loop registers) and calling ``before_wait(timeout)`` as each wait begins
    (the loop has then decided everything about it)."""

    def __init__(self, before_wait: Callable[[float | None], object]) -> None:
        self._inner = create_backend("auto")
        self.name = self._inner.name
        self._before_wait = before_wait
        self._wake: ReadyCallback | None = None
        self.wakes = 0

    def register(self, fd: int, events: int, callback: ReadyCallback) -> None:
        if self._wake is None:
            self._wake = callback
        self._inner.register(fd, events, callback)

    def modify(self, fd: int, events: int, callback: ReadyCallback) -> None:
        self._inner.modify(fd, events, callback)

    def unregister(self, fd: int) -> None:
        self._inner.unregister(fd)

    def select(self, timeout: float | None) -> list[tuple[ReadyCallback, int]]:
        self._before_wait(timeout)
        ready = self._inner.select(timeout)
        self.wakes += sum(1 for callback, _ in ready if callback == self._wake)
        return ready

    def close(self) -> None:
        self._inner.close()


def _from_another_thread(call: Callable[[], object]) -> None:
    thread = threading.Thread(target=call)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


def _wakes_for_a_lazy_call(
    ready: Callable[[float | None], bool], watcher: Callable[[float], float | None] | None
) -> int:
    """Run a loop (with ``watcher``), wait until it begins a wait for which ``ready(timeout)``
    holds, make a lazy call from another thread, and return the wake-ups it took to run."""
    waiting = threading.Event()
    backend = WakeCountingBackend(lambda timeout: ready(timeout) and waiting.set())
    loop = EventLoop(backend)
    loop.set_watcher(watcher)
    thread = run_loop(loop)
    ran = threading.Event()
    try:
        assert waiting.wait(10)
        _from_another_thread(lambda: loop.call_soon_lazy(ran.set))
        assert ran.wait(10), "the lazy call did not run"
        return backend.wakes
    finally:
        loop.stop()
        thread.join(5)
        loop.close()


def test_a_lazy_call_wakes_a_loop_that_waits_for_nothing() -> None:
    # No timer and no watcher: without a wake-up the call would wait forever.
    assert _wakes_for_a_lazy_call(lambda timeout: timeout is None, None) == 1


def test_a_lazy_call_rides_on_a_wait_bounded_by_the_watcher() -> None:
    # The pool's watcher keeps waits to 2 ms while a thread is awake: no wake-up is needed.
    def bounded(timeout: float | None) -> bool:
        return timeout is not None and 0 < timeout <= LAZY_DELAY

    assert _wakes_for_a_lazy_call(bounded, lambda now: LAZY_DELAY / 5) == 0


def test_a_lazy_call_made_during_a_pass_runs_in_that_pass_without_a_wake() -> None:
    backend = WakeCountingBackend(lambda timeout: None)
    loop = EventLoop(backend)
    order: list[str] = []
    finished = threading.Event()
    reader, writer = socket.socketpair()

    def on_ready(events: int) -> None:
        reader.recv(1)
        order.append("ready")
        loop.at_end_of_pass(lambda: order.append("end of pass"))
        loop.at_end_of_pass(finished.set)
        # Another thread (a listener on the pool) queues it while the loop runs callbacks.
        _from_another_thread(lambda: loop.call_soon_lazy(order.append, "lazy"))

    backend.register(reader.fileno(), EVENT_READ, on_ready)
    thread = run_loop(loop)
    try:
        writer.send(b"x")
        assert finished.wait(10)
        assert order == ["ready", "lazy", "end of pass"]
        assert backend.wakes == 0
    finally:
        loop.stop()
        thread.join(5)
        loop.close()
        reader.close()
        writer.close()
