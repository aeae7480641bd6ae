"""The workloads: what each sends, to which servers, and which figures it yields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import wrk
from httpwire import cpu_seconds
from procs import Pinning, ServerProcess, run_client, run_tool

# uvicorn-httptools: uvicorn on httptools and uvloop, the C-parser reference users pick for speed;
# granian: the Rust WSGI server.
PEERS = ["waitress", "cheroot", "gunicorn", "uvicorn", "hypercorn", "uvicorn-httptools", "granian"]
# Two builds: the working tree's sources on h11 (pure), and the same sources compiled by mypyc
# (built by run.py into bench/.build) on h11_mypyc.
VESTESPY = [
    "vestespy-pool-epoll",
    "vestespy-inline-epoll",
    "vestespy-pool-select",
    "vestespy-inline-select",
    # The WSGI app of waitress, cheroot and gunicorn, through vestespy.wsgi.WSGIAdapter.
    "vestespy-wsgi-epoll",
    "vestespy-compiled-pool-epoll",
    "vestespy-compiled-inline-epoll",
    # The compiled pool with Server's default max_workers (50) rather than 4.
    "vestespy-compiled-pool50-epoll",
    # The same under SCHED_BATCH, as the command runs its workers (Linux).
    "vestespy-compiled-pool50-batch-epoll",
    # The WSGI app on the compiled build (what the default install gives where a compiler is).
    "vestespy-compiled-wsgi-epoll",
    # The Prometheus exporter on and scraped once a second (vestespy[metrics]).
    "vestespy-metrics-pool-epoll",
    "vestespy-metrics-inline-epoll",
    "vestespy-compiled-metrics-pool-epoll",
    "vestespy-compiled-metrics-inline-epoll",
]
# The vestespy command as users run it (a supervisor and one worker, its default pool of 50
# threads), serving the WSGI app (--wsgi) or the listener, with its default access log on
# stdout or with --no-access-log; on both builds.
COMMAND = [
    f"vestespy-{build}command-{app}{log}"
    for build in ("", "compiled-")
    for app in ("wsgi", "listener")
    for log in ("", "-nolog")
]
#: Left out of --quick's default set (--servers all): the CI smoke run stays short. The pure
#: build's default command rows run in it, which start the command as the others do.
QUICK_LEAVES_OUT = frozenset(
    name for name in COMMAND if name.endswith("-nolog") or "-compiled-" in name
)
#: Servers that serve from forked worker processes, whose RSS the idle workload does not read.
FORKING = ("gunicorn", "granian", *COMMAND)
BARE = "bare-socket"
# The h11 ceiling: h11 with a selectors loop and nothing else, for the hello workloads; on
# h11 and on h11_mypyc.
H11_MINIMAL = "h11-minimal"
H11_MINIMAL_MYPYC = "h11-minimal-mypyc"
#: aiohttp's server: a WebSocket peer only (the echo workloads).
AIOHTTP = "aiohttp"
SERVERS = [*PEERS, *VESTESPY, *COMMAND, BARE, H11_MINIMAL, H11_MINIMAL_MYPYC, AIOHTTP]
HTTP_SERVERS = [*PEERS, *VESTESPY, *COMMAND]
# The two transfers, with the bare socket loop as their reference.
TRANSFER_SERVERS = (*HTTP_SERVERS, BARE)
#: The WebSocket echo: VestesPy on epoll (both builds, pool and inline) against uvicorn (on
#: its websockets implementation) and aiohttp.
WEBSOCKET_SERVERS = (
    "vestespy-pool-epoll",
    "vestespy-inline-epoll",
    "vestespy-compiled-pool-epoll",
    "vestespy-compiled-inline-epoll",
    "uvicorn",
    AIOHTTP,
)


@dataclass(frozen=True)
class Scale:
    """Sizes and durations; ``--quick`` scales everything down so CI can run it all."""

    seconds: int
    warmup: bool
    stream_bytes: int
    close_count: int
    idle_connections: int
    idle_requests: int
    repeats: int  # short workloads (transfers, closes) are run this often; best counts
    websocket_connections: int  # of the ws-echo workload (its messages are 1 KiB)

    @classmethod
    def full(cls) -> Scale:
        return cls(5, True, 1 << 30, 1000, 10_000, 500, 3, 50)

    @classmethod
    def quick(cls) -> Scale:
        return cls(1, False, 64 << 20, 300, 1000, 100, 1, 10)


@dataclass
class Context:
    scale: Scale
    pinning: Pinning
    use_wrk: bool
    scripts: dict[str, Path]


@dataclass
class Measurement:
    figures: dict[str, float | None]
    notes: list[str] = field(default_factory=list)


Runner = Callable[[Context, ServerProcess], Measurement]


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    higher_is_better: bool


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    columns: tuple[Column, ...]
    servers: tuple[str, ...]
    run: Runner


def _check_errors(result: dict[str, float], notes: list[str]) -> None:
    errors, done = result.get("errors", 0), result.get("requests", 0)
    if done == 0:
        raise RuntimeError("no request completed")
    if errors:
        notes.append(f"{int(errors)} errors")
    # A few errors as wrk stops are noise; more means the server did not do the work.
    if errors > max(10, done * 0.01):
        raise RuntimeError(f"{int(errors)} errors in {int(done)} requests")


def _requests_per_second(
    ctx: Context, server: ServerProcess, *, depth: int = 1, body: int = 0
) -> Measurement:
    connections = 50
    notes: list[str] = []
    if ctx.use_wrk:
        script = ctx.scripts["pipeline"] if depth > 1 else ctx.scripts["post"] if body else None
        path = "/echo" if body else "/"
        if ctx.scale.warmup:
            run_tool(ctx.pinning, wrk.wrk_command(server.port, connections, 1, script, path), 60)
        command = wrk.wrk_command(server.port, connections, ctx.scale.seconds, script, path)
        cpu_before = cpu_seconds(server.pid)
        result = wrk.parse_report(run_tool(ctx.pinning, command, ctx.scale.seconds + 60))
        cpu_after = cpu_seconds(server.pid)
    else:
        args = ["load", "--port", str(server.port), "--connections", str(connections)]
        args += ["--depth", str(depth)]
        if body:
            args += ["--method", "POST", "--path", "/echo", "--body-size", str(body)]
        if ctx.scale.warmup:
            run_client(ctx.pinning, [*args, "--duration", "1"], 60)
        args += ["--duration", str(ctx.scale.seconds)]
        cpu_before = cpu_seconds(server.pid)
        result = run_client(ctx.pinning, args, ctx.scale.seconds + 60)
        cpu_after = cpu_seconds(server.pid)
    _check_errors(result, notes)
    figures = {"rate": result["value"]}
    if cpu_before is not None and cpu_after is not None:
        # Server CPU per request (µs): the server process's user + system time over the
        # measured run (every thread), divided by the requests completed in it.
        figures["cpu"] = (cpu_after - cpu_before) * 1e6 / result["requests"]
    return Measurement(figures, notes)


def _hello(ctx: Context, server: ServerProcess) -> Measurement:
    return _requests_per_second(ctx, server)


def _pipelined(ctx: Context, server: ServerProcess) -> Measurement:
    return _requests_per_second(ctx, server, depth=16)


def _post(ctx: Context, server: ServerProcess) -> Measurement:
    return _requests_per_second(ctx, server, body=1024)


def _transfer(mode: str) -> Runner:
    def run(ctx: Context, server: ServerProcess) -> Measurement:
        size = ctx.scale.stream_bytes
        args = [mode, "--port", str(server.port), "--size", str(size)]
        # A transfer lasts about a second: on a shared machine one run is at the mercy of a
        # neighbour's burst, so the best of a few is the figure.
        rates = [run_client(ctx.pinning, args, 900)["value"] for _ in range(ctx.scale.repeats)]
        return Measurement({"rate": max(rates)})

    return run


def _close(ctx: Context, server: ServerProcess) -> Measurement:
    args = ["close", "--port", str(server.port), "--count", str(ctx.scale.close_count)]
    rates = []
    for _ in range(ctx.scale.repeats):
        result = run_client(ctx.pinning, args, 300)
        if result["errors"]:
            raise RuntimeError(f"{result['errors']} of {ctx.scale.close_count} connections failed")
        rates.append(result["value"])
    return Measurement({"rate": max(rates)})


def _idle(ctx: Context, server: ServerProcess) -> Measurement:
    args = ["idle", "--port", str(server.port), "--server-pid", str(server.pid)]
    args += ["--connections", str(ctx.scale.idle_connections)]
    args += ["--requests", str(ctx.scale.idle_requests)]
    result = run_client(ctx.pinning, args, 600)
    return Measurement({"rss": result["value"], "p99": result["p99_ms"]})


def _websocket_idle(ctx: Context, server: ServerProcess) -> Measurement:
    args = ["ws-idle", "--port", str(server.port), "--server-pid", str(server.pid)]
    args += ["--connections", str(ctx.scale.idle_connections), "--size", "16"]
    result = run_client(ctx.pinning, args, 600)
    return Measurement({"rss": result["value"]})


def _websocket(mode: str, size: int) -> Runner:
    def run(ctx: Context, server: ServerProcess) -> Measurement:
        args = [mode, "--port", str(server.port), "--size", str(size)]
        args += ["--connections", str(ctx.scale.websocket_connections)]
        if ctx.scale.warmup:
            run_client(ctx.pinning, [*args, "--duration", "1"], 120)
        args += ["--duration", str(ctx.scale.seconds)]
        result = run_client(ctx.pinning, args, ctx.scale.seconds + 120)
        if not result["messages"]:
            raise RuntimeError("no message echoed")
        return Measurement({"rate": result["value"]})

    return run


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload(
            "hello",
            "hello world, keep-alive, 50 connections",
            (Column("rate", "hello req/s", True), Column("cpu", "hello CPU us/req", False)),
            (*HTTP_SERVERS, H11_MINIMAL, H11_MINIMAL_MYPYC),
            _hello,
        ),
        Workload(
            "pipelined",
            "hello world, 16 requests per write, 50 connections",
            (Column("rate", "pipelined x16 req/s", True),),
            (*HTTP_SERVERS, H11_MINIMAL, H11_MINIMAL_MYPYC),
            _pipelined,
        ),
        Workload(
            "post",
            "POST with a 1 KiB body echoed back, keep-alive, 50 connections",
            (Column("rate", "POST 1 KiB echo req/s", True),),
            tuple(HTTP_SERVERS),
            _post,
        ),
        Workload(
            "stream",
            "one response body streamed in 64 KiB pieces (send_stream)",
            (Column("rate", "stream out MB/s", True),),
            TRANSFER_SERVERS,
            _transfer("stream"),
        ),
        Workload(
            "upload",
            "one chunked request body in 64 KiB chunks, counted by the app",
            (Column("rate", "chunked in MB/s", True),),
            TRANSFER_SERVERS,
            _transfer("upload"),
        ),
        Workload(
            "close",
            "new connections, one request each with Connection: close, 10 at a time",
            (Column("rate", "close conn/s", True),),
            tuple(HTTP_SERVERS),
            _close,
        ),
        Workload(
            "idle",
            "idle keep-alive connections held open: server RSS each, p99 of requests among them",
            (Column("rss", "idle KiB/conn", False), Column("p99", "idle p99 ms", False)),
            # select() cannot watch more than 1024 sockets: the idle workload is for epoll.
            # gunicorn, granian and the command serve from forked workers whose RSS the
            # harness does not read.
            tuple(s for s in HTTP_SERVERS if not s.endswith("-select") and s not in FORKING),
            _idle,
        ),
        Workload(
            "ws-echo",
            "1 KiB WebSocket messages echoed, one in flight per connection, 50 connections",
            (Column("rate", "ws echo 1 KiB msg/s", True),),
            WEBSOCKET_SERVERS,
            _websocket("ws-echo", 1024),
        ),
        Workload(
            "ws-big",
            "1 MiB WebSocket messages echoed on one connection",
            (Column("rate", "ws echo 1 MiB MB/s", True),),
            WEBSOCKET_SERVERS,
            _websocket("ws-big", 1 << 20),
        ),
        Workload(
            "ws-idle",
            "idle WebSockets held open (one 16-byte echo each): server RSS each",
            (Column("rss", "ws idle KiB/ws", False),),
            WEBSOCKET_SERVERS,
            _websocket_idle,
        ),
    ]
}
