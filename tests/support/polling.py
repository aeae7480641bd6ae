"""Waiting for a condition in a test: poll it until a deadline, never sleep in its place."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["poll"]

T = TypeVar("T")


def poll(condition: Callable[[], T | None], timeout: float, what: str, step: float = 0.02) -> T:
    """Call ``condition`` until it returns something other than None or False; return it.

    Args:
        condition: What to wait for; None or False mean "not yet".
        timeout: Seconds before giving up.
        what: What is awaited, for the failure message ("the drain to begin").
        step: Seconds between two calls.

    Raises:
        AssertionError: ``timeout`` passed first: "timed out after 10 s waiting for ...".
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
