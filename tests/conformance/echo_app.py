"""The conformance suite's application: it answers with the request as it saw it."""

from __future__ import annotations

import json
from typing import Any

import vestespy

__all__ = ["echo"]


def echo(ev: Any, req: vestespy.Request, res: vestespy.Response) -> None:
    """Answer with the request as the handler saw it, as JSON.

    The path picks how, so that cases reach more than a plain 200 (each answer carries the
    same report):

    * ``/ignore...``: answer at once, never reading the body (the report's body is empty);
    * ``/status/204...``, ``/status/304...``: answer with that status, which has no body;
    * ``/close...``: answer with ``Connection: close``.

    A response without a body (HEAD, 204, 304) carries the report in an ``X-Echo`` header.
    """
    parts: list[bytes] = []

    def answer(body: bytes, trailers: list[tuple[str, str]]) -> None:
        report = json.dumps(
            {
                "method": req.method,
                "target": req.target,
                "version": req.http_version,
                "headers": list(req.headers),
                "body": body.decode("latin-1"),
                "trailers": trailers,
            }
        )
        if req.path.startswith("/status/"):
            res.status = int(req.path[8:11])
        if req.path.startswith("/close"):
            res.set_header("Connection", "close")
        if req.method == "HEAD" or res.status in (204, 304):
            res.set_header("X-Echo", report)  # JSON escapes every control and non-ASCII
        if res.status in (204, 304):
            res.send_all()
        else:
            res.set_header("Content-Type", "application/json")
            res.send_all(report)

    if req.path.startswith("/ignore"):
        answer(b"", [])
        return
    req.on("data", lambda ev, req, res, chunk: parts.append(chunk))
    req.on("end", lambda ev, req, res: answer(b"".join(parts), list(req.trailers)))
