"""A range of a regular file on its way to a client, sent by the kernel (``sendfile``).

Theory of operation: :meth:`vestespy.Response.send_file` queues a :class:`FileSegment` where
other responses queue bytes. The segment passes through h11 untouched (h11 only calls
``len()`` on body data given to ``send_with_data_passthrough``), waits in the output buffer
and the transport's backlog like bytes, and the transport hands it to ``os.sendfile`` on the
loop thread as the socket takes it: the file's bytes go from the page cache to the socket
without a copy through Python. Only plain TCP connections take segments; a TLS connection
must encrypt, so :class:`~vestespy.Response` reads the file and sends bytes there.

The segment owns a duplicate of the file's descriptor, so the application may close its file
as soon as ``send_file`` returns; the duplicate is closed once the range is sent, or when the
segment is dropped (the connection closed first).

Created by the thread that sends the response; afterwards the loop thread's.
"""

from __future__ import annotations

import os

__all__ = ["FileSegment", "FileTruncated"]

# The most one sendfile call may send: the loop serves other connections between two calls
# even when the socket could take more (a loopback socket takes megabytes at once).
_STEP = 1024 * 1024


class FileTruncated(OSError):
    """The file ended before its range did (it was truncated while being sent)."""


class FileSegment:
    """``count`` bytes of the file ``fd`` from ``offset``, sent with ``os.sendfile``.

    Args:
        fd: A descriptor of a regular file; the segment duplicates it (the caller keeps its own).
        offset: Where the range starts.
        count: How many bytes it holds.
    """

    __slots__ = ("_fd", "offset", "remaining")

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self._fd = os.dup(fd)
        self.offset = offset
        #: Bytes of the range not yet taken by the kernel.
        self.remaining = count

    def __len__(self) -> int:
        return self.remaining

    def __repr__(self) -> str:
        return f"<FileSegment fd={self._fd} offset={self.offset} remaining={self.remaining}>"

    def send_to(self, socket_fd: int) -> int:
        """Send what the socket takes now (one step); return the count sent.

        Raises:
            BlockingIOError: The socket takes nothing now.
            OSError: The socket or the file failed (FileTruncated among them).
            FileTruncated: The file ended before the range did.
        """
        sent = os.sendfile(socket_fd, self._fd, self.offset, min(self.remaining, _STEP))
        if not sent:
            raise FileTruncated(f"the file ended {self.remaining} bytes before its range did")
        self.offset += sent
        self.remaining -= sent
        if not self.remaining:
            self.close()
        return sent

    def read(self, size: int) -> bytes:
        """Read up to ``size`` bytes of the range (``pread``), for a transport that cannot
        use sendfile; ``b""`` once the range or the file ended."""
        data = os.pread(self._fd, min(size, self.remaining), self.offset) if self.remaining else b""
        self.offset += len(data)
        self.remaining -= len(data)
        if not self.remaining:
            self.close()
        return data

    def close(self) -> None:
        """Close the duplicate descriptor (idempotent)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        # Dropped unsent (the connection closed first): the descriptor must not leak.
        self.close()
