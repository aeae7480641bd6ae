"""Sizes and durations as people write them on a command line: ``10M``, ``64KiB``, ``30s``, ``2m``.

Sizes are bytes: a bare number, or a number with a unit. ``K``, ``M``, ``G`` and ``T`` (any
case, as nginx reads ``client_max_body_size 10m``) and ``KiB``, ``MiB``, ``GiB``, ``TiB`` are
powers of 1024; ``KB``, ``MB``, ``GB``, ``TB`` (any case) are powers of 1000. ``B`` is a byte.
Durations are seconds: a bare number, or numbers with ``ms``, ``s``, ``m`` (minutes) or ``h``,
which add up (``1m30s`` is 90 seconds). Fractions are allowed where the value is a float.

Which flags take which: a :class:`~vestespy.ServerOptions` field is a size when its name ends
in ``_size``, ``_buffer``, ``_drain`` or ``_line`` (all of them counts of bytes), and a
duration when it ends in ``_timeout``, ``_period`` or ``_warning``; :func:`option_unit` says
which, and a unit test pins the classification of every field so that a new one is classified
on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

__all__ = [
    "DURATION_HELP",
    "SIZE_HELP",
    "Unit",
    "duration_reader",
    "option_unit",
    "parse_duration",
    "parse_size",
    "size_reader",
]

Unit = Literal["size", "duration"]

#: What a size may look like, for help texts and error messages.
SIZE_HELP = "bytes, or with a unit: 64K = 64KiB, 10M = 10MiB, 1G (powers of 1024); 10MB = 10**7"
#: What a duration may look like, for help texts and error messages.
DURATION_HELP = "seconds, or with units: 500ms, 30s, 2m, 1h, 1m30s"

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", re.IGNORECASE)

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)", re.IGNORECASE)
_BARE_NUMBER = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*")

_SIZE_SUFFIXES = ("_size", "_buffer", "_drain", "_line")
_DURATION_SUFFIXES = ("_timeout", "_period", "_warning", "_interval")


def parse_size(text: str) -> int:
    """Return the number of bytes ``text`` means: ``"10M"`` is 10485760.

    Raises:
        ValueError: ``text`` is not a size (the message says what one looks like).
    """
    if text.strip().startswith("-"):
        raise ValueError(f"{text!r}: a size cannot be negative")
    match = _SIZE.fullmatch(text)
    factor = _SIZE_UNITS.get(match.group(2).lower()) if match else None
    if match is None or factor is None:
        raise ValueError(f"{text!r} is not a size ({SIZE_HELP})")
    number = float(match.group(1)) * factor
    if number != int(number):
        raise ValueError(f"{text!r} is not a whole number of bytes")
    return int(number)


def parse_duration(text: str) -> float:
    """Return the number of seconds ``text`` means: ``"2m"`` is 120.0, ``"1m30s"`` 90.0.

    Raises:
        ValueError: ``text`` is not a duration (the message says what one looks like).
    """
    if text.strip().startswith("-"):
        raise ValueError(f"{text!r}: a duration cannot be negative")
    bare = _BARE_NUMBER.fullmatch(text)
    if bare is not None:
        return float(bare.group(1))
    compact = re.sub(r"\s+", "", text)
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"{text!r} is not a duration ({DURATION_HELP})")
    return sum(float(number) * _DURATION_UNITS[unit.lower()] for number, unit in parts)


def option_unit(name: str) -> Unit | None:
    """Whether the :class:`~vestespy.ServerOptions` field ``name`` is a size, a duration or
    neither (a count, a rate, a flag)."""
    if name.endswith(_SIZE_SUFFIXES):
        return "size"
    if name.endswith(_DURATION_SUFFIXES):
        return "duration"
    return None


def _off(text: str) -> bool:
    return text.strip().lower() in ("none", "off", "")


def size_reader(optional: bool = False) -> Callable[[str], int | None]:
    """A command-line reader of sizes; ``optional`` also takes ``none`` or ``off`` (None)."""

    def read(text: str) -> int | None:
        if optional and _off(text):
            return None
        return parse_size(text)

    read.__name__ = "size"  # argparse names the reader in some messages
    return read


def duration_reader(optional: bool = False) -> Callable[[str], float | None]:
    """A command-line reader of durations; ``optional`` also takes ``none`` or ``off``."""

    def read(text: str) -> float | None:
        if optional and _off(text):
            return None
        return parse_duration(text)

    read.__name__ = "duration"
    return read
