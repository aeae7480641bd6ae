"""Differential test: the driver on h11 and on h11_mypyc must do exactly the same thing.

The same bytes (the conformance cases, the llhttp corpus copied in ``llhttp/``, and mutations
of both) go to the installed driver running on each core, in a worker process per core
(``worker.py``; a process chooses its core once, at import). Every driver event with its
fields, every rejection with its status, message and response bytes, every response's bytes
and every exception must be identical, fed whole, byte by byte, in random pieces, with and
without EOF. A future release of either core that parses differently fails here.

Needs both cores installed: it skips where h11_mypyc is absent, except in the tox envs of the
compiled build (``VESTESPY_EXPECT_BUILD=compiled``), where that is an error.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import pickle
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).parent
CORES = ("h11", "h11_mypyc")

if importlib.util.find_spec("h11_mypyc") is None:
    if os.environ.get("VESTESPY_EXPECT_BUILD") == "compiled":
        raise RuntimeError("h11_mypyc must be installed for the compiled build's tests")
    pytest.skip("h11_mypyc is not installed", allow_module_level=True)

sys.path.insert(0, str(HERE.parent / "conformance"))
from conformance_cases import CASES  # noqa: E402

Batch = list[tuple[list[bytes], bool]]
_API_ERRORS = ("AttributeError", "NameError", "TypeError")


class Worker:
    """One worker process running the driver on one core."""

    def __init__(self, core: str) -> None:
        env = {**os.environ, "VESTESPY_H11": core, "PYTHONDONTWRITEBYTECODE": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self.process.stdout is not None
        self.core = self.process.stdout.read(16).strip().decode()
        assert self.core == core, f"worker asked for {core} runs {self.core}"

    def run(self, batch: Batch) -> list[Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        data = pickle.dumps(batch)
        self.process.stdin.write(struct.pack(">I", len(data)) + data)
        self.process.stdin.flush()
        (size,) = struct.unpack(">I", self.process.stdout.read(4))
        result: list[Any] = pickle.loads(self.process.stdout.read(size))
        return result

    def close(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[Worker, Worker]]:
    pair = (Worker(CORES[0]), Worker(CORES[1]))
    yield pair
    for worker in pair:
        worker.close()


def compare(workers: tuple[Worker, Worker], batch: Batch) -> None:
    first, second = (worker.run(batch) for worker in workers)
    for (chunks, eof), a, b in zip(batch, first, second, strict=True):
        assert a == b, f"cores differ on {b''.join(chunks)!r} in {len(chunks)} pieces, eof={eof}"
        # A driver API the worker no longer matches would make every transcript stop early,
        # identically on both cores: that must fail, not pass.
        broken = [e for e in a if e[0] in ("error", "send-error") and e[1] in _API_ERRORS]
        assert not broken, broken


def llhttp_requests() -> list[bytes]:
    """The request examples of llhttp's test corpus, with CRLF line ends as llhttp feeds them."""
    found = []
    block = re.compile(r"<!-- meta=(\{.*?\}) -->\s*```http\n(.*?)```", re.S)
    for path in sorted((HERE / "llhttp").glob("*.md")):
        for meta, text in block.findall(path.read_text()):
            if not json.loads(meta)["type"].startswith("request"):
                continue
            # llhttp's harness: LF becomes CRLF, and the escapes \r \n stand for themselves.
            raw = text.replace("\n", "\r\n").replace("\\r", "\r").replace("\\n", "\n")
            found.append(raw.encode("utf-8"))
    return found


SEEDS: list[bytes] = [case.raw for case in CASES] + llhttp_requests()


def test_corpora_loaded() -> None:
    assert len(CASES) > 400
    assert len(SEEDS) - len(CASES) > 100


def splits(raw: bytes) -> list[list[bytes]]:
    """Whole, in two halves, and byte by byte (up to 2 KiB: h11 rescans its buffer per byte)."""
    middle = len(raw) // 2
    cut = [[raw], [raw[:middle], raw[middle:]]]
    if len(raw) <= 2048:
        cut.append([raw[i : i + 1] for i in range(len(raw))])
    return cut


def test_seeds_identical(workers: tuple[Worker, Worker]) -> None:
    batch: Batch = [
        (chunks, eof) for raw in SEEDS for chunks in splits(raw) for eof in (False, True)
    ]
    compare(workers, batch)


def test_seeds_pipelined_identical(workers: tuple[Worker, Worker]) -> None:
    """Each seed behind a simple request, and two seeds back to back."""
    get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    batch: Batch = [([get + raw], False) for raw in SEEDS]
    batch += [([a + b], True) for a, b in itertools.pairwise(SEEDS)]
    compare(workers, batch)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[list[bytes], bool]:
    """A seed with a few bytes inserted, deleted or replaced, cut into random pieces."""
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    interesting = st.sampled_from(
        [b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b"0", b"9", b"f", b";", b",", b"\x00", b"\x7f"]
    )
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(interesting, st.binary(min_size=1, max_size=3)))
        if action == "insert":
            raw[at:at] = piece
        elif action == "delete":
            del raw[at : at + len(piece)]
        else:
            raw[at : at + len(piece)] = piece
    data = bytes(raw)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    # receive(b"") means EOF: empty pieces are dropped, and EOF is a separate choice.
    return [chunk for chunk in chunks if chunk], draw(st.booleans())


@settings(
    max_examples=int(os.environ.get("VESTESPY_DIFFERENTIAL_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(mutated(), min_size=1, max_size=20))
def test_mutations_identical(workers: tuple[Worker, Worker], batch: Batch) -> None:
    compare(workers, batch)
