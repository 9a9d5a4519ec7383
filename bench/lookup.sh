#!/usr/bin/env bash
# The dialplan lookup under load (issue: "the dialplan lookup, answered from
# memory"): lookup latency over HTTP and FastAGI at an open-loop offered
# rate, the func_odbc "responsible manager" SQL recipe on PostgreSQL holding
# the same history as the baseline, and freshness (line written -> lookup
# answers with the new agent), in one run, at two history sizes.
#
#   bash bench/lookup.sh [EVENTS_MAX]      # default 10000000: histories of 1 M and 10 M
#
# Histories of EVENTS_MAX/10 and EVENTS_MAX queue_log lines (the smaller is
# the first lines of the larger):
#
# 1. the input: gen_queue_log with `--callers 1600000` (a pool of 1.6 M
#    outside numbers: ~190 k distinct callers in 1 M lines, ~1 M in 10 M),
#    kept in $CALLTRAIL_BENCH_DIR (default ~/.cache/calltrail/bench-data);
#    `calltrail import` of it (events and derived state) into a store kept
#    there too (re-imported only when missing: 10 M lines took ~13 min on
#    a 2-core machine, most of it deriving the state of ~1 M callers);
# 2. from that store (`calltrail query --format csv`): the numbers to look
#    up (100 k, drawn at random from the history's callers as written in the
#    log, plus 5 % numbers no history has) and an Asterisk `cdr` table built
#    from the derived `calls` (src = the caller as the trunk wrote it, dst =
#    the queue, dstchannel = PJSIP/<agent>-<n>, disposition ANSWERED / NO
#    ANSWER / BUSY, billsec = talk time, uniqueid = call id, …);
# 3. `calltrail run` on a copy of the store (`[lookup] policy =
#    "last_contact"`, the recipe's question, `window = "all"`: the generated
#    history is in 2024), tailing a separate, empty queue_log; its "lookup
#    index loaded" line is printed;
# 4. examples/lookup_load.rs, open loop at 1 k and 10 k requests/s (each
#    request due on a fixed clock, its latency measured from the due time, so
#    a stall counts for every request it delays): HTTP with a new TCP
#    connection per request (as CURL() does), HTTP with kept-alive
#    connections, FastAGI (`agi_arg_1`, the environment block of a real
#    Asterisk); a 2 s warm-up first, not counted;
# 5. freshness: an ENTERQUEUE + CONNECT of a new caller appended to the tailed
#    queue_log, `GET /api/lookup` polled every 5 ms until it names the agent
#    (then the call's end is appended), 100 times, 0.2-0.5 s apart;
# 6. the daemon stopped (SIGTERM), the baseline: a throwaway PostgreSQL
#    cluster (initdb/pg_ctl of the Debian package `postgresql`, installed
#    when missing; unix socket, free port; as user postgres when run as root)
#    holding the cdr rows (COPY), indexed as an admin would (calldate, src,
#    uniqueid; none of them serves `LIKE '%digits'`), and the func_odbc
#    recipe timed by `pgbench -n -c 1` with per-transaction logs, the number
#    drawn at random from the same list for each transaction and substituted
#    literally, as func_odbc does:
#      SELECT dstchannel FROM cdr WHERE src LIKE '%<last 10 digits>'
#        AND calldate > <end of history> - interval '1 day'
#        AND disposition IN ('ANSWERED','NO ANSWER','BUSY')
#        ORDER BY calldate DESC LIMIT 1
#    with 1, 7 and 90 days; plus, as the best an admin could do, the same
#    recipe with a pg_trgm GIN index on src (and the cost of the random pick
#    alone, which every transaction includes);
# 7. a summary: latency percentiles, ratios recipe / calltrail (HTTP, new
#    connection each, at 1 k/s), 10 M vs 1 M, freshness, each against its
#    target (p99 < 1 ms at 10 k/s, flat as history grows; recipe >= 1000x;
#    freshness p99 <= 1 s).
#
# The machine running it has few cores: the load generator, the daemon
# and the kernel's TCP work share them; the output prints the generator's
# own lag (due time -> the request's task starting) so that part can be told
# apart. Environment: LOOKUP_SECONDS (each load run, default 10),
# LOOKUP_PG_SECONDS (each pgbench run, default 10), LOOKUP_FRESH_COUNT
# (default 100).
#
# calltrail is built with the dev profile (the one CI builds: DuckDB at
# opt-level 2) with calltrail's own two crates at opt-level 3 for the run
# (`--config`), in $CARGO_TARGET_DIR (default ~/.cache/calltrail/target).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

