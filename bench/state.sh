#!/usr/bin/env bash
# State-table queries at scale: a store with 10 M events (2.5 M calls over
# one year) and its derived tables, and the dialplan / wallboard queries on
# them, each against the same question computed from `events` in the same
# run (the baseline).
#
#   bash bench/state.sh [--scale F] [--runs N] [--baseline-runs M] [--reuse]
#
# 1. builds the `bench_state` example and the `calltrail` binary (dev
#    profile, the one CI and the tests build);
# 2. `bench_state gen`: Store::open (the real DDL), then set-based SQL fills
#    events, calls, callers, last_agent, missed_calls, sla_intervals,
#    sla_breaches and agent_status (examples/bench_state/gen.sql); scale 1 =
#    10 M events. Deterministic. --reuse keeps a store generated before by the
#    same generator at the same scale;
# 3. `bench_state measure`: a fresh process opens the file read-only and
#    times every query (N runs after a warm-up; the events baseline M runs);
# 4. `calltrail query` as a whole process, median of 5 per statement, for context;
# 5. one summary block.
#
# Works in a fresh clone (builds what it needs; the first build compiles
# DuckDB, ~25 minutes). Environment:
#   CARGO_TARGET_DIR    cargo target dir (default: CALLTRAIL_BENCH_TARGET_DIR, else cargo's)
#   CALLTRAIL_BENCH_DIR where the store goes (default ~/.cache/calltrail/bench-data)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scale=1 runs=200 baseline_runs=20 reuse=0
while (($#)); do
    case $1 in
    --scale) scale=$2 && shift 2 ;;
    --runs) runs=$2 && shift 2 ;;
    --baseline-runs) baseline_runs=$2 && shift 2 ;;
    --reuse) reuse=1 && shift ;;
    *)
        echo "usage: $0 [--scale F] [--runs N] [--baseline-runs M] [--reuse]" >&2
        exit 2
        ;;
    esac
done

if [[ -z ${CARGO_TARGET_DIR:-} && -n ${CALLTRAIL_BENCH_TARGET_DIR:-} ]]; then
    export CARGO_TARGET_DIR=$CALLTRAIL_BENCH_TARGET_DIR
fi
target=${CARGO_TARGET_DIR:-$repo/target}
data_dir=${CALLTRAIL_BENCH_DIR:-$HOME/.cache/calltrail/bench-data}
mkdir -p "$data_dir"
db=$data_dir/state-$scale.duckdb
stamp=$db.generator

# 1. Build (dev profile: dependencies, DuckDB above all, are built at
#    opt-level 2 in it; see Cargo.toml).
echo "bench: cargo build --example bench_state --bin calltrail"
cargo build -q --example bench_state --bin calltrail
bench=$target/debug/examples/bench_state
calltrail=$target/debug/calltrail

# 2. The store.
gen_hash=$(cat examples/bench_state/gen.sql src/store/schema.rs src/state/schema.rs |
    sha256sum | cut -c1-16)
gen_s="reused"
if ((reuse)) && [[ -f $db && $(cat "$stamp" 2>/dev/null) == "$gen_hash" ]]; then
    echo "bench: reusing $db (generator $gen_hash)"
else
    rm -f "$stamp"
    echo "bench: generating the store $db (scale $scale)"
    "$bench" gen --db "$db" --scale "$scale" | tee "$data_dir/state-gen.log"
    gen_s=$(sed -n 's/^GEN_SECONDS=//p' "$data_dir/state-gen.log")
    echo "$gen_hash" >"$stamp"
fi
size=$(du -h "$db" | cut -f1)

# 3. The queries, from a fresh process.
echo "bench: measuring ($runs runs per state query, $baseline_runs per events baseline)"
"$bench" measure --db "$db" --runs "$runs" --baseline-runs "$baseline_runs" | tee "$data_dir/state-measure.log"

# 4. `calltrail query` as a whole process (exec, open, query, print, exit),
#    median of 5.
cfg=$data_dir/state-bench.toml
cat >"$cfg" <<EOF
[store]
path = "$db"

[[sources]]
name = "bench"
kind = "asterisk_queue_log"
pbx = "pbx1"
path = "$data_dir/no-such-queue_log"

[http]
enabled = false
EOF
caller=$("$calltrail" --config "$cfg" query --format csv \
    "SELECT caller FROM callers ORDER BY hash(caller) LIMIT 1" | tail -n 1)
# Median of 5 runs, in ms.
cli_ms() {
    local t0 t1 all=()
    for _ in 1 2 3 4 5; do
        t0=$(date +%s%N)
        "$calltrail" --config "$cfg" query --format csv "$1" >/dev/null
        t1=$(date +%s%N)
        all+=($(((t1 - t0) / 1000000)))
    done
    printf '%s\n' "${all[@]}" | sort -n | sed -n 3p
}
"$calltrail" --config "$cfg" query "SELECT 1" >/dev/null # page cache, binary
cli_one=$(cli_ms "SELECT 1")
cli_la=$(cli_ms "SELECT agent, last_talk_at FROM last_agent WHERE caller = '$caller'")
cli_sla=$(cli_ms "SELECT queue, interval_start, offered, answered, abandoned, service_level FROM sla_intervals WHERE interval_start >= TIMESTAMP '2026-06-15' ORDER BY ALL")
cli_ev=$(cli_ms "SELECT count(*) FROM events WHERE kind = 'enter_queue' AND caller = '$caller'")

# 5. Summary.
echo
echo "== bench/state.sh: scale $scale, store $db ($size) =="
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared machine: figures are noisy)"
echo "generation: ${gen_s} s"
sed -n '/^== state queries/,$p' "$data_dir/state-measure.log"
echo "calltrail query, whole process (exec, open, query, print; median of 5, ms):"
echo "  SELECT 1                                  $cli_one"
echo "  last_agent of one caller                  $cli_la"
echo "  today's sla_intervals                     $cli_sla"
echo "  callers row computed from events          $cli_ev"
