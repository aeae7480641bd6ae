"""A typed user program: must pass ``mypy --strict``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from typing_extensions import Unpack

import vestespy
from vestespy.tools import Dispatcher
from vestespy.wsgi import WSGIAdapter

if TYPE_CHECKING:
    # The types Flask and Django are annotated with: the adapter must accept such apps.
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def start(port: int, **options: Unpack[vestespy.ServerOptionsKwargs]) -> vestespy.Server:
    return vestespy.Server(("127.0.0.1", port), **options)


def routed() -> vestespy.tools.Dispatcher:
    return vestespy.tools.Dispatcher()


def on_data(
    ev: vestespy.Request, req: vestespy.Request, res: vestespy.Response, chunk: bytes
) -> None:
    del ev, req, res, chunk


def on_end(ev: vestespy.Request, req: vestespy.Request, res: vestespy.Response) -> None:
    res.send_all("ok")


def on_request(ev: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    req.on("data", on_data)
    req.on("end", on_end)


def build() -> vestespy.Server:
    server = vestespy.Server(
        ("127.0.0.1", 0), max_workers=0, keep_alive_timeout=5, max_body_size=None
    )
    server.on("request", on_request)
    dispatcher = Dispatcher()
    server.on("request", dispatcher.as_handler())
    return server


def wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode("latin-1")]


def build_wsgi() -> vestespy.Server:
    server = vestespy.Server(("127.0.0.1", 0), max_workers=4)
    server.on("request", WSGIAdapter(wsgi_app, script_name="/app", url_scheme="https"))
    return server


def serve_wsgi() -> None:
    vestespy.serve(wsgi_app, host="127.0.0.1", port=8080, max_workers=8, keep_alive_timeout=5)


def on_message(ws: vestespy.WebSocket, data: str | bytes) -> None:
    ws.send(data)


def on_ws_close(ws: vestespy.WebSocket, code: int, reason: str) -> None:
    del ws, code, reason


def on_websocket(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
    if "chat" in ws.subprotocols:
        ws.accept("chat")
    ws.on("message", on_message)
    ws.on("close", on_ws_close)
    ws.on("ping", lambda ws, payload: None)


def build_websockets() -> vestespy.Server:
    server = vestespy.Server(
        ("127.0.0.1", 0), websocket_ping_interval=None, websocket_allowed_origins=("https://a.b",)
    )
    server.on("websocket", on_websocket)
    dispatcher = Dispatcher()
    server.on("websocket", dispatcher.dispatch_websocket)
    return server
