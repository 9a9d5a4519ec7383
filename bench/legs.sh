#!/usr/bin/env bash
# What folding CDR agent legs into their calls costs the state derivation
# (issue 11): the real Asterisk sample (asterisk-live-r1: FreePBX-style Local
# channel members, one agent-leg CDR row per member rung) copied N times
# (default 300: ~240 k queue_log lines, ~150 k CDR rows, ~100 k calls), then
# `calltrail rederive` of the whole store, three times each, alternating,
# side by side in one run:
#
#   links     Master.csv as Asterisk wrote it: the deriver follows each
#             call's Local channel halves to its legs (time-windowed scans
#             of events), groups them and writes call_attempts;
#   baseline  the same rows with channel and dstchannel blanked: nothing to
#             follow, every leg is a call of its own (what calltrail did
#             before it knew legs; its outbound calls lose their agent
#             too, so it has other episodes: the figure is the cost of the
#             derivation, not of identical results).
#
#   bash bench/legs.sh [COPIES]
#
# Prints the best rederive wall time of each and their ratio. Built with the
# dev profile in $CARGO_TARGET_DIR (default ~/.cache/calltrail/target), the
# one the tests use (dependencies at opt-level 2).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

copies=${1:-300}
if ! [[ $copies =~ ^[0-9]+$ ]] || ((copies == 0)); then
    echo "usage: $0 [COPIES]" >&2
    exit 2
fi
sample=$repo/../shared/reference/samples/asterisk-live-r1
[[ -f $sample/Master.csv ]] || { echo "bench: no sample at $sample" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/calltrail/target}
echo "bench: building calltrail (dev profile)"
cargo build -q --bin calltrail
bin=$CARGO_TARGET_DIR/debug/calltrail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 bench/legs.py "$sample" "$work" "$copies"
echo "bench: $copies copies: $(wc -l <"$work/queue_log") queue_log lines, $(wc -l <"$work/Master.csv") CDR rows"

for variant in links baseline; do
    cdr=Master.csv
    [[ $variant == baseline ]] && cdr=Master-nolinks.csv
    mkdir -p "$work/$variant"
    cat >"$work/$variant/c.toml" <<EOF
[store]
path = "s.duckdb"
[numbers]
default_region = "RU"
[[sources]]
name = "q"
kind = "asterisk_queue_log"
path = "$work/queue_log"
pbx = "pbx1"
timezone = "UTC"
[[sources]]
name = "cdr"
kind = "asterisk_cdr_csv"
path = "$work/$cdr"
pbx = "pbx1"
timezone = "UTC"
EOF
    "$bin" --config "$work/$variant/c.toml" import --no-state --source q "$work/queue_log" >/dev/null
    "$bin" --config "$work/$variant/c.toml" import --no-state --source cdr "$work/$cdr" >/dev/null
done

: >"$work/times"
for round in 1 2 3; do
    for variant in links baseline; do
        t0=$(date +%s.%N)
        "$bin" --config "$work/$variant/c.toml" rederive >/dev/null
        t1=$(date +%s.%N)
        echo "$variant $(echo "$t1 - $t0" | bc)" | tee -a "$work/times"
    done
done

q() { "$bin" --config "$work/$1/c.toml" query --format csv "$2" | tail -n 1; }
for variant in links baseline; do
    echo "$variant: calls $(q "$variant" "SELECT count(*) FROM calls"), attempts $(q "$variant" "SELECT count(*) FROM call_attempts"), episodes $(q "$variant" "SELECT count(*) FROM missed_calls")"
done
python3 - "$work/times" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    name, t = line.split()
    best[name] = min(best.get(name, 1e9), float(t))
print(f"rederive, best of 3: links {best['links']:.2f} s, baseline {best['baseline']:.2f} s, "
      f"ratio {best['links'] / best['baseline']:.2f}x")
PY
