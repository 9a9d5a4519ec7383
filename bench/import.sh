#!/usr/bin/env bash
# Bulk import throughput (issue 4, item 5): `calltrail import` of an N-line
# queue_log (default 10 M, the issue's size) into a fresh store, against
# DuckDB's own read_csv loading the same file into a table, side by side in
# one run.
#
#   bash bench/import.sh [LINES]
#
# 1. a venv with the pinned DuckDB of bench/parse.sh;
# 2. the input: the deterministic gen_queue_log generator (kept between runs
#    in $CALLTRAIL_BENCH_DIR, default ~/.cache/calltrail/bench-data);
# 3. DuckDB: CREATE TABLE t AS SELECT * FROM read_csv(FILE) into a database
#    FILE (what an import produces), with 1 and with 2 threads;
# 4. calltrail: `import --no-state` of the file into a fresh store (parse on
#    one thread; each batch inserted through DuckDB's Arrow scan, which
#    writes on DuckDB's threads; the derived state is a separate figure, see
#    bench/state.sh); DuckDB writing the very rows that
#    import stored (32 normalized columns) from memory into a file, 1 and 2
#    threads: the floor of any import into this schema; then the same import
#    again into the same store (everything already stored: nothing may be
#    added), and a second fresh import;
# 5. DuckDB again, so that both sides are sampled before and after any
#    change in machine load;
# 6. a summary: best wall time of each side as lines/s, and their ratios.
#
# calltrail is built with the dev profile (the one CI builds, whose
# dependencies — DuckDB, Arrow — are at opt-level 2) with calltrail's own two
# crates raised to opt-level 3 for the run (`--config`), in
# $CARGO_TARGET_DIR (default ~/.cache/calltrail/target): no second DuckDB
# build. The next `cargo test` rebuilds those two crates at their usual level.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

lines=${1:-10000000}
if ! [[ $lines =~ ^[0-9]+$ ]] || ((lines == 0)); then
    echo "usage: $0 [LINES]" >&2
    exit 2
fi

cache=$HOME/.cache/calltrail
data_dir=${CALLTRAIL_BENCH_DIR:-$cache/bench-data}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
file=$data_dir/queue_log-$lines.txt
work=$data_dir/import-bench
mkdir -p "$data_dir"

# 1. DuckDB in a venv, pinned.
source "$repo/bench/duckdb_venv.sh"
py=$duckdb_py

opt=(--config 'profile.dev.package.calltrail.opt-level=3'
    --config 'profile.dev.package.calltrail-parsers.opt-level=3')

# 2. The input (deterministic: kept when present with the right line count).
if [[ ! -f $file ]] || [[ $(wc -l <"$file") -ne $lines ]]; then
    echo "bench: generating $lines queue_log lines into $file"
    cargo run -q "${opt[@]}" -p calltrail-parsers --example gen_queue_log -- \
        --lines "$lines" --out "$file.tmp"
    mv "$file.tmp" "$file"
fi
echo "bench: input $file: $lines lines, $(du -h "$file" | cut -f1)"
echo "bench: building calltrail (dev profile, calltrail crates at opt-level 3)"
cargo build -q "${opt[@]}" --bin calltrail
bin=$CARGO_TARGET_DIR/debug/calltrail

rm -rf "$work"
mkdir -p "$work"

# 3. DuckDB's load into a database file, 1 and 2 threads.
duck_py=$work/duckdb_load.py
cat >"$duck_py" <<'PY'
import json, os, sys, time
import duckdb

path, lines, db, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sql = (
    "CREATE TABLE t AS SELECT * FROM read_csv('" + path.replace("'", "''") + "', "
    "delim='|', header=false, null_padding=true, auto_detect=false, quote='', escape='', "
    "columns={'ts':'BIGINT','callid':'VARCHAR','queue':'VARCHAR','agent':'VARCHAR',"
    "'event':'VARCHAR','d1':'VARCHAR','d2':'VARCHAR','d3':'VARCHAR','d4':'VARCHAR','d5':'VARCHAR'})"
)
result = {}
for threads in (1, 2):
    for f in (db, db + ".wal"):
        if os.path.exists(f):
            os.remove(f)
    con = duckdb.connect(db)
    con.execute(f"SET threads={threads}")
    t0 = time.perf_counter()
    con.execute(sql)
    con.execute("CHECKPOINT")
    dt = time.perf_counter() - t0
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    con.close()
    if rows != lines:
        sys.exit(f"duckdb loaded {rows} rows, expected {lines}")
    result[threads] = dt
    print(f"bench: duckdb read_csv -> table in a file, {threads} thread(s): {dt:.2f} s "
          f"= {lines / dt / 1e6:.2f} M lines/s")
