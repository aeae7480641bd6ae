"""How evenly ``vestespy --workers 2`` spreads connections: one shared socket or SO_REUSEPORT.

Each round opens 50 connections at once, sends one request on each and counts which worker
answered; the figure is the largest share one worker took. Run from a checkout:

    python bench/reuse_port.py [--rounds 20]

Measured 2026-11-25 on the 2-vCPU machine (20 rounds each):

* one shared socket (``--no-reuse-port``): largest share 26-50 of 50, median 42; in 7 of 20
  rounds one worker took every connection (the worker that wakes first accepts up to 64 in
  one pass).
* a socket per worker (``--reuse-port``, the default on Linux with several workers):
  largest share 25-31 of 50; never one worker alone.
"""

from __future__ import annotations

import argparse
import collections
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = "import os\n\ndef app(server, req, res):\n    res.send_all(str(os.getpid()))\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(mode: str, rounds: int, directory: str) -> list[int]:
    port = free_port()
    command = [sys.executable, "-m", "vestespy", "pidapp:app", "--workers", "2", "--threads"]
    command += ["0", "--bind", f"127.0.0.1:{port}", mode, "--no-access-log"]
    server = subprocess.Popen(command, cwd=directory, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        pids: set[bytes] = set()
        while len(pids) < 2:  # both workers serving
            assert time.monotonic() < deadline, "the server did not start"
            try:
                pids |= set(answer_pids(port, 10))
            except OSError:
                time.sleep(0.05)
        return [max(collections.Counter(answer_pids(port, 50)).values()) for _ in range(rounds)]
    finally:
        server.terminate()
        server.wait(30)


def answer_pids(port: int, count: int) -> list[bytes]:
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    try:
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return [sock.recv(4096).rsplit(b"\r\n\r\n", 1)[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "pidapp.py").write_text(APP)
        for mode in ("--no-reuse-port", "--reuse-port"):
            shares = measure(mode, args.rounds, directory)
            print(
                f"{mode:16} largest share of 50: {min(shares)}-{max(shares)},"
                f" median {statistics.median(shares):.0f},"
                f" one worker took all in {sum(s == 50 for s in shares)} of {len(shares)} rounds"
            )


if __name__ == "__main__":
    main()
