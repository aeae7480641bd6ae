"""The protocol core: ``h11_mypyc`` when it is installed, else ``h11``; and the build in use.

Theory of operation: this module alone decides which implementation of h11 parses and frames
HTTP/1.1, once, when it is first imported. ``h11_mypyc`` (the ``speedups`` extra) is h11 0.16
with exact annotations, compiled by mypyc: the same protocol behaviour, about three times
faster. The environment variable ``VESTESPY_H11`` forces one (``h11`` or ``h11_mypyc``); unset,
empty or ``auto`` prefers ``h11_mypyc``. Every other module imports the core's names from here,
never ``h11`` itself, so that one process never mixes the two.

For the type checker the names are always h11's (h11_mypyc has the same API). At run time they
are bound to the chosen module's objects by name, which is also what modules compiled by mypyc
look up (a module alias would be resolved to ``h11`` itself when compiled).

Differences of h11_mypyc that matter to callers: ``receive_data`` accepts only ``bytes`` (a
``bytearray`` or ``memoryview`` raises TypeError), its classes cannot be subclassed by Python
code, its sentinels are not instances of themselves, and its ``PRODUCT_ID`` differs.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = [
    "CLOSED",
    "CORE_ENV",
    "CORE_NAME",
    "DONE",
    "ERROR",
    "IDLE",
    "MUST_CLOSE",
    "PAUSED",
    "SEND_BODY",
    "SEND_RESPONSE",
    "SERVER",
    "BuildInfo",
    "Connection",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "InformationalResponse",
    "RemoteProtocolError",
    "Request",
    "Response",
    "build_info",
    "choose_core",
    "version_line",
]

#: The environment variable that forces a core: ``h11``, ``h11_mypyc`` or ``auto``.
CORE_ENV = "VESTESPY_H11"
_CORES = ("h11_mypyc", "h11")


def choose_core(forced: str | None = None) -> ModuleType:
    """Import and return the protocol core.

    Args:
        forced: ``h11``, ``h11_mypyc``, or ``auto``/empty/None to prefer ``h11_mypyc``.

    Raises:
        ImportError: The forced core is not installed, or ``forced`` names no core.
    """
    choice = (forced or "auto").strip().lower().replace("-", "_")
    if choice == "auto":
        try:
            return importlib.import_module("h11_mypyc")
        except ImportError:
            return importlib.import_module("h11")
    if choice not in _CORES:
        raise ImportError(f"{CORE_ENV}={forced!r}: expected one of h11, h11_mypyc, auto")
    return importlib.import_module(choice)


if TYPE_CHECKING:
    from h11 import (
        CLOSED,
        DONE,
        ERROR,
        IDLE,
        MUST_CLOSE,
        PAUSED,
        SEND_BODY,
        SEND_RESPONSE,
        SERVER,
        Connection,
        ConnectionClosed,
        Data,
        EndOfMessage,
        InformationalResponse,
        RemoteProtocolError,
        Request,
        Response,
    )

    _core_module: ModuleType
else:
    _core_module = choose_core(os.environ.get(CORE_ENV))
    Connection = _core_module.Connection
    ConnectionClosed = _core_module.ConnectionClosed
    Data = _core_module.Data
    EndOfMessage = _core_module.EndOfMessage
    InformationalResponse = _core_module.InformationalResponse
    RemoteProtocolError = _core_module.RemoteProtocolError
    Request = _core_module.Request
    Response = _core_module.Response
    CLOSED = _core_module.CLOSED
    DONE = _core_module.DONE
    ERROR = _core_module.ERROR
    IDLE = _core_module.IDLE
    MUST_CLOSE = _core_module.MUST_CLOSE
    PAUSED = _core_module.PAUSED
    SEND_BODY = _core_module.SEND_BODY
    SEND_RESPONSE = _core_module.SEND_RESPONSE
    SERVER = _core_module.SERVER

#: The name of the protocol core in use: ``"h11"`` or ``"h11_mypyc"``.
CORE_NAME: str = _core_module.__name__


def _is_extension(module: ModuleType) -> bool:
    return str(getattr(module, "__file__", "") or "").endswith(
        tuple(importlib.machinery.EXTENSION_SUFFIXES)
    )


@dataclass(frozen=True)
class BuildInfo:
    """Which build of VestesPy and which protocol core are in use.

    ``str()`` gives the one line ``python -m vestespy --version`` prints, for example
    ``vestespy 0.2.0 (compiled) on h11_mypyc 0.17.0 (compiled)``.
    """

    #: VestesPy's version.
    version: str
    #: Whether VestesPy's hot modules run compiled by mypyc (else pure Python).
    compiled: bool
    #: The protocol core, ``"h11"`` or ``"h11_mypyc"``.
    core: str
    #: The protocol core's version.
    core_version: str
    #: Whether the protocol core runs compiled.
    core_compiled: bool

    def __str__(self) -> str:
        def build(compiled: bool) -> str:
            return "compiled" if compiled else "pure Python"

        return (
            f"vestespy {self.version} ({build(self.compiled)}) on "
            f"{self.core} {self.core_version} ({build(self.core_compiled)})"
        )


def build_info() -> BuildInfo:
    """Return which build of VestesPy and which protocol core (h11 or h11_mypyc) are in use.

    VestesPy counts as compiled when its connection driver, the hottest module, was loaded
    from a C extension; the core, when its connection module was.

    Example:
        >>> import vestespy
        >>> str(vestespy.build_info()).startswith("vestespy ")
        True
    """
    from . import __version__, _driver

    core_connection = importlib.import_module(CORE_NAME + "._connection")
    return BuildInfo(
        version=__version__,
        compiled=_is_extension(_driver),
        core=CORE_NAME,
        core_version=str(getattr(_core_module, "__version__", "?")),
        core_compiled=_is_extension(core_connection),
    )


def version_line() -> str:
    """Return what ``python -m vestespy --version`` prints: :func:`build_info` as one line."""
    return str(build_info())
