"""What the command line asked for, shared by the supervisor and its workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._sockets import BindSpec

if TYPE_CHECKING:
    from .options import ServerOptionsKwargs

__all__ = ["BOOT_ERROR", "Config", "StartupError", "UsageError"]

#: The exit status of a worker that could not load the application: the supervisor stops
#: instead of starting it again.
BOOT_ERROR = 3


class StartupError(Exception):
    """The server cannot start; the message is the one line shown to the user.

    Something around the command is wrong (a file, the application's code): exit status 1.
    """

    #: The command's exit status.
    status: int = 1


class UsageError(StartupError):
    """The command line asks for something that cannot work: exit status 2, as argparse."""

    status = 2


def _no_options() -> ServerOptionsKwargs:
    return {}


@dataclass(frozen=True, kw_only=True)
class Config:
    """The parsed command line (see ``vestespy --help`` for each field)."""

    app: str | None = None
    factory: bool = False
    #: ``auto``, ``vestespy`` or ``wsgi`` (``--interface``; ``--wsgi`` gives ``wsgi``).
    interface: str = "auto"
    root_path: str = ""
    binds: tuple[BindSpec, ...] = ()
    workers: int = 1
    threads: int = 50
    #: --sched-batch: workers with listener threads run under SCHED_BATCH (see _sched.py).
    sched_batch: bool = True
    backend: str = "auto"
    log_level: str = "info"
    access_log: bool = True
    access_log_format: str | None = None
    #: --access-log-buffer: bytes of access lines buffered before a write (0: none).
    access_log_buffer: int = 64 * 1024
    graceful_timeout: float = 30.0
    #: Seconds a serving worker's loop may go without a heartbeat before it is killed and
    #: replaced (0: never; see _watchdog.py).
    timeout: float = 30.0
    max_requests: int = 0
    max_requests_jitter: int = 0
    reload: bool = False
    reload_dirs: tuple[str, ...] = ()
    debug: bool = False
    #: --user, --group: whom to run as after binding (names or numbers).
    user: str | None = None
    group: str | None = None
    #: --umask: the process's umask, set before binding.
    umask: int | None = None
    #: --pid: the file the supervisor writes its process number to.
    pidfile: str | None = None
    #: --chdir: the directory to enter before looking for the application.
    chdir: str | None = None
    #: --log-config: a logging.config.dictConfig dictionary, applied after the defaults.
    log_config: dict[str, object] | None = None
    #: The ServerOptions fields given on the command line.
    options: ServerOptionsKwargs = field(default_factory=_no_options)

    @property
    def app_name(self) -> str:
        """The application as the user named it, for log lines."""
        return self.app or "the demo"
