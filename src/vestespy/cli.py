"""The ``vestespy`` command (also ``python -m vestespy``): serve an application in production.

Theory of operation: :func:`main` parses the command line (a bad argument: exit status 2),
checks what can be checked before binding (the TLS files, the application and its kind:
``vestespy._checks``; a failure is one line on stderr, status 1, or 2 when the command line
is at fault), binds every listening socket (a failure: status 1), then hands over to the
supervisor process, which runs the workers. Every field of :class:`~vestespy.ServerOptions`
becomes a flag here, derived from the dataclass itself: adding a field adds its flag (sizes
and durations take units, ``vestespy._units``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import logging.config
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar, cast

from ._access_buffer import DEFAULT_BUFFER_SIZE, CommandAccessHandler
from ._appkind import INTERFACES, Kind
from ._backends import available_backends
from ._banner import build_notes
from ._checks import check_application, check_tls
from ._config import Config, StartupError, UsageError
from ._core import version_line
from ._metrics import MetricsUnavailable, require_client
from ._privileges import apply_early, drop_privileges, parse_umask, pid_file, resolve
from ._settings import SettingsError, load_log_config, parse_with_settings
from ._sockets import BindError, BindSpec, Listener, bind, bind_group, parse_bind, systemd_listeners
from ._tls import SSL_CERT_REQS, SSL_MIN_VERSIONS
from ._units import duration_reader, option_unit, parse_duration, parse_size, size_reader
from .access_log import COMBINED_FORMAT, AccessLogFormatter
from .options import ServerOptions, ServerOptionsKwargs

__all__ = ["build_parser", "main"]

_PROG = "vestespy"
_DEFAULT_HOST = "127.0.0.1"
_DEFAULT_PORT = 8080
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

#: Extra names for some ServerOptions flags, as other servers' users know them.
_OPTION_ALIASES: dict[str, tuple[str, ...]] = {
    "trusted_proxies": ("--forwarded-allow-ips",),
    "response_headers": ("--header",),
    "certfile": ("--ssl-certfile",),
    "keyfile": ("--ssl-keyfile",),
}
#: ServerOptions flags that are given once per value (a value may hold commas).
_REPEATED_OPTIONS = frozenset({"response_headers"})
#: ServerOptions flags with a fixed set of values.
_OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "ssl_cert_reqs": SSL_CERT_REQS,
    "ssl_min_version": SSL_MIN_VERSIONS,
}


def _option_help() -> dict[str, str]:
    """The ``#:`` comment above each ServerOptions field, read from options.py if shipped."""
    from . import options

    try:
        path = options.__file__
        if not path or not path.endswith(".py"):
            return {}
        with open(path, encoding="utf-8") as source:
            lines = source.read().splitlines()
    except OSError:
        return {}
    helps: dict[str, str] = {}
    comment: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#:"):
            comment.append(stripped[2:].strip())
            continue
        match = re.match(r"(\w+)\s*:", stripped)
        if match and comment:
            text = " ".join(comment)
            text = re.sub(r":\w+:`~?([\w.]+)`", r"\1", text).replace("``", "")
            helps[match.group(1)] = text.replace("%", "%%")
        comment = []
    return helps


_T = TypeVar("_T")


