"""Listeners and clients that provoke the server's deadlines over real sockets.

Shared by the deadline smoke tests (tests/functional/test_deadlines.py) and the metrics test
that counts each deadline (tests/functional/test_metrics.py).

* :func:`echo_length`: a listener that answers only once the whole body came (a body that
  never comes keeps the request waiting on the client);
* :func:`big`: a listener that answers :data:`BIG` bytes (more than the kernel buffers of a
  loopback connection hold, so a client that does not read leaves the server a backlog);
* :func:`trickle`: send a byte at a time until the server answers;
* :func:`small_receive_buffer_client`: a client whose kernel buffers little of a response.
"""

from __future__ import annotations

import select
import socket
import time

import vestespy

from .client import RawClient

__all__ = ["BIG", "big", "echo_length", "small_receive_buffer_client", "trickle"]

#: The size of :func:`big`'s response: more than a loopback connection's kernel buffers
#: (the send buffer grows to 4 MiB by default, ``net.ipv4.tcp_wmem``).
BIG = 10 * 1024 * 1024


def echo_length(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    """Answer the body's length once the whole body came."""
    size = 0

    def ondata(ev: object, req: object, res: object, chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)

    req.on("data", ondata)
    req.on("end", lambda ev, req, res: res.send_all(str(size)))


def big(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    """Answer :data:`BIG` bytes."""
    res.send_all(b"x" * BIG)


def trickle(client: RawClient, data: bytes, interval: float, until: float) -> None:
    """Send ``data`` a byte every ``interval`` s until the server answers or ``until``."""
    for byte in data:
        if time.monotonic() > until:
            return
        try:
            client.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return
        # The pace of the trickle, which stops as soon as the server says something.
        if select.select([client.sock], [], [], interval)[0]:
            return


def small_receive_buffer_client(address: tuple[str, int]) -> RawClient:
    """A :class:`RawClient` whose receive buffer is 16 KiB (set before connecting, so that
    the window the server sees is small from the start)."""
    client = RawClient.__new__(RawClient)
    client.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    client.sock.settimeout(10)
    client.sock.connect(address)
    client.buffer = bytearray()
    client.eof = False
    return client
