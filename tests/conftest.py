"""Shared fixtures: every socket test runs on each backend, with a pool and inline."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import vestespy

sys.path.insert(0, str(Path(__file__).parent))

BACKENDS = vestespy.available_backends()
#: (max_workers) modes: listeners on a pool, and inline on the loop thread.
WORKER_MODES = [4, 0]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each selector backend this platform has."""
    return str(request.param)


@pytest.fixture(params=WORKER_MODES, ids=["pool", "inline"])
def workers(request: pytest.FixtureRequest) -> int:
    """max_workers: a pool of 4, and 0 (inline)."""
    return int(request.param)
