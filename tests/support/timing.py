"""Wall-clock upper bounds for socket tests, with room for a loaded machine.

Every upper bound a socket test puts on a duration is one of two kinds:

* :func:`deadline_bound`: when a server deadline of ``timeout`` seconds must have tripped, as
  a client sees it. The server's sweep checks deadlines every half of the shortest timeout,
  so a deadline trips between its value and about one and a half times it on an idle
  machine; the bound, three times the timeout plus a second, leaves the rest for a machine
  shared with other test suites. The boundaries themselves (just before, at, just after) are
  unit-tested on a fake clock (tests/unit/test_deadline_rules.py), not here.
* :func:`latency_bound`: a latency target that holds on a machine with a core to spare (a
  normal client answered, a slot freed, a handshake not held up). On a machine already busy
  (a load average above half the number of CPUs, as when several test suites share two
  cores) every process waits its turn, and the target is relaxed tenfold: that still
  catches a server that waits for a timeout or for another client instead of answering.
"""

from __future__ import annotations

import os

__all__ = ["deadline_bound", "latency_bound", "overloaded"]

#: How much a busy machine relaxes a latency target.
BUSY_FACTOR = 10.0


def deadline_bound(timeout: float) -> float:
    """The latest a deadline of ``timeout`` seconds may trip, seen over sockets."""
    return 3 * timeout + 1.0


def overloaded() -> bool:
    """Whether other work already keeps the CPUs busy (see the module docstring).

    Where the load is unknown (Windows has no load average), the machine counts as busy.
    """
    if not hasattr(os, "getloadavg"):
        return True
    return os.getloadavg()[0] > (os.cpu_count() or 1) / 2


def latency_bound(target: float) -> float:
    """``target`` seconds, or ten times that on a busy machine."""
    return target * BUSY_FACTOR if overloaded() else target