def _checked(reader: Callable[[str], _T]) -> Callable[[str], _T]:
    """``reader``, its ValueError shown by argparse as is: it names the value and the problem."""

    def read(text: str) -> _T:
        try:
            return reader(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return read


def _option_reader(name: str, kind: str) -> Callable[[str], object]:
    """How the ServerOptions field ``name`` of type ``kind`` is read: sizes and durations take
    units (see vestespy._units)."""
    unit = option_unit(name)
    optional = kind.endswith("| None")
    if unit == "size":
        return _checked(size_reader(optional))
    if unit == "duration":
        return _checked(duration_reader(optional))
    if kind not in _OPTION_TYPES:
        raise TypeError(f"ServerOptions.{name}: no command-line reader for {kind}")
    return _OPTION_TYPES[kind]


def _optional_int(text: str) -> int | None:
    if text.lower() in ("none", "off", ""):
        return None
    return int(text)


def _optional_str(text: str) -> str | None:
    return None if text.lower() in ("none", "") else text


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


#: How each ServerOptions field type is read from the command line.
_OPTION_TYPES: dict[str, Callable[[str], object]] = {
    "int": int,
    "float": float,
    "str": str,
    "int | None": _optional_int,
    "str | None": _optional_str,
    "tuple[str, ...]": _comma_list,
}


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "server options",
        "limits and timeouts: the fields of vestespy.ServerOptions. A SIZE is bytes or takes a"
        " unit (64K, 10M, 1G: powers of 1024; 10MB: of 1000); a DURATION is seconds or takes"
        " units (500ms, 30s, 2m, 1h, 1m30s)",
    )
    helps = _option_help()
    for field in dataclasses.fields(ServerOptions):
        flag = "--" + field.name.replace("_", "-")
        names = (flag, *_OPTION_ALIASES.get(field.name, ()))
        default = field.default
        shown = ",".join(default) if isinstance(default, tuple) else default
        text = f"{helps.get(field.name, '')} (default: {shown})".strip()
        kind = str(field.type)
        if kind == "bool":
            group.add_argument(
                *names,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=text,
            )
            continue
        if field.name in _REPEATED_OPTIONS:
            group.add_argument(
                *names,
                dest=field.name,
                action="append",
                default=argparse.SUPPRESS,
                metavar="VALUE",
                help=f"{helps.get(field.name, '')} (repeatable)".strip(),
            )
            continue
        unit = option_unit(field.name)
        group.add_argument(
            *names,
            dest=field.name,
            type=_option_reader(field.name, kind),
            default=argparse.SUPPRESS,
            choices=_OPTION_CHOICES.get(field.name),
            metavar=None
            if field.name in _OPTION_CHOICES
            else unit.upper()
            if unit
            else field.name.split("_")[-1].upper(),
            help=text,
        )


def _app_spec(text: str) -> str:
    module, colon, attribute = text.partition(":")
    if not colon or not module or not attribute:
        raise argparse.ArgumentTypeError(f"{text!r}: write the application as MODULE:ATTRIBUTE")
    return text


def _umask(text: str) -> int:
    try:
        return parse_umask(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).partition(": ")[2]) from None


