"""Socket tests run against every backend, with listeners on a pool and inline."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support import Serve, ServerThread, serve


@pytest.fixture
def served(backend: str, workers: int) -> Serve:
    """``served(listener, **options)``: a server on this test's backend and worker mode.

    The one fixture that starts a server for a test. A test that needs one worker mode
    overrides ``workers`` (``@pytest.mark.parametrize("workers", [0])``, or a module's own
    ``workers`` fixture), and one that needs other backends parametrizes ``backend``;
    ``max_workers`` and ``select`` given as options win too.
    """

    @contextlib.contextmanager
    def start(
        listener: Callable[..., object] | None = None, **kwargs: Any
    ) -> Iterator[ServerThread]:
        kwargs.setdefault("select", backend)
        kwargs.setdefault("max_workers", workers)
        with serve(listener, **kwargs) as thread:
            yield thread

    return start


@pytest.fixture
def sendfile_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The byte counts ``os.sendfile`` sent while the test ran (its servers run in this
    process). The loop thread records a count after the kernel took the bytes: assert on
    it once the server has stopped, or wait for it."""
    calls: list[int] = []
    real = os.sendfile

    def counting(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        sent = real(out_fd, in_fd, offset, count)
        calls.append(sent)
        return sent

    monkeypatch.setattr(os, "sendfile", counting)
    return calls
