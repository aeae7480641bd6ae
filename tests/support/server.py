"""Run a real :class:`vestespy.Server` on a loopback port in a background thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import vestespy


class ServerThread:
    """A server bound to ``host`` port 0, serving on a daemon thread until :meth:`stop`."""

    def __init__(self, server: vestespy.Server) -> None:
        self.server = server
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="test-server", daemon=True)

    def _run(self) -> None:
        try:
            self.server.serve_forever()
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def start(self) -> ServerThread:
        self._thread.start()
        assert self.server.wait_serving(10), "serve_forever did not start"
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "serve_forever did not return after shutdown()"
        self.server.close()
        if self.errors:
            raise self.errors[0]


@contextlib.contextmanager
def serve(
    listener: Callable[..., object] | None = None,
    *,
    select: str = "auto",
    max_workers: int = 4,
    host: str = "127.0.0.1",
    **kwargs: Any,
) -> Iterator[ServerThread]:
    """Start a server with ``listener`` on ``"request"``; stop and close it afterwards."""
    server = vestespy.Server((host, 0), select=select, max_workers=max_workers, **kwargs)
    if listener is not None:
        server.on("request", listener)
    thread = ServerThread(server).start()
    try:
        yield thread
    finally:
        thread.stop()


#: What the ``served`` fixture gives: ``served(listener, **options)`` as a context manager.
Serve = Callable[..., contextlib.AbstractContextManager[ServerThread]]
