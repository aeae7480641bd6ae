"""VestesPy's public surface: the pinned names, and what a module really exports.

``PUBLIC`` pins the public names of every public module. :func:`public_names` finds what a
module exports by the rules a type checker applies to a ``py.typed`` library (pyright's
"Library interface" rules, which ``pyright --verifytypes`` counts): every name the module
binds itself that does not start with an underscore, whether ``__all__`` lists it or not, plus
the names ``__all__`` lists. Imports are not exports unless ``__all__`` lists them or they use
the re-export forms ``import a as a``, ``from x import a as a`` and ``from . import a``.
Modules (imported ones, and submodules set as attributes by their import) are not counted.

A new public function, class or constant in a public module therefore changes
:func:`public_names` and fails ``tests/unit/test_exports.py`` until it is pinned here, put
in ``__all__`` and documented (``tests/unit/test_docs.py``), or given a leading underscore.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import vestespy

__all__ = [
    "PUBLIC",
    "is_public_module_name",
    "public_modules",
    "public_names",
]

PUBLIC: dict[str, list[str]] = {
    "vestespy": [
        "BadRequest",
        "BuildInfo",
        "ClientDisconnected",
        "DurationHistogram",
        "EventEmitter",
        "Headers",
        "PoolLoad",
        "Request",
        "Response",
        "ResponseAlreadyStarted",
        "Server",
        "ServerOptions",
        "ServerOptionsKwargs",
        "ServerStats",
        "StreamLengthError",
        "WebSocket",
        "WebSocketError",
        "__version__",
        "available_backends",
        "build_info",
        "serve",
    ],
    # `python -m vestespy` only runs vestespy.cli.main.
    "vestespy.__main__": [],
    "vestespy.access_log": [
        "COMBINED_FORMAT",
        "FIELDS",
        "JSON_FIELDS",
        "JSON_FORMAT",
        "AccessHook",
        "AccessLogFormatter",
        "AccessLogger",
        "WebSocketCounts",
        "escape",
        "websocket_line",
    ],
    "vestespy.cli": ["build_parser", "main"],
    "vestespy.demo": ["build_demo"],
    "vestespy.errors": [
        "BadRequest",
        "ClientDisconnected",
        "ResponseAlreadyStarted",
        "StreamLengthError",
        "WebSocketError",
    ],
    "vestespy.headers": ["Headers"],
    "vestespy.options": ["ServerOptions", "ServerOptionsKwargs"],
    "vestespy.proxies": ["Forwarded", "TrustedProxies", "parse_forwarded", "resolve"],
    "vestespy.request": ["Request", "RequestEvent", "SocketAddress"],
    "vestespy.response": ["Body", "Response", "StreamChunk"],
    "vestespy.server": ["RequestListener", "Server", "WebSocketListener"],
    "vestespy.tools": ["Dispatcher", "RouteHandler"],
    "vestespy.tools.dispatcher": ["Dispatcher", "RouteHandler"],
    "vestespy.websocket": ["WebSocket", "WebSocketEvent"],
    "vestespy.wsgi": [
        "Environ",
        "ExcInfo",
        "FileWrapper",
        "StartResponse",
        "WSGIAdapter",
        "WSGIApplication",
        "WriteCallable",
        "serve",
    ],
}


def is_public_module_name(name: str) -> bool:
    """Whether no part of a dotted module name is private (``__main__`` is not private)."""
    return not any(
        part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
        for part in name.split(".")
    )


def public_modules() -> list[ModuleType]:
    """``vestespy``, and every module under it whose name has no private part."""
    modules = [vestespy]
    for info in pkgutil.walk_packages(vestespy.__path__, "vestespy."):
        if is_public_module_name(info.name):
            modules.append(importlib.import_module(info.name))
    return modules


def _source(module: ModuleType) -> str:
    """The module's Python source; beside the extension module in a compiled build too."""
    assert module.__file__ is not None, f"{module.__name__} has no file"
    stem = "__init__" if hasattr(module, "__path__") else module.__name__.rpartition(".")[2]
    return Path(module.__file__).with_name(f"{stem}.py").read_text(encoding="utf-8")


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements that run at module level: inside ``if``/``try``/``with`` blocks too."""
    statements: list[ast.stmt] = []
    for node in body:
        statements.append(node)
        if isinstance(node, ast.If | ast.With):
            statements += _module_level(node.body)
            if isinstance(node, ast.If):
                statements += _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                statements += _module_level(block)
            for handler in node.handlers:
                statements += _module_level(handler.body)
    return statements


def imported_names(source: str) -> set[str]:
    """The names module-level imports bind, except those written as re-exports."""
    names: set[str] = set()
    for node in _module_level(ast.parse(source).body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is None:
                    names.add(alias.name.partition(".")[0])
                elif alias.asname != alias.name:
                    names.add(alias.asname)
        elif isinstance(node, ast.ImportFrom):
            bare_relative = node.module is None and node.level == 1  # from . import a
            for alias in node.names:
                if alias.asname is None and not bare_relative:
                    names.add(alias.name)
                elif alias.asname is not None and alias.asname != alias.name:
                    names.add(alias.asname)
    return names


def public_names(module: ModuleType) -> set[str]:
    """The names ``module`` exports, read from ``dir(module)`` (see the module docstring)."""
    imported = imported_names(_source(module))
    names = {
        name
        for name in dir(module)
        if not name.startswith("_")
        and name not in imported
        and not isinstance(getattr(module, name), ModuleType)
    }
    return names | set(getattr(module, "__all__", ()))
