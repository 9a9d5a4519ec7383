#!/usr/bin/env bash
# Actions latency benchmark (issue 13; a bench, not a test): the queue_log
# line that opens a missed-call episode -> the callback's call file in
# `<spool>/outgoing/`, and -> the SMS at Kannel's SMSC, p50/p99/max, with the
# real daemon and a real Kannel (bearerbox + fakesmsc + smsbox, the conf of
# tests/it/support/kannel.rs). No calendar, so every moment is business
# hours (actions are due at once), and `[callbacks] per_minute = 0` (no
# pacing). Prints, beside them, baselines measured in the same run: the bare
# cost of placing a call file as calltrail does (tmp/ + fsync + rename into
# outgoing/ + fsync of the directory, on the same filesystem; also without
# the fsyncs) and one Kannel round trip (GET sendsms with calltrail's query
# -> the message in fakesmsc's log); the ratios; and the target p99 < 1 s
# as PASS/MISS. An episode whose file or SMS does not arrive within
# --timeout seconds is reported as missing. See bench/actions_latency.py for
# what exactly is measured.
#
#   bash bench/actions_latency.sh [--episodes 200] [--rate 5]
#                                 [--file-baseline 1000] [--kannel-baseline 100]
#                                 [--timeout 10] [--poll-ms 500] [--watch-ms 1]
#                                 [--json FILE] [--keep]
#
# --episodes/--rate: episodes appended, one write() each, at this rate (the
# Kannel baseline is paced at the same rate). --poll-ms: the source's
# poll_interval_ms (calltrail's default; notify wakes the tailer first).
# --watch-ms: how often the bench polls the spool and fakesmsc's log.
# --json FILE: the figures as JSON. --keep: keep the temp dir (daemon.log,
# store, Kannel's logs, the spool).
#
# Builds `calltrail` with the plain dev profile into $CARGO_TARGET_DIR
# (default ~/.cache/calltrail/target, shared with .ci/run). Needs Kannel:
# Debian's `kannel` and `kannel-extras` packages; the paths default to the
# tests' (CALLTRAIL_BEARERBOX, CALLTRAIL_SMSBOX, CALLTRAIL_FAKESMSC override
# them). Python 3, stdlib only (CALLTRAIL_PYTHON overrides `python3`).
# CALLTRAIL_BENCH_LOG sets the daemon's log filter (default info).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/calltrail/target}
python=${CALLTRAIL_PYTHON:-python3}
bearerbox=${CALLTRAIL_BEARERBOX:-/usr/sbin/bearerbox}
smsbox=${CALLTRAIL_SMSBOX:-/usr/sbin/smsbox}
fakesmsc=${CALLTRAIL_FAKESMSC:-/usr/lib/kannel/test/fakesmsc}
for tool in "$bearerbox" "$smsbox" "$fakesmsc"; do
    if [[ ! -x $tool ]]; then
        echo "actions_latency: $tool not found: install Kannel (sudo apt-get install kannel kannel-extras)" >&2
        exit 1
    fi
done
echo "actions_latency: building calltrail (dev profile) into $CARGO_TARGET_DIR"
cargo build --quiet --bin calltrail
# The driver stops its children (daemon, Kannel) itself, by pid, on exit,
# error, Ctrl-C or SIGTERM, and removes its temp dir unless --keep.
exec "$python" bench/actions_latency.py --calltrail "$CARGO_TARGET_DIR/debug/calltrail" \
    --bearerbox "$bearerbox" --smsbox "$smsbox" --fakesmsc "$fakesmsc" "$@"
