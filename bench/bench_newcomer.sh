#!/usr/bin/env bash
# The newcomer's path, measured: a fresh clone of this repository, then `make lab` in a real terminal (tmux) until
# nine agents are running (the TUI is up). Prints the time of each step from the start.
#
#     bench/bench_newcomer.sh [DIR]       # DIR: where to clone (default /tmp/newcomer; removed first)
#
# The lab it starts keeps running (for bench/readme_figures.py, say): stop it with `cd DIR && .venv/bin/lab stop`.
# Needs git, tmux and bc.
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dir=${1:-/tmp/newcomer}
log="$dir.make.log"
rm -rf "$dir"; git clone -q "$repo" "$dir"; cd "$dir"
start=$(date +%s.%N)
tmux kill-session -t newcomer 2>/dev/null || true
tmux new-session -d -s newcomer -x 160 -y 48 "cd $dir && make lab > $log 2>&1; sleep 100000"
mark() { printf '%-44s %7.1f s\n' "$1" "$(echo "$(date +%s.%N) - $start" | bc)"; }
until [ -e .venv/.installed-lab ]; do sleep 1; done; mark "runtime installed (pip, from the lockfile)"
until [ -e .lab/private/testbed.json ]; do sleep 1; done; mark "lab init done"
until grep -q "methods/elicit.py" "$log" 2>/dev/null; do sleep 1; done; mark "baselines scored"
until .venv/bin/lab status --json 2>/dev/null | python3 -c '
import json,sys; s=json.load(sys.stdin); a=s.get("agents",[])
sys.exit(0 if len(a)==9 and all(x.get("state")=="running" for x in a) else 1)'; do sleep 0.5; done
mark "nine agents running (TUI up)"
