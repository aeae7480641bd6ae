"""Whether this system lets a thread run under ``SCHED_BATCH`` (for the tests of ``_sched``)."""

from __future__ import annotations

import os
import threading

from vestespy._sched import use_batch_policy


def batch_policy_allowed() -> bool:
    """Try :func:`use_batch_policy` on a throwaway thread (the policy dies with it)."""
    if not hasattr(os, "SCHED_BATCH"):
        return False
    allowed: list[bool] = []
    thread = threading.Thread(target=lambda: allowed.append(use_batch_policy()))
    thread.start()
    thread.join(10)
    return allowed == [True]
