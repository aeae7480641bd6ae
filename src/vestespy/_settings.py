"""The command's settings from the environment and from a TOML file, under the command line.

Theory of operation: every flag of the command can also come from

* an environment variable ``VESTESPY_<FLAG>``: the long flag in capitals, dashes as
  underscores (``VESTESPY_WORKERS=4``, ``VESTESPY_MAX_BODY_SIZE=10M``); ``WEB_CONCURRENCY``
  (the Heroku convention gunicorn and uvicorn follow) sets the worker count when
  ``VESTESPY_WORKERS`` does not;
* a TOML file: ``--config FILE`` (or ``VESTESPY_CONFIG``), else the ``[tool.vestespy]`` table
  of ``pyproject.toml`` in the current directory. Keys are the long flags with underscores
  (``workers = 2``, ``max_body_size = "10M"``, ``bind = ["127.0.0.1:8000"]``); a file that has
  a ``[tool.vestespy]`` table is read from there, any other from its top level.

Precedence: command line, then environment, then file, then the built-in defaults. The
values from the environment and the file become the parser's defaults, read by the same
type functions as the flags, so a value means the same wherever it is written; the command
line then overrides them the usual way. Repeatable flags (``--bind``, ``--header``,
``--reload-dir``) are replaced, not extended, by a higher source.

A file key that names no flag is refused (a typo must not pass silently); an environment
variable that does not is ignored, since the ``VESTESPY_`` prefix is shared with build and
test settings (``VESTESPY_COMPILE``, ``VESTESPY_H11``).

TOML is read with :mod:`tomllib` (Python 3.11+), or the ``tomli`` package on 3.10, a
dependency there.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "ENV_PREFIX",
    "SettingsError",
    "apply_settings",
    "load_log_config",
    "parse_with_settings",
]

ENV_PREFIX = "VESTESPY_"
#: The flags no environment variable or file sets: they act at once or name the file.
_SKIPPED = frozenset({"help", "version", "config"})
#: The worker count's conventional variable (Heroku, gunicorn, uvicorn).
WEB_CONCURRENCY = "WEB_CONCURRENCY"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class SettingsError(Exception):
    """A value from the environment or a file is wrong: the message is the one line."""


def _flag_names(action: argparse.Action) -> list[str]:
    """The names a setting may use: each long flag without dashes (the dest for a positional)."""
    if not action.option_strings:
        return [action.dest]
    return [
        name[2:].replace("-", "_")
        for name in action.option_strings
        if name.startswith("--") and not _negative(action, name)
    ]


def _negative(action: argparse.Action, name: str) -> bool:
    return isinstance(action, argparse.BooleanOptionalAction) and name.startswith("--no-")


def _settable(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [action for action in parser._actions if action.dest not in _SKIPPED]


def _is_flag(action: argparse.Action) -> bool:
    """Whether the action takes no value: ``--debug``, ``--access-log/--no-access-log``."""
    return action.nargs == 0


def _is_repeated(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction)


def _convert(action: argparse.Action, text: str, where: str) -> object:
    """Read one value as the flag would, or raise SettingsError naming ``where``."""
    kind = action.type
    try:
        value = kind(text) if callable(kind) else text
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        detail = str(exc) if isinstance(exc, argparse.ArgumentTypeError) else "invalid value"
        raise SettingsError(f"{where}={text!r}: {detail}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise SettingsError(f"{where}={text!r}: choose from {choices}")
    return value


def _boolean(text: object, where: str) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(f"{where}={text!r}: write true or false")


def _typed(action: argparse.Action, raw: object, where: str) -> object:
    """The parser default for ``action`` from a raw environment string or TOML value."""
    if _is_flag(action):
        return _boolean(raw, where)
    if _is_repeated(action):
        if isinstance(raw, str):
            # One value per line; addresses and directories may also be separated by spaces.
            items = raw.splitlines() if action.dest == "response_headers" else raw.split()
        elif isinstance(raw, list):
            items = raw
        else:
            raise SettingsError(f"{where}: expected a list of strings, not {raw!r}")
        return [_convert(action, _text(item, where), where) for item in items if str(item).strip()]
    if isinstance(raw, list | dict):
        raise SettingsError(f"{where}: expected one value, not {raw!r}")
    return _convert(action, _text(raw, where), where)


def _text(raw: object, where: str) -> str:
    if isinstance(raw, bool):
        # A TOML boolean for a flag that takes a value: "on"/"off" read as the flags do.
        return "on" if raw else "off"
    if isinstance(raw, str | int | float):
        return str(raw)
    raise SettingsError(f"{where}: unsupported value {raw!r}")


def _load_toml(path: Path) -> dict[str, object]:
    # tomllib from 3.11; on 3.10 its original, tomli (a dependency there). Imported by name:
    # the type checker, set to 3.10, would otherwise need tomli installed.
    name = "tomllib" if sys.version_info >= (3, 11) else "tomli"
    try:
        toml = importlib.import_module(name)
    except ImportError:  # pragma: no cover - Python 3.10 without its dependency
        raise SettingsError(f"{path}: reading TOML needs the {name} package") from None
    try:
        with path.open("rb") as file:
            data: dict[str, object] = toml.load(file)
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except toml.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from None
    return data


def load_log_config(path_text: str) -> dict[str, object]:
    """Read ``--log-config``: a :func:`logging.config.dictConfig` dictionary, JSON or TOML.

    A file named ``*.json`` is JSON, any other TOML. ``disable_existing_loggers`` defaults
    to false, unlike dictConfig's own default: the server's loggers exist before the file is
    read, and a file that does not name them must not silence them.

    Raises:
        SettingsError: The file cannot be read or parsed, or is not a dictConfig dictionary.
    """
    path = Path(path_text)
    if path.suffix.lower() == ".json":
        import json

        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise SettingsError(f"{path}: invalid JSON: {exc}") from None
    else:
        data = _load_toml(path)
    if not isinstance(data, dict) or not isinstance(data.get("version"), int):
        raise SettingsError(f"{path}: not a logging configuration (it needs version = 1)")
    data.setdefault("disable_existing_loggers", False)
    return data


def _file_settings(path: Path, explicit: bool) -> dict[str, object]:
    """The settings table of ``path``: its ``[tool.vestespy]`` table, else (if given) its top."""
    if not explicit:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return {}
        if "tool.vestespy" not in text and "[tool]" not in text:
            return {}  # no table of ours: not even parsed (no TOML reader needed)
    data = _load_toml(path)
    tool = data.get("tool")
    if isinstance(tool, dict) and "vestespy" in tool:
        table = tool["vestespy"]
        if not isinstance(table, dict):
            raise SettingsError(f"{path}: [tool.vestespy] must be a table")
        return table
    return data if explicit else {}


def _config_path(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """``--config FILE`` from the command line (the last one), else ``VESTESPY_CONFIG``."""
    found: str | None = None
    for index, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--config" and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith("--config="):
            found = arg.partition("=")[2]
    return found if found is not None else environ.get(ENV_PREFIX + "CONFIG") or None


def collect_settings(
    parser: argparse.ArgumentParser,
    argv: Sequence[str],
    environ: Mapping[str, str],
    cwd: Path,
) -> dict[str, object]:
    """The parser defaults the file and the environment ask for, by destination.

    Raises:
        SettingsError: A file cannot be read, names an unknown key, or a value is invalid.
    """
    actions = _settable(parser)
    by_name: dict[str, argparse.Action] = {}
    for action in actions:
        for name in _flag_names(action):
            by_name.setdefault(name, action)
    defaults: dict[str, object] = {}
    path_text = _config_path(argv, environ)
    path = Path(path_text) if path_text is not None else cwd / "pyproject.toml"
    if path_text is not None or path.is_file():
        table = _file_settings(path, explicit=path_text is not None)
        for key, raw in table.items():
            found = by_name.get(key.replace("-", "_"))
            if found is None:
                raise SettingsError(f"{path}: unknown setting {key!r} (see vestespy --help)")
            defaults[found.dest] = _typed(found, raw, f"{path}: {key}")
    for action in actions:
        if action.dest == "workers" and WEB_CONCURRENCY in environ:
            defaults["workers"] = _typed(action, environ[WEB_CONCURRENCY], WEB_CONCURRENCY)
        for option in action.option_strings or [action.dest]:
            name = option.lstrip("-").replace("-", "_").upper()
            variable = ENV_PREFIX + name
            if option.startswith("-") and not option.startswith("--"):
                continue
            if variable not in environ:
                continue
            value: object = environ[variable]
            if _negative(action, option):
                value = not _boolean(value, variable)
            defaults[action.dest] = _typed(action, value, variable)
    return defaults


def apply_settings(
    parser: argparse.ArgumentParser,
    argv: Sequence[str],
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> dict[str, object]:
    """Make the file's and the environment's settings the parser's defaults.

    Returns:
        The defaults set, by destination (for :func:`parse_with_settings`).

    Raises:
        SettingsError: As :func:`collect_settings`.
    """
    defaults = collect_settings(
        parser, argv, os.environ if environ is None else environ, cwd or Path.cwd()
    )
    parser.set_defaults(**defaults)
    return defaults


def parse_with_settings(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> argparse.Namespace:
    """Parse ``argv`` over the environment's and the file's settings.

    A bad setting exits with status 2 and one line, as a bad argument does.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        defaults = apply_settings(parser, args_list, environ, cwd)
    except SettingsError as exc:
        parser.error(str(exc))
    args = parser.parse_args(args_list)
    given_config = getattr(args, "config", None)
    if given_config is not None and given_config != _config_path(args_list, {}):
        parser.error("write --config in full: the file is read before the other flags")
    for action in _settable(parser):
        given = defaults.get(action.dest)
        if _is_repeated(action) and isinstance(given, list):
            values = getattr(args, action.dest, None)
            # argparse appends to a copy of the default: what the command line added comes
            # after it, and replaces it.
            if isinstance(values, list) and len(values) > len(given):
                setattr(args, action.dest, values[len(given) :])
    return args