json.dump(result, open(out, "w"))
PY
"$py" "$duck_py" "$file" "$lines" "$work/duck.duckdb" "$work/duck-before.json"
rm -f "$work/duck.duckdb" "$work/duck.duckdb.wal"

# 4. calltrail import, into a fresh store, then again into the same store.
cat >"$work/calltrail.toml" <<EOF
[store]
path = "store.duckdb"

[numbers]
default_region = "RU"

[[sources]]
name = "bench-queue"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
timezone = "Europe/Moscow"
EOF
run_import() {
    local label=$1 out
    local t0 t1
    t0=$(date +%s.%N)
    out=$("$bin" --config "$work/calltrail.toml" import --no-state "$file")
    t1=$(date +%s.%N)
    echo "$out" | sed "s/^/bench: [$label] /"
    echo "$label $(echo "$t1 - $t0" | bc)" >>"$work/calltrail.times"
}
: >"$work/calltrail.times"
run_import first
# The floor: DuckDB itself writing the same normalized rows (the events the
# import just stored: 32 columns, vs read_csv's 10 raw ones) from memory
# into a new database file, 1 and 2 threads — the fastest any import into
# this schema can store them here.
"$py" - "$work/store.duckdb" "$work/floor.duckdb" "$lines" "$work/floor.json" <<'PY'
import json, os, sys, time
import duckdb

store, out_db, lines, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
con = duckdb.connect(":memory:")
con.execute(f"ATTACH '{store}' AS s (READ_ONLY)")
con.execute("CREATE TABLE ev AS SELECT * FROM s.events")
con.execute("DETACH s")
result = {}
for threads in (1, 2):
    for f in (out_db, out_db + ".wal"):
        if os.path.exists(f):
            os.remove(f)
    con.execute(f"SET threads={threads}")
    con.execute(f"ATTACH '{out_db}' AS f")
    t0 = time.perf_counter()
    con.execute("CREATE TABLE f.events AS SELECT * FROM ev")
    con.execute("CHECKPOINT f")
    dt = time.perf_counter() - t0
    con.execute("DETACH f")
    result[threads] = dt
    print(f"bench: duckdb writing the same {lines} normalized events (memory -> file), "
          f"{threads} thread(s): {dt:.2f} s = {lines / dt / 1e6:.2f} M rows/s")
json.dump(result, open(out, "w"))
PY
rm -f "$work/floor.duckdb" "$work/floor.duckdb.wal"
run_import again
rm -f "$work/store.duckdb" "$work/store.duckdb.wal"
run_import first
rm -f "$work/store.duckdb" "$work/store.duckdb.wal"

# 5. DuckDB again.
"$py" "$duck_py" "$file" "$lines" "$work/duck.duckdb" "$work/duck-after.json"
rm -f "$work/duck.duckdb" "$work/duck.duckdb.wal"

# 6. Summary (wall times of whole processes for calltrail: start-up, store
#    creation and the final checkpoint included).
"$py" - "$work" "$lines" <<'PY'
import json, os, sys

work, n = sys.argv[1], int(sys.argv[2])
duck = [json.load(open(os.path.join(work, f"duck-{w}.json"))) for w in ("before", "after")]
d1 = min(d["1"] for d in duck)
d2 = min(d["2"] for d in duck)
times = {}
for line in open(os.path.join(work, "calltrail.times")):
    label, t = line.split()
    times.setdefault(label, []).append(float(t))
first, again = min(times["first"]), min(times["again"])
floor = json.load(open(os.path.join(work, "floor.json")))
f1, f2 = floor["1"], floor["2"]
m = lambda t: f"{n / t / 1e6:6.2f} M lines/s ({t:6.2f} s)"
print()
print(f"== import benchmark: {n} queue_log lines, one run ==")
print(f"{'DuckDB read_csv -> file, 1 thread':<44}{m(d1)}")
print(f"{'DuckDB read_csv -> file, 2 threads':<44}{m(d2)}")
print(f"{'DuckDB writing the normalized rows, 1 thr':<44}{m(f1)}  (the floor for 32 columns)")
print(f"{'DuckDB writing the normalized rows, 2 thr':<44}{m(f2)}")
print(f"{'calltrail import (events), fresh store':<44}{m(first)}  "
      f"{d1 / first:5.2f}x DuckDB-1t  {d2 / first:5.2f}x DuckDB-2t")
print(f"{'calltrail import again (all already stored)':<44}{m(again)}  "
      f"{d1 / again:5.2f}x DuckDB-1t  {d2 / again:5.2f}x DuckDB-2t")
print(f"calltrail import vs the floor: {f1 / first:5.2f}x DuckDB-normalized-1t  {f2 / first:5.2f}x DuckDB-normalized-2t")
print(f"target: import >= DuckDB read_csv (2 threads, the machine's best): "
      f"{'MET' if first <= d2 else 'NOT MET'}")
PY
