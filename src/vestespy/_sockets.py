"""Listening sockets for the command line: bind specifications, systemd sockets, UNIX sockets.

Theory of operation: the supervisor process parses every ``--bind`` into a :class:`BindSpec`,
binds them all with :func:`bind` (or adopts descriptors handed over by systemd or by
``fd://N``) *before* it starts any worker, and the workers inherit the listening sockets
across ``fork``. The supervisor keeps them open for its whole life, so a worker that exits
(replaced, recycled, reloaded) never closes the listening socket under the others, and
connections waiting in the kernel's accept queue are taken by the next worker. The process
that bound a UNIX socket removes its file on exit (:meth:`Listener.close`); workers never do.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import MutableMapping
from dataclasses import dataclass

__all__ = [
    "SD_LISTEN_FDS_START",
    "BindError",
    "BindSpec",
    "Listener",
    "bind",
    "bind_group",
    "parse_bind",
    "systemd_listeners",
]

#: The first descriptor systemd passes (``SD_LISTEN_FDS_START`` in sd-daemon.h).
SD_LISTEN_FDS_START = 3


class BindError(Exception):
    """A bind specification is malformed or cannot be bound; the message says which."""


@dataclass(frozen=True, slots=True)
class BindSpec:
    """One parsed ``--bind`` value.

    Attributes:
        kind: ``"tcp"``, ``"unix"`` or ``"fd"``.
        host: The host for ``"tcp"`` (brackets removed from IPv6 literals).
        port: The port for ``"tcp"``.
        path: The socket file for ``"unix"``.
        fd: The descriptor for ``"fd"``.
    """

    kind: str
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_bind(value: str) -> BindSpec:
    """Parse ``HOST:PORT``, ``[IPV6]:PORT``, ``unix:PATH`` or ``fd://N``.

    Raises:
        BindError: The value fits none of the forms.
    """
    if value.startswith("unix:"):
        path = value[5:]
        if not path:
            raise BindError(f"--bind {value!r}: unix: needs a path")
        return BindSpec("unix", path=path)
    if value.startswith("fd://"):
        number = value[5:]
        if not number.isdigit():
            raise BindError(f"--bind {value!r}: fd:// needs a descriptor number")
        return BindSpec("fd", fd=int(number))
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise BindError(f"--bind {value!r}: an IPv6 address is written [ADDRESS]:PORT")
        port = rest[1:]
    else:
        host, colon, port = value.rpartition(":")
        if not colon:
            raise BindError(
                f"--bind {value!r}: expected HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N"
            )
        if ":" in host:
            raise BindError(f"--bind {value!r}: write an IPv6 address in brackets, [{host}]:{port}")
    if not port.isdigit() or int(port) > 65535:
        raise BindError(f"--bind {value!r}: {port!r} is not a port number (0-65535)")
    return BindSpec("tcp", host=host, port=int(port))


class Listener:
    """A listening socket and what to undo on exit.

    Attributes:
        sock: The listening socket (non-blocking).
        spec: Where it came from.
        unlink_path: The UNIX socket file this process created, removed by :meth:`close`.
    """

    def __init__(self, sock: socket.socket, spec: BindSpec, unlink_path: str | None = None):
        self.sock = sock
        self.spec = spec
        self.unlink_path = unlink_path
        self._inode = os.stat(unlink_path).st_ino if unlink_path else None

    def describe(self, scheme: str = "http") -> str:
        """A URL-like name for log lines: ``http://127.0.0.1:8080/``, ``unix:/run/app.sock``.

        Args:
            scheme: ``http``, or ``https`` when the server speaks TLS on it.
        """
        name = self.sock.getsockname()
        if self.sock.family == socket.AF_UNIX:
            return f"unix:{name or self.spec.path or '?'}"
        host, port = name[0], name[1]
        return f"{scheme}://[{host}]:{port}/" if ":" in host else f"{scheme}://{host}:{port}/"

    def close(self) -> None:
        """Close the socket; remove the UNIX socket file if this process made it."""
        self.sock.close()
        path = self.unlink_path
        if path is not None:
            self.unlink_path = None
            try:
                # Only our own file: a newer server may have replaced it meanwhile.
                if os.stat(path).st_ino == self._inode:
                    os.unlink(path)
            except OSError:
                pass


def bind(spec: BindSpec, backlog: int = 1024, reuse_port: bool = False) -> Listener:
    """Bind and listen as ``spec`` says (or adopt its descriptor).

    Raises:
        BindError: The address cannot be bound or the descriptor is not a listening stream
            socket; the message names the address and the reason.
    """
    if spec.kind == "fd":
        return Listener(adopt_fd(spec.fd, spec), spec)
    if spec.kind == "unix":
        return _bind_unix(spec, backlog)
    try:
        infos = socket.getaddrinfo(
            spec.host or None, spec.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise BindError(
            f"cannot bind {spec}: cannot resolve {spec.host!r} ({exc.strerror})"
        ) from None
    family, _, _, _, sockaddr = infos[0]
    try:
        sock = socket.create_server(
            sockaddr[:2], family=family, backlog=backlog, reuse_port=reuse_port
        )
    except OSError as exc:
        raise BindError(f"cannot bind {spec}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return Listener(sock, spec)


def bind_group(spec: BindSpec, count: int, backlog: int = 1024) -> list[Listener]:
    """Bind ``count`` sockets to one TCP address with ``SO_REUSEPORT`` (port 0: one port).

    The kernel spreads new connections over the group; each worker accepts from its own.

    Raises:
        BindError: As :func:`bind`.
    """
    first = bind(spec, backlog, reuse_port=True)
    group = [first]
    try:
        port = first.sock.getsockname()[1]
        same = BindSpec("tcp", host=spec.host, port=port)
        for _ in range(count - 1):
            group.append(bind(same, backlog, reuse_port=True))
    except BindError:
        for listener in group:
            listener.close()
        raise
    return group


def _bind_unix(spec: BindSpec, backlog: int) -> Listener:
    path = spec.path
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise BindError(f"cannot bind {spec}: {exc.strerror}") from None
    else:
        if not stat.S_ISSOCK(mode):
            raise BindError(f"cannot bind {spec}: the path exists and is not a socket")
        if _unix_socket_alive(path):
            raise BindError(f"cannot bind {spec}: another server is listening on it")
        # Left behind by a server that crashed: replace it.
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot bind {spec}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return Listener(sock, spec, unlink_path=path)


def _unix_socket_alive(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError as exc:
        return exc.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    finally:
        probe.close()
    return True


def adopt_fd(fd: int, spec: BindSpec | None = None) -> socket.socket:
    """Wrap an inherited descriptor, checking that it is a listening stream socket.

    Raises:
        BindError: It is not.
    """
    name = str(spec) if spec is not None else f"fd://{fd}"
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise BindError(f"cannot use {name}: {exc.strerror or exc}") from None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:
        listening = 0
    if sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()
        raise BindError(f"cannot use {name}: not a listening stream socket")
    sock.setblocking(False)
    return sock


def systemd_listeners(environ: MutableMapping[str, str] | None = None) -> list[Listener]:
    """Adopt the sockets systemd passed (``LISTEN_FDS`` for this ``LISTEN_PID``).

    The variables are removed from ``environ`` so that child processes do not adopt them
    again.

    Raises:
        BindError: A passed descriptor is not a listening stream socket.
    """
    env = os.environ if environ is None else environ
    count = env.get("LISTEN_FDS", "")
    pid = env.get("LISTEN_PID", "")
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(name, None)
    if not count.isdigit() or pid != str(os.getpid()):
        return []
    listeners = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)):
        spec = BindSpec("fd", fd=fd)
        listeners.append(Listener(adopt_fd(fd, spec), spec))
    return listeners
