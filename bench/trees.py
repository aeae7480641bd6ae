"""Source trees of other commits, for comparing VestesPy at two or more commits."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def checked_out(refs: list[str], folder: Path) -> Iterator[dict[str, Path]]:
    """Check each ref out (``git worktree``) under ``folder``; remove them all afterwards."""
    trees: dict[str, Path] = {}
    try:
        for index, ref in enumerate(refs):
            tree = folder / f"tree{index}"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
                check=True,
                capture_output=True,
            )
            trees[ref] = tree
        yield trees
    finally:
        for tree in trees.values():
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )
