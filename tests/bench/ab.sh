#!/usr/bin/env bash
# The chat benchmark before and after a change, alternating in one run on one machine:
#   tests/bench/ab.sh BEFORE_TREE AFTER_TREE [ROUNDS]
# Each tree is a checkout with its own .venv (pip install -e '.[test]'); results go to
# /tmp/bench-{before,after}-N.json and the tables to standard output.
set -euo pipefail
before=$1 after=$2 rounds=${3:-2}
for round in $(seq "$rounds"); do
    for side in before after; do
        tree=${!side}
        echo "=== $side ($tree) round $round $(date -u +%H:%M:%S)"
        (cd "$tree" && .venv/bin/python tests/bench/run.py --json "/tmp/bench-$side-$round.json")
    done
done
