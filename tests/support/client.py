"""A minimal raw HTTP/1.1 client for tests: send exact bytes, parse exact responses.

It parses responses itself (rather than with h11) so that tests see precisely what the
server put on the wire, including malformed output, and can pipeline freely.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

TIMEOUT = 10.0


@dataclass
class ParsedResponse:
    """One response as read off the wire."""

    status: int
    reason: str
    http_version: str
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]] = field(default_factory=list)
    chunked: bool = False

    def header(self, name: str) -> str | None:
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        lower = name.lower()
        return [v for n, v in self.headers if n.lower() == lower]

    @property
    def closes(self) -> bool:
        return "close" in (self.header("Connection") or "").lower()


class RawClient:
    """A blocking client socket with a read buffer."""

    def __init__(self, address: tuple[str, int], timeout: float = TIMEOUT) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buffer = bytearray()
        self.eof = False

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self,
        method: str = "GET",
        target: str = "/",
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        version: str = "1.1",
    ) -> ParsedResponse:
        """Send one request and read its response."""
        self.send(build_request(method, target, body, headers, version))
        return self.read_response(head_only=method == "HEAD")

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(1 << 20)
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def _read_line(self) -> bytes:
        while True:
            index = self.buffer.find(b"\r\n")
            if index >= 0:
                line = bytes(self.buffer[:index])
                del self.buffer[: index + 2]
                return line
            if not self._fill():
                raise ConnectionError(f"connection closed mid-line: {bytes(self.buffer)!r}")

    def _read_exact(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise ConnectionError(
                    f"connection closed after {len(self.buffer)} of {count} body bytes"
                )
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def _read_fields(self) -> list[tuple[str, str]]:
        fields = []
        while True:
            line = self._read_line()
            if not line:
                return fields
            name, sep, value = line.decode("latin-1").partition(":")
            assert sep, f"malformed header line {line!r}"
            assert name == name.strip(), f"whitespace around field name {line!r}"
            fields.append((name, value.strip(" \t")))

    def read_response(self, head_only: bool = False) -> ParsedResponse:
        """Read one response, skipping interim 1xx responses other than the ones asked."""
        while True:
            response = self.read_head()
            if 100 <= response.status < 200:
                continue
            self.read_body(response, head_only)
            return response

    def read_head(self) -> ParsedResponse:
        status_line = self._read_line().decode("latin-1")
        version, status, reason = ([*status_line.split(" ", 2), ""])[:3]
        assert version.startswith("HTTP/"), f"bad status line {status_line!r}"
        headers = self._read_fields()
        return ParsedResponse(int(status), reason, version[5:], headers, b"")

    def read_body(self, response: ParsedResponse, head_only: bool = False) -> None:
        if head_only or response.status in (204, 304) or response.status < 200:
            return
        te = response.header("Transfer-Encoding")
        cl = response.header("Content-Length")
        if te is not None:
            assert te.lower() == "chunked", te
            assert cl is None, "both Transfer-Encoding and Content-Length in a response"
            response.chunked = True
            parts = []
            while True:
                size = int(self._read_line().split(b";")[0], 16)
                if size == 0:
                    break
                parts.append(self._read_exact(size))
                assert self._read_line() == b"", "missing CRLF after chunk"
            response.trailers = self._read_fields()
            response.body = b"".join(parts)
        elif cl is not None:
            response.body = self._read_exact(int(cl))
        else:
            while self._fill():
                pass
            response.body = bytes(self.buffer)
            self.buffer.clear()

    def read_until_close(self) -> bytes:
        """Read everything until the server closes; return what arrived."""
        while self._fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def is_closed_by_server(self) -> bool:
        """Whether the server closed the connection (after any buffered bytes)."""
        try:
            return not self._fill() and not self.buffer
        except (ConnectionResetError, BrokenPipeError):
            return True


def build_request(
    method: str = "GET",
    target: str = "/",
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    version: str = "1.1",
) -> bytes:
    """Return the bytes of a simple request with Host and (for a body) Content-Length."""
    lines = [f"{method} {target} HTTP/{version}"]
    fields = list(headers or [])
    names = {n.lower() for n, _ in fields}
    if "host" not in names:
        fields.insert(0, ("Host", "test"))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        fields.append(("Content-Length", str(len(body))))
    lines += [f"{n}: {v}" for n, v in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
