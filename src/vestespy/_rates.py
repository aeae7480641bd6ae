"""A transfer's average rate, for the minimum data rate rules (sans-IO: the caller gives times).

Theory of operation: a :class:`RateMeter` adds up the bytes of a transfer and the time during
which it *runs*: the caller starts it when the client is the one expected to move (the server
reads a request body, or holds response bytes the kernel would not take) and stops it while the
server is the one holding things up (listeners behind on a body). :meth:`RateMeter.too_slow`
is ASP.NET Kestrel's rule: once the running time exceeds a grace period, the average rate over
all of it must reach the minimum. A burst early on counts for later, so a client on a slow but
real link passes, while one that trickles a byte now and then does not.

Loop thread only.
"""

from __future__ import annotations

__all__ = ["RateMeter"]


class RateMeter:
    """Bytes and running time of one transfer."""

    __slots__ = ("_bytes", "_elapsed", "_since")

    def __init__(self) -> None:
        self._bytes = 0
        self._elapsed = 0.0
        self._since: float | None = None  # when the current running period began

    @property
    def bytes(self) -> int:
        """The bytes counted so far."""
        return self._bytes

    @property
    def running(self) -> bool:
        """Whether the meter is counting time."""
        return self._since is not None

    def start(self, now: float) -> None:
        """Count time from ``now`` (no effect if already running)."""
        if self._since is None:
            self._since = now

    def stop(self, now: float) -> None:
        """Stop counting time (the bytes and time so far are kept)."""
        if self._since is not None:
            self._elapsed += now - self._since
            self._since = None

    def add(self, count: int) -> None:
        """Count ``count`` more bytes transferred."""
        self._bytes += count

    def reset(self) -> None:
        """Forget everything: a new transfer."""
        self._bytes = 0
        self._elapsed = 0.0
        self._since = None

    def too_slow(self, now: float, rate: float, grace: float) -> bool:
        """Whether, past ``grace`` seconds of running time, the average is under ``rate``."""
        elapsed = self._elapsed
        if self._since is not None:
            elapsed += now - self._since
        return elapsed > grace and self._bytes < rate * elapsed
