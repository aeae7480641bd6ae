"""Shared fixtures: every socket test runs on each backend, with a pool and inline."""

from __future__ import annotations

import os
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``VESTESPY_SLOW_TESTS=0`` skips the tests marked slow (real processes, proxies, load).

    tox runs them in the Python 3.11 environments only, on both builds: the other Pythons run
    everything else, so the matrix stays within CI's time. Run directly, pytest runs them all.
    """
    if os.environ.get("VESTESPY_SLOW_TESTS") != "0":
        return
    skip = pytest.mark.skip(reason="slow: tox runs these in py311-pure and py311-compiled only")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