max=${1:-10000000}
if ! [[ $max =~ ^[0-9]+$ ]] || ((max < 1000)); then
    echo "usage: $0 [EVENTS_MAX]   (at least 1000; default 10000000)" >&2
    exit 2
fi
sizes=($((max / 10)) "$max")
callers_pool=1600000
seconds=${LOOKUP_SECONDS:-10}
pg_seconds=${LOOKUP_PG_SECONDS:-10}
fresh_count=${LOOKUP_FRESH_COUNT:-100}
rates=(1000 10000)

cache=$HOME/.cache/calltrail
data_dir=${CALLTRAIL_BENCH_DIR:-$cache/bench-data}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
work=$data_dir/lookup-run
mkdir -p "$data_dir"
rm -rf "$work"
mkdir -p "$work"
results=$work/results.jsonl
: >"$results"
bench_t0=$(date +%s)
load0=$(cut -d' ' -f1-3 /proc/loadavg)

opt=(--config 'profile.dev.package.calltrail.opt-level=3'
    --config 'profile.dev.package.calltrail-parsers.opt-level=3')
echo "bench: building calltrail, gen_queue_log and lookup_load (dev profile, calltrail crates at opt-level 3)"
cargo build -q "${opt[@]}" --bin calltrail --example lookup_load
cargo build -q "${opt[@]}" -p calltrail-parsers --example gen_queue_log
bin=$CARGO_TARGET_DIR/debug/calltrail
load=$CARGO_TARGET_DIR/debug/examples/lookup_load
gen=$CARGO_TARGET_DIR/debug/examples/gen_queue_log

# PostgreSQL's tools (Debian: /usr/lib/postgresql/<version>/bin).
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z $pg_bin || ! -x $pg_bin/initdb || ! -x $pg_bin/pgbench ]]; then
    if ((EUID == 0)); then
        echo "bench: installing PostgreSQL (apt-get install postgresql)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
        pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    else
        echo "bench: PostgreSQL is missing: apt-get install postgresql" >&2
        exit 1
    fi
fi

