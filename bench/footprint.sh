#!/usr/bin/env bash
# Footprint on a PBX host (issue 15, must-show 1), in one run:
#
#   bash bench/footprint.sh [--lines N] [--live-s S] [--rate R] [--baseline REV]
#                           [--skip-live] [--skip-baseline]
#
# 1. builds `calltrail` at HEAD and at the baseline revision (default
#    1e69c6c, the last commit before the deriver's cost work), each the dev
#    profile with calltrail's own crates at opt-level 3 (what a release
#    costs; DuckDB as the dev profile builds it), in one target dir;
# 2. the input: N lines (default 10 M) of gen_queue_log with 1.6 M callers
#    (~1 M distinct: the size issue 12 benchmarks the lookup at), kept in
#    $CALLTRAIL_BENCH_DIR (default ~/.cache/calltrail/bench-data);
# 3. HEAD `calltrail import` of the file WITH its state into a fresh store,
#    on the default budget ([store] memory_budget = 512MB): wall time and
#    peak RSS (/usr/bin/time -v);
# 4. bulk derivation, HEAD vs baseline: each binary imports the file
#    `--no-state` into its own fresh store, then `rederive` times the
#    derivation alone (peak RSS too), on the default budget; the baseline
#    again with a 4 GB budget if it fails on the default one (it ran out of
#    memory at ~1.9 M events: its "233 s" was measured with 200,000-event
#    steps, which need about that);
# 5. live, HEAD: the daemon follows a queue_log fed R lines/s (default 50)
#    for S seconds (default 600) on (a) a copy of the store of step 3 and
#    (b) an empty store, the same lines (bench/footprint.py): peak and
#    steady RSS, CPU per 1,000 lines, the deriver's pass time (p50/p99);
#    then the same 20 blocks of 50 lines written to both (one write each,
#    the deriver idle before it): "the same pass" on each store;
# 6. a summary with the targets: RSS within the budget throughout; bulk
#    derivation >= 5x faster than the baseline; a live pass on the history
#    within 2x of the same on an empty store.
#
# Needs ~6 GB of disk in the bench dir and ~40 minutes (warm build).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

lines=10000000 live_s=600 rate=50 baseline=1e69c6c skip_live=0 skip_base=0
while (($#)); do
    case $1 in
    --lines) lines=$2 && shift 2 ;;
    --live-s) live_s=$2 && shift 2 ;;
    --rate) rate=$2 && shift 2 ;;
    --baseline) baseline=$2 && shift 2 ;;
    --skip-live) skip_live=1 && shift ;;
    --skip-baseline) skip_base=1 && shift ;;
    *)
        sed -n '2,30p' "$0" >&2
        exit 2
        ;;
    esac
done

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/calltrail/target}
data=${CALLTRAIL_BENCH_DIR:-$HOME/.cache/calltrail/bench-data}
work=$data/footprint
mkdir -p "$data" "$work"
opt=(--config 'profile.dev.package.calltrail.opt-level=3'
    --config 'profile.dev.package.calltrail-parsers.opt-level=3')
budget=512000000

# 1. Binaries.
echo "footprint: building HEAD ($(git rev-parse --short HEAD))"
# Touched first: a target dir shared with other checkouts once linked a
# stale calltrail library into a fresh binary (cargo's mtime check).
touch src/lib.rs parsers/src/lib.rs
cargo build -q "${opt[@]}" --bin calltrail
cp "$CARGO_TARGET_DIR/debug/calltrail" "$work/calltrail-head"
base_rev=$(git rev-parse --short "$baseline")
base_bin=$data/calltrail-$base_rev
if ((!skip_base)) && [[ ! -x $base_bin ]]; then
    echo "footprint: building the baseline $base_rev"
    src=$work/base-src
    rm -rf "$src"
    git worktree add -q --detach "$src" "$base_rev"
    (cd "$src" && touch src/lib.rs parsers/src/lib.rs && cargo build -q "${opt[@]}" --bin calltrail)
    cp "$CARGO_TARGET_DIR/debug/calltrail" "$base_bin"
    git worktree remove --force "$src"
fi

# 2. The input.
input=$data/queue_log-$lines-c1600000.txt
if [[ ! -f $input ]] || [[ $(wc -l <"$input") -ne $lines ]]; then
    echo "footprint: generating $lines lines into $input"
    cargo run -q "${opt[@]}" -p calltrail-parsers --example gen_queue_log -- \
        --lines "$lines" --callers 1600000 --out "$input.tmp"
    mv "$input.tmp" "$input"
