"""The ``Date`` header's value (RFC 9110 6.6.1), formatted at most once a second.

Every response carries one, so the formatted date is cached for the second it names.
"""

from __future__ import annotations

import email.utils
import time

__all__ = ["http_date"]

_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """Return the current time as an HTTP date, recomputed at most once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]