# "<daemon's CPU ticks> <machine's busy ticks> <ns>": ticks of 1/100 s.
cpu_snapshot() {
    local d
    d=$(awk '{ print $14 + $15 }' "/proc/$1/stat")
    echo "$d $(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat) $(date +%s%N)"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Cleanup: the daemon and the PostgreSQL cluster never outlive the script.
daemon_pid=
pg_dir=
pg_up=0
as_pg=()
cleanup() {
    if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    if ((pg_up)); then
        "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [[ -n $pg_dir && $pg_dir == */calltrail-lookup-pg.* ]]; then
        rm -rf "$pg_dir"
    fi
}
trap cleanup EXIT

# 1. Input and store per size.
prepare() {
    local n=$1 file=$data_dir/queue_log-$1-callers$callers_pool.txt dir=$data_dir/lookup-$1
    if [[ ! -f $file ]] || [[ $(wc -l <"$file") -ne $n ]]; then
        echo "bench: generating $n queue_log lines into $file"
        "$gen" --lines "$n" --callers "$callers_pool" --out "$file.tmp"
        mv "$file.tmp" "$file"
        rm -f "$dir/imported"
    fi
    if [[ ! -f $dir/imported ]]; then
        rm -rf "$dir"
    fi
    mkdir -p "$dir/live"
    cat >"$dir/calltrail.toml" <<EOF
[store]
path = "store.duckdb"

[numbers]
default_region = "RU"

[[sources]]
name = "bench-queue"
kind = "asterisk_queue_log"
path = "live/queue_log"
pbx = "pbx1"
timezone = "Europe/Moscow"

[query]
max_rows = 10000000
timeout_s = 3600
EOF
    if [[ ! -f $dir/imported ]]; then
        echo "bench: importing $file into $dir/store.duckdb (events and derived state)"
        local t0 t1
        t0=$(date +%s)
        "$bin" --config "$dir/calltrail.toml" import --source bench-queue "$file" | sed 's/^/bench:   /'
        t1=$(date +%s)
        echo "$((t1 - t0))" >"$dir/import-seconds"
        touch "$dir/imported"
        rm -f "$dir/exported"
    fi
    if [[ ! -f $dir/exported ]]; then
        # 2. The numbers to look up and the cdr rows, from the store.
        echo "bench: exporting the numbers and the cdr rows"
        "$bin" --config "$dir/calltrail.toml" query --format csv \
            "SELECT caller_raw FROM (SELECT DISTINCT caller_raw FROM calls
               WHERE direction = 'inbound' AND regexp_matches(caller_raw, '^\\+?[0-9]{11}\$'))
             ORDER BY hash(caller_raw) LIMIT 95000" | tail -n +2 >"$dir/numbers.known"
        # 5 % numbers no history has (St Petersburg landlines; the history's
        # callers are all +79…), then shuffled.
        awk -v n="$(($(wc -l <"$dir/numbers.known") / 19 + 1))" \
            'BEGIN { srand(7); for (i = 0; i < n; i++) printf "+7812%07d\n", int(rand() * 10000000) }' \
            >"$dir/numbers.unknown"
        cat "$dir/numbers.known" "$dir/numbers.unknown" | awk 'BEGIN { srand(11) } { print rand() "\t" $0 }' |
            sort -k1,1 | cut -f2 >"$dir/numbers.txt"
        "$bin" --config "$dir/calltrail.toml" query --format csv \
            "SELECT coalesce(entered_at, answered_at, ended_at) AS calldate,
                    '\"\" <' || coalesce(caller_raw, caller, '') || '>' AS clid,
                    CASE WHEN direction = 'outbound' THEN coalesce(agent, '')
                         ELSE coalesce(caller_raw, caller, '') END AS src,
                    CASE WHEN direction = 'outbound' THEN coalesce(callee, '')
                         ELSE coalesce(queue, callee, '') END AS dst,
                    CASE WHEN direction = 'outbound' THEN 'from-internal' ELSE 'from-pstn' END AS dcontext,
                    'PJSIP/trunk-' || lpad(to_hex(2 * row_number() OVER ()), 8, '0') AS channel,
                    CASE WHEN agent IS NULL THEN ''
                         ELSE 'PJSIP/' || agent || '-' || lpad(to_hex(2 * row_number() OVER () + 1), 8, '0') END AS dstchannel,
                    CASE WHEN queue IS NOT NULL THEN 'Queue' ELSE 'Dial' END AS lastapp,
                    CASE WHEN queue IS NOT NULL THEN queue || ',t,,,300' ELSE '' END AS lastdata,
                    coalesce(date_diff('second', coalesce(entered_at, answered_at, ended_at), ended_at), 0) AS duration,
                    coalesce(talk_s, 0) AS billsec,
                    CASE WHEN outcome IN ('answered', 'transferred', 'ivr') THEN 'ANSWERED'
                         WHEN outcome = 'busy' THEN 'BUSY'
                         WHEN outcome = 'failed' THEN 'FAILED'
                         ELSE 'NO ANSWER' END AS disposition,
                    3 AS amaflags, '' AS accountcode, call_id AS uniqueid, '' AS userfield
             FROM calls WHERE coalesce(entered_at, answered_at, ended_at) IS NOT NULL
             ORDER BY calldate, call_id, stint" >"$dir/cdr.csv"
        touch "$dir/exported"
    fi
}