fi
live_input=$data/queue_log-live-$((rate * live_s + 1000))-seed7.txt
if [[ ! -f $live_input ]]; then
    cargo run -q "${opt[@]}" -p calltrail-parsers --example gen_queue_log -- \
        --lines $((rate * live_s + 1000)) --callers 1600000 --seed 7 --out "$live_input.tmp"
    mv "$live_input.tmp" "$live_input"
fi

config() { # store-path budget
    cat <<EOF
[store]
path = "$1"
memory_budget = "$2"

[numbers]
default_region = "RU"

[[sources]]
name = "bench-queue"
kind = "asterisk_queue_log"
path = "queue_log"
pbx = "pbx1"
timezone = "Europe/Moscow"
EOF
}

# Runs a command under /usr/bin/time -v; prints "<wall s> <peak RSS MB> <exit>".
timed() {
    local log=$1
    shift
    local rc=0
    /usr/bin/time -v "$@" >"$log" 2>&1 || rc=$?
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 * 1024 / 1e6}' "$log")
    echo "$wall $rss $rc"
}

fresh() { rm -f "$1" "$1.wal"; }

# 3. HEAD: import with state.
hist=$work/history.duckdb
fresh "$hist"
config "$hist" 512MB >"$work/head.toml"
echo "footprint: HEAD import of $lines lines with state (budget 512MB)"
read -r imp_s imp_rss imp_rc < <(timed "$work/import-head.log" "$work/calltrail-head" --config "$work/head.toml" import --no-nice "$input")
echo "  ${imp_s}s, peak RSS ${imp_rss} MB, exit $imp_rc"

# 4. Bulk derivation alone, HEAD vs baseline.
derive() { # label bin budget -> "<s> <rss> <rc>"
    local label=$1 bin=$2 b=$3 store=$work/derive-$1.duckdb
    fresh "$store"
    config "$store" "$b" >"$work/$label.toml"
    "$bin" --config "$work/$label.toml" import --no-state --no-nice "$input" >"$work/import-$label.log" 2>&1
    timed "$work/rederive-$label.log" "$bin" --config "$work/$label.toml" rederive --no-nice
}
echo "footprint: bulk derivation (rederive) HEAD, budget 512MB"
read -r head_s head_rss head_rc < <(derive head "$work/calltrail-head" 512MB)
echo "  ${head_s}s, peak RSS ${head_rss} MB, exit $head_rc"
rm -f "$work/derive-head.duckdb"*
base_s=- base_rss=- base_rc=- base4_s=- base4_rss=- base4_rc=-
head4_s=- head4_rss=- head4_rc=-
if ((!skip_base)); then
    echo "footprint: bulk derivation (rederive) baseline $base_rev, budget 512MB"
    read -r base_s base_rss base_rc < <(derive base "$base_bin" 512MB)
    echo "  ${base_s}s, peak RSS ${base_rss} MB, exit $base_rc"
    if ((base_rc != 0)); then
        grep -m1 -o 'Out of Memory[^(]*' "$work/rederive-base.log" || true
        echo "footprint: baseline again with a 4GB budget"
        read -r base4_s base4_rss base4_rc < <(derive base4 "$base_bin" 4GB)
        echo "  ${base4_s}s, peak RSS ${base4_rss} MB, exit $base4_rc"
        echo "footprint: HEAD again with a 4GB budget (the same conditions)"
        read -r head4_s head4_rss head4_rc < <(derive head4 "$work/calltrail-head" 4GB)
        echo "  ${head4_s}s, peak RSS ${head4_rss} MB, exit $head4_rc"
        rm -f "$work"/derive-head4.duckdb*
    fi
    rm -f "$work"/derive-base*.duckdb*
fi

# 5. Live.
hist_json='{}' empty_json='{}'
if ((!skip_live)); then
    echo "footprint: live ${rate} lines/s for ${live_s}s on the history"
    rm -rf "$work/live-hist" && mkdir -p "$work/live-hist"
    cp "$hist" "$work/live-hist/store.duckdb"
    [[ -f $hist.wal ]] && cp "$hist.wal" "$work/live-hist/store.duckdb.wal"
    hist_json=$(python3 bench/footprint.py --bin "$work/calltrail-head" \
        --store "$work/live-hist/store.duckdb" --work "$work/live-hist" \
        --lines-from "$live_input" --rate "$rate" --seconds "$live_s" --label history)
    echo "  $hist_json"
    rm -rf "$work/live-hist/store.duckdb"*
    echo "footprint: live ${rate} lines/s for ${live_s}s on an empty store"
    rm -rf "$work/live-empty" && mkdir -p "$work/live-empty"
    empty_json=$(python3 bench/footprint.py --bin "$work/calltrail-head" \
        --store "$work/live-empty/store.duckdb" --work "$work/live-empty" \
        --lines-from "$live_input" --rate "$rate" --seconds "$live_s" --label empty)
    echo "  $empty_json"
