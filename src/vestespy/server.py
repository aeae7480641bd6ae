"""The public :class:`Server`: binding, the loop, the pool and the connections wired together."""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, overload

from ._admission import admission_for
from ._backends import EVENT_READ, FDLimitError, create_backend
from ._connection import Connection
from ._context import ConnectionContext
from ._core import version_line
from ._emitter import EventEmitter
from ._loop import EventLoop, Timer
from ._memory import release_memory
from ._metrics import MetricsExporter, StatsCollector
from ._mistakes import UnansweredWatch
from ._pool import WorkerPool
from ._stats import Counters, PoolLoad, ServerStats
from ._tls import server_tls_context
from .options import ServerOptions
from .proxies import TrustedProxies
from .request import Request

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self, Unpack

    from .access_log import AccessHook
    from .options import ServerOptionsKwargs
    from .response import Response
    from .websocket import WebSocket

__all__ = ["RequestListener", "Server", "WebSocketListener"]

_logger: logging.Logger = logging.getLogger("vestespy.error")

#: A ``"request"`` listener: ``fn(server, req, res)``. It answers through ``res``; it returns
#: None (a value it returns is ignored, with a warning in the log).
RequestListener = Callable[["Server", Request, "Response"], None]

#: A ``"websocket"`` listener: ``fn(server, ws, req)``, called before the handshake is
#: answered (see :class:`~vestespy.WebSocket`).
WebSocketListener = Callable[["Server", "WebSocket", Request], None]

_ACCEPTS_PER_PASS = 64
# accept() errors that say the process or system is out of a resource (file descriptors,
# buffers): accepting again at once would fail again, so accepting pauses for a while.
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# The pause after such an error doubles from the first to the last while errors go on, and
# ends early when a connection closes (which frees a descriptor).
_ACCEPT_BACKOFF_FIRST = 0.05
_ACCEPT_BACKOFF_MAX = 1.0
# Freed memory is handed back to the system (see _memory.py) this long after the connections
# fell to a quarter of their peak, when at least this many had been open at once.
_RELEASE_DELAY = 1.0
_RELEASE_MIN_PEAK = 8
# How often timeouts are checked: at most once a second, and often enough to keep each
# timeout accurate to half its length (short timeouts are mostly for tests).
_SWEEP_MAX_INTERVAL = 1.0
_SWEEP_MIN_INTERVAL = 0.05
# A draining server closes a connection once it has been idle this long (at most half the
# drain's timeout). Closing an idle keep-alive connection races with a request its client may
# be sending at that instant; a client (or proxy) picks the connection it used last, so one
# idle for a while is the one least likely to be in use. Until then a request on it is
# answered, with Connection: close.
_DRAIN_IDLE = 1.0
# How often a draining server looks for idle connections.
_DRAIN_SWEEP = 0.05
# How long a listener task may wait behind busy listener threads before another thread is
# woken for it (see WorkerPool): longer than a typical listener's turn, so that a burst of
# requests runs on the threads already awake, one context switch for many requests; short
# enough that a listener blocked on I/O delays the next request by little.
_HANDOFF_DELAY = 0.002


