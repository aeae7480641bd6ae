"""Profile one server under one load: ``python bench/profiling.py --tool py-spy|cprofile``.

py-spy samples every thread (the pool's workers too) with little overhead; cProfile sees only
the loop thread but counts calls exactly, which gives calls per request. Both need the load
generator (wrk or bench/client.py) on the other CPU, as in run.py. py-spy comes from PyPI
(``pip install py-spy``) and needs ptrace rights (root, or CAP_SYS_PTRACE).
"""

from __future__ import annotations

import argparse
import collections
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wrk
from procs import BENCH, Pinning, free_port, run_client, run_tool

# Where a frame's code lives decides whose time it is.
_GROUPS = [
    ("h11", re.compile(r"(^|[\s(/\\])h11[/\\]")),
    ("vestespy", re.compile(r"(^|[\s(/\\])vestespy[/\\]")),
    ("bench app", re.compile(r"apps\.py")),
]
# Leaf frames where a thread waits rather than works (py-spy --idle keeps them).
_WAITING = re.compile(r"^(select|poll|wait|_worker|_work|acquire) \(|selectors\.py|threading\.py")


def _group(frame: str) -> str:
    for name, pattern in _GROUPS:
        if pattern.search(frame):
            return name
    return "stdlib/other"


def _load(pinning: Pinning, port: int, workload: str, seconds: int, tmp: Path) -> float:
    """Run the load; return the requests completed."""
    depth = 16 if workload == "pipelined" else 1
    if wrk.wrk_path() is not None:
        script = wrk.write_scripts(tmp, 16, 1024)["pipeline"] if depth > 1 else None
        out = run_tool(pinning, wrk.wrk_command(port, 50, seconds, script), seconds + 60)
        return wrk.parse_report(out)["requests"]
    args = ["load", "--port", str(port), "--depth", str(depth), "--duration", str(seconds)]
    result: dict[str, float] = run_client(pinning, args, seconds + 60)
    return result["requests"]


def _wait_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def profile_cprofile(args: argparse.Namespace, pinning: Pinning, tmp: Path) -> None:
    port = free_port()
    out = tmp / "server.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(out), str(BENCH / "apps.py")]
    server = subprocess.Popen([*pinning.server, *command, args.server, str(port)])
    try:
        _wait_port(port)
        requests = _load(pinning, port, args.workload, args.seconds, tmp)
    finally:
        server.terminate()
        server.wait(30)
    stats = pstats.Stats(str(out))
    print(f"{args.server} / {args.workload}: {requests:,.0f} requests under cProfile")
    # Calls per request tell what a batch could remove; tottime tells what it costs.
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    total = sum(v[2] for _, v in rows)
    print(f"{'tottime %':>9} {'us/req':>7} {'calls/req':>9}  function")
    for (file, line, name), (_cc, ncalls, tottime, _ct, _callers) in rows[: args.top]:
        where = f"{Path(file).name}:{line}" if file != "~" else "builtin"
        print(
            f"{100 * tottime / total:8.1f}% {1e6 * tottime / requests:7.2f} "
            f"{ncalls / requests:9.2f}  {name} ({where})"
        )
    groups: collections.Counter[str] = collections.Counter()
    for (file, _line, _name), (_cc, _nc, tottime, _ct, _c) in rows:
        groups[_group(file)] += tottime
    print("self time by owner:", _shares(groups))
    print(f"profiled time per request: {1e6 * total / requests:.1f} us (cProfile inflates it)")


def _shares(groups: collections.Counter[str]) -> str:
    total = sum(groups.values()) or 1
    return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in groups.most_common())


def profile_pyspy(args: argparse.Namespace, pinning: Pinning, tmp: Path) -> None:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    port = free_port()
    server = subprocess.Popen(
        [*pinning.server, sys.executable, str(BENCH / "apps.py"), args.server, str(port)]
    )
    raw = tmp / "stacks.txt"
    try:
        _wait_port(port)
        record = [pyspy, "record", "--pid", str(server.pid), "--rate", "500", "--format", "raw"]
        record += ["--output", str(raw), "--duration", str(args.seconds), "--nonblocking"]
        # By function, not by line; with waiting threads, to see how much time is waiting.
        record += ["--function", "--idle"]
        if args.gil:
            # Only the thread holding the GIL: separates work from waiting for the GIL.
            record.append("--gil")
        sampler = threading.Thread(
            target=subprocess.run,
            args=([*pinning.client, *record],),
            kwargs={"capture_output": True, "check": False},
        )
        sampler.start()
        requests = _load(pinning, port, args.workload, args.seconds, tmp)
        sampler.join()
    finally:
        server.terminate()
        server.wait(30)
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    groups: collections.Counter[str] = collections.Counter()
    total = waiting = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        if _WAITING.search(frames[-1]):
            waiting += count
            continue
        total += count
        self_time[frames[-1]] += count
        # Time under any h11 frame is h11's, whoever h11 calls; the rest goes to the leaf.
        inside_h11 = any(_group(frame) == "h11" for frame in frames)
        groups["h11 (inclusive)" if inside_h11 else _group(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(f"{args.server} / {args.workload}: {requests:,.0f} requests in {args.seconds} s")
    print(f"samples: {total} working, {waiting} waiting (select, locks, idle workers)")
    print("working time by owner:", _shares(groups))
    print(f"{'self %':>7}  function (leaf)")
    for frame, count in self_time.most_common(args.top):
        print(f"{100 * count / total:6.1f}%  {frame}")
    print(f"{'incl %':>7}  function (anywhere on the stack)")
    for frame, count in inclusive.most_common(args.top):
        print(f"{100 * count / total:6.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", choices=["py-spy", "cprofile"], default="py-spy")
    parser.add_argument("--server", default="vestespy-inline-epoll")
    parser.add_argument("--workload", choices=["hello", "pipelined"], default="hello")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--gil", action="store_true", help="py-spy: sample the GIL holder only")
    args = parser.parse_args()
    pinning = Pinning.detect()
    with tempfile.TemporaryDirectory(prefix="vestespy-profile-") as tmp:
        if args.tool == "cprofile":
            profile_cprofile(args, pinning, Path(tmp))
        else:
            profile_pyspy(args, pinning, Path(tmp))


if __name__ == "__main__":
    main()
