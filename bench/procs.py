"""Starting servers and clients as pinned processes, and stopping them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent


def _forks_workers(name: str) -> bool:
    """Servers whose supervisor listens before a forked worker serves."""
    return "-command-" in name or name in ("granian", "gunicorn")


@dataclass(frozen=True)
class Pinning:
    """The command prefixes that put the server and the load generator on their CPUs."""

    server: list[str]
    client: list[str]
    description: str

    @classmethod
    def detect(cls) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        taskset = shutil.which("taskset")
        if taskset is None or len(cpus) < 2:
            # One CPU (or no taskset): pinning both to it would only add noise.
            return cls([], [], "not pinned (fewer than 2 CPUs or no taskset)")
        server_cpu, client_cpu = cpus[1], cpus[0]
        return cls(
            [taskset, "-c", str(server_cpu)],
            [taskset, "-c", str(client_cpu)],
            f"server on CPU {server_cpu}, load generator on CPU {client_cpu} (taskset)",
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """One server in its own process; a context manager that always stops it."""

    def __init__(self, name: str, pinning: Pinning, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = log_dir / f"{name}-{self.port}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        command = [*pinning.server, sys.executable, str(BENCH / "apps.py"), name, str(self.port)]
        # taskset execs the command, so the pid is the server's own (RSS is read from it).
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: {self.log_tail()}")
            try:
                if self._answers() if _forks_workers(self.name) else self._accepts():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen within {timeout} s: {self.log_tail()}")

    def _accepts(self) -> bool:
        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        return True

    def _answers(self) -> bool:
        """Whether ``GET /`` is answered: a supervisor binds before its worker serves, and
        the first measurement must not include the worker's start."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.1 200")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} died: {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:]) or "(no output)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> ServerProcess:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_client(pinning: Pinning, args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``bench/client.py`` with ``args`` on the client CPU; return its JSON result."""
    command = [*pinning.client, sys.executable, str(BENCH / "client.py"), *args]
    out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        # The exception's last line says what went wrong; the traceback is the client's.
        last = out.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"client {args[0]} failed: {last[0]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_tool(pinning: Pinning, command: list[str], timeout: float) -> str:
    """Run an external load generator (wrk) on the client CPU; return its output."""
    out = subprocess.run(
        [*pinning.client, *command], capture_output=True, text=True, timeout=timeout, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {(out.stderr or out.stdout).strip()[-1500:]}")
    return out.stdout
