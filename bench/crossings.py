"""System calls and context switches per request of one server (counts, not time).

Usage::

    python bench/crossings.py TREE [TREE ...] [--servers vestespy-pool-epoll,...]
        [--workloads hello,pipelined] [--requests 4000] [--rounds 3]

Each TREE is a source tree (a worktree, or ``git archive REF | tar -x``) whose
``bench/apps.py`` serves the server; ``vestespy-compiled-*`` servers need its mypyc build in
``TREE/bench/.build`` (``run.py`` or ``instructions.py`` make one). After a warm-up, the
client of ``instructions.py`` (4 keep-alive connections; pipelined: 16 requests per write)
sends ``--requests`` requests three times: once counting the context switches of every
thread (``/proc/PID/task/*/status``, voluntary and not), once under ``perf stat`` (system
calls, futex calls, context switches: no ptrace, so the threads' hand-offs are not
distorted), once under ``strace -f -c`` (the calls by name; its futex figure is inflated by
the tracing itself, the others are not). Rounds alternate the trees; the medians are printed.
Context switches and futex calls depend on the machine's other load: read the medians of
several rounds, and the instruction counts beside them.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from instructions import drive
from procs import free_port

PERF_EVENTS = "raw_syscalls:sys_enter,syscalls:sys_enter_futex,context-switches"
ATTACH = 1.0  # seconds for perf and strace to attach to every thread before the load


def switches(pid: int) -> int:
    """Context switches so far of every thread of ``pid``."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue  # the thread ended
        for key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            found = re.search(rf"^{key}:\s+(\d+)", text, re.MULTILINE)
            total += int(found.group(1)) if found else 0
    return total


def attached(command: list[str], port: int, requests: int, depth: int) -> None:
    """Run ``command`` (a tracer attached to the server) around one load."""
    tracer = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    time.sleep(ATTACH)
    drive(port, requests, depth)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(60)


def measure(tree: Path, server: str, depth: int, requests: int, tmp: Path) -> dict[str, float]:
    port = free_port()
    command = [sys.executable, str(tree / "bench" / "apps.py"), server, str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    figures: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server} did not start") from None
                time.sleep(0.1)
        drive(port, 400, depth)  # warm-up: imports, pool threads
        before = switches(proc.pid)
        drive(port, requests, depth)
        figures["ctxsw (/proc)"] = (switches(proc.pid) - before) / requests
        perf_out = tmp / "perf.txt"
        perf = ["perf", "stat", "-x", ",", "-o", str(perf_out), "-e", PERF_EVENTS]
        attached([*perf, "-p", str(proc.pid)], port, requests, depth)
        names = {"raw_syscalls:sys_enter": "syscalls (perf)", "context-switches": "ctxsw (perf)"}
        names["syscalls:sys_enter_futex"] = "futex (perf)"
        # A perf that could not attach (the server's threads changing under it) writes
        # nothing: its figures are missing from that round, not zero.
        perf_lines = perf_out.read_text().splitlines() if perf_out.exists() else []
        for line in perf_lines:
            parts = line.split(",")
            if len(parts) > 2 and parts[0].strip().isdigit() and parts[2] in names:
                figures[names[parts[2]]] = int(parts[0]) / requests
        strace_out = tmp / "strace.txt"
        strace = ["strace", "-f", "-c", "-o", str(strace_out), "-p", str(proc.pid)]
        attached(strace, port, requests, depth)
        other = 0.0
        for line in strace_out.read_text().splitlines():
            row = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if row and row.group(2) != "total":
                calls = int(row.group(1)) / requests
                if row.group(2) in ("sendto", "recvfrom", "epoll_wait"):
                    figures[f"{row.group(2)} (strace)"] = calls
                if row.group(2) != "futex":
                    other += calls
        figures["not futex (strace)"] = other
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--servers", default="vestespy-pool-epoll,vestespy-compiled-pool-epoll")
    parser.add_argument("--workloads", default="hello,pipelined")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    depths = {"hello": 1, "pipelined": 16}
    results: dict[tuple[str, str, Path], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="vestespy-crossings-") as tmp:
        for round_ in range(args.rounds):
            trees = args.trees if round_ % 2 == 0 else list(reversed(args.trees))
            for server in args.servers.split(","):
                for workload in args.workloads.split(","):
                    for tree in trees:
                        found = measure(tree, server, depths[workload], args.requests, Path(tmp))
                        results.setdefault((server, workload, tree), []).append(found)
                        print(f"round {round_ + 1}: {server} {workload} {tree}", flush=True)
    print(f"\nper request ({args.requests} requests, medians of {args.rounds} rounds):")
    for (server, workload, tree), rounds in results.items():
        keys = sorted({key for found in rounds for key in found})
        cells = [
            f"{key} {statistics.median(f[key] for f in rounds if key in f):.2f}" for key in keys
        ]
        print(f"{server} {workload} {tree}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
