"""What a server says when it starts: where it serves, and which build it runs.

Shared by the command and :func:`vestespy.serve`, which says it even when the program has not
configured logging (as ``waitress.serve`` prints ``Serving on http://...``): a port picked by
the system would otherwise be impossible to find.
"""

from __future__ import annotations

import logging
import sys

from ._core import build_info

__all__ = ["PURE_BUILD_NOTE", "announce", "build_notes"]

#: What a pure-Python build says at start-up, in one line.
PURE_BUILD_NOTE = (
    "this is the pure-Python build; the compiled one is 1.6x to 2.7x faster:"
    " pip install '.[speedups]' from a checkout, where a C compiler works (see the install page)"
)


def build_notes() -> tuple[str, list[str]]:
    """The build as one phrase for the start-up line, and the lines to add after it."""
    info = build_info()
    return str(info), ([] if info.compiled else [PURE_BUILD_NOTE])


def announce(logger: logging.Logger, line: str) -> None:
    """Log ``line`` at INFO, or print it on stderr when nothing would show it.

    "Nothing would show it": the logger has no handler up its chain (Python's last-resort
    handler shows warnings only) or INFO is below its level.
    """
    if logger.hasHandlers() and logger.isEnabledFor(logging.INFO):
        logger.info("%s", line)
    else:
        print(line, file=sys.stderr, flush=True)
