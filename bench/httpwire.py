"""Just enough HTTP/1.1 for the harness's clients, and reading a process's memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def request_bytes(method: str, path: str, *, body: bytes = b"", close: bool = False) -> bytes:
    """One request, as bytes (a body gets a Content-Length)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


class ResponseParser:
    """Splits a byte stream into responses framed by Content-Length (all the apps send it).

    Kept cheap on purpose: in the pure-Python load generator this is the client's hot path,
    and the client must not be the bottleneck before the server is.
    """

    __slots__ = ("_buffer", "bodies", "keep_bodies", "statuses")

    def __init__(self, keep_bodies: bool = False) -> None:
        self._buffer = b""
        self.statuses: list[int] = []
        self.bodies: list[bytes] = []
        self.keep_bodies = keep_bodies

    def feed(self, data: bytes) -> None:
        buf = self._buffer + data if self._buffer else data
        pos = 0
        while True:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                break
            head = buf[pos:end].lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                raise ValueError(f"response without Content-Length: {head[:200]!r}")
            value_end = head.find(b"\r\n", at + 17)
            length = int(head[at + 17 : value_end if value_end >= 0 else len(head)])
            body_end = end + 4 + length
            if body_end > len(buf):
                break
            self.statuses.append(int(head[9:12]))
            if self.keep_bodies:
                self.bodies.append(buf[end + 4 : body_end])
            pos = body_end
        self._buffer = buf[pos:]


def rss_kib(pid: int) -> int | None:
    """The resident set size of ``pid`` in KiB, or None where it cannot be read."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None
    if sys.platform == "darwin" or sys.platform.startswith("freebsd"):
        out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
        return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None
    return None


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) a process and its live descendants have used
    so far (gunicorn serves from worker processes); None if unknown."""
    fields = _stat(pid)
    if fields is None:
        return None
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            other = _stat(int(entry.name))
            if other is not None:
                # The parent's pid is the fourth field, counted from the state (the third).
                children.setdefault(int(other[1]), []).append(int(entry.name))
    ticks = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        stat = fields if current == pid else _stat(current)
        if stat is not None:
            # Fields 14 and 15 (utime, stime), counted from the state, the third field.
            ticks += int(stat[11]) + int(stat[12])
        todo.extend(children.get(current, ()))
    return ticks / os.sysconf("SC_CLK_TCK")
