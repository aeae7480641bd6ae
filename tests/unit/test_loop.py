"""The event loop: cross-thread calls, timers and end-of-pass hooks."""

from __future__ import annotations

import threading
import time

from vestespy._backends import create_backend
from vestespy._loop import EventLoop


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
