#!/bin/sh
# Instructions per request under callgrind, for each commit given: both builds (pure on h11,
# compiled on h11_mypyc), pool and inline, hello and pipelined x16 (8 figures per commit).
#
#   bench/compare_instructions.sh REF [REF ...]     e.g. dee6bc1 HEAD, or a branch name
#
# Each REF is checked out into a temporary worktree (uncommitted changes are not measured),
# its compiled build made there (about two minutes each), then the 8 variants are run one at
# a time. The counts do not depend on other load, so a busy machine is fine. Extra options
# go to bench/instructions.py after the refs (e.g. --requests 4000). Needs valgrind and the
# bench venv (see bench/README.md): python3 -m venv bench/.venv &&
# bench/.venv/bin/pip install -e '.[bench]'. PYTHON overrides the interpreter.
set -eu
cd "$(dirname "$0")/.."
python=${PYTHON:-bench/.venv/bin/python}
if [ "$#" -eq 0 ]; then
    echo "usage: $0 REF [REF ...] [instructions.py options]" >&2
    exit 2
fi
exec "$python" bench/instructions.py "$@" \
    --servers vestespy-pool-epoll,vestespy-inline-epoll,vestespy-compiled-pool-epoll,vestespy-compiled-inline-epoll \
    --workloads hello,pipelined
