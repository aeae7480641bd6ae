"""The table: machine and commit on top, one row per server, each figure with its ratio."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from workloads import BARE, H11_MINIMAL, H11_MINIMAL_MYPYC, Column, Workload

REFERENCE = "waitress"
Results = dict[str, dict[tuple[str, str], float | None]]  # server -> (workload, column) -> value


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_commit(repo: Path) -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    # Uncommitted changes under src/ change what is measured: say so.
    dirty = git("status", "--porcelain", "--", "src")
    return f"{commit}{' + uncommitted changes in src/' if dirty else ''}"


def header_lines(repo: Path, pinning: str, loadgen: str, mode: str) -> list[str]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs ({affinity} usable), "
        f"{platform.system()} {platform.release()}",
        f"python: {platform.python_implementation()} {sys.version.split()[0]}",
        f"commit: {git_commit(repo)}",
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average: {load}",
        f"pinning: {pinning}; load generator: {loadgen}; mode: {mode}",
    ]


def _format(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _cell(value: float | None, reference: float | None, failed: bool) -> str:
    if failed:
        return "FAILED"
    if value is None:
        return "-"
    if reference:
        return f"{_format(value)} ({value / reference:.2f}x)"
    return _format(value)


def table(
    servers: Sequence[str],
    workloads: Sequence[Workload],
    results: Results,
    failures: set[tuple[str, str]],
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the main table: each cell is a figure and its ratio to waitress."""
    columns: list[tuple[Workload, Column]] = [(w, c) for w in workloads for c in w.columns]
    header = ["server"] + [
        c.title + ("" if c.higher_is_better else " (lower is better)") for _, c in columns
    ]
    reference = results.get(REFERENCE, {})
    rows = []
    for server in servers:
        row = [server]
        for workload, column in columns:
            key = (workload.name, column.key)
            if server not in workload.servers:
                row.append("")
                continue
            value = results.get(server, {}).get(key)
            row.append(_cell(value, reference.get(key), (server, workload.name) in failures))
        rows.append(row)
    return header, rows


def reference_ratios(
    servers: Sequence[str], workloads: Sequence[Workload], results: Results
) -> list[str]:
    """One line per workload that has a reference server: each figure as a fraction of it.

    The transfers compare with the bare socket loop (the pure-Python I/O limit), hello world
    with h11-minimal on h11 and on h11_mypyc (the most a server on that core can do); then
    the server CPU per hello request each VestesPy variant spends beyond h11-minimal on its
    core (pure on h11, compiled on h11_mypyc).
    """
    lines = []
    references = (
        (BARE, "the bare socket loop"),
        (H11_MINIMAL, "h11-minimal"),
        (H11_MINIMAL_MYPYC, "h11-minimal-mypyc"),
    )
    for reference_name, label in references:
        measured = results.get(reference_name, {})
        for workload in workloads:
            key = (workload.name, "rate")
            reference = measured.get(key)
            if reference_name not in workload.servers or not reference:
                continue
            parts = []
            for server in servers:
                value = results.get(server, {}).get(key)
                if server not in (BARE, H11_MINIMAL, H11_MINIMAL_MYPYC) and value:
                    parts.append(f"{server} {value / reference:.2f}x")
            if parts:
                title = workload.columns[0].title
                lines.append(f"{title} vs {label}: " + ", ".join(parts))
    overheads = []
    for server in servers:
        reference_name = H11_MINIMAL_MYPYC if "-compiled-" in server else H11_MINIMAL
        cpu = results.get(server, {}).get(("hello", "cpu"))
        reference_cpu = results.get(reference_name, {}).get(("hello", "cpu"))
        if server.startswith("vestespy") and cpu and reference_cpu:
            overheads.append(f"{server} {cpu - reference_cpu:+.1f} (vs {reference_name})")
    if overheads:
        lines.append("hello server CPU us/req beyond h11-minimal: " + ", ".join(overheads))
    return lines


#: Pairs of rows whose ratio is a target (issue 19): the pool against inline, the WSGI adapter
#: against the plain pool listener, the command's access log on against off, and the pure
#: build against waitress. ``--pairs`` names others.
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("vestespy-compiled-pool50-epoll", "vestespy-compiled-inline-epoll"),
    ("vestespy-compiled-wsgi-epoll", "vestespy-compiled-pool-epoll"),
    ("vestespy-compiled-command-listener", "vestespy-compiled-command-listener-nolog"),
    ("vestespy-compiled-command-wsgi", "vestespy-compiled-command-wsgi-nolog"),
    ("vestespy-inline-epoll", "waitress"),
)


def paired_ratios(
    rounds: Sequence[Results],
    pairs: Sequence[tuple[str, str]],
    workloads: Sequence[Workload],
) -> list[str]:
    """One line per pair and workload: ``a``'s rate over ``b``'s, taken within each round.

    The machine's speed drifts between rounds (by tens of percent on a shared VM), and the
    table's ratio of two medians keeps that drift when the two medians come from different
    rounds. A ratio taken inside one round, where both rows ran within minutes of each
    other, cancels most of it; the line gives the median of those ratios, their range, and
    the same for the server CPU per request where the workload measures it (``b``'s over
    ``a``'s, so that above 1 means ``a`` is cheaper).

    >>> r = [{"a": {("hello", "rate"): 90.0}, "b": {("hello", "rate"): 100.0}},
    ...      {"a": {("hello", "rate"): 50.0}, "b": {("hello", "rate"): 40.0}}]
    >>> from workloads import WORKLOADS
    >>> paired_ratios(r, [("a", "b")], [WORKLOADS["hello"]])
    ['a / b, hello req/s: median 1.07x of 2 rounds (0.90x-1.25x)']
    """
    lines = []
    for a, b in pairs:
        for workload in workloads:
            parts = []
            for key, invert, label in (("rate", False, ""), ("cpu", True, "CPU per request ")):
                ratios = []
                for measured in rounds:
                    x = measured.get(a, {}).get((workload.name, key))
                    y = measured.get(b, {}).get((workload.name, key))
                    if x and y:
                        ratios.append(y / x if invert else x / y)
                if ratios:
                    parts.append(
                        f"{label}median {statistics.median(ratios):.2f}x of {len(ratios)} "
                        f"round{'s' if len(ratios) > 1 else ''} "
                        f"({min(ratios):.2f}x-{max(ratios):.2f}x)"
                    )
            if parts:
                title = workload.columns[0].title
                lines.append(f"{a} / {b}, {title}: " + "; ".join(parts))
    return lines


def render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = ["| " + " | ".join(header) + " |"]
        out.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        out += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