fi

# 6. Summary.
python3 - "$budget" "$imp_s" "$imp_rss" "$imp_rc" "$head_s" "$head_rss" "$head_rc" \
    "$base_s" "$base_rss" "$base_rc" "$base4_s" "$base4_rss" "$base4_rc" \
    "$hist_json" "$empty_json" "$lines" "$base_rev" "$head4_s" "$head4_rss" "$head4_rc" <<'EOF'
import json, sys
a = sys.argv[1:]
budget = int(a[0]) / 1e6
imp_s, imp_rss, imp_rc, head_s, head_rss, head_rc = a[1:7]
base_s, base_rss, base_rc, base4_s, base4_rss, base4_rc = a[7:13]
hist, empty = json.loads(a[13]), json.loads(a[14])
lines, base_rev = int(a[15]), a[16]
head4_s, head4_rss, head4_rc = a[17:20]
ok = True
def verdict(cond):
    global ok
    ok = ok and cond
    return "PASS" if cond else "MISS"
print("\n== footprint: %d lines, budget %.0f MB ==" % (lines, budget))
print("import with state (HEAD): %ss, peak RSS %s MB (exit %s)  RSS within budget: %s"
      % (imp_s, imp_rss, imp_rc, verdict(imp_rc == "0" and float(imp_rss) <= budget)))
print("rederive HEAD:            %ss, peak RSS %s MB (exit %s)  RSS within budget: %s"
      % (head_s, head_rss, head_rc, verdict(head_rc == "0" and float(head_rss) <= budget)))
if base_s != "-":
    print("rederive baseline %s:  %ss, peak RSS %s MB (exit %s)" % (base_rev, base_s, base_rss, base_rc))
    ref = base_s if base_rc == "0" else base4_s
    if base_rc != "0":
        print("rederive baseline, 4GB:   %ss, peak RSS %s MB (exit %s)" % (base4_s, base4_rss, base4_rc))
        print("rederive HEAD, 4GB:       %ss, peak RSS %s MB (exit %s)" % (head4_s, head4_rss, head4_rc))
        if head4_rc == "0" and base4_rc == "0":
            print("bulk derivation, both at 4GB: baseline / HEAD = %.2fx" % (float(base4_s) / float(head4_s)))
    if ref != "-" and head_rc == "0":
        r = float(ref) / float(head_s)
        print("bulk derivation: baseline (its best run) / HEAD at 512MB = %.2fx  (target >= 5x): %s" % (r, verdict(r >= 5)))
if hist:
    for j in (hist, empty):
        print("live %-8s %d lines in %ss: RSS peak %s MB, steady %s MB; CPU %s ms per 1,000 lines (%s%% of a core); "
              "%d passes (%s events each), pass p50 %s ms, p99 %s ms, mean %s ms, %s ms per event"
              % (j["label"], j["lines"], j["seconds"], j["rss_peak_mb"], j["rss_steady_mb"],
                 j["cpu_ms_per_1000_lines"], j["cpu_pct_of_core"], j["passes"], j["events_per_pass"],
                 j["pass_ms_p50"], j["pass_ms_p99"], j["pass_ms_mean"], j["pass_ms_per_event"]))
        print("  the same pass: %d blocks of %s events (%d passes), p50 %s ms, mean %s ms"
              % (j["same_pass_blocks"], j["same_pass_events"], j["same_pass_passes"],
                 j["same_pass_ms_p50"], j["same_pass_ms_mean"]))
    print("live RSS within budget: %s" % verdict(max(hist["rss_peak_mb"], empty["rss_peak_mb"]) <= budget))
    r = hist["pass_ms_mean"] / max(0.001, empty["pass_ms_mean"])
    print("live stream, pass history / empty (mean; passes of different sizes) = %.2fx" % r)
    r = hist["same_pass_ms_mean"] / max(0.001, empty["same_pass_ms_mean"])
    print("live, the same pass, history / empty (mean) = %.2fx (target <= 2x): %s" % (r, verdict(r <= 2)))
print("overall: %s" % ("PASS" if ok else "MISS"))
sys.exit(0 if ok else 1)
EOF
