"""Socket tests run against every backend, with listeners on a pool and inline."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support import ServerThread, serve

Serve = Callable[..., contextlib.AbstractContextManager[ServerThread]]


@pytest.fixture
def served(backend: str, workers: int) -> Serve:
    """``served(listener, **options)``: a server on this test's backend and worker mode."""

    @contextlib.contextmanager
    def start(
        listener: Callable[..., object] | None = None, **kwargs: Any
    ) -> Iterator[ServerThread]:
        kwargs.setdefault("select", backend)
        kwargs.setdefault("max_workers", workers)
        with serve(listener, **kwargs) as thread:
            yield thread

    return start
