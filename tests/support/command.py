"""Run the ``vestespy`` command as a subprocess and talk HTTP to it, for the command's tests.

Nothing here sleeps in place of synchronisation: every wait polls a condition (a log line, a
response, a process exit) until a deadline.
"""

from __future__ import annotations

import fcntl
import http.client
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import vestespy

from .polling import poll

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


def write_app(directory: Path, source: str = APP) -> Path:
    path = directory / "app.py"
    path.write_text(source)
    return path


def _source_path() -> tuple[str, ...]:
    """The checkout's ``src`` when the tests run on it, else nothing.

    The command must run the build the tests run: in a tox env that is the installed wheel (the
    compiled one in the ``compiled`` envs), which ``src`` on ``PYTHONPATH`` would shadow with
    the pure source; run from a checkout with ``PYTHONPATH=src``, it is the source.
    """
    src = Path(__file__).resolve().parents[2] / "src"
    if Path(vestespy.__file__).resolve().parents[1] == src:
        return (str(src),)
    return ()


class Command:
    """One run of ``python -m vestespy ARGS`` in ``cwd``, its output in files."""

    def __init__(
        self,
        args: Sequence[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
        prefix: Sequence[str] = (),
        stdout_pipe: bool = False,
        pipe_size: int | None = None,
    ) -> None:
        """Start the command.

        Args:
            stdout_pipe: Its stdout a pipe read by a thread here (as under a process manager
                or ``| tee``: writes of up to PIPE_BUF bytes are atomic there), not a file.
            pipe_size: The pipe's capacity where Linux lets it be set (``F_SETPIPE_SZ``): a
                small one makes a longer write wait half done, where another process's write
                would land in the middle of it.
        """
        self.cwd = cwd
        self._piped = bytearray()
        self._reader: threading.Thread | None = None
        self._out_path = cwd / f"stdout-{id(self)}.log"
        self._err_path = cwd / f"stderr-{id(self)}.log"
        environment = dict(os.environ if env is None else env)
        environment.setdefault("PYTHONUNBUFFERED", "1")
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (*_source_path(), environment.get("PYTHONPATH", "")) if p
        )
        self._pipe_r = -1
        write_end = -1
        if stdout_pipe:
            self._pipe_r, write_end = os.pipe()
            set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
            if pipe_size is not None and set_size is not None:
                fcntl.fcntl(write_end, set_size, pipe_size)
        try:
            with open(self._out_path, "wb") as out, open(self._err_path, "wb") as err:
                self.process = subprocess.Popen(
                    [*prefix, sys.executable, "-m", "vestespy", *args],
                    cwd=cwd,
                    env=environment,
                    stdout=write_end if stdout_pipe else out,
                    stderr=err,
                    pass_fds=pass_fds,
                )
        finally:
            if write_end >= 0:
                os.close(write_end)  # the command's processes hold it now
        if stdout_pipe:
            self._reader = threading.Thread(target=self._read_stdout, daemon=True)
            self._reader.start()

    def _read_stdout(self) -> None:
        try:
            while data := os.read(self._pipe_r, 65536):
                self._piped.extend(data)
        finally:
            os.close(self._pipe_r)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> str:
        if self._reader is not None:
            return bytes(self._piped).decode(errors="replace")
        return self._out_path.read_text(errors="replace")

    def wait_stdout_closed(self, timeout: float = 20) -> str:
        """With ``stdout_pipe``: wait until every process has closed stdout; return it all."""
        assert self._reader is not None
        self._reader.join(timeout)
        assert not self._reader.is_alive(), "stdout still open"
        return self.stdout

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
        if self._reader is not None:
            self._reader.join(10)  # the workers may outlive a killed supervisor briefly


#: An access log line in the command's default format (combined, then the duration in ms).
ACCESS_LINE = re.compile(
    r"(?P<client>[0-9a-f.:]+) - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
    r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/1\.[01]" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)" (?P<duration_ms>\d+\.\d{3})'
)


class Load:
    """Clients requesting ``/pid?c=CLIENT&n=N`` on keep-alive connections until stopped.

    Every request has a target of its own, so that each response received can be matched
    with its access log line. A failed request (the server draining or gone) is counted and
    the client reconnects. Each client also opens a new connection every ``reconnect_every``
    requests: with a ``SO_REUSEPORT`` socket per worker, Linux hashes each connection to one
    worker, and 8 connections kept for the whole run all land on one of two workers once in
    128 runs (CI saw it); new connections make every worker's turn certain.
    """

    def __init__(
        self,
        address: tuple[str, int],
        clients: int = 4,
        headers: dict[str, str] | None = None,
        reconnect_every: int = 50,
    ) -> None:
        self.address = address
        self.headers = headers or {}
        self.reconnect_every = reconnect_every
        #: The targets answered with 200, and the pids that answered.
        self.answered: list[str] = []
        self.pids: set[int] = set()
        #: Requests sent (answered or not).
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)
        ]
        for thread in self._threads:
            thread.start()

    def _client(self, client: int) -> None:
        connection: http.client.HTTPConnection | None = None
        for n in itertools.count():
            if self._stop.is_set():
                break
            target = f"/pid?c={client}&n={n}"
            with self._lock:
                self.sent += 1
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(*self.address, timeout=10)
                connection.request("GET", target, headers=self.headers)
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    raise http.client.HTTPException(f"status {response.status}")
                with self._lock:
                    self.answered.append(target)
                    self.pids.add(int(body.split()[0]))
                closed_by_server = response.getheader("connection", "").lower() == "close"
                if closed_by_server or (n + 1) % self.reconnect_every == 0:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                with self._lock:
                    self.failed += 1
                if connection is not None:
                    connection.close()
                    connection = None
                self._stop.wait(0.01)  # pacing, not synchronisation: the server is away
        if connection is not None:
            connection.close()

    def wait_answered(self, count: int, timeout: float = 30) -> None:
        """Wait until ``count`` requests in all have been answered."""
        poll(lambda: len(self.answered) >= count, timeout, f"{count} responses")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(20)


def check_access_log(text: str, load: Load, user_agent: str) -> list[re.Match[str]]:
    """Every line of ``text`` an access line, whole; each answered request's there once.

    Returns:
        The lines, parsed.

    Raises:
        AssertionError: A line does not parse (cut, or two interleaved), one is there twice, or
            an answered request has none.
    """
    lines = text.splitlines()
    assert text.endswith("\n") or not text, "the last line is cut"
    parsed = []
    for line in lines:
        match = ACCESS_LINE.fullmatch(line)
        assert match is not None, f"not a whole access log line: {line!r}"
        if match["target"].startswith("/pid?"):  # the load's, not wait_ready()'s
            assert match["user_agent"] == user_agent, line
        parsed.append(match)
    targets = [match["target"] for match in parsed if match["target"].startswith("/pid?")]
    assert len(targets) == len(set(targets)), "a line written twice"
    missing = set(load.answered) - set(targets)
    assert not missing, f"{len(missing)} answered requests not logged, e.g. {sorted(missing)[:3]}"
    assert len(targets) <= load.sent
    return parsed


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
