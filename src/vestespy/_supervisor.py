"""The supervisor process of the command line: N workers on shared sockets, signals, reloads.

Theory of operation:

* The supervisor binds every listening socket, then forks the workers; they inherit the
  sockets and accept on them, and the kernel queues connections on the socket itself, so a
  worker that exits never takes queued connections with it while the supervisor holds the
  socket open.
* One thread, one loop: ``select`` on a wake-up pipe (``signal.set_wakeup_fd`` writes each
  signal's number there) and on one pipe per worker (``R``: serving; ``X``: retiring after
  ``--max-requests``; end of file: gone), with a timeout for the next deadline. Children are
  reaped with ``waitpid(WNOHANG)`` on every pass.
* Workers belong to a *generation*. A reload (SIGHUP, or a changed file with ``--reload``)
  starts a full new generation; once all of it serves, the old one is sent SIGTERM and drains.
  If the new generation cannot start, it is stopped and the old one keeps serving.
* A worker that dies is replaced. Start-up failures (exiting before serving) are counted: the
  first one that is a :data:`~vestespy._config.BOOT_ERROR` before any worker ever served, or
  :data:`MAX_FAILED_STARTS` in a row, stop the supervisor with status 1.
* SIGTERM or SIGINT: every worker is sent SIGTERM (drain for ``--graceful-timeout``); the
  supervisor exits 0 once they are gone, killing stragglers a little after the timeout. A
  second SIGTERM or SIGINT sends SIGQUIT (close at once).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import sys
import time
from dataclasses import dataclass

from ._config import BOOT_ERROR, Config, StartupError
from ._metrics import MetricsExporter, StatsCollector
from ._sockets import Listener
from ._watchdog import KILL_AFTER, overdue
from ._worker import run_worker
from ._worker_stats import StatsBoard

__all__ = ["MAX_FAILED_STARTS", "Supervisor"]

logger: logging.Logger = logging.getLogger("vestespy.error")

#: Start-up failures in a row after which the supervisor gives up.
MAX_FAILED_STARTS = 5
#: Seconds a worker may take to start serving.
BOOT_TIMEOUT = 60.0
#: Seconds past --graceful-timeout after which a draining worker is killed.
KILL_MARGIN = 5.0
#: Seconds between scans of the source files with --reload.
RELOAD_INTERVAL = 0.5
_SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages"}
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


@dataclass(eq=False)
class Worker:
    """A worker process as the supervisor tracks it."""

    pid: int
    generation: int
    slot: int  # which of the per-worker sockets it serves (see Supervisor)
    fd: int  # read end of its report pipe, -1 once closed
    started: float
    ready: bool = False
    retiring: bool = False  # it asked to be replaced (--max-requests)
    stopping: bool = False  # it was sent SIGTERM
    kill_at: float | None = None
    #: When its loop last reported (a heartbeat, or its start), for --timeout.
    last_beat: float = 0.0
    timed_out: bool = False  # killed by --timeout
    #: Why it could not load the application, as it reported.
    error: str = ""


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"killed by {name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


class Supervisor:
    """Runs ``config.workers`` worker processes on ``listeners`` until told to stop.

    Args:
        config: The command line.
        listeners: The bound listening sockets every worker shares; the supervisor closes
            them when it exits.
        slot_listeners: Per worker slot, sockets of its own (``SO_REUSEPORT`` groups: one
            socket per slot on the same address, so that the kernel spreads connections
            evenly); the worker in slot ``i`` and its replacements serve ``slot_listeners[i]``.
            Empty, or one list per worker.
    """

    def __init__(
        self,
        config: Config,
        listeners: list[Listener],
        slot_listeners: list[list[Listener]] | None = None,
    ) -> None:
        self.config = config
        self.listeners = listeners
        self.slot_listeners = slot_listeners or [[] for _ in range(config.workers)]
        assert len(self.slot_listeners) == config.workers
        self.workers: dict[int, Worker] = {}
        self.generation = 0  # the generation that should be serving
        self.pending: int | None = None  # a generation being started by a reload
        self.pending_since = 0.0
        self.reload_again = False
        self.stopping = False
        self.stopping_for_error = False
        self.exit_status = 0
        self.failed_starts = 0
        self.ever_ready = False
        self.respawn_at = 0.0
        self._wake_r, self._wake_w = os.pipe()
        self._mtimes: dict[str, float] = {}
        self._next_scan = 0.0
        # --metrics-bind: the workers publish their figures, the supervisor serves the sum.
        self.board: StatsBoard | None = None
        self.exporter: MetricsExporter | None = None

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT, or a fatal start-up failure; return the status."""
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        previous = {signum: signal.signal(signum, _no_op) for signum in _HANDLED}
        try:
            self._start_metrics()
            if self.config.reload:
                self._mtimes = self._scan()
                self._next_scan = time.monotonic() + RELOAD_INTERVAL
            for slot in range(self.config.workers):
                self._spawn(self.generation, slot)
            while self.workers or not self.stopping:
                self._pass()
            return self.exit_status
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(old_wakeup)
            for worker in self.workers.values():  # only after an exception
                _kill(worker.pid, signal.SIGKILL)
            os.close(self._wake_r)
            os.close(self._wake_w)
            for listener in self.listeners + [s for slot in self.slot_listeners for s in slot]:
                listener.close()
            if self.exporter is not None:
                self.exporter.close()
            if self.board is not None:
                self.board.close()

    def _start_metrics(self) -> None:
        bind = self.config.options.get("metrics_bind")
        if bind is not None:
            self.board = board = StatsBoard()
            try:
                collector = StatsCollector(board.total, board.worker_metrics)
                self.exporter = MetricsExporter(bind, collector)
            except OSError as exc:
                raise StartupError(f"--metrics-bind {bind}: {exc}") from exc
            host, port = self.exporter.address
            logger.info("metrics on http://%s:%d/metrics (the sum over the workers)", host, port)

    def _pass(self) -> None:
        fds = [self._wake_r, *(w.fd for w in self.workers.values() if w.fd >= 0)]
        try:
            readable, _, _ = select.select(fds, [], [], self._timeout())
        except InterruptedError:
            readable = []
        if self._wake_r in readable:
            self._on_signals()
        for worker in list(self.workers.values()):
            if worker.fd in readable:
                self._on_report(worker)
        self._reap()
        now = time.monotonic()
        self._check_deadlines(now)
        if self.config.reload and not self.stopping and now >= self._next_scan:
            self._next_scan = now + RELOAD_INTERVAL
            mtimes = self._scan()
            if mtimes != self._mtimes:
                changed = sorted(
                    set(mtimes.items()).symmetric_difference(self._mtimes.items()), key=str
                )
                self._mtimes = mtimes
                logger.info("%s changed; reloading", changed[0][0] if changed else "a file")
                self.reload()
        if not self.stopping:
            self._keep_workers(now)

    def _timeout(self) -> float:
        now = time.monotonic()
        deadlines = [now + 1.0]
        if self.config.reload:
            deadlines.append(self._next_scan)
        if self.respawn_at > now:
            deadlines.append(self.respawn_at)
        deadlines += [w.kill_at for w in self.workers.values() if w.kill_at is not None]
        return max(0.0, min(deadlines) - now)

    # -- signals and reports ---------------------------------------------------------------

    def _on_signals(self) -> None:
        try:
            data = os.read(self._wake_r, 512)
        except BlockingIOError:
            return
        for signum in data:
            if signum in (signal.SIGTERM, signal.SIGINT):
                name = signal.Signals(signum).name
                if self.stopping:
                    logger.info("%s again: closing every connection now", name)
                    self._signal_all(signal.SIGQUIT)
                else:
                    logger.info("%s: draining, then exiting", name)
                    self.stop(0)
            elif signum == signal.SIGHUP and not self.stopping:
                logger.info("SIGHUP: reloading")
                self.reload()

    def _on_report(self, worker: Worker) -> None:
        try:
            data = os.read(worker.fd, 4096)
        except OSError:
            data = b""
        if not data:
            os.close(worker.fd)
            worker.fd = -1
            return
        data, _, error = data.partition(b"E")
        if error:
            worker.error = error.decode("utf-8", "replace").strip()
        if b"H" in data or b"R" in data:
            worker.last_beat = time.monotonic()
        if b"R" in data and not worker.ready:
            worker.ready = True
            self.ever_ready = True
            self.failed_starts = 0
            logger.debug("worker %d serving", worker.pid)
            if worker.generation == self.pending:
                self._maybe_finish_reload()
        if b"X" in data and not worker.retiring:
            worker.retiring = True
            logger.info("worker %d reached --max-requests; replacing it", worker.pid)

    # -- workers ---------------------------------------------------------------------------

    def _spawn(self, generation: int, slot: int) -> None:
        read_fd, write_fd = os.pipe()
        # Signals stay blocked across fork until the child has its own handlers: one caught
        # in between would be written to the supervisor's wake-up pipe, as if it were ours.
        signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
            raise
        if pid == 0:  # the child: never returns into the supervisor's code
            status = 1
            try:
                signal.set_wakeup_fd(-1)
                for signum in _HANDLED:
                    signal.signal(signum, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
                os.close(read_fd)
                os.close(self._wake_r)
                os.close(self._wake_w)
                for other in self.workers.values():
                    if other.fd >= 0:
                        os.close(other.fd)
                listeners = self.listeners + self.slot_listeners[slot]
                stats_path = None
                if self.exporter is not None and self.board is not None:
                    self.exporter.close_in_child()
                    stats_path = self.board.path(os.getpid())
                sockets = [lis.sock for lis in listeners]
                status = run_worker(self.config, sockets, write_fd, stats_path)
            except BaseException:
                logger.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(status)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
        os.close(write_fd)
        self.workers[pid] = Worker(pid, generation, slot, read_fd, time.monotonic())
        if self.board is not None:
            self.board.started(pid)
        logger.debug("started worker %d (generation %d)", pid, generation)

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None:
                if worker.fd >= 0:
                    self._on_report(worker)  # a last "R" or "X" may be unread
                    if worker.fd >= 0:
                        os.close(worker.fd)
                if self.board is not None:
                    cause = None if self.stopping else _replaced_cause(worker, status)
                    self.board.exited(worker.pid, cause)
                self._on_exit(worker, status)

    def _on_exit(self, worker: Worker, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        if worker.stopping or self.stopping:
            logger.debug("worker %d stopped (%s)", worker.pid, _describe_status(status))
            return
        why = worker.error or _describe_status(status)
        if worker.generation == self.pending and not worker.ready:
            logger.error(
                "reload failed: a new worker could not start (%s); the old workers keep serving",
                why,
            )
            self._abandon_reload()
            return
        if not worker.ready:
            self.failed_starts += 1
            if code == BOOT_ERROR and not self.ever_ready:
                if not self.stopping_for_error:
                    self.stopping_for_error = True
                    print(f"vestespy: error: {why}", file=sys.stderr, flush=True)
                self.stop(1)
                return
            if self.failed_starts >= MAX_FAILED_STARTS:
                logger.error(
                    "workers failed to start %d times in a row (last: %s); giving up",
                    self.failed_starts,
                    _describe_status(status),
                )
                self.stop(1)
                return
            logger.warning("worker %d failed to start (%s); trying again", worker.pid, why)
            self.respawn_at = time.monotonic() + min(2.0, 0.1 * 2**self.failed_starts)
        elif worker.retiring and code == 0:
            logger.debug("worker %d retired", worker.pid)
        else:
            logger.warning(
                "worker %d died (%s); starting a new one", worker.pid, _describe_status(status)
            )

    def _keep_workers(self, now: float) -> None:
        """Start workers until the serving generation has its count (none retiring)."""
        if now < self.respawn_at:
            return
        for generation in (self.generation, self.pending):
            if generation is None:
                continue
            serving = {
                w.slot
                for w in self.workers.values()
                if w.generation == generation and not w.retiring and not w.stopping
            }
            for slot in range(self.config.workers):
                if slot not in serving:
                    self._spawn(generation, slot)

    def _check_deadlines(self, now: float) -> None:
        for worker in self.workers.values():
            if worker.kill_at is not None and now >= worker.kill_at:
                if worker.timed_out:
                    logger.warning("worker %d did not abort; killing it", worker.pid)
                else:
                    logger.warning("worker %d did not drain in time; killing it", worker.pid)
                _kill(worker.pid, signal.SIGKILL)
                worker.kill_at = None
        for worker in overdue(self.workers.values(), now, self.config.timeout):
            logger.error(
                "worker %d timed out: its loop has not reported for %.1f s (--timeout %g);"
                " killing it and starting a new one",
                worker.pid,
                now - worker.last_beat,
                self.config.timeout,
            )
            worker.stopping = worker.timed_out = True  # its slot is free: replace it now
            worker.kill_at = now + KILL_AFTER
            _kill(worker.pid, signal.SIGABRT)
        if self.pending is not None and now - self.pending_since > BOOT_TIMEOUT:
            logger.error("reload failed: new workers did not start within %.0f s", BOOT_TIMEOUT)
            self._abandon_reload()
        for worker in self.workers.values():
            if not worker.ready and not worker.stopping and now - worker.started > BOOT_TIMEOUT:
                logger.error("worker %d did not start within %.0f s", worker.pid, BOOT_TIMEOUT)
                self._terminate(worker, signal.SIGKILL)

    def _terminate(self, worker: Worker, signum: int = signal.SIGTERM) -> None:
        if not worker.stopping:
            worker.stopping = True
            worker.kill_at = time.monotonic() + self.config.graceful_timeout + KILL_MARGIN
        _kill(worker.pid, signum)

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers.values():
            _kill(worker.pid, signum)

    # -- reload and stop -------------------------------------------------------------------

    def reload(self) -> None:
        """Start a new generation of workers; retire the old one once it serves."""
        if self.pending is not None:
            self.reload_again = True
            return
        self.pending = self.generation + 1
        self.pending_since = time.monotonic()
        for slot in range(self.config.workers):
            self._spawn(self.pending, slot)

    def _maybe_finish_reload(self) -> None:
        pending = self.pending
        new = [w for w in self.workers.values() if w.generation == pending]
        if len(new) < self.config.workers or not all(w.ready for w in new):
            return
        assert pending is not None
        old = [w for w in self.workers.values() if w.generation != pending]
        self.generation = pending
        self.pending = None
        logger.info("reloaded: %d new workers serving; draining %d old", len(new), len(old))
        for worker in old:
            self._terminate(worker)
        if self.reload_again:
            self.reload_again = False
            self.reload()

    def _abandon_reload(self) -> None:
        for worker in self.workers.values():
            if worker.generation == self.pending:
                self._terminate(worker, signal.SIGKILL)
        self.pending = None
        self.reload_again = False

    def stop(self, status: int) -> None:
        """Drain every worker, then make :meth:`run` return ``status``."""
        self.stopping = True
        self.exit_status = max(self.exit_status, status)
        for worker in self.workers.values():
            self._terminate(worker)

    # -- --reload --------------------------------------------------------------------------

    def _scan(self) -> dict[str, float]:
        """The modification times of the Python files under the reload directories."""
        mtimes: dict[str, float] = {}
        for root in self.config.reload_dirs or (os.getcwd(),):
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [
                    d
                    for d in dirnames
                    if not d.startswith(".")
                    and d not in _SKIPPED_DIRS
                    and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))
                ]
                for name in filenames:
                    if name.endswith(".py"):
                        path = os.path.join(dirpath, name)
                        try:
                            mtimes[path] = os.stat(path).st_mtime
                        except OSError:
                            pass
        return mtimes


def _replaced_cause(worker: Worker, status: int) -> str:
    """Why a worker that exited while the command serves is replaced (the metrics' label)."""
    if worker.timed_out:
        return "timeout"
    if worker.stopping:
        return "reload" if worker.ready else "failed_start"
    if not worker.ready:
        return "failed_start"
    if worker.retiring and os.waitstatus_to_exitcode(status) == 0:
        return "max_requests"
    return "died"


def _no_op(signum: int, frame: object) -> None:
    """Signals are read from the wake-up pipe; the handler only has to exist."""


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise
