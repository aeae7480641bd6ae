"""The built-in demo application that ``python -m vestespy`` serves when given no other."""

from __future__ import annotations

from .request import Request
from .response import Response
from .server import Server
from .tools import Dispatcher

__all__ = ["build_demo"]

_INDEX = """<!doctype html>
<title>VestesPy demo</title>
<h1>VestesPy is running</h1>
<ul>
<li><a href="/hello/world">/hello/:name</a>: a route parameter</li>
<li><a href="/stream">/stream</a>: a chunked response</li>
<li>POST /echo: the request body, echoed back</li>
</ul>
"""


def _index(server: Server, req: Request, res: Response) -> None:
    res.set_header("Content-Type", "text/html; charset=utf-8")
    res.send_all(_INDEX)


def _hello(server: Server, req: Request, res: Response, name: str = "") -> None:
    res.set_header("Content-Type", "text/plain; charset=utf-8")
    res.send_all(f"Hello, {name}!\n")


def _stream(server: Server, req: Request, res: Response) -> None:
    res.set_header("Content-Type", "text/plain; charset=utf-8")
    res.send_chunked(f"line {n}\n" for n in range(1, 11))


def _echo(server: Server, req: Request, res: Response) -> None:
    body: list[bytes] = []
    req.on("data", lambda ev, req, res, chunk: body.append(chunk))
    req.on("end", lambda ev, req, res: res.send_all(b"".join(body)))


def build_demo() -> Dispatcher:
    """Return the demo's routes."""
    dispatcher = Dispatcher()
    dispatcher.register("/", _index, methods=["GET"])
    dispatcher.register("/hello/:name", _hello, methods=["GET"])
    dispatcher.register("/stream", _stream, methods=["GET"])
    dispatcher.register("/echo", _echo, methods=["POST"])
    return dispatcher
