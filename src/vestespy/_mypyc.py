"""mypyc's per-class options, usable whether or not ``mypy_extensions`` is installed.

mypyc reads ``@mypyc_attr(...)`` when it compiles a module; at run time the decorator does
nothing. The pure-Python build must not need ``mypy_extensions``, so a no-op stands in for it
where it is absent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["mypyc_attr"]

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:
    try:
        from mypy_extensions import mypyc_attr
    except ImportError:

        def mypyc_attr(*attrs, **kwattrs):
            return lambda cls: cls