# PostgreSQL: one throwaway cluster for the run.
pg_start() {
    local port
    port=$(free_port)
    if ((EUID == 0)); then
        # initdb refuses root, and user postgres cannot enter root's home.
        pg_dir=$(mktemp -d /tmp/calltrail-lookup-pg.XXXXXX)
        chown postgres: "$pg_dir"
        as_pg=(runuser -u postgres --)
    else
        pg_dir=$(mktemp -d "$work/calltrail-lookup-pg.XXXXXX")
        as_pg=()
    fi
    "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -A trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 ||
        "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -A trust -E UTF8 --locale=C >"$work/initdb.log"
    # A sensible setup for a lookup server on this machine; the rest default.
    cat >>"$pg_dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$pg_dir'
port = $port
shared_buffers = 2GB
effective_cache_size = 8GB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w start >/dev/null
    pg_up=1
    pg_conn=(-h "$pg_dir" -p "$port" -U "$(((EUID == 0)) && echo postgres || id -un)")
    echo "bench: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') started (socket $pg_dir, port $port)"
}

psql_() {
    "${as_pg[@]}" "$pg_bin/psql" "${pg_conn[@]}" -v ON_ERROR_STOP=1 -X -q "$@"
}

# 6. The recipe on PostgreSQL for one size.
pg_bench() {
    local n=$1 dir=$data_dir/lookup-$1 db=cdr_$1
    psql_ -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    psql_ -d "$db" <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE cdr (
    calldate    timestamp NOT NULL DEFAULT now(),
    clid        varchar(80) NOT NULL DEFAULT '',
    src         varchar(80) NOT NULL DEFAULT '',
    dst         varchar(80) NOT NULL DEFAULT '',
    dcontext    varchar(80) NOT NULL DEFAULT '',
    channel     varchar(80) NOT NULL DEFAULT '',
    dstchannel  varchar(80) NOT NULL DEFAULT '',
    lastapp     varchar(80) NOT NULL DEFAULT '',
    lastdata    varchar(80) NOT NULL DEFAULT '',
    duration    integer NOT NULL DEFAULT 0,
    billsec     integer NOT NULL DEFAULT 0,
    disposition varchar(45) NOT NULL DEFAULT '',
    amaflags    integer NOT NULL DEFAULT 0,
    accountcode varchar(20) NOT NULL DEFAULT '',
    uniqueid    varchar(150) NOT NULL DEFAULT '',
    userfield   varchar(255) NOT NULL DEFAULT ''
);
CREATE TABLE bench_numbers (id serial PRIMARY KEY, number text NOT NULL, pat text NOT NULL);
SQL
    local t0 t1
    t0=$(date +%s.%N)
    psql_ -d "$db" -c "\\copy cdr FROM STDIN WITH (FORMAT csv, HEADER true, FORCE_NOT_NULL (clid, src, dst, dcontext, channel, dstchannel, lastapp, lastdata, disposition, accountcode, uniqueid, userfield))" <"$dir/cdr.csv"
    psql_ -d "$db" <<'SQL'
CREATE INDEX cdr_calldate ON cdr (calldate);
CREATE INDEX cdr_src ON cdr (src);
CREATE INDEX cdr_uniqueid ON cdr (uniqueid);
VACUUM ANALYZE cdr;
SQL
    t1=$(date +%s.%N)
    # The pick: the number's last 10 digits, quoted as func_odbc's ${SQL_ESC()} would.
    awk '{ d = $0; gsub(/[^0-9]/, "", d); print $0 "\t'"'"'%" substr(d, length(d) - 9) "'"'"'" }' "$dir/numbers.txt" |
        psql_ -d "$db" -c "\\copy bench_numbers (number, pat) FROM STDIN"
    psql_ -d "$db" -c "ANALYZE bench_numbers"
    local rows count now bytes
    rows=$(psql_ -d "$db" -At -c "SELECT count(*) FROM cdr")
    count=$(psql_ -d "$db" -At -c "SELECT count(*) FROM bench_numbers")
    now=$(psql_ -d "$db" -At -c "SELECT max(calldate) FROM cdr")
    bytes=$(psql_ -d "$db" -At -c "SELECT pg_size_pretty(pg_total_relation_size('cdr'))")
    echo "bench: [$n] PostgreSQL cdr: $rows rows ($bytes with indexes), loaded and indexed in $(printf '%.1f' "$(echo "$t1 - $t0" | bc)") s; 'now' = the history's end, $now"
    local pgw=$pg_dir/pgbench-$n
    "${as_pg[@]}" mkdir -p "$pgw"
    run_pgbench() { # label, script text
        local label=$1 script=$pgw/$1.sql
        printf '%s\n' "$2" | "${as_pg[@]}" tee "$script" >/dev/null
        (cd "$pgw" && "${as_pg[@]}" "$pg_bin/pgbench" "${pg_conn[@]}" -d "$db" -n -c 1 -j 1 \
            -T "$pg_seconds" -f "$script" -l --log-prefix="$label" >"$pgw/$label.out" 2>&1) ||
            { cat "$pgw/$label.out" >&2; return 1; }
        python3 - "$n" "$label" "$pgw" "$results" <<'PY'
import glob, json, math, sys
n, label, d, results = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
v = []
for f in glob.glob(f"{d}/{label}.*"):
    if f.endswith((".sql", ".out")):
        continue
    for line in open(f):
        p = line.split()
        if len(p) >= 3 and p[2].isdigit():
            v.append(int(p[2]))
v.sort()
pc = lambda p: v[min(len(v), max(1, math.ceil(len(v) * p))) - 1] if v else 0
lat = {"p50": pc(.5), "p90": pc(.9), "p99": pc(.99), "max": v[-1] if v else 0}
with open(results, "a") as out:
    out.write(json.dumps({"size": int(n), "kind": "pg", "label": label, "n": len(v), "latency_us": lat}) + "\n")
print(f"bench: [{n}] pgbench {label:<11} {len(v):>7} transactions  p50 {lat['p50'] / 1e3:9.3f} ms"
      f"  p90 {lat['p90'] / 1e3:9.3f} ms  p99 {lat['p99'] / 1e3:9.3f} ms  max {lat['max'] / 1e3:9.3f} ms")
PY
    }
    local pick="\\set i random(1, $count)
SELECT pat FROM bench_numbers WHERE id = :i \\gset"
    run_pgbench pick-only "$pick"
    local days
    for days in 1 7 90; do
        run_pgbench "recipe-${days}d" "$pick
SELECT dstchannel FROM cdr WHERE src LIKE :pat AND calldate > TIMESTAMP '$now' - interval '$days day' AND disposition IN ('ANSWERED','NO ANSWER','BUSY') ORDER BY calldate DESC LIMIT 1;"
    done
    psql_ -d "$db" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT dstchannel FROM cdr WHERE src LIKE '%9000000000' AND calldate > TIMESTAMP '$now' - interval '90 day' AND disposition IN ('ANSWERED','NO ANSWER','BUSY') ORDER BY calldate DESC LIMIT 1" >"$work/explain-$n-90d.txt"
    psql_ -d "$db" -c "CREATE INDEX cdr_src_trgm ON cdr USING gin (src gin_trgm_ops)" -c "ANALYZE cdr"
    for days in 1 90; do
        run_pgbench "trgm-${days}d" "$pick
SELECT dstchannel FROM cdr WHERE src LIKE :pat AND calldate > TIMESTAMP '$now' - interval '$days day' AND disposition IN ('ANSWERED','NO ANSWER','BUSY') ORDER BY calldate DESC LIMIT 1;"
    done
    psql_ -d "$db" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT dstchannel FROM cdr WHERE src LIKE '%9000000000' AND calldate > TIMESTAMP '$now' - interval '90 day' AND disposition IN ('ANSWERED','NO ANSWER','BUSY') ORDER BY calldate DESC LIMIT 1" >"$work/explain-$n-90d-trgm.txt"
    psql_ -d postgres -c "DROP DATABASE $db"
}

