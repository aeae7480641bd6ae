"""A worker's CPU scheduling policy: ``SCHED_BATCH`` for the loop and its listener threads.

Theory of operation: a worker's loop thread and its listener threads share one GIL. Each
time a listener thread lets go of it (its non-blocking ``send`` of a response), CPython wakes
the loop thread, if that waits for the GIL, and under Linux's default policy the woken thread
preempts the one that woke it at once: the loop runs a short pass while the listener thread,
halfway through its call, waits to get the GIL back, and the two take turns by context switch.
Under ``SCHED_BATCH`` a woken thread does not preempt (it runs when the CPU is free or the
running thread's slice ends); its share of the CPU and its nice value are those of the default
policy. Measured on the command's compiled hello and pipelined x16 (one pinned CPU, 50
connections, ``chrt -b 0`` against the default, 3 alternating rounds): context switches per
request went from 0.33-0.85 to 0.04-0.05, and requests per second up 6-31 % on hello and
23-67 % pipelined; with a CPU-bound process sharing the worker's CPU, the worker's own p99
latency was no worse (5.7 against 6.2 ms).

Rule: the command sets the policy in each worker before any of its threads starts (threads
inherit it), only where it is ``SCHED_OTHER`` (the default): a policy an operator chose, such as
``chrt --idle`` or a real-time one, is left alone. The supervisor keeps the default.
"""

from __future__ import annotations

import logging
import os

__all__ = ["use_batch_policy"]

logger: logging.Logger = logging.getLogger("vestespy.error")


def use_batch_policy() -> bool:
    """Move the calling thread, and the threads it starts later, from ``SCHED_OTHER`` to
    ``SCHED_BATCH`` (Linux).

    Returns:
        Whether the policy was changed: False where the platform has no ``SCHED_BATCH``, where
        the thread's policy is not ``SCHED_OTHER``, or where the system refuses (logged at
        debug level).
    """
    batch = getattr(os, "SCHED_BATCH", None)
    other = getattr(os, "SCHED_OTHER", None)
    if batch is None or other is None or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        if os.sched_getscheduler(0) != other:
            return False
        os.sched_setscheduler(0, batch, os.sched_param(0))
    except OSError as exc:  # a seccomp profile or a container may refuse it
        logger.debug("the worker keeps its scheduling policy: %s", exc)
        return False
    return True
