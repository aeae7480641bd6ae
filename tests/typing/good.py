"""A typed user program: must pass ``mypy --strict``."""

from __future__ import annotations

import vestespy
from vestespy.tools import Dispatcher


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
    server = vestespy.Server(("127.0.0.1", 0), max_workers=0)
    server.on("request", on_request)
    dispatcher = Dispatcher()
    server.on("request", dispatcher.as_handler())
    return server
