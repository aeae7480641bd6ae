"""Giving freed memory back to the system once a load has passed.

Theory of operation: after a burst of large requests or responses, the memory Python frees
mostly stays with the C allocator. glibc keeps freed blocks in its arenas (one per thread that
allocated: the loop's and each worker's) and returns them to the system only from the top of
each heap, so a server that handled 300 uploads of 5 MiB kept over a gigabyte it no longer
used, which looks like a leak. ``malloc_trim(0)`` hands back every free page of every arena.
The server calls :func:`release_memory` once, a moment after its connections have dropped to
a fraction of their peak: never on an idle server, never per request.

Elsewhere (macOS, musl, Windows) there is nothing to call and this does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

__all__ = ["release_memory"]


def _find_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc; musl has no malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    function: Callable[[int], int] = trim
    return function


_malloc_trim = _find_malloc_trim()


def release_memory() -> bool:
    """Return freed memory to the system where the C library allows; True if it could."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True
