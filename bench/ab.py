"""Compare VestesPy at two commits, back to back: alternating rounds, ratios from one run.

Usage::

    bench/.venv/bin/python bench/ab.py BEFORE AFTER [--rounds 4] [--seconds 4]
        [--servers vestespy-pool-epoll,vestespy-inline-epoll] [--workloads hello,pipelined]

Each commit is checked out (``git worktree``) into a temporary folder; its ``bench/apps.py``
serves that commit's ``src/``. Every round runs each server and workload once per commit, the
order of the commits swapped every other round, server and wrk pinned to separate CPUs as in
``run.py``. It prints the median requests/s of each commit, the server's CPU time per request
(user + system, all threads, from /proc), and their ratios (AFTER against BEFORE). CPU time per
request is the steadier figure when other work shares the machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procs import Pinning, free_port
from trees import checked_out
from wrk import parse_report, write_scripts, wrk_command, wrk_path


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited at start (status {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen within {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    tree: Path, server: str, script: Path | None, seconds: int, pinning: Pinning
) -> tuple[float, float]:
    """Return requests/s and the server's CPU microseconds per request."""
    port = free_port()
    command = [*pinning.server, sys.executable, str(tree / "bench" / "apps.py"), server, str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        load = [*pinning.client, *wrk_command(port, 50, seconds, script)]
        cpu_before = cpu_seconds(proc.pid)
        out = subprocess.run(load, capture_output=True, text=True, check=True).stdout
        cpu = cpu_seconds(proc.pid) - cpu_before
        report = parse_report(out)
        if report["errors"]:
            raise RuntimeError(f"{server} at {tree}: {report['errors']} errors")
        return report["value"], cpu / report["requests"] * 1e6
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--servers", default="vestespy-pool-epoll,vestespy-inline-epoll")
    parser.add_argument("--workloads", default="hello,pipelined")
    args = parser.parse_args()
    if wrk_path() is None:
        parser.error("wrk is needed (apt-get install wrk)")
    pinning = Pinning.detect()
    with tempfile.TemporaryDirectory(prefix="vestespy-ab-") as tmp:
        base = Path(tmp)
        scripts = write_scripts(base, depth=16, body_size=1024)
        workloads = {"hello": None, "pipelined": scripts["pipeline"]}
        with checked_out([args.before, args.after], base) as trees:
            results: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
            for round_ in range(args.rounds):
                refs = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                for server in args.servers.split(","):
                    for workload in args.workloads.split(","):
                        for ref in refs:
                            rate, cpu = measure(
                                trees[ref], server, workloads[workload], args.seconds, pinning
                            )
                            results.setdefault((server, workload, ref), []).append((rate, cpu))
                            print(
                                f"round {round_ + 1} {server} {workload} {ref}: "
                                f"{rate:,.0f} req/s, {cpu:.1f} us CPU/req",
                                flush=True,
                            )
    before, after = (args.before, args.after)
    print(f"\nmedians over {args.rounds} rounds ({pinning.description}); ratios AFTER/BEFORE:")
    for server in args.servers.split(","):
        for workload in args.workloads.split(","):
            a = results[(server, workload, before)]
            b = results[(server, workload, after)]
            rate_a = statistics.median(r for r, _ in a)
            rate_b = statistics.median(r for r, _ in b)
            cpu_a = statistics.median(c for _, c in a)
            cpu_b = statistics.median(c for _, c in b)
            print(
                f"{server:24} {workload:10} req/s {rate_a:>8,.0f} -> {rate_b:>8,.0f} "
                f"({rate_b / rate_a:.3f}x); CPU/req {cpu_a:.1f} -> {cpu_b:.1f} us "
                f"(speed {cpu_a / cpu_b:.3f}x)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
