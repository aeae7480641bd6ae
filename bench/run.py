"""VestesPy against its peers: ``python bench/run.py [--quick] [--markdown]``.

Each server runs in its own process pinned to one CPU, the load generator on another (where
there are two); the table gives each figure and its ratio to waitress, all from one run.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
import wrk
from procs import Pinning, ServerProcess
from workloads import (
    COMMAND,
    QUICK_LEAVES_OUT,
    SERVERS,
    WORKLOADS,
    Context,
    Scale,
    Workload,
)

REPO = Path(__file__).resolve().parent.parent
# The module (or modules) each server needs, to say "not installed" before starting anything.
_NEEDS = {
    "waitress": "waitress",
    "cheroot": "cheroot",
    "gunicorn": "gunicorn",
    "uvicorn": "uvicorn",
    "hypercorn": "hypercorn",
    "uvicorn-httptools": "httptools",
    "h11-minimal-mypyc": "h11_mypyc",
    "vestespy-compiled-pool-epoll": "h11_mypyc",
    "vestespy-compiled-inline-epoll": "h11_mypyc",
    "vestespy-compiled-pool50-epoll": "h11_mypyc",
    "vestespy-compiled-pool50-batch-epoll": "h11_mypyc",
    "vestespy-compiled-wsgi-epoll": "h11_mypyc",
    "vestespy-metrics-pool-epoll": "prometheus_client",
    "vestespy-metrics-inline-epoll": "prometheus_client",
    "vestespy-compiled-metrics-pool-epoll": ("h11_mypyc", "prometheus_client"),
    "vestespy-compiled-metrics-inline-epoll": ("h11_mypyc", "prometheus_client"),
    "granian": "granian",
    "aiohttp": "aiohttp",
    **{name: "h11_mypyc" for name in COMMAND if "-compiled-" in name},
}


def build_compiled(source: Path = REPO) -> str | None:
    """Install the mypyc build of ``source`` (a source tree) where its apps.py looks for it.

    Returns None, or why the build failed.
    """
    from apps import COMPILED_BUILD

    # apps.py finds the build beside itself: the same place under another tree's bench/.
    target = source / "bench" / COMPILED_BUILD.relative_to(Path(__file__).resolve().parent)
    print(f"building the compiled variant into {target} ...", file=sys.stderr, flush=True)
    shutil.rmtree(target, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
    command += [str(target), str(source)]
    result = subprocess.run(
        command,
        env={**os.environ, "VESTESPY_COMPILE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return "the mypyc build failed: " + (result.stderr.strip().splitlines() or ["?"])[-1]
    return None


def _names(value: str, known: list[str], what: str) -> list[str]:
    if value == "all":
        return known
    names = [name.strip() for name in value.split(",") if name.strip()]
    # A prefix selects a family: "vestespy" means all four VestesPy variants.
    chosen = [k for k in known if any(k == n or k.startswith(n + "-") for n in names)]
    unknown = [n for n in names if not any(k == n or k.startswith(n + "-") for k in known)]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every workload, scaled down (CI)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument(
        "--servers", default="all", help="comma list or 'all': " + ",".join(SERVERS)
    )
    parser.add_argument(
        "--workloads", default="all", help="comma list or 'all': " + ",".join(WORKLOADS)
    )
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="wrk if installed (auto), or the harness's own pure-Python client",
    )
    parser.add_argument(
        "--fresh",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a new server process per workload (default: yes, but not with --quick)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every server this many times, alternating the order; each figure is the median",
    )
    parser.add_argument(
        "--pairs",
        default=None,
        help="comma list of A/B: print A's rate over B's taken within each round (default: "
        "the pairs issue 19 sets targets for, those that ran; 'none' for none)",
    )
    return parser.parse_args(argv)


def _pairs(value: str | None) -> list[tuple[str, str]]:
    if value is None:
        return list(report.DEFAULT_PAIRS)
    if value == "none":
        return []
    pairs = []
    for item in value.split(","):
        a, slash, b = item.strip().partition("/")
        if not slash or not a or not b or a not in SERVERS or b not in SERVERS:
            raise SystemExit(f"--pairs: {item!r} is not A/B with two server names")
        pairs.append((a, b))
    return pairs


def _raise_nofile(needed: int) -> None:
    # Servers inherit this limit: the idle workload holds 10,000 sockets in one process.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        print(
            f"warning: RLIMIT_NOFILE is {soft}; the idle workload needs {needed}", file=sys.stderr
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    servers = _names(args.servers, SERVERS, "servers")
    if args.quick and args.servers == "all":
        # CI's smoke run: the variants of rows it already runs stay out (name them to run).
        servers = [name for name in servers if name not in QUICK_LEAVES_OUT]
    workloads = [WORKLOADS[n] for n in _names(args.workloads, list(WORKLOADS), "workloads")]
    pairs = _pairs(args.pairs)
    scale = Scale.quick() if args.quick else Scale.full()
    fresh = (not args.quick) if args.fresh is None else args.fresh
    if args.loadgen == "wrk" and wrk.wrk_path() is None:
        raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and wrk.wrk_path() is not None)
    _raise_nofile(scale.idle_connections + 200)
    pinning = Pinning.detect()
    loadgen = wrk.wrk_version() if use_wrk else "bench/client.py (pure Python)"
    mode = "quick" if args.quick else "full"
    head = report.header_lines(REPO, pinning.description, loadgen, mode)
    # Progress goes to stderr; stdout gets only the final table (to paste or to redirect).
    for line in head:
        print(line, file=sys.stderr, flush=True)

    results: report.Results = {}
    failures: set[tuple[str, str]] = set()
    notes: list[str] = []
    started = time.monotonic()
    runnable = []
    compiled_error = None
    if any("-compiled-" in name for name in servers):
        compiled_error = build_compiled()
    for name in servers:
        todo = [w for w in workloads if name in w.servers]
        if not todo:
            continue
        needed = _NEEDS.get(name, ())
        missing = None
        modules = (needed,) if isinstance(needed, str) else needed
        if any(importlib.util.find_spec(module) is None for module in modules):
            missing = "not installed (pip install -e '.[bench]')"
        elif "-compiled-" in name and compiled_error is not None:
            missing = compiled_error
        if missing is not None:
            failures.update((name, w.name) for w in todo)
            notes.append(f"{name}: {missing}")
            print(f"{name}: {missing}", file=sys.stderr)
            continue
        runnable.append((name, todo))
    rounds: list[report.Results] = []
    with tempfile.TemporaryDirectory(prefix="vestespy-bench-") as tmp:
        ctx = Context(scale, pinning, use_wrk, wrk.write_scripts(Path(tmp), 16, 1024))
        for number in range(args.rounds):
            # Alternate the order, so that no server always follows the same one.
            order = runnable if number % 2 == 0 else runnable[::-1]
            if args.rounds > 1:
                print(f"round {number + 1} of {args.rounds}", file=sys.stderr, flush=True)
            measured: report.Results = {}
            for name, todo in order:
                # One process per workload (full runs: memory and state of one workload
                # cannot colour the next), or one per server (quick runs: start-up dominates).
                groups = [[w] for w in todo] if fresh else [todo]
                for group in groups:
                    _run_group(ctx, name, group, Path(tmp), measured, failures, notes)
            rounds.append(measured)
    for name in {name for measured in rounds for name in measured}:
        keys = {key for measured in rounds for key in measured.get(name, {})}
        results[name] = {}
        for key in keys:
            values = [m[name][key] for m in rounds if m.get(name, {}).get(key) is not None]
            results[name][key] = statistics.median(values) if values else None
    if args.rounds > 1:
        notes.append(f"each figure: the median of {args.rounds} rounds, order alternating")
    elapsed = time.monotonic() - started

    header, rows = report.table(servers, workloads, results, failures)
    print("\n".join(f"- {line}" for line in head) if args.markdown else "\n".join(head))
    print()
    print(report.render(header, rows, args.markdown))
    extra = report.reference_ratios(servers, workloads, results)
    extra += report.paired_ratios(rounds, pairs, workloads)
    for line in [*extra, *notes]:
        print(f"- {line}" if args.markdown else line)
    print(f"{'- ' if args.markdown else ''}harness time: {elapsed:.0f} s")
    if failures:
        print(f"{len(failures)} workload run(s) failed", file=sys.stderr)
        return 1
    return 0


def _run_group(
    ctx: Context,
    name: str,
    group: list[Workload],
    tmp: Path,
    results: report.Results,
    failures: set[tuple[str, str]],
    notes: list[str],
) -> None:
    """Run ``group`` against one process of server ``name``, recording figures or failures."""
    finished: set[str] = set()
    try:
        with ServerProcess(name, ctx.pinning, tmp) as server:
            for workload in group:
                _run_one(ctx, name, workload, server, results, failures, notes)
                finished.add(workload.name)
    except Exception as exc:
        # The server did not start, or died: the workloads not yet finished failed.
        failures.update((name, w.name) for w in group if w.name not in finished)
        notes.append(f"{name}: FAILED: {exc}")
        print(f"{name}: FAILED: {exc}", file=sys.stderr)


def _run_one(
    ctx: Context,
    name: str,
    workload: Workload,
    server: ServerProcess,
    results: report.Results,
    failures: set[tuple[str, str]],
    notes: list[str],
) -> None:
    t0 = time.monotonic()
    try:
        measurement = workload.run(ctx, server)
    except Exception as exc:
        failures.add((name, workload.name))
        notes.append(f"{name} / {workload.name}: FAILED: {exc}")
        print(f"{name:24} {workload.name:10} FAILED: {exc}", file=sys.stderr)
        if not isinstance(exc, RuntimeError):
            traceback.print_exc()
        server.check_alive()
        return
    # A server that died during the workload did not really finish it.
    server.check_alive()
    for key, value in measurement.figures.items():
        results.setdefault(name, {})[(workload.name, key)] = value
    figures = ", ".join(
        f"{k}={v:,.1f}" if v is not None else f"{k}=-" for k, v in measurement.figures.items()
    )
    extra = f" ({'; '.join(measurement.notes)})" if measurement.notes else ""
    elapsed = time.monotonic() - t0
    print(f"{name:24} {workload.name:10} {figures}{extra} [{elapsed:.1f} s]", file=sys.stderr)
    notes.extend(f"{name} / {workload.name}: {note}" for note in measurement.notes)


if __name__ == "__main__":
    sys.exit(main())
