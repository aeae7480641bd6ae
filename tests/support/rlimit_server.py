"""A server in its own process, under a file descriptor limit, for the limit tests.

``python rlimit_server.py BACKEND WORKERS NOFILE [option=value ...] [--pad FD] [--websocket]``:
creates a server on 127.0.0.1 port 0, then lowers (or raises) ``RLIMIT_NOFILE`` to NOFILE, counting
what the process already holds (NOFILE may be ``+N``: N more than the descriptors open now),
prints the port and serves. ``--pad FD`` opens /dev/null until a descriptor reaches FD, so
the next sockets land past it; a line ``unpad`` on stdin closes them again. ``GET /accepts``
answers how many ``accept()`` calls failed for want of a descriptor, ``GET /stats`` the
process's descriptors, threads, RSS and connections (JSON, Linux), ``GET /big`` 10 MB. With
``--websocket``, a ``"websocket"`` listener echoes every message as it came. The process ends
when stdin closes.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import resource
import socket
import sys
import threading

import vestespy

BIG = b"x" * (10 * 1024 * 1024)

#: accept() calls that failed for want of a descriptor (EMFILE, ENFILE).
failed_accepts = 0
_accept = socket.socket.accept


def counting_accept(self: socket.socket) -> tuple[socket.socket, object]:
    """socket.socket.accept, counting its failures for want of a descriptor."""
    global failed_accepts
    try:
        return _accept(self)
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            failed_accepts += 1
        raise


# The server's listening sockets are socket.socket objects: their accept is looked up here.
socket.socket.accept = counting_accept  # type: ignore[method-assign]


def stats(server: vestespy.Server) -> str:
    """Descriptors, threads, RSS (KiB) and connections of this process, as JSON."""
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return json.dumps(
        {
            "fds": len(os.listdir("/dev/fd")),
            "threads": threading.active_count(),
            "rss_kib": rss,
            "connections": len(server._connections),
        }
    )


def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    if req.path == "/accepts":
        res.send_all(str(failed_accepts))
    elif req.path == "/stats":
        res.send_all(stats(server))
    elif req.path == "/big":
        res.send_all(BIG)  # one object for every response: a view each, never a copy
    else:
        res.send_all("hello")


def echo(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
    ws.on("message", lambda ws, data: ws.send(data))


def main() -> None:
    backend, workers, nofile, *rest = sys.argv[1:]
    pad_to = 0
    websocket = False
    options: dict[str, object] = {}
    args = iter(rest)
    for arg in args:
        if arg == "--pad":
            pad_to = int(next(args))
            continue
        if arg == "--websocket":
            websocket = True
            continue
        name, _, value = arg.partition("=")
        options[name] = None if value == "None" else float(value) if "." in value else int(value)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s"
    )
    server = vestespy.Server(("127.0.0.1", 0), select=backend, max_workers=int(workers), **options)
    server.on("request", listener)
    if websocket:
        server.on("websocket", echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.wait_serving(10)
    padding: list[int] = []
    if pad_to:
        while not padding or padding[-1] < pad_to:
            padding.append(os.open(os.devnull, os.O_RDONLY))
    in_use = len(os.listdir("/dev/fd"))
    limit = in_use + int(nofile[1:]) if nofile.startswith("+") else int(nofile)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    )
    print(server.address[1], in_use, limit, flush=True)
    for line in sys.stdin:
        if line.strip() == "unpad":
            for fd in padding:
                os.close(fd)
            padding.clear()
            print("unpadded", flush=True)
    server.shutdown()
    thread.join(10)
    server.close()


if __name__ == "__main__":
    main()
