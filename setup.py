"""Build: VestesPy's hot modules compiled by mypyc where a C compiler works, else pure Python.

Everything else (metadata, dependencies, packages) is in pyproject.toml; this file only adds
the optional C extensions. The Python sources stay the truth: a compiled module is built from
the ``.py`` of the same name and imports in its place.

``VESTESPY_COMPILE`` decides:

* unset, empty or ``auto``: compile if mypyc and a working C compiler are available, else
  build pure Python and say so in one line;
* ``1`` (or ``yes``/``true``): compile, and fail if that is impossible;
* ``0`` (or ``no``/``false``): pure Python.

Editable installs (``pip install -e .``) are always pure Python, and remove compiled modules a
former in-place build left beside the sources, so that an edited ``.py`` is what runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "src" / "vestespy"

#: The modules compiled by mypyc: the hot path of a request. One table, read by the build and by
#: the tests (unit/test_build_info.py, packaging/); a module listed here must compile with mypyc.
#: Names are relative to the package, dotted for a subpackage's modules (``wsgi._adapter``).
COMPILED_MODULES = (
    "_driver",
    "_connection",
    "_context",
    "_wire",
    "_head",
    "_flow",
    "_sender",
    "_stream",
    "_transport",
    "_output",
    "_exchange",
    "_rates",
    "_deadlines",
    "_phase",
    "_strict",
    "_emitter",
    "_pool",
    "_loop",
    "headers",
    "request",
    "response",
    "_backends",
    # Helpers of the modules above, called for every request or response.
    "_dates",
    "_detach",
    "_header_fields",
    "_request_ids",
    # The WebSocket path: frames in and out of every message (the session and its link), the
    # sweep's deadline check, and the upgrade check of each request head. Not _ws_deflate:
    # it subclasses wsproto's PerMessageDeflate, which a native class cannot.
    "_ws_session",
    "_ws_link",
    "_ws_deadlines",
    "_ws_handshake",
    # The server's counters: two calls per request (_connection), and a connection's meter.
    "_stats",
    # The admission of requests and the server's own answers, the access log the command
    # writes by default, and the WSGI adapter (a dotted name is a module of a subpackage).
    "_admission",
    "_rejections",
    "access_log",
    "_access_buffer",
    "wsgi._adapter",
    "wsgi._response",
    "wsgi._input",
)

ENV = "VESTESPY_COMPILE"
#: The commands that build extensions; metadata and sdist commands need no mypyc run.
BUILD_COMMANDS = ("bdist_wheel", "build", "build_ext", "install")


def _say(message: str) -> None:
    # setuptools and pip hide stdout unless verbose; stderr lines reach the user's terminal
    # in pip's error output and in `python -m build`.
    print(f"vestespy build: {message}", file=sys.stderr, flush=True)


def _mode() -> str:
    value = os.environ.get(ENV, "").strip().lower()
    if value in ("", "auto"):
        return "auto"
    if value in ("1", "yes", "true", "on"):
        return "force"
    if value in ("0", "no", "false", "off"):
        return "pure"
    raise SystemExit(f"{ENV}={value!r}: expected 1, 0 or auto")


def _editable() -> bool:
    # PEP 660 editable builds run the editable_wheel command; `setup.py develop` and
    # `build_ext --inplace` put extensions beside the sources too.
    return any(arg in ("editable_wheel", "develop", "--inplace", "-i") for arg in sys.argv)


def _compiler_works() -> str | None:
    """Compile a trivial C file with the compiler setuptools would use; None if it works."""
    try:
        from setuptools._distutils.ccompiler import new_compiler
        from setuptools._distutils.sysconfig import customize_compiler

        compiler = new_compiler()
        customize_compiler(compiler)
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "probe.c"
            source.write_text("#include <Python.h>\nint main(void) { return 0; }\n")
            from sysconfig import get_paths

            compiler.compile([str(source)], output_dir=tmp, include_dirs=[get_paths()["include"]])
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc) else ''}"
    return None


def _module_path(name: str) -> Path:
    """The source of a COMPILED_MODULES name, relative to the project (``wsgi._adapter``)."""
    return Path("src", "vestespy", *name.split(".")).with_suffix(".py")


def _remove_inplace_extensions() -> None:
    suffixes = (".so", ".pyd")
    for path in PACKAGE.rglob("*"):
        module = ".".join([*path.parent.relative_to(PACKAGE).parts, path.name.split(".")[0]])
        if path.suffix in suffixes and module in COMPILED_MODULES:
            _say(f"removing {path.relative_to(HERE)}, a compiled module shadowing its source")
            path.unlink()
    for path in (HERE / "src").glob("*__mypyc*"):
        if path.suffix in suffixes:
            _say(f"removing {path.relative_to(HERE)}")
            path.unlink()


def _extensions() -> list[object]:
    mode = _mode()
    if _editable():
        _remove_inplace_extensions()
        _say("editable install: pure Python (the sources you edit are what runs)")
        return []
    if not any(command in sys.argv for command in BUILD_COMMANDS):
        return []  # metadata only (egg_info, dist_info, sdist): nothing to compile
    # setuptools copies build/lib* into the wheel as it finds it: a module renamed or removed
    # since an earlier build (its .py or its compiled .so) would ship again, stale.
    for stale in HERE.joinpath("build").glob("lib*"):
        shutil.rmtree(stale, ignore_errors=True)
    if mode == "pure":
        _say(f"pure Python ({ENV}=0)")
        return []
    reason = None
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        reason = f"mypyc is not installed ({exc})"
    else:
        reason = _compiler_works()
        if reason is not None:
            reason = f"no working C compiler ({reason})"
    if reason is not None:
        if mode == "force":
            raise SystemExit(f"vestespy build: {ENV}=1 but cannot compile: {reason}")
        _say(f"building pure Python: {reason}; set {ENV}=1 to make this an error")
        return []
    _say(f"compiling {len(COMPILED_MODULES)} modules with mypyc")
    paths = [str(_module_path(name)) for name in COMPILED_MODULES]
    return list(
        mypycify(
            [*paths, "--config-file", str(HERE / "pyproject.toml")],
            opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"),
            group_name="vestespy",
            strip_asserts=False,
        )
    )


class BuildExt(build_ext):
    """build_ext that never builds in place for an editable install."""

    def run(self) -> None:
        if getattr(self, "editable_mode", False) or self.inplace:
            _remove_inplace_extensions()
            return
        super().run()


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
