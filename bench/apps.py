"""The servers under test, each with the same tiny app: ``python bench/apps.py NAME PORT``.

Every app answers the same routes, so that one client drives all servers alike:

* ``GET /`` -> ``Hello, World!`` (13 bytes, keep-alive and pipelined workloads)
* ``POST /echo`` -> the request body (Content-Length bodies)
* ``GET /stream/N`` -> N bytes in 64 KiB pieces, with Content-Length
* ``POST /upload`` -> the body (chunked) is read and counted; the answer is the count
* ``GET /ws`` as a WebSocket (VestesPy, uvicorn, aiohttp) -> every message echoed back as it
  came (the ws-echo and ws-big workloads); messages of up to 2 MiB, no compression offered

Keep-alive timeouts are raised everywhere (several peers default to 5 s) so that the idle
workload measures memory, not which server drops connections first.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

# Measure the working tree, not whatever vestespy happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

HOST = "127.0.0.1"
HELLO = b"Hello, World!"
PIECE = 64 * 1024
# One shared piece: streaming apps send the same object again and again, so no server pays
# for producing the bytes and every server is handed identical work.
_BLOCK = b"x" * PIECE
KEEP_ALIVE = 120
# VestesPy's limits lifted as the peers' are (see the README): the idle workload holds up to
# 10,000 connections, past the default max_connections of 1,000.
VESTESPY_OPTIONS: dict[str, Any] = {"keep_alive_timeout": KEEP_ALIVE, "max_connections": None}
#: The largest WebSocket message every server takes (the ws-big workload sends 1 MiB).
WS_MAX_MESSAGE = 2 << 20

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _pieces(total: int) -> Iterator[bytes]:
    full, rest = divmod(total, PIECE)
    for _ in range(full):
        yield _BLOCK
    if rest:
        yield _BLOCK[:rest]


def _stream_size(path: str) -> int | None:
    if path.startswith("/stream/"):
        return int(path[len("/stream/") :])
    return None


# -- WSGI (waitress, cheroot, gunicorn, VestesPy's adapter) -------------------------------


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    size = _stream_size(path)
    if size is not None:
        start_response("200 OK", [("Content-Length", str(size))])
        return _pieces(size)
    if environ["REQUEST_METHOD"] == "POST":
        stream = environ["wsgi.input"]
        if path == "/upload":
            count = 0
            while data := stream.read(PIECE):
                count += len(data)
            body = str(count).encode()
        else:
            body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
    else:
        body = HELLO
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def run_waitress(port: int) -> None:
    import waitress

    # Poll, not select(): select() cannot watch the idle workload's 10,000 sockets.
    waitress.serve(
        wsgi_app,
        host=HOST,
        port=port,
        threads=4,
        connection_limit=20000,
        asyncore_use_poll=True,
        backlog=4096,
        channel_timeout=KEEP_ALIVE,
        # The default cap is exactly 1 GiB, which the chunked upload's framing exceeds.
        max_request_body_size=1 << 40,
        _quiet=True,
    )


def run_cheroot(port: int) -> None:
    from cheroot import wsgi

    server = wsgi.Server(
        (HOST, port), wsgi_app, numthreads=10, request_queue_size=4096, timeout=KEEP_ALIVE
    )
    # cheroot closes idle keep-alive connections beyond 10 by default: lift that cap so the
    # 50-connection and idle workloads measure serving, not reconnecting.
    server.keep_alive_conn_limit = 20000
    server.safe_start()


def run_gunicorn(port: int) -> None:
    """gunicorn with its gthread worker: one worker process of 4 threads, as waitress has."""
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": f"{HOST}:{port}",
                "worker_class": "gthread",
                "workers": 1,
                "threads": 4,
                "keepalive": KEEP_ALIVE,
                "backlog": 4096,
                "worker_connections": 20000,
                "graceful_timeout": 1,
                "accesslog": None,
                "loglevel": "warning",
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return wsgi_app

    Application().run()


def run_vestespy_wsgi(port: int, select: str, max_workers: int, compiled: bool = False) -> None:
    """The same WSGI app on VestesPy's adapter (vestespy.wsgi), pool of 4 as waitress; on the
    pure build and h11, or the compiled build and h11_mypyc (see :func:`run_vestespy`)."""
    _choose_build(compiled)
    import vestespy
    from vestespy.wsgi import WSGIAdapter

    server = vestespy.Server(
        (HOST, port), select=select, max_workers=max_workers, **VESTESPY_OPTIONS
    )
    server.on("request", WSGIAdapter(wsgi_app))
    server.serve_forever()


# -- ASGI (uvicorn, hypercorn) -------------------------------------------------------------

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await _asgi_websocket_echo(receive, send)
        return
    path = scope["path"]
    size = _stream_size(path)
    if size is not None:
        headers = [(b"content-length", str(size).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in _pieces(size):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["method"] == "POST":
        parts: list[bytes] = []
        count = 0
        more = True
        while more:
            message = await receive()
            data = message.get("body", b"")
            more = message.get("more_body", False)
            if path == "/upload":
                count += len(data)
            else:
                parts.append(data)
        body = str(count).encode() if path == "/upload" else b"".join(parts)
    else:
        body = HELLO
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _asgi_websocket_echo(receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message["text"]})


def run_uvicorn(port: int) -> None:
    """uvicorn on h11 and asyncio; WebSockets on its ``websockets`` implementation."""
    import uvicorn

    uvicorn.run(
        asgi_app,
        host=HOST,
        port=port,
        http="h11",
        ws="websockets",
        ws_max_size=WS_MAX_MESSAGE,
        loop="asyncio",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE,
        backlog=4096,
    )


def run_uvicorn_httptools(port: int) -> None:
    """uvicorn on httptools (llhttp, in C) and uvloop: the reference users pick for speed."""
    import uvicorn

    uvicorn.run(
        asgi_app,
        host=HOST,
        port=port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE,
        backlog=4096,
    )


def run_hypercorn(port: int) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{HOST}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = KEEP_ALIVE
    config.backlog = 4096
    asyncio.run(serve(asgi_app, config))  # type: ignore[arg-type]


# -- VestesPy ------------------------------------------------------------------------------


#: Where run.py installs the compiled build of the working tree (``pip install --target``).
COMPILED_BUILD = (
    Path(__file__).resolve().parent
    / ".build"
    / f"compiled-py{sys.version_info[0]}{sys.version_info[1]}"
)


def _choose_build(compiled: bool) -> None:
    """Import VestesPy's pure build on h11, or its compiled build on h11_mypyc; check it."""
    os.environ["VESTESPY_H11"] = "h11_mypyc" if compiled else "h11"
    if compiled:
        sys.path.insert(0, str(COMPILED_BUILD))
    import vestespy

    info = vestespy.build_info()
    if info.compiled != compiled:
        raise SystemExit(f"expected the {'compiled' if compiled else 'pure'} build: {info}")
    print(info, flush=True)


