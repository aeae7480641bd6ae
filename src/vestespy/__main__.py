"""``python -m vestespy``: the same as the ``vestespy`` command (see :mod:`vestespy.cli`)."""

from __future__ import annotations

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
