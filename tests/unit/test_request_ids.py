"""Request ids: what a proxy may give, and what the server makes."""

from __future__ import annotations

import os

import pytest

from vestespy._request_ids import MAX_LENGTH, new_request_id, valid_request_id


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("abc", True),
        ("0f8e-ALB-1/2:3=+_~!", True),
        ("x" * MAX_LENGTH, True),
        ("x" * (MAX_LENGTH + 1), False),
        ("", False),
        (None, False),
        ("a b", False),
        ("tab\t", False),
        ('quo"te', False),
        ("back\\slash", False),
        ("caf\xe9", False),
        ("new\nline", False),
        ("\x7f", False),
    ],
)
def test_valid_request_id(value: str | None, valid: bool) -> None:
    assert valid_request_id(value) is valid


def test_made_ids_are_unique_and_valid() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(valid_request_id(i) for i in ids)
    assert len({i.partition("-")[0] for i in ids}) == 1  # one prefix per process


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_its_own_prefix() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child.partition("-")[0] != new_request_id().partition("-")[0]
