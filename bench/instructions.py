"""Instructions per request, counted by callgrind: a speed figure that other load cannot blur.

Usage::

    bench/.venv/bin/python bench/instructions.py REF [REF ...] [--requests 2000]
        [--servers vestespy-pool-epoll,vestespy-inline-epoll] [--workloads hello,pipelined]

Each commit is checked out (``git worktree``) into a temporary folder (for the
``vestespy-compiled-*`` servers its mypyc build is installed there first, as ``run.py`` does,
about two minutes per commit) and its ``bench/apps.py`` served under ``valgrind
--tool=callgrind`` with instrumentation off; after a warm-up the count is switched on
(``callgrind_control -i on``) for exactly ``--requests`` requests from a small blocking client
(4 keep-alive connections; pipelined: 16 requests per write), then off. The ``ws-echo``
workload counts per 1 KiB WebSocket message echoed instead (4 WebSockets on ``/ws``, one
message in flight on each, ``--requests`` messages in all). The server's
instructions (every thread) divided by the requests is the figure: on a shared or noisy
machine, where wall-clock rates wander by tens of percent, it repeats to a fraction of a
percent. It does not see what costs time without costing instructions (cache misses, lock
hand-offs between threads), so read it beside ``ab.py``'s wall-clock ratios.

The ``*-command-*`` rows are the ``vestespy`` command: ``apps.py`` ``exec``s ``python -m
vestespy``, a supervisor that forks the worker serving the port. valgrind runs with
``--trace-children=yes`` (it follows the ``exec``; forked children are always followed) and one
output file per process (``%p``); the count is switched on and off in every process of the
tree (the supervisor and its worker, found through ``/proc``), and the figure is their sum
(``--profile`` also prints each process's share). The harness waits for ``GET /`` to be
answered, not only for a connection to be accepted: the supervisor listens before its worker
serves.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from procs import free_port
from run import build_compiled
from trees import checked_out
from wsload import EchoCounter, frame, handshake

HELLO = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
CONNECTIONS = 4


def read_responses(sock: socket.socket, count: int, buffer: bytearray) -> None:
    """Read ``count`` responses with a Content-Length body (the hello app's)."""
    while count:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buffer[:end]).lower()
            length = int(re.search(rb"content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            if len(buffer) >= end + 4 + length:
                del buffer[: end + 4 + length]
                count -= 1
                continue
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("server closed the connection")
        buffer += data


def drive(port: int, requests: int, depth: int) -> None:
    """``requests`` requests over CONNECTIONS connections, ``depth`` per write."""

    def one(share: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            buffer = bytearray()
            while share > 0:
                batch = min(depth, share)
                sock.sendall(HELLO * batch)
                read_responses(sock, batch, buffer)
                share -= batch

    threads = [
        threading.Thread(target=one, args=(requests // CONNECTIONS,)) for _ in range(CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


WS_MESSAGE = frame(b"x" * 1024)


def drive_websockets(port: int, messages: int) -> None:
    """``messages`` 1 KiB binary messages echoed over CONNECTIONS WebSockets, one in flight on
    each (the handshakes are counted too, but 4 of them over thousands of messages)."""

    def one(share: int) -> None:
        sock = handshake(port)
        try:
            counter = EchoCounter()
            for _ in range(share):
                sock.sendall(WS_MESSAGE)
                goal = counter.messages + 1
                while counter.messages < goal:
                    data = sock.recv(65536)
                    if not data:
                        raise RuntimeError("server closed the WebSocket")
                    counter.feed(data)
        finally:
            sock.close()

    threads = [
        threading.Thread(target=one, args=(messages // CONNECTIONS,)) for _ in range(CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def drive_workload(workload: str, port: int, count: int) -> None:
    """Run ``count`` requests (or WebSocket messages) of ``workload``."""
    if workload == "ws-echo":
        drive_websockets(port, count)
    else:
        drive(port, count, DEPTHS[workload])


DEPTHS = {"hello": 1, "pipelined": 16}

_NAMED = re.compile(r"^(ob|fn|cob|cfn|cfi|cfl|fl|fi|fe)=(?:\((\d+)\))?\s*(.*)$")


Costs = collections.Counter[str]


def self_costs(path: Path) -> tuple[Costs, Costs, Costs]:
    """Self instructions by shared object and by function, and inclusive ones by function,
    from one callgrind output file.

    The file format compresses names (``fn=(12) name`` once, ``fn=(12)`` after) and follows
    each ``calls=`` line with the call's inclusive cost, which is not the caller's own but
    counts in its inclusive cost (a recursive call counts twice: read those with care).
    """
    names: dict[tuple[str, str], str] = {}
    by_object: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    obj = fn = ""
    skip_next = False
    for line in path.read_text(errors="replace").splitlines():
        named = _NAMED.match(line)
        if named:
            kind, ident, name = named.groups()
            space = "ob" if kind in ("ob", "cob") else "fn" if kind in ("fn", "cfn") else "fl"
            if ident is not None:
                if name:
                    names[(space, ident)] = name
                name = names.get((space, ident), name)
            if kind == "ob":
                obj = name
            elif kind == "fn":
                fn = name
            continue
        if line.startswith("calls="):
            skip_next = True
            continue
        if line[:1].isdigit() or line[:1] in "+-*":
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                continue
            inclusive[fn] += int(fields[1])
            if skip_next:
                skip_next = False
                continue
            by_object[obj.rsplit("/", 1)[-1]] += int(fields[1])
            by_function[fn] += int(fields[1])
    return by_object, by_function, inclusive


def print_profile(paths: list[Path], requests: int, top: int) -> None:
    """Where the instructions go: per request, by shared object and by function (self cost)."""
    by_object: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for path in paths:
        objects, functions, including = self_costs(path)
        by_object.update(objects)
        by_function.update(functions)
        inclusive.update(including)
    total = sum(by_object.values()) or 1
    print(f"  by object (self instructions per request, {total / requests:,.0f} in all):")
    for name, cost in by_object.most_common(12):
        print(f"    {cost / requests:>10,.0f}  {100 * cost / total:5.1f}%  {name}")
    print(f"  top {top} functions, self cost:")
    for name, cost in by_function.most_common(top):
        print(f"    {cost / requests:>10,.0f}  {100 * cost / total:5.1f}%  {name[:100]}")
    # Compiled Python functions (mypyc's CPyDef_module___function) with what they call: which
    # of VestesPy's or h11's functions the interpreter's time is spent for.
    compiled = [(n, c) for n, c in inclusive.most_common() if n.startswith("CPyDef_")]
    print(f"  top {top} compiled Python functions, inclusive cost:")
    for name, cost in compiled[:top]:
        print(f"    {cost / requests:>10,.0f}  {100 * cost / total:5.1f}%  {name[:100]}")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a command row's supervisor and its worker), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree = [pid]
    for member in tree:
        tree.extend(child for child, parent in parents.items() if parent == member)
    return tree


def wait_until_served(port: int, proc: subprocess.Popen[bytes], server: str) -> None:
    """Wait until ``GET /`` is answered (a command's supervisor listens before its worker)."""
    deadline = time.monotonic() + 300
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(HELLO)
                read_responses(sock, 1, bytearray())
                return
        except (OSError, RuntimeError):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{server} did not start under valgrind") from None
            time.sleep(0.5)


def count(
    tree: Path, server: str, workload: str, requests: int, out: Path, profile: int = 0
) -> float:
    port = free_port()
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--trace-children=yes",
        f"--callgrind-out-file={out}.%p",
        sys.executable,
        str(tree / "bench" / "apps.py"),
        server,
        str(port),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pids = [proc.pid]
    try:
        wait_until_served(port, proc, server)
        drive_workload(workload, port, 200)  # warm-up: imports, caches, pool threads started
        pids = process_tree(proc.pid)  # the server, or a command's supervisor and worker
        for action in (["-i", "on"], None, ["-i", "off"], ["-d"]):
            if action is None:
                drive_workload(workload, port, requests)
                continue
            # -d: dump now, as under valgrind a server blocked in epoll_wait may not see
            # SIGTERM for a long while (seen with inline servers), and a killed one writes
            # nothing.
            for pid in pids:
                subprocess.run(
                    ["callgrind_control", *action, str(pid)], check=True, capture_output=True
                )
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pid in pids[1:]:  # a worker its killed supervisor left behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    dumps = sorted(out.parent.glob(out.name + ".*"))
    if profile:
        print_profile(dumps, requests, profile)
    # Each process's dump is its largest summary (the final file written at exit counts only
    # what came after the dump); the figure is the sum over processes.
    by_pid: dict[str, int] = {}
    for path in dumps:
        text = path.read_text()
        pid = re.search(r"^pid: (\d+)", text, re.MULTILINE)
        key = pid.group(1) if pid else path.name
        for found in re.findall(r"^(?:summary|totals): (\d+)", text, re.MULTILINE):
            by_pid[key] = max(by_pid.get(key, 0), int(found))
        path.unlink()
    if profile and len(by_pid) > 1:
        shares = ", ".join(f"pid {pid}: {n / requests:,.0f}" for pid, n in sorted(by_pid.items()))
        print(f"  per process (instructions per request): {shares}")
    return sum(by_pid.values()) / requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("refs", nargs="+")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--servers",
        default="vestespy-pool-epoll,vestespy-inline-epoll",
        help="comma list; vestespy-compiled-* servers need each commit's mypyc build (made here)",
    )
    parser.add_argument(
        "--workloads", default="hello,pipelined", help="hello, pipelined, ws-echo (per message)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also print where the instructions go: by shared object and the top N functions",
    )
    args = parser.parse_args()
    results: dict[tuple[str, str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="vestespy-instr-") as tmp:
        base = Path(tmp)
        with checked_out(args.refs, base) as trees:
            if "-compiled-" in args.servers:
                for ref, tree in trees.items():
                    error = build_compiled(tree)
                    if error is not None:
                        raise SystemExit(f"{ref}: {error}")
            for server in args.servers.split(","):
                for workload in args.workloads.split(","):
                    for ref, tree in trees.items():
                        per_request = count(
                            tree,
                            server,
                            workload,
                            args.requests,
                            base / "callgrind.out",
                            args.profile,
                        )
                        results[(server, workload, ref)] = per_request
                        print(
                            f"{server} {workload} {ref}: {per_request:,.0f} instr/req", flush=True
                        )
    first = args.refs[0]
    print(f"\ninstructions per request ({args.requests} requests), speed against {first}:")
    for server in args.servers.split(","):
        for workload in args.workloads.split(","):
            base_count = results[(server, workload, first)]
            cells = [
                f"{ref}: {results[(server, workload, ref)]:,.0f} "
                f"({base_count / results[(server, workload, ref)]:.3f}x)"
                for ref in args.refs
            ]
            print(f"{server:30} {workload:10} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