def _bind_spec(text: str) -> BindSpec:
    try:
        return parse_bind(text)
    except BindError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (not the whole usage), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    parser = _Parser(
        prog=_PROG,
        description="Serve a VestesPy application (with no MODULE:ATTR, a small demo).",
        epilog=(
            "Signals: SIGTERM or SIGINT drain the workers and exit (a second one closes at"
            " once); SIGHUP starts new workers, then drains the old ones. Exit status: 0 when"
            " stopped by a signal, 1 when the server cannot start, 2 for a bad argument."
        ),
    )
    parser.add_argument(
        "app",
        nargs="?",
        type=_app_spec,
        metavar="MODULE:ATTR",
        help="a 'request' listener, a Dispatcher, a WSGI application, or (with --factory) a"
        " function returning one",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=version_line(),
        help="show the version, the build (compiled or pure) and the protocol core, and exit",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="read settings from this TOML file (keys as the long flags, with underscores);"
        " default: [tool.vestespy] in ./pyproject.toml. Every flag also reads VESTESPY_<FLAG>"
        " from the environment (WEB_CONCURRENCY for --workers). Precedence: command line,"
        " environment, file",
    )
    parser.add_argument(
        "--factory", action="store_true", help="call MODULE:ATTR (no arguments) to get the app"
    )
    parser.add_argument(
        "--interface",
        choices=INTERFACES,
        default="auto",
        help="what MODULE:ATTR is: vestespy (a 'request' listener or a Dispatcher), wsgi, or"
        " auto: found from the object (default auto)",
    )
    parser.add_argument(
        "--wsgi",
        type=_app_spec,
        metavar="MODULE:APP",
        help="the same as MODULE:APP --interface wsgi",
    )
    parser.add_argument(
        "--root-path",
        default="",
        metavar="PATH",
        help="with --wsgi: the prefix the application is mounted at (SCRIPT_NAME)",
    )
    where = parser.add_argument_group("where to listen")
    where.add_argument(
        "-b",
        "--bind",
        action="append",
        type=_bind_spec,
        default=[],
        metavar="ADDRESS",
        help="HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N; repeatable (default: "
        f"{_DEFAULT_HOST}:{_DEFAULT_PORT}, or the sockets systemd passes)",
    )
    where.add_argument("--host", help=f"shortcut for --bind HOST:PORT (default {_DEFAULT_HOST})")
    where.add_argument(
        "--port", type=int, help=f"shortcut for --bind HOST:PORT (default {_DEFAULT_PORT})"
    )
    run = parser.add_argument_group("processes and threads")
    run.add_argument(
        "-w", "--workers", type=int, default=1, metavar="N", help="worker processes (default 1)"
    )
    run.add_argument(
        "--threads",
        type=int,
        default=50,
        metavar="N",
        help="listener threads per worker; 0 runs listeners on the loop thread (default 50)",
    )
    run.add_argument(
        "--sched-batch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run each worker with listener threads under Linux's SCHED_BATCH policy, so that"
        " its loop and listener threads stop preempting each other at every hand-over of the"
        " GIL (fewer context switches; left alone where the policy is not the default;"
        " default on)",
    )
    run.add_argument(
        "--backend",
        "--select",
        dest="backend",
        default="auto",
        choices=["auto", *available_backends()],
        help="the selector backend (default auto)",
    )
    run.add_argument(
        "--graceful-timeout",
        type=_checked(parse_duration),
        default=30.0,
        metavar="DURATION",
        help="how long a stopping worker lets requests in flight finish (default 30)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="kill and replace a worker whose loop has not reported for this long, as"
        " gunicorn's --timeout (a listener blocking a pool thread does not count; 0: never;"
        " default 30)",
    )
    run.add_argument(
        "--max-requests",
        type=int,
        default=0,
        metavar="N",
        help="replace a worker after N requests (default 0: never)",
    )
    run.add_argument(
        "--max-requests-jitter",
        type=int,
        default=0,
        metavar="N",
        help="add a random 0..N to --max-requests per worker, so they do not restart together",
    )
    run.add_argument(
        "--reload",
        action="store_true",
        help="development: restart the workers when a .py file changes",
    )
    run.add_argument(
        "--reload-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="where --reload looks (repeatable; default the current directory)",
    )
    run.add_argument("--debug", action="store_true", help="tracebacks in 500 responses")
    proc = parser.add_argument_group("the process")
    proc.add_argument(
        "--user", metavar="USER", help="run as this user (name or uid) once the sockets are bound"
    )
    proc.add_argument(
        "--group",
        metavar="GROUP",
        help="run as this group (name or gid) once the sockets are bound (default: the user's)",
    )
    proc.add_argument(
        "--umask",
        type=_umask,
        metavar="MODE",
        help="the process's umask, in octal (022), set before binding (UNIX sockets' mode)",
    )
    proc.add_argument(
        "--pid", dest="pidfile", metavar="FILE", help="write the supervisor's pid to FILE"
    )
    proc.add_argument("--chdir", metavar="DIR", help="enter DIR before loading the application")
    logs = parser.add_argument_group("logging")
    logs.add_argument("--log-level", default="info", choices=_LOG_LEVELS, help="default info")
    logs.add_argument(
        "--log-config",
        metavar="FILE",
        help="configure logging with logging.config.dictConfig from this JSON (*.json) or"
        " TOML file, after the defaults (loggers vestespy.error and vestespy.access)",
    )
    logs.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one line per response on stdout, logger vestespy.access (default on)",
    )
    logs.add_argument(
        "--access-log-format",
        metavar="FORMAT",
        help="named fields such as {client} {method} {target} {status} {bytes} {duration_ms}"
        " {user_agent} {referer} {request_id} {rejection} {header[Name]}, or json for one"
        " JSON object per line (default: combined plus duration)",
    )
    logs.add_argument(
        "--access-log-buffer",
        type=_checked(parse_size),
        default=DEFAULT_BUFFER_SIZE,
        metavar="SIZE",
        help="buffer access lines and write them in batches: when the worker is idle, when SIZE"
        " is buffered, at least once a second and at exit; 0 writes each line at once. Applies"
        " while the access log goes to stdout as by default; a --log-config that configures"
        " vestespy.access uses logging instead (default 64K)",
    )
    _add_server_options(parser)
    return parser


