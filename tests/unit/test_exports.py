"""The public names, pinned (as trio's test_exports does): nothing enters or leaves the API
by accident."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
import types
import typing

import pytest

import vestespy
import vestespy.tools

PUBLIC = {
    "vestespy": [
        "BadRequest",
        "BuildInfo",
        "ClientDisconnected",
        "EventEmitter",
        "Headers",
        "Request",
        "Response",
        "ResponseAlreadyStarted",
        "Server",
        "ServerOptions",
        "ServerOptionsKwargs",
        "StreamLengthError",
        "__version__",
        "available_backends",
        "build_info",
        "serve",
    ],
    "vestespy.tools": ["Dispatcher", "RouteHandler"],
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
    "vestespy.errors": [
        "BadRequest",
        "ClientDisconnected",
        "ResponseAlreadyStarted",
        "StreamLengthError",
    ],
    "vestespy.headers": ["Headers"],
    "vestespy.options": ["ServerOptions", "ServerOptionsKwargs"],
    "vestespy.request": ["Request", "RequestEvent", "SocketAddress"],
    "vestespy.response": ["Body", "Response", "StreamChunk"],
    "vestespy.server": ["RequestListener", "Server"],
    "vestespy.proxies": ["Forwarded", "TrustedProxies", "parse_forwarded", "resolve"],
    "vestespy.access_log": [
        "COMBINED_FORMAT",
        "FIELDS",
        "AccessHook",
        "AccessLogFormatter",
        "AccessLogger",
        "escape",
    ],
    "vestespy.cli": ["build_parser", "main"],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name} is in __all__ but missing"


def test_top_level_has_nothing_public_beyond_all() -> None:
    """Public modules may be attributes; any other public name must be in ``__all__``."""
    extra = {
        name
        for name, value in vars(vestespy).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } - set(vestespy.__all__)
    assert not extra


def test_private_modules_stay_private() -> None:
    """Modules that are not public are named with a leading underscore."""
    public_modules = {name.rpartition(".")[2] for name in PUBLIC} | {"demo"}
    for name, value in vars(vestespy).items():
        if isinstance(value, types.ModuleType) and not name.startswith("_"):
            assert name in public_modules, f"vestespy.{name} is a module nobody declared public"


def test_import_vestespy_alone_reaches_the_tools() -> None:
    """The seed's Dispatcher example does ``import vestespy`` only."""
    code = "import vestespy; print(vestespy.tools.Dispatcher.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Dispatcher"


def test_options_typeddict_matches_the_dataclass() -> None:
    """Every ServerOptions field is a ServerOptionsKwargs key of the same type, and back."""
    fields = typing.get_type_hints(vestespy.ServerOptions)
    keys = typing.get_type_hints(vestespy.ServerOptionsKwargs)
    assert keys == {
        field.name: fields[field.name] for field in dataclasses.fields(vestespy.ServerOptions)
    }
    assert not vestespy.ServerOptionsKwargs.__required_keys__
