"""Run the ``vestespy`` command as a subprocess and talk HTTP to it, for the command's tests.

Nothing here sleeps in place of synchronisation: every wait polls a condition (a log line, a
response, a process exit) until a deadline.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: The application the command's tests serve (written to the test's directory as app.py).
APP = """
import hashlib
import os
import threading
import time

from vestespy.tools import Dispatcher

VERSION = "one"
app = Dispatcher()


def pid(server, req, res):
    res.send_all(f"{os.getpid()} {VERSION}")


def slow(server, req, res, ms="0"):
    # Answered from another thread after a delay: a request in flight during a drain. The
    # file tells the test that the request has arrived.
    open(f"inflight-{ms}", "w").close()

    def answer():
        time.sleep(int(ms) / 1000)
        res.send_all(f"slept {ms} {os.getpid()}")

    threading.Thread(target=answer, daemon=True).start()


def client(server, req, res):
    address = req.client_address
    address = address[0] if isinstance(address, tuple) else address
    res.send_all(f"{address}|{req.peer_address!r}|{req.scheme}|{req.host}")


def big(server, req, res, mb="1"):
    size = int(mb) << 20
    block = bytes(range(256)) * 256  # 64 KiB
    res.send_stream((block for _ in range(size // len(block))), size)


def upload(server, req, res):
    digest = hashlib.sha256()
    count = [0]

    def on_data(ev, req, res, chunk):
        digest.update(chunk)
        count[0] += len(chunk)

    req.on("data", on_data)
    req.on("end", lambda ev, req, res: res.send_all(f"{count[0]} {digest.hexdigest()}"))


app.register("/pid", pid)
app.register("/slow/:ms", slow)
app.register("/client", client)
app.register("/big/:mb", big)
app.register("/upload", upload, methods=["POST"])


def make_app():
    return app
"""

_SERVING = re.compile(r"serving .* on (\S+?)(?:,| \()")


def poll(condition: Callable[[], T | None], timeout: float, what: str, step: float = 0.02) -> T:
    """Call ``condition`` until it returns something other than None or False; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def write_app(directory: Path, source: str = APP) -> Path:
    path = directory / "app.py"
    path.write_text(source)
    return path


class Command:
    """One run of ``python -m vestespy ARGS`` in ``cwd``, its output in files."""

    def __init__(
        self,
        args: Sequence[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
        prefix: Sequence[str] = (),
    ) -> None:
        self.cwd = cwd
        self._out_path = cwd / f"stdout-{id(self)}.log"
        self._err_path = cwd / f"stderr-{id(self)}.log"
        environment = dict(os.environ if env is None else env)
        environment.setdefault("PYTHONUNBUFFERED", "1")
        src = str(Path(__file__).resolve().parents[2] / "src")
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (src, environment.get("PYTHONPATH", "")) if p
        )
        with open(self._out_path, "wb") as out, open(self._err_path, "wb") as err:
            self.process = subprocess.Popen(
                [*prefix, sys.executable, "-m", "vestespy", *args],
                cwd=cwd,
                env=environment,
                stdout=out,
                stderr=err,
                pass_fds=pass_fds,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> str:
        return self._out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self._err_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 20, count: int = 1) -> list[str]:
        """Wait until stderr matches ``pattern`` ``count`` times; return the matches."""
        regex = re.compile(pattern)

        def found() -> list[str] | None:
            matches = regex.findall(self.stderr)
            if len(matches) >= count:
                return matches
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the command exited ({self.process.returncode}) before logging"
                    f" {pattern!r}:\n{self.stderr}"
                )
            return None

        return poll(found, timeout, f"{pattern!r} in the log")

    def url(self) -> str:
        """The first address the command serves on, from its start-up line."""
        return self.wait_for_log(_SERVING.pattern)[0]

    def address(self) -> tuple[str, int]:
        url = self.url()
        host, _, port = url.partition("://")[2].rstrip("/").rpartition(":")
        return host.strip("[]"), int(port)

    def wait_ready(self, timeout: float = 20, path: str = "/pid") -> tuple[str, int]:
        """Wait until the command answers ``path`` with 200; return its address."""
        address = self.address()
        poll(lambda: _answers(address, path), timeout, "the first response")
        return address

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout)

    def stop(self) -> int:
        """SIGTERM, then wait (SIGKILL if it hangs); return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(45)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError(
                    f"the command did not stop on SIGTERM:\n{self.stderr}"
                ) from None
        return self.process.returncode

    def __enter__(self) -> Command:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _answers(address: tuple[str, int], path: str) -> bool:
    try:
        return get(address, path, timeout=2)[0] == 200
    except OSError:
        return False


def get(
    address: tuple[str, int] | str,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: Any = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection; return the status, headers (lower-cased) and body."""
    if isinstance(address, str):
        connection: http.client.HTTPConnection = UnixHTTPConnection(address, timeout)
    else:
        connection = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a UNIX domain socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists": look at its state where /proc tells.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True
