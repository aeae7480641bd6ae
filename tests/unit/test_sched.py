"""The worker's scheduling policy (``_sched.use_batch_policy``), on threads of this process:
the policy is per thread on Linux, so each case runs on a thread of its own."""

from __future__ import annotations

import os

import pytest

from support.scheduling import batch_policy_allowed, on_a_thread
from vestespy._sched import use_batch_policy

pytestmark = pytest.mark.skipif(
    not batch_policy_allowed(), reason="no SCHED_BATCH here (not Linux, or refused)"
)


def test_a_default_thread_and_the_threads_it_starts_run_under_sched_batch() -> None:
    def case() -> tuple[bool, int, object]:
        changed = use_batch_policy()
        child = on_a_thread(lambda: os.sched_getscheduler(0))
        return changed, os.sched_getscheduler(0), child

    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert on_a_thread(case) == (True, os.SCHED_BATCH, os.SCHED_BATCH)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # this thread's is untouched


def test_a_policy_chosen_by_the_operator_is_left_alone() -> None:
    def case() -> tuple[bool, int]:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # as chrt --idle
        return use_batch_policy(), os.sched_getscheduler(0)

    assert on_a_thread(case) == (False, os.SCHED_IDLE)


def test_a_refusal_leaves_the_policy_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int, policy: int, param: os.sched_param) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert on_a_thread(lambda: (use_batch_policy(), os.sched_getscheduler(0))) == (
        False,
        os.SCHED_OTHER,
    )