def listener(server: Any, req: Any, res: Any) -> None:
    """The app as a VestesPy ``"request"`` listener (also ``vestespy apps:listener``)."""
    size = _stream_size(req.path)
    if size is not None:
        res.send_stream(_pieces(size), size)
    elif req.method == "POST" and req.path == "/upload":
        count = [0]
        req.on("data", lambda _e, _q, _r, chunk: count.__setitem__(0, count[0] + len(chunk)))
        req.on("end", lambda _e, _q, r: r.send_all(str(count[0])))
    elif req.method == "POST":
        parts: list[bytes] = []
        req.on("data", lambda _e, _q, _r, chunk: parts.append(chunk))
        req.on("end", lambda _e, _q, r: r.send_all(b"".join(parts)))
    else:
        # A body-less GET can be answered from the "request" listener directly.
        res.headers.set("Content-Type", "text/plain")
        res.send_all(HELLO)


def run_vestespy(
    port: int,
    select: str,
    max_workers: int,
    compiled: bool = False,
    metrics: bool = False,
    batch: bool = False,
) -> None:
    """VestesPy: the working tree's sources on h11, or its mypyc build on h11_mypyc.

    ``metrics``: with the Prometheus exporter on a port of its own, scraped once a second from
    a thread of this process (Prometheus scrapes every 15-60 s: this is the dear end).
    ``batch``: under Linux's SCHED_BATCH policy, as the command runs its workers (what a
    program of the library's users gains by doing the same; see the command's --sched-batch).
    """
    _choose_build(compiled)
    import vestespy

    if batch:
        from vestespy._sched import use_batch_policy

        use_batch_policy()  # the command's own call (where the system refuses: the default)

    options = dict(VESTESPY_OPTIONS)
    if metrics:
        options["metrics_bind"] = f"{HOST}:0"
    server = vestespy.Server(
        (HOST, port),
        select=select,
        max_workers=max_workers,
        websocket_max_message_size=WS_MAX_MESSAGE,
        **options,
    )
    server.on("request", listener)
    server.on("websocket", websocket_listener)
    if metrics:
        threading.Thread(target=_scrape, args=(server.metrics_address,), daemon=True).start()
    server.serve_forever()


def _scrape(address: tuple[str, int]) -> None:
    """GET /metrics once a second, as a Prometheus server would (but more often)."""
    import urllib.request

    url = f"http://{address[0]}:{address[1]}/metrics"
    while True:
        time.sleep(1.0)
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()


