"""What ``--metrics-bind`` costs a busy server: CPU per scrape against CPU per hello request.

Usage::

    bench/.venv/bin/python bench/scrape_cost.py [--compiled] [--workers 0|4]
        [--requests 20000] [--scrapes 200]

Counting costs nothing extra with the exporter on: the server counts for :meth:`Server.stats`
either way, and ``metrics_bind`` only adds the exporter's thread, which reads those counters
when ``/metrics`` is fetched. So the exporter's price is the scrapes' CPU time, taken from the
listeners under the GIL. This serves ``bench/apps.py``'s hello listener with the exporter on
(in this process, on a thread), sends a mix of traffic (hello, 404s, a refused request) so
that the labelled series exist, then measures this process's CPU time (every thread) while a
separate client process makes ``--requests`` hello requests (4 keep-alive connections), and
again while another makes ``--scrapes`` scrapes, one at a time. The server is otherwise idle
during each, so the CPU delta is that work's alone.

A server saturated by hello uses one CPU (the GIL); a scrape every ``s`` seconds takes
``scrape / s`` of it, so throughput keeps ``1 - scrape / s``: printed for one scrape a second
(``apps.py``'s metrics rows, the dear end) and every 15 s (Prometheus's usual interval).
Wall-clock A/B runs of the metrics rows against the plain ones (``ab.py``) wander by more
than the few percent this predicts on a shared machine; this figure does not.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import apps  # noqa: E402  (after the path: apps.py sits beside this file)

CONNECTIONS = 4

# The client processes: they import nothing of VestesPy, so their CPU is theirs alone.
HELLO_CLIENT = """
import socket, sys
host, port, count, connections = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
request = b"GET / HTTP/1.1\\r\\nHost: bench\\r\\n\\r\\n"
socks = [socket.create_connection((host, port)) for _ in range(connections)]
for n in range(count // connections):
    for sock in socks:
        sock.sendall(request)
    for sock in socks:
        data = b""
        while not data.endswith(b"Hello, World!"):
            chunk = sock.recv(65536)
            assert chunk, "closed"
            data += chunk
"""
SCRAPE_CLIENT = """
import sys, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
for _ in range(count):
    with urllib.request.urlopen(url, timeout=10) as response:
        assert b"vestespy_requests_total" in response.read()
"""


def _cpu_of(argv: list[str]) -> float:
    """This process's CPU seconds (every thread) while ``argv`` runs to completion."""
    before = time.process_time()
    subprocess.run(argv, check=True)
    return time.process_time() - before


def _mix(address: tuple[str, int]) -> None:
    """Traffic that makes the labelled series: hello, a 404, a HEAD, a refused request."""
    for request in (
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",  # a bare LF: 400
    ):
        with socket.create_connection(address) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compiled", action="store_true", help="the mypyc build (run.py's)")
    parser.add_argument("--workers", type=int, default=0, help="max_workers (0: inline)")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    apps._choose_build(args.compiled)
    import vestespy

    server = vestespy.Server(
        ("127.0.0.1", 0),
        max_workers=args.workers,
        metrics_bind="127.0.0.1:0",
        **apps.VESTESPY_OPTIONS,
    )
    server.on("request", apps.listener)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    assert server.wait_serving(10)
    host, port = server.address[:2]
    metrics_host, metrics_port = server.metrics_address
    _mix((host, port))
    python = sys.executable
    hello = [python, "-c", HELLO_CLIENT, host, str(port)]
    scrape = [python, "-c", SCRAPE_CLIENT, f"http://{metrics_host}:{metrics_port}/metrics"]
    # A warm-up of each, then the measured runs.
    _cpu_of([*hello, "2000", str(CONNECTIONS)])
    _cpu_of([*scrape, "20"])
    request_cpu = _cpu_of([*hello, str(args.requests), str(CONNECTIONS)]) / args.requests
    scrape_cpu = _cpu_of([*scrape, str(args.scrapes)]) / args.scrapes
    server.shutdown()
    thread.join(10)
    server.close()
    info = vestespy.build_info()
    build = "compiled" if info.compiled else "pure"
    print(f"vestespy {build}, max_workers={args.workers}, Python {sys.version.split()[0]}")
    print(f"  CPU per hello request: {request_cpu * 1e6:8.1f} us")
    print(f"  CPU per scrape:        {scrape_cpu * 1e6:8.1f} us")
    for interval in (1.0, 15.0):
        print(
            f"  one scrape every {interval:g} s: throughput x{1 - scrape_cpu / interval:.4f}"
            f" (a scrape costs {scrape_cpu / request_cpu:.0f} requests)"
        )


if __name__ == "__main__":
    main()
