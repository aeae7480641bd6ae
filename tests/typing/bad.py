"""Listener mistakes a type checker must catch (see test_typing.py for expected errors)."""

from __future__ import annotations

import vestespy


def two_args(ev: vestespy.Server, req: vestespy.Request) -> None:
    del ev, req


def no_chunk(ev: vestespy.Request, req: vestespy.Request, res: vestespy.Response) -> None:
    del ev, req, res


server = vestespy.Server(("127.0.0.1", 0))
server.on("request", two_args)
request: vestespy.Request = vestespy.Request.__new__(vestespy.Request)
request.on("data", no_chunk)


def returns_body(ev: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> str:
    del ev, req, res
    return "a Flask habit: the value is ignored"


server.on("request", returns_body)
routes = vestespy.tools.Dispatcher()
routes.register("/", returns_body)
