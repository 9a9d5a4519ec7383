#!/usr/bin/env bash
# Latency benchmark (issue 4, item 8; a bench, not a test): line appended to
# a queue_log -> event in DuckDB, and -> message consumable from Kafka, with
# the real daemon, a real tansu broker and an independent kafka-python
# consumer. Prints p50/p99/max per phase and a baseline measured in the same
# run: kafka-python produce -> consume on the same broker, and DuckDB's own
# cost per inserted row (bench/duckdb_insert_baseline.py, with the pinned
# DuckDB of bench/parse.sh's venv). See bench/latency.py for what exactly is
# measured.
#
#   bash bench/latency.sh [--rate 200] [--seconds 60] [--burst 2000]
#                         [--baseline-seconds 20] [--poll-ms 500] [--keep]
#                         [--history STORE]
#
# --history STORE starts the daemon on a copy of a calltrail store instead of
# an empty one (e.g. the year of history bench/state.sh generates, 10 M
# events): its state and Kafka checkpoints are set to its end first, so the
# daemon starts caught up, as a long-running one would be.
#
# Builds `calltrail` with the dev profile (the one CI builds: dependencies
# such as DuckDB and librdkafka at opt-level 2) with calltrail's own two
# crates raised to opt-level 3 (`--config`, as a deployment would build
# them; no second DuckDB build) into $CARGO_TARGET_DIR (default
# ~/.cache/calltrail/target, shared with .ci/run); installs the test tools
# (tests/setup.sh) if missing. CALLTRAIL_BENCH_LOG sets the daemon's log
# filter (e.g. "info,calltrail::publish=debug" for per-batch timings).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/calltrail/target}
tools=${CALLTRAIL_TOOLS:-$HOME/.cache/calltrail}
python=${CALLTRAIL_PYTHON:-$tools/venv/bin/python}
tansu=${CALLTRAIL_TANSU:-$tools/bin/tansu}
if [[ ! -x $python || ! -x $tansu ]]; then
    CALLTRAIL_SETUP_QUIET=1 bash tests/setup.sh
fi
echo "latency: building calltrail (dev profile, calltrail crates at opt-level 3) into $CARGO_TARGET_DIR"
cargo build --quiet --bin calltrail --config 'profile.dev.package.calltrail.opt-level=3' \
    --config 'profile.dev.package.calltrail-parsers.opt-level=3'
# DuckDB baseline: the same pinned DuckDB as the other benches.
source "$repo/bench/duckdb_venv.sh"
base_json=$(mktemp)
trap 'rm -f "$base_json"' EXIT
"$duckdb_py" bench/duckdb_insert_baseline.py --json "$base_json"
args=()
while (($#)); do
    case $1 in
    --history)
        hist_dir=$(mktemp -d)
        trap 'rm -f "$base_json"; rm -rf "$hist_dir"' EXIT
        echo "latency: preparing a copy of $2 (checkpoints at its end)"
        cp "$2" "$hist_dir/store.duckdb"
        "$duckdb_py" - "$hist_dir/store.duckdb" <<'PY'
import sys
import duckdb
c = duckdb.connect(sys.argv[1])
for sink, table in (("state", "events"), ("kafka", "events"), ("kafka-state", "state_events")):
    c.execute(
        "INSERT OR REPLACE INTO sink_checkpoints "
        f"VALUES (?, (SELECT coalesce(max(seq), 0) FROM {table}), now())",
        [sink],
    )
c.close()
PY
        args+=(--history "$hist_dir/store.duckdb")
        shift 2
        ;;
    *) args+=("$1") && shift ;;
    esac
done
"$python" bench/latency.py --calltrail "$CARGO_TARGET_DIR/debug/calltrail" --tansu "$tansu" \
    --duckdb-baseline "$base_json" "${args[@]}"
