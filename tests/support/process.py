"""A server in another process (tests/support/rlimit_server.py), for tests that measure it.

A server in the test's own process shares the GIL with the load the test generates, so
latencies measured there are the test's as much as the server's; and the test's sockets and
threads would blur the server's counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .client import RawClient

SCRIPT = Path(__file__).parent / "rlimit_server.py"


class Subprocess:
    """The server of rlimit_server.py, its port, and its stderr once it has ended."""

    def __init__(self, *args: str) -> None:
        self.stderr = ""
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, self.stop()
        port, self.in_use, self.limit = (int(x) for x in line.split())
        self.address = ("127.0.0.1", port)

    def send(self, line: str) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def failed_accepts(self, client: RawClient) -> int:
        """How many accept() calls failed for want of a descriptor so far."""
        return int(client.request("GET", "/accepts").body)

    def stop(self) -> str:
        """End the process; return its stderr."""
        assert self.process.stdin is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        if self.process.poll() is None:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        assert self.process.stderr is not None
        assert self.process.stdout is not None
        if self.process.stderr.closed:
            return self.stderr
        self.stderr = self.process.stderr.read()
        self.process.stderr.close()
        self.process.stdout.close()
        return self.stderr

    def stats(self) -> dict[str, Any]:
        """The server's descriptors, threads, RSS (KiB) and connections."""
        with RawClient(self.address) as client:
            result: dict[str, Any] = json.loads(client.request("GET", "/stats").body)
        return result
