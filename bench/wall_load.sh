#!/usr/bin/env bash
# Wallboard load benchmark (issue 14, must-show 3; a bench, not a test): 50
# wallboards open at once for 10 minutes must cost the daemon less than 5 %
# of one core beyond idle and add nothing to the append -> DuckDB latency.
# The real daemon follows a queue_log fed a realistic steady stream (5
# lines/s); idle and loaded phases alternate (idle, walls, idle, walls,
# idle) in one run, so every figure has its baseline beside it. Prints per
# phase the daemon's CPU (% of one core, /proc/<pid>/stat), append -> DuckDB
# p50/p99/max (bench/latency.py's method: `ingested_at` of each line), what
# each board received; then the ratios and PASS/MISS per target (exit 1 on
# a MISS). See bench/wall_load.py for what exactly is measured.
#
#   bash bench/wall_load.sh [--quick] [--rate 5] [--clients 50] [--pairs 2]
#                           [--phase-s S] [--gap-s 3] [--warmup-s 30]
#                           [--poll-ms 500] [--json FILE] [--keep]
#
# Default --phase-s is 600 / --pairs (the loaded phases total 10 minutes:
# about 26 minutes in all); --quick runs 30 s phases (a check of the bench,
# not a figure). --json FILE: the figures as JSON. --keep: keep the temp dir
# (daemon.log, store, queue_log).
#
# Builds `calltrail` with the plain dev profile into $CARGO_TARGET_DIR
# (default ~/.cache/calltrail/target, shared with .ci/run): calltrail's own
# code unoptimized, its dependencies (DuckDB, tokio, axum, serde_json) at
# opt-level 2 — a release build costs less. Python 3, stdlib only
# (CALLTRAIL_PYTHON overrides `python3`). CALLTRAIL_BENCH_LOG sets the
# daemon's log filter (default info).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/calltrail/target}
python=${CALLTRAIL_PYTHON:-python3}
# As bench/latency.sh: the calltrail crates optimised (what a release costs),
# the dependencies as the dev profile builds them (opt-level 2). Set
# CALLTRAIL_BENCH_PLAIN_DEV=1 for the plain dev build the tests use.
if [[ -n ${CALLTRAIL_BENCH_PLAIN_DEV:-} ]]; then
    echo "wall_load: building calltrail (plain dev profile) into $CARGO_TARGET_DIR"
    cargo build --quiet --bin calltrail
else
    echo "wall_load: building calltrail (dev profile, calltrail crates at opt-level 3) into $CARGO_TARGET_DIR"
    cargo build --quiet --bin calltrail --config 'profile.dev.package.calltrail.opt-level=3' \
        --config 'profile.dev.package.calltrail-parsers.opt-level=3'
fi
# The driver stops the daemon itself, by pid, on exit, error, Ctrl-C or
# SIGTERM, and removes its temp dir unless --keep.
exec "$python" bench/wall_load.py --calltrail "$CARGO_TARGET_DIR/debug/calltrail" "$@"