# 3-5. The daemon on a copy of one size's store.
daemon_bench() {
    local n=$1 dir=$data_dir/lookup-$1 http agi
    http=127.0.0.1:$(free_port)
    agi=127.0.0.1:$(free_port)
    rm -rf "$work/store" && mkdir -p "$work/store/live"
    cp "$dir/store.duckdb" "$work/store/store.duckdb"
    [[ -f $dir/store.duckdb.wal ]] && cp "$dir/store.duckdb.wal" "$work/store/"
    : >"$work/store/live/queue_log"
    cat >"$work/store/calltrail.toml" <<EOF
[store]
path = "store.duckdb"

[numbers]
default_region = "RU"

[[sources]]
name = "bench-queue"
kind = "asterisk_queue_log"
path = "live/queue_log"
pbx = "pbx1"
timezone = "Europe/Moscow"

[http]
listen = "$http"

[agi]
enabled = true
listen = "$agi"

[lookup]
policy = "last_contact"
window = "all"
EOF
    local stats
    stats=$("$bin" --config "$work/store/calltrail.toml" query --format csv \
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM calls), (SELECT count(*) FROM callers)" | tail -n 1)
    echo "bench: [$n] store: events,calls,callers = $stats; $(du -h "$work/store/store.duckdb" | cut -f1)"
    "$bin" --config "$work/store/calltrail.toml" run >"$work/daemon-$n.log" 2>&1 &
    daemon_pid=$!
    local t0 i
    t0=$(date +%s.%N)
    for i in $(seq 1 1200); do
        curl -sf "http://$http/healthz" >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon-$n.log" >&2; return 1; }
        sleep 0.1
    done
    echo "bench: [$n] daemon up (healthz) after $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s"
    # The lookup's memory loads in the background (503 until then).
    for i in $(seq 1 3000); do
        grep -q 'lookup index loaded' "$work/daemon-$n.log" && break
        kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon-$n.log" >&2; return 1; }
        sleep 0.1
    done
    echo "bench: [$n] lookups answered after $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s"
    local loaded
    loaded=$(grep -m1 'lookup index loaded' "$work/daemon-$n.log" | sed 's/\x1b\[[0-9;]*m//g' || true)
    echo "bench: [$n] daemon: ${loaded#*: }"
    echo "{\"size\": $n, \"kind\": \"index\", \"line\": \"$(echo "$loaded" | sed 's/.*lookup index loaded *//')\", \"stats\": \"$stats\"}" >>"$results"
    echo "bench: [$n] sample answer: $(curl -s "http://$http/dialplan/lookup?number=$(head -n 1 "$dir/numbers.known" | sed 's/+/%2B/')")"
    sleep 2
    local target rate out addr c0 c1
    for target in http http-keepalive agi; do
        addr=$http
        [[ $target == agi ]] && addr=$agi
        "$load" --target "$target" --addr "$addr" --rate 1000 --seconds 2 --numbers "$dir/numbers.txt" --seed 1 >/dev/null
        for rate in "${rates[@]}"; do
            sleep 2
            c0=$(cpu_snapshot "$daemon_pid")
            out=$("$load" --target "$target" --addr "$addr" --rate "$rate" --seconds "$seconds" \
                --numbers "$dir/numbers.txt" --seed "$rate")
            c1=$(cpu_snapshot "$daemon_pid")
            echo "$out" | grep -v '^JSON ' | sed "s/^/bench: [$n] /"
            echo "$out" | sed -n 's/^JSON //p' | python3 -c '
import json, sys
r = json.load(sys.stdin)
n, c0, c1 = int(sys.argv[1]), [int(x) for x in sys.argv[2].split()], [int(x) for x in sys.argv[3].split()]
wall = max(1, c1[2] - c0[2]) / 1e9
daemon = 100 * (c1[0] - c0[0]) / 100 / wall
busy = 100 * (c1[1] - c0[1]) / 100 / wall
gen = max(0.0, r.get("generator_cpu_pct", 0))
others = max(0.0, busy - daemon - gen)
r.update(size=n, kind="load", daemon_cpu_pct=round(daemon, 1), machine_busy_pct=round(busy, 1),
         others_cpu_pct=round(others, 1))
print(f"bench: [{n}]   CPU over the run (% of one core, {sys.argv[4]} cores): daemon {daemon:.0f}, "
      f"generator {gen:.0f}, everything else {others:.0f} (machine busy {busy:.0f})", file=sys.stderr)
print(json.dumps(r))' "$n" "$c0" "$c1" "$(nproc)" >>"$results"
        done
    done
    out=$("$load" --target fresh --addr "$http" --queue-log "$work/store/live/queue_log" \
        --count "$fresh_count" --gap-ms 200-500 --poll-ms 5)
    echo "$out" | grep -v '^JSON ' | sed "s/^/bench: [$n] /"
    echo "$out" | sed -n 's/^JSON //p' | python3 -c "import json,sys; r=json.load(sys.stdin); r['size']=$n; r['kind']='fresh'; print(json.dumps(r))" >>"$results"
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || true
    daemon_pid=
    rm -rf "$work/store"
}