def _parse_config(argv: Sequence[str] | None = None) -> Config:
    """Parse the command line; a bad argument exits with status 2 (argparse's way)."""
    parser = build_parser()
    args = parse_with_settings(parser, argv)
    binds = list(args.bind)
    if args.host is not None or args.port is not None:
        host = args.host if args.host is not None else _DEFAULT_HOST
        port = args.port if args.port is not None else _DEFAULT_PORT
        try:
            binds.append(parse_bind(f"[{host}]:{port}" if ":" in host else f"{host}:{port}"))
        except BindError as exc:
            parser.error(str(exc))
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.threads < 0:
        parser.error("--threads must be at least 0")
    if args.graceful_timeout < 0:
        parser.error("--graceful-timeout must be at least 0")
    if args.timeout < 0:
        parser.error("--timeout must be at least 0")
    if args.max_requests < 0 or args.max_requests_jitter < 0:
        parser.error("--max-requests and --max-requests-jitter must be at least 0")
    if args.wsgi:
        if args.app:
            parser.error("give either MODULE:ATTR or --wsgi MODULE:APP, not both")
        if args.interface not in ("auto", "wsgi"):
            parser.error(f"--wsgi is --interface wsgi, not --interface {args.interface}")
        args.app, args.interface = args.wsgi, "wsgi"
    if args.interface == "wsgi" and args.threads < 1:
        parser.error("--interface wsgi needs --threads >= 1 (WSGI applications block)")
    if args.root_path and args.interface == "vestespy":
        parser.error("--root-path applies to WSGI applications")
    if args.access_log_format:
        try:
            AccessLogFormatter(args.access_log_format)
        except ValueError as exc:
            parser.error(str(exc))
    log_config = None
    if args.log_config:
        try:
            log_config = load_log_config(args.log_config)
        except SettingsError as exc:
            parser.error(f"--log-config: {exc}")
    # Only the options given: the rest keep ServerOptions' defaults. The keys are
    # ServerOptions' fields; the values are checked by ServerOptions(**options) just below.
    options = cast(
        ServerOptionsKwargs,
        {
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(ServerOptions)
            if hasattr(args, f.name)
        },
    )
    try:
        ServerOptions(**options)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    return Config(
        app=args.app,
        factory=args.factory,
        interface=args.interface,
        root_path=args.root_path,
        binds=tuple(binds),
        workers=args.workers,
        threads=args.threads,
        sched_batch=args.sched_batch,
        backend=args.backend,
        log_level=args.log_level,
        access_log=args.access_log,
        access_log_format=args.access_log_format or COMBINED_FORMAT,
        access_log_buffer=args.access_log_buffer,
        graceful_timeout=args.graceful_timeout,
        timeout=args.timeout,
        max_requests=args.max_requests,
        max_requests_jitter=args.max_requests_jitter,
        reload=args.reload,
        reload_dirs=tuple(args.reload_dir),
        debug=args.debug,
        user=args.user,
        group=args.group,
        umask=args.umask,
        pidfile=args.pidfile,
        chdir=args.chdir,
        log_config=log_config,
        options=options,
    )


