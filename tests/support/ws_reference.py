"""A tiny WebSocket echo server on wsproto, a thread per connection: a yardstick for the suite.

It is not VestesPy: it proves that the WebSocket conformance runner and its cases say what
a plain wsproto server does (``VESTESPY_WS_REFERENCE=1`` adds it to the conformance run),
so that a case failing against VestesPy points at VestesPy. Like VestesPy's default it caps
messages at 1 MiB (close 1009, counted as the message arrives) and accepts
permessage-deflate.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

__all__ = ["ReferenceServer"]

MAX_MESSAGE = 1024 * 1024


class ReferenceServer:
    """Serve on 127.0.0.1 port 0 until :meth:`stop`."""

    label = "wsproto-reference"

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # so that stop() is seen without a connection
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept, name="ws-reference", daemon=True)
        self._stopping = False

    def start(self) -> ReferenceServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._listener.close()
        self._thread.join(timeout=10)

    def _accept(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.connection import ConnectionState
        from wsproto.events import (
            AcceptConnection,
            BytesMessage,
            CloseConnection,
            Ping,
            Request,
            TextMessage,
        )
        from wsproto.extensions import PerMessageDeflate

        ws = WSConnection(ConnectionType.SERVER)
        parts: list[Any] = []
        size = 0
        sock.settimeout(10)
        try:
            while True:
                data = sock.recv(65536)
                ws.receive_data(data or None)
                for event in ws.events():
                    if isinstance(event, Request):
                        sock.sendall(ws.send(AcceptConnection(extensions=[PerMessageDeflate()])))
                    elif isinstance(event, Ping):
                        sock.sendall(ws.send(event.response()))
                    elif isinstance(event, (TextMessage, BytesMessage)):
                        parts.append(event.data)
                        size += len(
                            event.data.encode() if isinstance(event.data, str) else event.data
                        )
                        if size > MAX_MESSAGE:
                            sock.sendall(ws.send(CloseConnection(code=1009)))
                            return self._linger(sock)
                        if event.message_finished:
                            whole = (
                                "".join(parts)
                                if isinstance(event, TextMessage)
                                else b"".join(parts)
                            )
                            parts, size = [], 0
                            sock.sendall(
                                ws.send(
                                    TextMessage(whole)
                                    if isinstance(whole, str)
                                    else BytesMessage(whole)
                                )
                            )
                    elif isinstance(event, CloseConnection):
                        if ws.state is ConnectionState.REMOTE_CLOSING:
                            sock.sendall(ws.send(event.response()))
                        else:  # wsproto failed the frame: answer with its code
                            sock.sendall(ws.send(CloseConnection(code=event.code)))
                        return self._linger(sock)
                if not data:
                    return None
        except (OSError, Exception):  # a yardstick: any failure just ends the connection
            return None
        finally:
            sock.close()

    @staticmethod
    def _linger(sock: socket.socket) -> None:
        """Close our side, then read until the client closes (so no reset loses our close)."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(2)
            while sock.recv(65536):
                pass
        except OSError:
            pass
