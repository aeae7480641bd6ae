"""One worker process of the command line: load the application, serve, drain on a signal.

Theory of operation: the supervisor forks a worker with the listening sockets already bound.
The worker imports the application itself (so that a reload imports the edited code), builds a
:class:`~vestespy.Server` on the inherited sockets and serves until a signal: SIGTERM or SIGINT
drain it (:meth:`~vestespy.Server.shutdown` with ``--graceful-timeout``), SIGQUIT closes at
once. It talks to the supervisor through one pipe: ``R`` once it serves, ``X`` when it retires
by itself (``--max-requests``) so that its replacement starts while it drains. An application
that cannot be loaded ends the worker with :data:`BOOT_ERROR` after one line on stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import os
import random
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ._appkind import Kind, classify
from ._config import BOOT_ERROR, Config, StartupError
from ._sched import use_batch_policy
from ._worker_stats import publish_stats, write_stats

if TYPE_CHECKING:
    from types import FrameType

    from ._access_buffer import BufferedAccessLog
    from .access_log import AccessHook
    from .request import Request
    from .response import Response
    from .server import RequestListener, Server
    from .wsgi import WSGIApplication

__all__ = ["load_application", "load_listener", "run_worker"]

logger: logging.Logger = logging.getLogger("vestespy.error")


def _name(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _import_attribute(spec: str) -> object:
    module_name, _, attribute = spec.partition(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise StartupError(f"cannot import module {module_name!r}: not found") from exc
        raise StartupError(f"error while importing {module_name!r}: {_name(exc)}") from exc
    except Exception as exc:
        raise StartupError(f"error while importing {module_name!r}: {_name(exc)}") from exc
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise StartupError(f"module {module_name!r} has no attribute {attribute!r}") from None
    return value


def load_application(config: Config) -> tuple[Kind, object]:
    """Import the application the command line names and find its kind (see _appkind).

    Returns:
        ``"vestespy"`` or ``"wsgi"``, and the object (after ``--factory``); for no
        application, the demo.

    Raises:
        StartupError: It cannot be imported, or cannot be served (UsageError: not as the
            command line says).
    """
    if not config.app:
        from .demo import build_demo

        return "vestespy", build_demo()
    value = _import_attribute(config.app)
    if config.factory:
        value = _call_factory(config.app, value)
    return classify(value, config.interface, config.app), value


def load_listener(config: Config) -> RequestListener:
    """Import the application the command line names and return its ``"request"`` listener.

    Raises:
        StartupError: It cannot be imported, or is not a listener.
    """
    kind, app = load_application(config)
    if kind == "wsgi":
        from .wsgi import WSGIAdapter

        # classify() found a callable of two parameters: all that can be checked of a WSGI
        # application before it runs.
        return WSGIAdapter(
            cast("WSGIApplication", app),
            script_name=config.root_path,
            multiprocess=config.workers > 1,
        )
    as_handler = getattr(app, "as_handler", None)
    if callable(as_handler):
        app = as_handler()
    return cast("RequestListener", app)  # classify() found a listener of three parameters


def _call_factory(spec: str, factory: object) -> object:
    if not callable(factory):
        raise StartupError(f"--factory: {spec} is not callable")
    try:
        return factory()
    except Exception as exc:
        raise StartupError(f"--factory: {spec}() raised {exc!r}") from exc


def _recycling(
    listener: RequestListener, limit: int, retire: Callable[[], None]
) -> RequestListener:
    """Wrap ``listener`` so that the worker retires after ``limit`` requests."""
    counter = itertools.count(1)  # next() on a count is atomic in CPython

    def counted(server: Server, req: Request, res: Response) -> None:
        if next(counter) == limit:
            retire()
        listener(server, req, res)

    return counted


def run_worker(
    config: Config,
    sockets: list[socket.socket],
    report_fd: int | None,
    stats_path: str | None = None,
) -> int:
    """Serve ``config``'s application on ``sockets`` until a signal; return the exit status.

    Args:
        config: The command line.
        sockets: The listening sockets, inherited.
        report_fd: The pipe to the supervisor, or None when running without one.
        stats_path: Where to publish the server's figures for the supervisor's
            ``--metrics-bind`` (see _worker_stats.py), or None: the worker serves
            ``--metrics-bind`` itself, if given.
    """
    from .server import Server

    def report(message: bytes) -> None:
        if report_fd is not None:
            try:
                os.write(report_fd, message)
            except OSError:
                pass

    if config.sched_batch and config.threads > 0:
        # Before any thread of this worker starts (the application's import may start some):
        # threads inherit the policy of the thread that starts them.
        use_batch_policy()
    if config.reload:
        # No .pyc from a worker of a reload: one written in the same second as a later edit
        # of the same size would pass for up to date.
        sys.dont_write_bytecode = True
    try:
        listener = load_listener(config)
    except StartupError as exc:
        logger.debug("the application cannot be loaded", exc_info=True)
        if report_fd is None:
            print(f"vestespy: error: {exc}", file=sys.stderr, flush=True)
        else:  # the supervisor says it once, however many workers fail
            report(b"E" + str(exc).encode())
        return BOOT_ERROR
    access_log, buffered = _access_hook(config)
    options = config.options.copy()
    if stats_path is not None:
        options["metrics_bind"] = None  # the supervisor serves the workers' sum
    server = Server(
        sockets,
        debug=config.debug,
        select=config.backend,
        max_workers=config.threads,
        access_log=access_log,
        **options,
    )
    if stats_path is not None:
        publish_stats(server, stats_path)
    if buffered is not None:
        buffered.attach(server._loop)
    graceful = config.graceful_timeout

    def drain(*_: object) -> None:
        server.shutdown(timeout=graceful)

    def retire() -> None:
        report(b"X")
        drain()

    if config.max_requests > 0:
        limit = config.max_requests + random.randint(0, max(0, config.max_requests_jitter))
        listener = _recycling(listener, limit, retire)
    server.on("request", listener)

    quit_now = getattr(signal, "SIGQUIT", None)  # not on Windows

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum == quit_now:
            server.shutdown()
        else:
            drain()

    for signum in (signal.SIGTERM, signal.SIGINT, quit_now):
        if signum is not None:
            signal.signal(signum, on_signal)
    if report_fd is not None:
        # The supervisor handles SIGHUP; a terminal hang-up reaches the whole group.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    done = threading.Event()
    if report_fd is not None:
        _watch_parent(done, os.getppid(), drain)
    if report_fd is not None and config.timeout > 0:
        from ._watchdog import start_heartbeat

        start_heartbeat(server, report_fd, config.timeout)
    logger.debug("worker %d serving (backend %s)", os.getpid(), server.backend)
    report(b"R")
    try:
        server.serve_forever()
    finally:
        done.set()
        server.close()  # waits for the pool threads: no line comes after it
        if stats_path is not None:
            with contextlib.suppress(OSError):
                write_stats(server, stats_path)  # the final figures
        if buffered is not None:
            # Every buffered line, however the worker stops: a clean stop, a drain (SIGTERM,
            # and the old workers of a reload), SIGQUIT. The process then ends with
            # os._exit, which runs no atexit hook.
            buffered.close()
    return 0


def _access_hook(config: Config) -> tuple[AccessHook | None, BufferedAccessLog | None]:
    """The access log hook the command line asks for, and the buffered one if it is that.

    Lines are written straight to stdout's descriptor (buffered with ``--access-log-buffer``,
    without a ``LogRecord``) while the ``vestespy.access`` logger is as the command set it up;
    a ``--log-config`` or the application that changed it gets :mod:`logging`, as configured.
    """
    from ._access_buffer import BufferedAccessLog, LineWriter, command_access_fd
    from .access_log import COMBINED_FORMAT, AccessLogFormatter, AccessLogger

    if not config.access_log:
        return None, None
    format = config.access_log_format or COMBINED_FORMAT
    fd = command_access_fd()
    if fd is None:
        logger.debug("access log: through logging (vestespy.access was configured)")
        return AccessLogger(format), None
    size = max(0, config.access_log_buffer)
    buffered = BufferedAccessLog(AccessLogFormatter(format), LineWriter(fd, size))
    logger.debug("access log: written to file descriptor %d, buffer %d bytes", fd, size)
    return buffered, buffered


def _watch_parent(done: threading.Event, parent: int, drain: Callable[[], None]) -> None:
    """Drain if the supervisor disappears (killed with SIGKILL: no one else would stop us)."""

    def watch() -> None:
        while not done.wait(1.0):
            if os.getppid() != parent:
                logger.warning("worker %d: the supervisor is gone; stopping", os.getpid())
                drain()
                return

    threading.Thread(target=watch, name="vestespy-parent-watch", daemon=True).start()