for n in "${sizes[@]}"; do
    prepare "$n"
done
for n in "${sizes[@]}"; do
    daemon_bench "$n"
done
pg_start
for n in "${sizes[@]}"; do
    pg_bench "$n"
done

# 7. Summary.
python3 - "$results" "$(nproc)" "$(($(date +%s) - bench_t0))" "$load0" "${sizes[@]}" <<'PY'
import json, sys

path, cores, elapsed, load0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split()
sizes = [int(s) for s in sys.argv[5:]]
rows = [json.loads(l) for l in open(path) if l.strip()]
small, big = sizes
def find(**kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None
ms = lambda us: f" {us / 1e3:.3f}"
print()
print(f"== lookup benchmark: histories of {small} and {big} queue_log events, one run ({elapsed} s) ==")
print(f"machine: {cores} cores, shared by the load generator, the daemon and the kernel's TCP work "
      "(PostgreSQL ran after the daemon stopped); 'gen lag' is the generator's own delay (due time ->"
      " its task starting), counted in the latency; CPU % of one core over each run, 'other' = the"
      " rest of the machine (kernel softirq, other processes)")
print(f"load average: {load0} at the start, {open('/proc/loadavg').read().split()[:3]} at the end")
for n in sizes:
    r = find(size=n, kind="index")
    if r:
        print(f"[{n}] store events,calls,callers = {r['stats']}; lookup index loaded {r['line']}")
print()
print(f"{'lookup, ms from the due time':<38}{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}{'max':>9}"
      f"{'done/s':>9}{'errors':>7}{'agent%':>7}{'gen lag p99':>12}  CPU % daemon/generator/other")
for n in sizes:
    for t in ("http", "http-keepalive", "agi"):
        for rate in (1000, 10000):
            r = find(size=n, kind="load", target=t, rate=rate)
            if not r:
                continue
            l = r["latency_us"]
            print(f"{f'[{n}] {t} {rate // 1000}k/s':<38}{ms(l['p50']):>9}{ms(l['p90']):>9}{ms(l['p99']):>9}"
                  f"{ms(l['p999']):>9}{ms(l['max']):>9}{r['achieved']:>9.0f}{r['errors']:>7}"
                  f"{100 * r['with_agent'] / max(1, r['sent']):>6.0f}%{ms(r['lag_us']['p99']):>12}"
                  f"  {r.get('daemon_cpu_pct', 0):.0f}/{r.get('generator_cpu_pct', 0):.0f}/{r.get('others_cpu_pct', 0):.0f}")
print()
print(f"{'SQL recipe on PostgreSQL, ms (pgbench, 1 client)':<50}{'n':>8}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}")
for n in sizes:
    for label in ("pick-only", "recipe-1d", "recipe-7d", "recipe-90d", "trgm-1d", "trgm-90d"):
        r = find(size=n, kind="pg", label=label)
        if r:
            l = r["latency_us"]
            print(f"{f'[{n}] {label}':<50}{r['n']:>8}{ms(l['p50']):>10}{ms(l['p90']):>10}{ms(l['p99']):>10}{ms(l['max']):>10}")
print("  (recipe-*: indexes on calldate, src, uniqueid; trgm-*: plus a pg_trgm GIN index on src;"
      " every transaction includes the pick of the number, pick-only)")
print()
print("ratio: recipe (pgbench) / calltrail HTTP lookup (new connection each, 1k/s), p50 and p99:")
verdicts = []
for n in sizes:
    h = find(size=n, kind="load", target="http", rate=1000)
    if not h:
        continue
    hl = h["latency_us"]
    parts = []
    for label in ("recipe-1d", "recipe-7d", "recipe-90d", "trgm-1d", "trgm-90d"):
        r = find(size=n, kind="pg", label=label)
        if r:
            l = r["latency_us"]
            a, b = l["p50"] / max(1, hl["p50"]), l["p99"] / max(1, hl["p99"])
            parts.append(f"{label} {a:,.0f}x / {b:,.0f}x")
            if label == "recipe-1d":
                verdicts.append((f"[{n}] recipe (1 day, its cheapest form) >= 1000x calltrail at p50 and p99",
                                 a >= 1000 and b >= 1000, f"{a:,.0f}x / {b:,.0f}x"))
    print(f"  [{n}] " + "; ".join(parts))
print()
for n in sizes:
    r = find(size=n, kind="fresh")
    if r:
        l = r["latency_us"]
        print(f"freshness [{n}]: line written -> lookup names the agent: p50 {l['p50'] / 1e3:.1f} ms, "
              f"p90 {l['p90'] / 1e3:.1f} ms, p99 {l['p99'] / 1e3:.1f} ms, max {l['max'] / 1e3:.1f} ms "
              f"({r['answered']}/{r['count']} answered, polled every {r['poll_ms']} ms)")
        verdicts.append((f"[{n}] freshness p99 <= 1 s", r["timeouts"] == 0 and l["p99"] <= 1_000_000,
                         f"{l['p99'] / 1e3:.1f} ms"))
healthy = lambda r: r and r["errors"] == 0 and r["achieved"] >= 0.95 * r["rate"]
for t in ("http", "http-keepalive", "agi"):
    for n in sizes:
        r = find(size=n, kind="load", target=t, rate=10000)
        if r:
            ok = r["latency_us"]["p99"] < 1000 and healthy(r)
            verdicts.append((f"[{n}] {t} p99 < 1 ms at 10k/s", ok,
                             f"{r['latency_us']['p99'] / 1e3:.3f} ms, {r['achieved']:.0f}/s done, {r['errors']} errors"))
    # Flat: p50 and p99 at the larger history vs the smaller one, at the
    # highest rate both sustained (a saturated run says nothing about it).
    for rate in (10000, 1000):
        a, b = find(size=small, kind="load", target=t, rate=rate), find(size=big, kind="load", target=t, rate=rate)
        if healthy(a) and healthy(b):
            g50 = b["latency_us"]["p50"] / max(1, a["latency_us"]["p50"])
            g99 = b["latency_us"]["p99"] / max(1, a["latency_us"]["p99"])
            verdicts.append((f"{t} flat as history grows ({big} vs {small} events, {rate // 1000}k/s: p50, p99 within 1.5x)",
                             g50 <= 1.5 and g99 <= 1.5, f"p50 {g50:.2f}x, p99 {g99:.2f}x"))
            break
    else:
        verdicts.append((f"{t} flat as history grows", False, "no rate both histories sustained without errors"))
print()
print("targets:")
for what, ok, fig in verdicts:
    print(f"  {'MET    ' if ok else 'NOT MET'} {what}: {fig}")
PY
