#!/bin/sh
# Instructions per request under callgrind, for each commit given: both builds (pure on h11,
# compiled on h11_mypyc), pool and inline, hello and pipelined x16 (8 figures per commit).
#
#   bench/compare_instructions.sh REF [REF ...]     e.g. dee6bc1 HEAD, or a branch name
#   WSGI=1 bench/compare_instructions.sh REF ...    the WSGI adapter beside the plain pool
#                                                   listener, both builds, hello (4 figures)
#
# Each REF is checked out into a temporary worktree (uncommitted changes are not measured),
# its compiled build made there (about two minutes each), then the variants are run one at
# a time. The counts do not depend on other load, so a busy machine is fine. Extra options
# go to bench/instructions.py after the refs (e.g. --requests 4000). Needs valgrind and the
# bench venv (see bench/README.md): python3 -m venv bench/.venv &&
# bench/.venv/bin/pip install -e '.[bench]'. PYTHON overrides the interpreter.
set -eu
cd "$(dirname "$0")/.."
python=${PYTHON:-bench/.venv/bin/python}
if [ "$#" -eq 0 ]; then
    echo "usage: [WSGI=1] $0 REF [REF ...] [instructions.py options]" >&2
    exit 2
fi
if [ "${WSGI:-}" = 1 ]; then
    servers=vestespy-pool-epoll,vestespy-wsgi-epoll,vestespy-compiled-pool-epoll,vestespy-compiled-wsgi-epoll
    workloads=hello
else
    servers=vestespy-pool-epoll,vestespy-inline-epoll,vestespy-compiled-pool-epoll,vestespy-compiled-inline-epoll
    workloads=hello,pipelined
fi
exec "$python" bench/instructions.py "$@" --servers "$servers" --workloads "$workloads"
