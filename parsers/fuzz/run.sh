#!/usr/bin/env bash
# Fuzzes the calltrail-parsers parsers with cargo-fuzz (libFuzzer), one
# target after the other.
#
#   bash parsers/fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 600); TARGETs default to all of queue_log,
# cdr, dbf, oktell. Works from any directory and in a fresh clone: installs
# cargo-fuzz if missing and builds the targets (stable toolchain with
# RUSTC_BOOTSTRAP=1, no nightly needed).
#
# Corpora, per target T (libFuzzer writes new inputs to the first only):
#   parsers/fuzz/corpus/T         working corpus (git-ignored)
#   parsers/fuzz/seeds/T          hand-written seeds (committed)
#   <samples>/<matching dirs>     the reference samples, read-only; <samples>
#                                 is $CALLTRAIL_SAMPLES or ../shared/reference/samples
#                                 beside the clone (skipped with a note if absent)
#
# Environment:
#   CALLTRAIL_FUZZ_TARGET_DIR  cargo target dir (default ~/.cache/calltrail/fuzz-target)
#   CALLTRAIL_FUZZ_SANITIZER   none (default: the parsers are safe Rust, and
#                              without ASan runs are ~2x faster) or address
#   CALLTRAIL_FUZZ_LOG_DIR     full libFuzzer logs (default parsers/fuzz/logs)
#
# Prints per target: runs, execs/s, coverage, result. Exits 1 if any target
# crashed (the crash file path is printed; reproduce with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir parsers/fuzz -s none T FILE`
# from the repo root), 2 on a build or setup failure.
set -uo pipefail

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
parsers_dir=$(dirname "$fuzz_dir")
repo_dir=$(dirname "$parsers_dir")

secs=${1:-600}
shift $(($# > 0 ? 1 : 0))
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs == 0)); then
    echo "usage: $0 [SECONDS] [queue_log|cdr|dbf|oktell ...]" >&2
    exit 2
fi
all_targets=(queue_log cdr dbf oktell)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")

samples=${CALLTRAIL_SAMPLES:-$repo_dir/../shared/reference/samples}
sanitizer=${CALLTRAIL_FUZZ_SANITIZER:-none}
log_dir=${CALLTRAIL_FUZZ_LOG_DIR:-$fuzz_dir/logs}
export CARGO_TARGET_DIR=${CALLTRAIL_FUZZ_TARGET_DIR:-$HOME/.cache/calltrail/fuzz-target}
# cargo-fuzz passes -Z flags (sanitizer coverage); this lets stable accept them.
export RUSTC_BOOTSTRAP=1

# Per target: libFuzzer's -max_len and the sample directories (globs under
# $samples) used as extra read-only corpora.
max_len_of() {
    case $1 in
        dbf) echo 262144 ;; # 256 KiB tables
        *) echo 16384 ;;    # 16 KiB of lines
    esac
}
sample_globs_of() {
    case $1 in
        queue_log) echo "queue_log-*" ;;
        cdr) echo "cdr-*" ;;
        dbf) echo "dbf-*" ;;
        # No Oktell export is public; the CSV samples give it quoting and
        # delimiter structure to start from.
        oktell) echo "cdr-*" ;;
    esac
}

if ! command -v cargo-fuzz >/dev/null 2>&1 && ! [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo-fuzz ]]; then
    echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked || {
        echo "fuzz: could not install cargo-fuzz" >&2
        exit 2
    }
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

for t in "${targets[@]}"; do
    if [[ " ${all_targets[*]} " != *" $t "* ]]; then
        echo "fuzz: unknown target $t (have: ${all_targets[*]})" >&2
        exit 2
    fi
done

cd "$parsers_dir" || exit 2
mkdir -p "$log_dir"
echo "fuzz: building ${targets[*]} (sanitizer $sanitizer, target dir $CARGO_TARGET_DIR)"
build_args=(--fuzz-dir "$fuzz_dir" -s "$sanitizer" --debug-assertions)
for t in "${targets[@]}"; do
    if ! cargo fuzz build "${build_args[@]}" "$t" >"$log_dir/build-$t.log" 2>&1; then
        tail -n 30 "$log_dir/build-$t.log" >&2
        echo "fuzz: build of $t failed (log: $log_dir/build-$t.log)" >&2
        exit 2
    fi
done

if [[ ! -d $samples ]]; then
    echo "fuzz: note: no samples directory at $samples; fuzzing from the seeds only"
fi

summary=()
crashed=0
for t in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$t"
    artifacts="$fuzz_dir/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    dirs=("$corpus" "$fuzz_dir/seeds/$t")
    if [[ -d $samples ]]; then
        for d in "$samples"/$(sample_globs_of "$t"); do
            [[ -d $d ]] && dirs+=("$d")
        done
    fi
    log="$log_dir/$t.log"
    echo "fuzz: $t for ${secs}s, max_len $(max_len_of "$t"), corpora: ${dirs[*]#"$repo_dir/"}"
    # libFuzzer can deadlock in its own timeout handler when a unit stalls
    # (seen once on a machine at load 20: the empty seed "took" 10 s and the
    # process slept on a futex forever). Bound each run, and try a hung one
    # once more before calling it a failure.
    for attempt in 1 2; do
        timeout --kill-after=10 $((secs + 240)) \
            cargo fuzz run "${build_args[@]}" "$t" "${dirs[@]}" -- \
            -max_total_time="$secs" \
            -max_len="$(max_len_of "$t")" \
            -timeout=10 \
            -rss_limit_mb=2048 \
            -artifact_prefix="$artifacts/" \
            -print_final_stats=1 \
            >"$log" 2>&1
        rc=$?
        ((rc == 124 || rc == 137)) || break
        echo "fuzz: $t did not finish within $((secs + 240)) s (attempt $attempt); see $log"
    done
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -n 1)
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if ((rc == 0)); then
        result="ok"
    else
        crashed=1
        result="CRASH (exit $rc)"
        [[ -n $crash ]] && result+=" input: $crash"
        panic=$(grep -m 1 -A 1 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" | tr '\n' ' ')
        [[ -n $panic ]] && result+=" | $panic"
        [[ -n $crash ]] && result+=" | reproduce: (cd parsers && RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s $sanitizer $t $crash)"
    fi
    line=$(printf '%-10s runs %-10s execs/s %-7s %-40s %s' "$t" "${runs:-?}" "${eps:-?}" "${cov:-cov: ?}" "$result")
    echo "fuzz: $line"
    echo "fuzz:   log: $log"
    summary+=("$line")
done

echo
echo "== fuzz summary (${secs}s per target) =="
printf '%s\n' "${summary[@]}"
if ((crashed)); then
    echo "fuzz: FAILED: a target crashed; see the crash input paths above"
    exit 1
fi
echo "fuzz: all targets ran ${secs}s without a crash"