def websocket_listener(server: Any, ws: Any, req: Any) -> None:
    """Every message echoed back as it came (text as text, binary as binary)."""
    ws.on("message", lambda ws, data: ws.send(data))


def run_vestespy_command(port: int, app: str, *, compiled: bool, access_log: bool) -> None:
    """The ``vestespy`` command as users run it: ``vestespy --wsgi apps:wsgi_app`` or
    ``vestespy apps:listener``, with its defaults (a supervisor and one worker process, a
    pool of 50 threads, the access log on stdout) but the address and ``--workers 1``.

    This process checks the build it names can be imported, then becomes the command
    (``exec``: the pid the harness watches is the supervisor's, on the same pinned CPU,
    and its worker inherits the pinning).
    """
    _choose_build(compiled)
    bench = Path(__file__).resolve().parent
    first = COMPILED_BUILD if compiled else bench.parent / "src"
    env = dict(os.environ)
    # The build first, then this folder for the application module (apps.py itself).
    env["PYTHONPATH"] = os.pathsep.join([str(first), str(bench)])
    env["VESTESPY_H11"] = "h11_mypyc" if compiled else "h11"
    argv = [sys.executable, "-m", "vestespy", *app.split(), "--bind", f"{HOST}:{port}"]
    argv += ["--workers", "1"]
    if not access_log:
        argv.append("--no-access-log")
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)


def run_granian(port: int) -> None:
    """granian's WSGI server (Rust): ``granian --interface wsgi --workers 1 apps:wsgi_app``,
    with its default threads; the backlog raised as the other servers' is."""
    bench = Path(__file__).resolve().parent
    script = Path(sys.executable).parent / "granian"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(bench)
    argv = [str(script), "--interface", "wsgi", "--workers", "1"]
    argv += ["--host", HOST, "--port", str(port), "--backlog", "4096", "apps:wsgi_app"]
    sys.stdout.flush()
    os.execve(str(script), argv, env)


# -- the reference: a bare blocking socket loop, no HTTP parsing --------------------------


_BARE_WRITE = 1024 * 1024
_BARE_BLOCK = b"x" * _BARE_WRITE


def run_aiohttp(port: int) -> None:
    """aiohttp's server (asyncio): the WebSocket echo on ``/ws``, and ``GET /``."""
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_MESSAGE, compress=False)
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=HELLO, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/ws", echo)
    app.router.add_get("/", hello)
    web.run_app(app, host=HOST, port=port, backlog=4096, access_log=None, print=None)


def run_bare(port: int) -> None:
    """Move the bytes of /stream/N and /upload with plain socket calls: the Python I/O limit."""
    listener = socket.create_server((HOST, port), backlog=128)
    buffer = bytearray(1024 * 1024)
    view = memoryview(buffer)
    while True:
        sock, _ = listener.accept()
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(65536)
                if not data:
                    break
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode() if head else "/"
            size = _stream_size(target)
            if size is not None:
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                # Writes of 1 MiB: per-call costs dominate on loopback (here 64 KiB writes
                # reach ~1.4 GB/s, 256 KiB ~3.3, 1 MiB ~4.9), and the reference is meant to
                # be the most a Python loop can move, not a handicapped one.
                full, rest = divmod(size, _BARE_WRITE)
                for _ in range(full):
                    sock.sendall(_BARE_BLOCK)
                if rest:
                    sock.sendall(_BARE_BLOCK[:rest])
                continue
            # An upload: count raw bytes until the chunked body's last chunk (no parsing).
            count, tail = len(rest), rest[-5:]
            while not tail.endswith(b"0\r\n\r\n"):
                n = sock.recv_into(view)
                if not n:
                    break
                count += n
                tail = (tail + bytes(view[max(0, n - 5) : n]))[-5:]
            body = str(count).encode()
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


# -- the h11 ceiling: h11 and a selectors loop, handler inline, nothing else --------------


def run_h11_minimal(port: int, core: str = "h11") -> None:
    """Answer ``GET /`` with h11 and an epoll loop and nothing else: what h11 alone allows.

    No threads, no events, no checks beyond h11's, one ``send`` per read: the fastest a
    server can be that parses and frames every request with h11's public API (``core``:
    ``h11`` or ``h11_mypyc``, the same API compiled).
    """
    import importlib
    import selectors

    h11 = importlib.import_module(core)

    listener = socket.create_server((HOST, port), backlog=4096)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    conns: dict[socket.socket, Any] = {}
    headers = [(b"Content-Type", b"text/plain"), (b"Content-Length", b"%d" % len(HELLO))]
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            if sock is listener:
                client, _ = listener.accept()
                client.setblocking(False)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns[client] = h11.Connection(h11.SERVER)
                selector.register(client, selectors.EVENT_READ)
                continue
            assert isinstance(sock, socket.socket)
            conn = conns[sock]
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""  # wrk resets its connections at the end of a run
            conn.receive_data(data)
            out: list[bytes] = []
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError:
                    data = b""  # not worth an answer here: just close
                    break
                kind = type(event)
                if kind is h11.EndOfMessage:
                    out.append(conn.send(h11.Response(status_code=200, headers=headers)))
                    out.append(conn.send(h11.Data(data=HELLO)))
                    out.append(conn.send(h11.EndOfMessage()))
                    conn.start_next_cycle()
                elif kind is not h11.Request:
                    break  # NEED_DATA, PAUSED, or the client closed
            if out:
                sock.sendall(b"".join(out))
            if not data or conn.our_state is h11.MUST_CLOSE:
                selector.unregister(sock)
                del conns[sock]
                sock.close()