def _check_port(port: object) -> None:
    """Refuse a port ``getaddrinfo`` would silently wrap to 16 bits (70000 binds 4464)."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0-65535 (0 picks a free one), not {port}")


def _listening_sockets(
    addr: tuple[str, int] | socket.socket | Sequence[socket.socket], options: ServerOptions
) -> list[socket.socket]:
    """Bind ``addr``, or take the listening socket(s) given."""
    if isinstance(addr, socket.socket):
        socks = [addr]
    elif isinstance(addr, tuple) and len(addr) == 2 and not isinstance(addr[0], socket.socket):
        return [_bind(addr, options.backlog, options.reuse_port)]
    else:
        socks = list(addr)
    if not socks or not all(isinstance(sock, socket.socket) for sock in socks):
        raise TypeError("addr must be (host, port), a listening socket or a list of them")
    for sock in socks:
        sock.setblocking(False)
    return socks


def _bind(addr: tuple[str, int], backlog: int, reuse_port: bool) -> socket.socket:
    host, port = addr[0], addr[1]
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, _, _, _, sockaddr = infos[0]
    sock = socket.create_server(sockaddr[:2], family=family, backlog=backlog, reuse_port=reuse_port)
    sock.setblocking(False)
    return sock


class Server(EventEmitter[Literal["request", "websocket"]]):
    """An HTTP/1.1 server: a loop thread for I/O and a pool of threads for listeners.

    The socket is bound and listening when the constructor returns (port 0 picks a free
    port: see :attr:`address`). :meth:`serve_forever` runs the loop; :meth:`shutdown` stops
    it. Use the server as a context manager to close its sockets.

    Events:
        ``"request"``: ``fn(server, req, res)`` once a request head is parsed.

        ``"websocket"``: ``fn(server, ws, req)`` for a valid WebSocket opening handshake,
        before it is answered (see :doc:`/websocket`). Without a listener, an upgrade request
        is an ordinary ``"request"``.

    Args:
        addr: ``(host, port)`` to bind; IPv6 hosts work too.
        debug: Put the traceback in the body of the 500 sent when a listener raises.
        select: The selector backend: ``"auto"`` or a name from
            :func:`~vestespy.available_backends`.
        handler: The request class, :class:`~vestespy.Request` or a subclass.
        max_workers: Listener threads; 0 runs listeners on the loop thread (they must not
            block).
        ssl_context: Serve HTTPS with this server-side context (its ALPN protocols are set
            to ``http/1.1``; its SNI callback, if any, runs in each handshake). The
            ``certfile`` and ``keyfile`` options are the short way.
        **options: Fields of :class:`~vestespy.ServerOptions`.

    Raises:
        ValueError: ``select`` names a backend this platform does not have, or the port is
            outside 0-65535.
        TypeError: An option is unknown, or the port is not an int.
        OSError: The address cannot be bound.
    """

    #: Whether tracebacks are sent to clients.
    debug: bool
    #: The request class.
    handler: type[Request]
    #: The limits and timeouts in force.
    options: ServerOptions
    #: The name of the selector backend in use.
    backend: str
    #: The number of listener threads; 0 runs listeners inline on the loop thread.
    max_workers: int
    #: Whether the server speaks TLS (HTTPS).
    tls: bool
    #: The access log hook, or None (see :mod:`vestespy.access_log`).
    access_log: AccessHook | None

    def __init__(
        self,
        addr: tuple[str, int] | socket.socket | Sequence[socket.socket],
        debug: bool = False,
        select: str = "auto",
        handler: type[Request] = Request,
        max_workers: int = 50,
        ssl_context: ssl.SSLContext | None = None,
        *,
        access_log: AccessHook | None = None,
        **options: Unpack[ServerOptionsKwargs],
    ) -> None:
        super().__init__()
        if isinstance(addr, tuple) and len(addr) == 2 and isinstance(addr[0], str):
            _check_port(addr[1])
        self.options: ServerOptions = ServerOptions.from_kwargs(options)
        tls = server_tls_context(ssl_context, self.options)
        self.debug: bool = debug
        self.handler: type[Request] = handler
        self.max_workers: int = max_workers
        self.tls: bool = tls is not None
        self.access_log = access_log
        trusted = TrustedProxies(self.options.trusted_proxies)
        backend = create_backend(select)
        self.backend: str = backend.name
        self._pool = WorkerPool(
            max_workers, handoff_delay=_HANDOFF_DELAY, on_first_wake=self._pool_woke
        )
        try:
            self._socks = _listening_sockets(addr, self.options)
        except BaseException:
            backend.close()
            self._pool.shutdown(wait=False)
            raise
        self._loop = EventLoop(backend)
        if max_workers:
            self._loop.set_watcher(self._pool.watch)
        self._connections: set[Connection] = set()
        self._serving = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._closed = False
        self._close_when_stopped = False
        self._draining = False
        self._drain_idle = _DRAIN_IDLE
        self._drain_timer: Timer | None = None
        opts = self.options
        shortest = min(
            opts.keep_alive_timeout,
            opts.client_timeout,
            opts.linger_timeout,
            opts.header_timeout,
            opts.rate_grace_period
            if opts.min_body_rate or opts.min_response_rate
            else opts.keep_alive_timeout,
            opts.websocket_close_timeout,
            opts.websocket_ping_interval or opts.keep_alive_timeout,
            opts.websocket_ping_timeout or opts.keep_alive_timeout,
        )
        # The most connections open at once since memory was last handed back, and the
        # one-shot timer that will hand it back.
        self._peak_connections = 0
        self._release_timer: Timer | None = None
        # The deadlines' sweep runs only while there are connections.
        self._sweep_timer: Timer | None = None
        self._sweep_interval = min(_SWEEP_MAX_INTERVAL, max(_SWEEP_MIN_INTERVAL, shortest / 2))
        # Debug mode: requests left unanswered are named after a while (see _mistakes.py).
        self._unanswered: UnansweredWatch | None = None
        if debug and opts.unanswered_warning > 0:
            self._unanswered = UnansweredWatch(opts.unanswered_warning)
            self._sweep_interval = min(
                self._sweep_interval, max(_SWEEP_MIN_INTERVAL, opts.unanswered_warning / 2)
            )
        # Default headers, limit_concurrency, client certificates (see _admission.py).
        self._admission = admission = admission_for(self.options)
        self._counters = Counters()  # see stats()
        self._context = ConnectionContext(
            loop=self._loop,
            options=self.options,
            handler=handler,
            debug=debug,
            inline=max_workers == 0,
            new_strand=self._pool.strand,
            emit_request=self.emit if self._unanswered is None else self._emit_watched,
            forget=self._forget,
            ssl_context=tls,
            access_log=access_log,
            trusted_proxies=trusted if trusted else None,
            admit=admission.admit if admission is not None else None,
            wants_websocket=self._wants_websocket,
            emit_websocket=self.emit,
            counters=self._counters,
        )
        # Accepting pauses at max_connections and after accept() ran out of a resource.
        self._accepting = False
        self._accept_backoff = 0.0
        self._accept_timer: Timer | None = None
        # /metrics on a listener of its own (see _metrics.py), when asked for.
        self._exporter: MetricsExporter | None = None
        try:
            self._start_accepting()
            if opts.metrics_bind is not None:
                self._exporter = MetricsExporter(opts.metrics_bind, StatsCollector(self.stats))
        except BaseException:
            for sock in self._socks:
                sock.close()
            self._loop.close()
            self._pool.shutdown(wait=False)
            raise

    # -- public API ----------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; the port is the real one when 0 was asked for.

        With several sockets, the first one's; for a UNIX domain socket, ``(path, 0)``.
        """
        name = self._socks[0].getsockname()
        if isinstance(name, str | bytes):
            return os.fsdecode(name), 0
        return name[0], name[1]

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets."""
        return list(self._socks)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """The bound ``(host, port)`` of the ``/metrics`` listener (``metrics_bind``), or None."""
        return self._exporter.address if self._exporter is not None else None

    def stats(self) -> ServerStats:
        """What the server has done since it was made, and what it is doing now.

        Safe to call from any thread, while serving or not; the counting costs no lock (see
        :class:`ServerStats` and :doc:`/metrics`). ``metrics_bind`` serves the same figures
        to Prometheus.
        """
        threads, busy, queued = self._pool.load()
        return self._counters.snapshot(PoolLoad(threads, busy, queued))

    @overload
    def on(self, event: Literal["request"], listener: RequestListener) -> Self: ...
    @overload
    def on(self, event: Literal["websocket"], listener: WebSocketListener) -> Self: ...
    def on(self, event: Literal["request", "websocket"], listener: Callable[..., None]) -> Self:
        """Call ``listener(server, req, res)`` for each request, or ``listener(server, ws,
        req)`` for each WebSocket handshake.

        Args:
            event: ``"request"`` or ``"websocket"``.
            listener: The listener.

        Returns:
            The server, so that calls can be chained.
        """
        return super().on(event, listener)

    @overload
    def once(self, event: Literal["request"], listener: RequestListener) -> Self: ...
    @overload
    def once(self, event: Literal["websocket"], listener: WebSocketListener) -> Self: ...
    def once(self, event: Literal["request", "websocket"], listener: Callable[..., None]) -> Self:
        """Like :meth:`on`, for the next request (or WebSocket) only.

        Args:
            event: ``"request"`` or ``"websocket"``.
            listener: The listener.

        Returns:
            The server, so that calls can be chained.
        """
        return super().once(event, listener)

    def serve_forever(self) -> None:
        """Serve on the calling thread until :meth:`shutdown` is called.

        Raises:
            RuntimeError: The server is closed or already serving.
        """
        if self._closed:
            raise RuntimeError("the server is closed")
        if self._serving.is_set():
            raise RuntimeError("the server is already serving")
        self._stopped.clear()
        # A shutdown() from before this call is stale; one from after wait_serving() returns
        # (or from a listener) is honoured.
        self._loop.cancel_stop()
        self._serving.set()
        _logger.info("%s", version_line())
        try:
            if self._connections and self._sweep_timer is None:
                self._sweep_timer = self._loop.call_later(self._sweep_interval, self._sweep)
            self._loop.run()
        finally:
            if self._sweep_timer is not None:
                self._sweep_timer.cancel()
                self._sweep_timer = None
            for connection in list(self._connections):
                connection.meter.closing("server")  # shutting down
                connection.close()
            if self._draining:
                self._draining = False
                if self._drain_timer is not None:
                    self._drain_timer.cancel()
                    self._drain_timer = None
                if not self._close_when_stopped:
                    self._start_accepting()
            if self._close_when_stopped:
                self._serving.clear()
                self.close()
            self._serving.clear()
            self._stopped.set()

    def shutdown(self, timeout: float = 0.0) -> None:
        """Make :meth:`serve_forever` return: at once, or after draining for ``timeout``.

        With ``timeout`` 0 (the default) open connections are closed now. With a positive
        ``timeout`` the server drains first: it stops accepting, lets the requests in flight
        finish (their responses carry ``Connection: close``, unless their head had gone out
        already: the connection then stays open as it promised), closes keep-alive
        connections once they have been idle for a second (a request sent on one meanwhile,
        or waiting unread when the second is up, is answered, with ``Connection: close``),
        and returns once none is left, or after ``timeout``
        seconds, closing what is still open. A later call with a shorter timeout (or 0) cuts
        it short.

        Safe to call from any thread, from a listener and from a signal handler; it does
        not wait (see :meth:`wait_stopped`).

        Args:
            timeout: Seconds to let requests in flight finish.
        """
        if timeout <= 0:
            self._loop.stop()
            return
        self._loop.call_soon(self._drain, timeout)
        self._loop.wake()  # call_soon does not wake when called on the loop thread's stack

    def wait_serving(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`serve_forever` is running; return whether it is.

        Useful when another thread starts the server, as tests do.
        """
        return self._serving.wait(timeout)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`serve_forever` has returned; return whether it has."""
        return self._stopped.wait(timeout)

    def close(self) -> None:
        """Stop serving and release the sockets and threads (idempotent).

        From a listener (on the loop thread or a pool thread) it returns at once and
        :meth:`serve_forever` closes everything before it returns. From any other thread it
        waits for :meth:`serve_forever` to return.
        """
        if self._closed:
            return
        from_listener = self._loop.in_loop_thread() or self._pool.in_worker_thread()
        if self._serving.is_set():
            if from_listener:
                # The loop still needs its sockets: serve_forever closes once it has returned.
                self._close_when_stopped = True
                self.shutdown()
                return
            self.shutdown()
            self._stopped.wait()
        self._closed = True
        for sock in self._socks:
            sock.close()
        if self._exporter is not None:
            self._exporter.close()
        self._loop.close()
        # A listener cannot wait for the pool it runs on.
        self._pool.shutdown(wait=not from_listener)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        host, port = self.address if not self._closed else ("closed", 0)
        return f"<Server {host}:{port} backend={self.backend} max_workers={self.max_workers}>"

    # -- loop thread ---------------------------------------------------------------------------

    def _accept(self, listening: socket.socket) -> None:
        limit = self.options.max_connections
        connections = self._connections
        for attempt in range(_ACCEPTS_PER_PASS):
            if limit is not None and len(connections) >= limit:
                if not attempt:
                    # Woken at the limit: a client is waiting. It and later clients wait in
                    # the listen queue until a connection closes (_forget): no 503 (see
                    # docs/metrics.rst), but the pause is counted, so that an operator sees
                    # it. Reached in the middle of a pass, the next pass tells whether anyone
                    # waits (the listening socket stays readable while someone does).
                    self._stop_accepting("max_connections")
                return
            try:
                sock, client_address = listening.accept()
            except (BlockingIOError, InterruptedError):
                self._accept_backoff = 0.0
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRNOS:
                    self._back_off(f"accept failed: {exc}")
                    return
                # ECONNABORTED and the like: that client is gone; others may be waiting.
                _logger.debug("accept failed: %s", exc)
                continue
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                connections.add(Connection(self._context, sock, client_address))
            except FDLimitError as exc:
                # select past FD_SETSIZE: this client is turned away; others wait until a
                # connection closes and frees a low descriptor.
                sock.close()
                self._back_off(f"connection from {client_address} refused: {exc}")
                return
            if self._sweep_timer is None:
                self._sweep_timer = self._loop.call_later(self._sweep_interval, self._sweep)
            if len(connections) > self._peak_connections:
                self._peak_connections = len(connections)
        self._accept_backoff = 0.0

    def _back_off(self, reason: str) -> None:
        """Stop accepting for a while: the process is out of descriptors or buffers."""
        delay = min(_ACCEPT_BACKOFF_MAX, max(_ACCEPT_BACKOFF_FIRST, self._accept_backoff * 2))
        if not self._accept_backoff:
            # Once per episode: under a flood, one line a retry would drown the log.
            _logger.warning(
                "%s; accepting paused (retrying every %.2f-%.0f s, and whenever a connection "
                "closes); %d connections open",
                reason,
                _ACCEPT_BACKOFF_FIRST,
                _ACCEPT_BACKOFF_MAX,
                len(self._connections),
            )
        self._accept_backoff = delay
        self._stop_accepting("resources")
        self._accept_timer = self._loop.call_later(delay, self._start_accepting)

    def _stop_accepting(self, reason: str | None = None) -> None:
        """Stop watching the listening sockets; ``reason``: a pause to count (see
        ``_stats.ACCEPT_PAUSE_REASONS``), None when the server drains or stops."""
        if self._accepting:
            if reason is not None:
                self._counters.accepting_paused(reason)
            self._accepting = False
            for listening in self._socks:
                self._loop.backend.unregister(listening.fileno())

    def _start_accepting(self) -> None:
        if self._accept_timer is not None:
            self._accept_timer.cancel()
            self._accept_timer = None
        if not self._accepting and not self._closed and not self._draining:
            self._accepting = True
            backend = self._loop.backend
            for listening in self._socks:

                def on_acceptable(events: int, listening: socket.socket = listening) -> None:
                    self._accept(listening)

                backend.register(listening.fileno(), EVENT_READ, on_acceptable)

    def _drain(self, timeout: float) -> None:
        """Stop accepting; close idle connections; stop once the others are done."""
        if self._drain_timer is not None:
            if self._drain_timer.when <= time.monotonic() + timeout:
                return  # an earlier deadline stands
            self._drain_timer.cancel()
        self._drain_timer = self._loop.call_later(timeout, self._loop.stop)
        if self._draining:
            return
        self._stop_accepting()
        self._draining = True
        self._drain_idle = min(_DRAIN_IDLE, timeout / 2)
        for connection in list(self._connections):
            connection.stop_keep_alive()
        self._drain_sweep()

    def _drain_sweep(self) -> None:
        if not self._draining:
            return
        if not self._connections:
            self._loop.stop()
            return
        now = time.monotonic()
        for connection in list(self._connections):
            connection.close_if_idle(now, self._drain_idle)
        self._loop.call_later(_DRAIN_SWEEP, self._drain_sweep)

    def _forget(self, connection: Connection) -> None:
        self._connections.discard(connection)
        if self._draining:
            if not self._connections:
                self._loop.stop()
            return
        if (
            self._release_timer is None
            and self._peak_connections >= _RELEASE_MIN_PEAK
            and len(self._connections) <= self._peak_connections // 4
        ):
            # The load has passed: give its memory back once the closing settles.
            self._release_timer = self._loop.call_later(_RELEASE_DELAY, self._release_memory)
        if not self._accepting:
            # A descriptor and a connection slot are free: take the next client now.
            limit = self.options.max_connections
            if limit is None or len(self._connections) < limit:
                self._start_accepting()

    def _pool_woke(self) -> None:
        # A listener thread woke while none was awake: the loop must watch the pool from now
        # on (see WorkerPool.watch); it does on its next pass, which this brings forward when
        # the task came from another thread while the loop may be waiting without a bound.
        if not self._loop.in_loop_thread():
            self._loop.wake()

    def _wants_websocket(self) -> bool:
        return self.has_listeners("websocket")

    def _release_memory(self) -> None:
        self._release_timer = None
        self._peak_connections = len(self._connections)
        release_memory()

    def _emit_watched(self, event: str, req: Request, res: Response) -> bool:
        """``emit``, then watch the request if its listeners left it unanswered (debug)."""
        emitted = self.emit(event, req, res)
        watch = self._unanswered
        if watch is not None and not res.headers_sent:
            watch.add(req, res, time.monotonic())
        return emitted

    def _sweep(self) -> None:
        """Close connections whose client stayed silent past the timeout that applies."""
        now = time.monotonic()
        for connection in list(self._connections):
            connection.check_deadlines(now)
        if self._unanswered is not None:
            self._unanswered.report(now)
        # Only while there are connections: an idle server does not wake up.
        self._sweep_timer = (
            self._loop.call_later(self._sweep_interval, self._sweep) if self._connections else None
        )
