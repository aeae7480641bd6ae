"""Bind specifications, UNIX sockets (stale ones replaced), adopted descriptors, systemd."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from vestespy._sockets import BindError, BindSpec, adopt_fd, bind, parse_bind, systemd_listeners


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("127.0.0.1:8080", BindSpec("tcp", host="127.0.0.1", port=8080)),
        ("localhost:0", BindSpec("tcp", host="localhost", port=0)),
        (":80", BindSpec("tcp", host="", port=80)),
        ("[::1]:8000", BindSpec("tcp", host="::1", port=8000)),
        ("unix:/run/app.sock", BindSpec("unix", path="/run/app.sock")),
        ("fd://3", BindSpec("fd", fd=3)),
    ],
)
def test_parse_bind(text: str, spec: BindSpec) -> None:
    assert parse_bind(text) == spec
    assert str(spec) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("localhost", "expected HOST:PORT"),
        ("::1:80", "in brackets"),
        ("[::1]80", "[ADDRESS]:PORT"),
        ("host:http", "not a port number"),
        ("host:70000", "not a port number"),
        ("unix:", "needs a path"),
        ("fd://x", "needs a descriptor number"),
    ],
)
def test_parse_bind_errors(text: str, message: str) -> None:
    with pytest.raises(BindError, match=message.replace("[", r"\[")):
        parse_bind(text)


def test_bind_tcp_and_describe() -> None:
    listener = bind(parse_bind("127.0.0.1:0"))
    try:
        port = listener.sock.getsockname()[1]
        assert listener.describe() == f"http://127.0.0.1:{port}/"
        with pytest.raises(BindError, match=f"cannot bind 127.0.0.1:{port}: "):
            bind(parse_bind(f"127.0.0.1:{port}"))
    finally:
        listener.close()


def test_unix_socket_lifecycle(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    listener = bind(parse_bind(f"unix:{path}"))  # the stale file is replaced
    assert listener.describe() == f"unix:{path}"
    with pytest.raises(BindError, match="another server is listening on it"):
        bind(parse_bind(f"unix:{path}"))
    listener.close()
    assert not os.path.exists(path)
    regular = tmp_path / "file"
    regular.write_text("")
    with pytest.raises(BindError, match="not a socket"):
        bind(parse_bind(f"unix:{regular}"))


def test_unix_socket_file_replaced_meanwhile_is_not_removed(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    listener = bind(parse_bind(f"unix:{path}"))
    os.unlink(path)
    newer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    newer.bind(path)
    try:
        listener.close()
        assert os.path.exists(path)
    finally:
        newer.close()


def test_adopt_fd() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        adopted = adopt_fd(os.dup(listening.fileno()))
        assert adopted.getsockname() == listening.getsockname()
        adopted.close()
    with socket.socket() as unbound:
        fd = os.dup(unbound.fileno())
        with pytest.raises(BindError, match="not a listening stream socket"):
            adopt_fd(fd)
        os.close(fd)


def test_systemd_listeners_checks_the_pid_and_clears_the_environment() -> None:
    env = {"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDNAMES": "http"}
    assert systemd_listeners(env) == []
    assert env == {}
    assert systemd_listeners({}) == []