def _configure_logging(config: Config) -> None:
    """Server messages on stderr (logger ``vestespy``), access lines on stdout."""
    level = getattr(logging, config.log_level.upper())
    errors = logging.StreamHandler(sys.stderr)
    errors.setFormatter(
        logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("vestespy")
    root.handlers[:] = [errors]
    root.setLevel(level)
    root.propagate = False
    access = logging.getLogger("vestespy.access")
    # Its own class: the worker writes lines straight to stdout's descriptor only while this
    # handler is still the logger's one handler (see _access_buffer.command_access_fd).
    lines = CommandAccessHandler(sys.stdout)
    lines.setFormatter(logging.Formatter("%(message)s"))
    access.handlers[:] = [lines]
    access.setLevel(logging.INFO if config.access_log else logging.CRITICAL + 1)
    access.propagate = False
    if config.log_config is not None:
        try:
            logging.config.dictConfig(config.log_config)
        except (ValueError, TypeError, AttributeError, ImportError) as exc:
            # dictConfig's messages name the handler or formatter that failed.
            print(f"{_PROG}: error: --log-config: {exc}", file=sys.stderr)
            sys.exit(2)


def _spread_with_reuse_port(config: Config) -> bool:
    """Whether each worker gets its own ``SO_REUSEPORT`` socket per TCP address.

    ``--reuse-port`` / ``--no-reuse-port`` decide; by default, yes on Linux with several
    workers: one shared socket lets whichever worker wakes first accept a whole burst of
    connections (measured: one of two workers took all 50 keep-alive connections of a wrk
    run), while Linux hashes connections evenly over a reuse-port group.
    """
    given = config.options.get("reuse_port")
    if given is not None:
        return bool(given) and config.workers > 1
    return sys.platform.startswith("linux") and config.workers > 1


def _open_listeners(config: Config) -> tuple[list[Listener], list[list[Listener]]]:
    """Bind what the command line asks (and adopt systemd's sockets).

    Returns:
        The sockets every worker shares, and per worker slot the sockets of its own (see
        :func:`_spread_with_reuse_port`; empty lists when they are all shared).

    Raises:
        StartupError: One cannot be bound; the ones already bound are closed.
    """
    options = ServerOptions(**config.options)
    spread = _spread_with_reuse_port(config)
    shared: list[Listener] = []
    slots: list[list[Listener]] = [[] for _ in range(config.workers)]
    try:
        shared += systemd_listeners()
        binds = config.binds
        if not binds and not shared:
            binds = (parse_bind(f"{_DEFAULT_HOST}:{_DEFAULT_PORT}"),)
        for spec in binds:
            if spread and spec.kind == "tcp":
                for slot, listener in zip(
                    slots, bind_group(spec, config.workers, options.backlog), strict=True
                ):
                    slot.append(listener)
            else:
                shared.append(bind(spec, options.backlog, options.reuse_port))
    except BindError as exc:
        for listener in shared + [listener for slot in slots for listener in slot]:
            listener.close()
        raise StartupError(str(exc)) from exc
    return shared, slots


def _check(config: Config) -> Kind:
    """Everything that can be checked before binding: TLS files, then the application.

    Returns:
        The application's kind (``--interface``, or what auto found).

    Raises:
        StartupError: A check failed (UsageError: the command line is at fault).
    """
    options = config.options
    check_tls(options.get("certfile"), options.get("keyfile"), options.get("ssl_keyfile_password"))
    if options.get("metrics_bind") is not None:
        _check_metrics(config)
    kind = check_application(config)
    if kind == "wsgi" and config.threads < 1:
        raise UsageError(f"{config.app} is a WSGI application: it needs --threads >= 1")
    if kind == "vestespy" and config.root_path:
        raise UsageError(f"--root-path applies to WSGI applications; {config.app} is not one")
    return kind


def _check_metrics(config: Config) -> None:
    """``--metrics-bind`` needs prometheus_client (the supervisor serves it: see
    _worker_stats.py)."""
    try:
        require_client()
    except MetricsUnavailable as exc:
        raise StartupError(f"--metrics-bind: {exc}") from None


def _startup_lines(
    config: Config, kind: Kind, named: Sequence[Listener], spread: bool
) -> list[str]:
    """What the command says once bound: where, what, how many, which build."""
    scheme = "https" if config.options.get("certfile") else "http"
    build, notes = build_notes()
    what = config.app_name + (" (WSGI)" if kind == "wsgi" and config.app else "")
    where = ", ".join(listener.describe(scheme) for listener in named)
    return [
        f"serving {what} on {where} ({config.workers} worker{'' if config.workers == 1 else 's'}"
        f" x {config.threads} threads, backend {config.backend}"
        f"{', a SO_REUSEPORT socket per worker' if spread else ''}; {build})",
        *notes,
    ]


def _run(config: Config) -> int:
    """Check, bind, then serve with worker processes until a signal; return the exit status."""
    apply_early(config.chdir, config.umask)  # before the application is looked for
    identity = resolve(config.user, config.group)
    kind = _check(config)
    shared, slots = _open_listeners(config)
    everything = shared + [listener for slot in slots for listener in slot]
    try:
        with pid_file(config.pidfile):
            # The files this process made go to the user, who may then remove them at exit.
            owned = [s.unlink_path for s in everything if s.unlink_path]
            drop_privileges(identity, [*owned, *([config.pidfile] if config.pidfile else [])])
            return _serve(config, kind, shared, slots)
    except StartupError:
        for listener in everything:  # closing twice is harmless
            listener.close()
        raise


def _serve(config: Config, kind: Kind, shared: list[Listener], slots: list[list[Listener]]) -> int:
    log = logging.getLogger("vestespy.error")
    named = shared + slots[0]
    for line in _startup_lines(config, kind, named, bool(slots[0])):
        log.info("%s", line)
    if not hasattr(os, "fork"):
        from ._worker import run_worker

        try:
            return run_worker(config, [listener.sock for listener in named], None)
        finally:
            for listener in named:
                listener.close()
    from ._supervisor import Supervisor

    status = Supervisor(config, shared, slots).run()
    log.info("stopped")
    return status


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command: parse, bind, serve; exit with its status."""
    config = _parse_config(argv)
    _configure_logging(config)
    try:
        status = _run(config)
    except KeyboardInterrupt:  # Ctrl-C during the checks, before the supervisor handles it
        print(f"{_PROG}: interrupted", file=sys.stderr)
        status = 130
    except StartupError as exc:
        debug = config.log_level == "debug"
        logging.getLogger("vestespy.error").debug("start-up failed", exc_info=debug)
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        status = exc.status
    sys.exit(status)
