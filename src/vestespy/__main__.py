"""``python -m vestespy``: the same as the ``vestespy`` command (see :mod:`vestespy.cli`)."""

from __future__ import annotations

from .cli import main

# Nothing public: the program is vestespy.cli.main; this module only runs it.
__all__: list[str] = []

if __name__ == "__main__":
    main()