RUNNERS: dict[str, Callable[[int], None]] = {
    "waitress": run_waitress,
    "cheroot": run_cheroot,
    "gunicorn": run_gunicorn,
    "uvicorn": run_uvicorn,
    "hypercorn": run_hypercorn,
    "vestespy-pool-epoll": lambda port: run_vestespy(port, "epoll", 4),
    "vestespy-inline-epoll": lambda port: run_vestespy(port, "epoll", 0),
    "vestespy-pool-select": lambda port: run_vestespy(port, "select", 4),
    "vestespy-inline-select": lambda port: run_vestespy(port, "select", 0),
    "vestespy-wsgi-epoll": lambda port: run_vestespy_wsgi(port, "epoll", 4),
    "vestespy-compiled-wsgi-epoll": lambda port: run_vestespy_wsgi(port, "epoll", 4, True),
    "vestespy-compiled-pool-epoll": lambda port: run_vestespy(port, "epoll", 4, compiled=True),
    "vestespy-compiled-inline-epoll": lambda port: run_vestespy(port, "epoll", 0, compiled=True),
    # The pool as Server makes it by default (max_workers=50), as the command's --threads 50.
    "vestespy-compiled-pool50-epoll": lambda port: run_vestespy(port, "epoll", 50, compiled=True),
    "vestespy-compiled-pool50-batch-epoll": lambda port: run_vestespy(
        port, "epoll", 50, compiled=True, batch=True
    ),
    # The same with the Prometheus exporter on and scraped (the counters run in every row).
    "vestespy-metrics-pool-epoll": lambda port: run_vestespy(port, "epoll", 4, metrics=True),
    "vestespy-metrics-inline-epoll": lambda port: run_vestespy(port, "epoll", 0, metrics=True),
    "vestespy-compiled-metrics-pool-epoll": lambda port: run_vestespy(
        port, "epoll", 4, compiled=True, metrics=True
    ),
    "vestespy-compiled-metrics-inline-epoll": lambda port: run_vestespy(
        port, "epoll", 0, compiled=True, metrics=True
    ),
    "vestespy-command-wsgi": lambda port: run_vestespy_command(
        port, "--wsgi apps:wsgi_app", compiled=False, access_log=True
    ),
    "vestespy-command-wsgi-nolog": lambda port: run_vestespy_command(
        port, "--wsgi apps:wsgi_app", compiled=False, access_log=False
    ),
    "vestespy-command-listener": lambda port: run_vestespy_command(
        port, "apps:listener", compiled=False, access_log=True
    ),
    "vestespy-command-listener-nolog": lambda port: run_vestespy_command(
        port, "apps:listener", compiled=False, access_log=False
    ),
    "vestespy-compiled-command-wsgi": lambda port: run_vestespy_command(
        port, "--wsgi apps:wsgi_app", compiled=True, access_log=True
    ),
    "vestespy-compiled-command-wsgi-nolog": lambda port: run_vestespy_command(
        port, "--wsgi apps:wsgi_app", compiled=True, access_log=False
    ),
    "vestespy-compiled-command-listener": lambda port: run_vestespy_command(
        port, "apps:listener", compiled=True, access_log=True
    ),
    "vestespy-compiled-command-listener-nolog": lambda port: run_vestespy_command(
        port, "apps:listener", compiled=True, access_log=False
    ),
    "uvicorn-httptools": run_uvicorn_httptools,
    "granian": run_granian,
    "aiohttp": run_aiohttp,
    "bare-socket": run_bare,
    "h11-minimal": run_h11_minimal,
    "h11-minimal-mypyc": lambda port: run_h11_minimal(port, "h11_mypyc"),
}


def main() -> None:
    name, port = sys.argv[1], int(sys.argv[2])
    # Profilers (cProfile, py-spy) need a clean exit on SIGTERM to write their output.
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    RUNNERS[name](port)


if __name__ == "__main__":
    main()
