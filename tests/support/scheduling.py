"""Scheduling policies are per thread on Linux: helpers that try them on throwaway threads
(for the tests of ``_sched``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from vestespy._sched import use_batch_policy


def on_a_thread(fn: Callable[[], object]) -> object:
    """Run ``fn`` on a new thread (its policy changes die with it); return what it returned."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(10)
    assert result, "the thread failed"
    return result[0]


def batch_policy_allowed() -> bool:
    """Whether this system lets a thread move to ``SCHED_BATCH`` (tried on a throwaway one)."""
    return hasattr(os, "SCHED_BATCH") and on_a_thread(use_batch_policy) is True
