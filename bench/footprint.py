#!/usr/bin/env python3
"""The live phase of bench/footprint.sh (issue 15, must-show 1): the real
`calltrail run` daemon follows one queue_log fed --rate lines/s for
--seconds, on the store it is given (a 10 M-line history, or an empty one:
the same lines, the same rate, so the two runs compare); stdlib only.

The lines: a generated queue_log (gen_queue_log, another seed than the
history's, the same pool of callers: most live callers have history) moved
to now: every time stamp t becomes now0 + (t - t0) * k, k chosen so that
the file's span lasts the phase (the calls keep their order and their
shape, shortened), and each call id `E.N` gets the same mapping of its
epoch `E` (so the ids are new and still Asterisk-shaped).

Measured, one sample a second:
* the daemon's RSS (VmRSS of /proc/<pid>/status): peak over the phase, and
  steady = the median of the second half;
* its CPU (utime + stime of /proc/<pid>/stat, every thread) over the phase,
  per 1,000 lines appended;
* the deriver's passes: the daemon logs each one at debug level as JSON
  (`state step`: read_ms, derive_ms, commit_ms); a pass's time is their sum.
  Under the stream a pass takes what arrived while the previous one ran and
  the deriver waited (twice the previous pass), so a slower store gets
  bigger passes: these figures compare the stream, not one pass.

Then "the same pass" (issue 15: a live pass on the history within 2x of the
same pass on an empty store): --probes blocks of --probe-lines lines (the
lines after the stream's, one write each, --probe-gap s apart, the deriver
idle before each), and the passes that derived each block (their time
summed; a block is nearly always one pass): both runs write the same
blocks, so these passes take the same events.

Prints one JSON object on stdout.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

# The daemon's CPU as bench/wall_load.py reads it (utime + stime, /proc).
from wall_load import proc_cpu_s  # noqa: E402  (bench/ is the script's dir)


def proc_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moved_lines(path, n, seconds, now0, extra=0):
    """The first n lines of path, moved to start at now0 and span seconds,
    and the extra lines after them, moved alike (they follow the span)."""
    raw = []
    with open(path, "rb") as f:
        for line in f:
            raw.append(line.rstrip(b"\n"))
            if len(raw) >= n + extra:
                break
    t0 = int(raw[0].split(b"|", 1)[0])
    t1 = int(raw[min(n, len(raw)) - 1].split(b"|", 1)[0])
    k = seconds / max(1, t1 - t0)

    def move(t):
        return int(now0 + (t - t0) * k)

    out = []
    for line in raw:
        parts = line.split(b"|")
        parts[0] = str(move(int(parts[0]))).encode()
        cid = parts[1]
        if b"." in cid and cid.split(b".", 1)[0].isdigit():
            e, rest = cid.split(b".", 1)
            parts[1] = str(move(int(e))).encode() + b"." + rest
        out.append(b"|".join(parts) + b"\n")
    return out


def state_steps(raw):
    """(ms, events) of each `state step` line in the daemon's JSON log."""
    out = []
    for line in raw.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        fl = rec.get("fields", {})
        if fl.get("message") == "state step":
            out.append(
                (fl.get("read_ms", 0) + fl.get("derive_ms", 0) + fl.get("commit_ms", 0),
                 fl.get("events", 0))
            )
    return out


def run_probes(d, ql, log_path, lines, size, gap, rss):
    """The same-pass probes: each block of `size` lines in one write, the
    deriver idle before it; the passes logged until the next block."""
    res = {"ms": [], "events": [], "passes": [], "log_offset": os.path.getsize(log_path)}
    with open(ql, "ab", buffering=0) as out:
        for i in range(0, len(lines) - size + 1, size):
            if d.poll() is not None:
                break
            before = os.path.getsize(log_path)
            out.write(b"".join(lines[i:i + size]))
            time.sleep(gap)
            rss.append(proc_rss_mb(d.pid))
            with open(log_path, "rb") as f:
                f.seek(before)
                steps = state_steps(f.read())
            if steps:
                res["ms"].append(sum(p[0] for p in steps))
                res["events"].append(sum(p[1] for p in steps))
                res["passes"].append(len(steps))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--lines-from", required=True, help="generated queue_log to replay")
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--label", default="live")
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--probe-lines", type=int, default=50)
    ap.add_argument("--probe-gap", type=float, default=4.0)
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    ql = os.path.join(args.work, "queue_log")
    open(ql, "wb").close()
    cfg = os.path.join(args.work, "calltrail.toml")
    with open(cfg, "w") as f:
        f.write(
            '[store]\npath = "%s"\n\n[numbers]\ndefault_region = "RU"\n\n'
            '[http]\nlisten = "127.0.0.1:%d"\n\n[agi]\nlisten = "127.0.0.1:%d"\n\n'
            '[[sources]]\nname = "bench-queue"\nkind = "asterisk_queue_log"\n'
            'path = "%s"\npbx = "pbx1"\ntimezone = "Europe/Moscow"\n'
            % (args.store, free_port(), free_port(), ql)
        )
    n = int(args.rate * args.seconds)
    now0 = time.time()
    extra = args.probes * args.probe_lines
    lines = moved_lines(args.lines_from, n, args.seconds, now0, extra)
    lines, probe_lines = lines[:n], lines[n:]
    log_path = os.path.join(args.work, "daemon.log")
    env = dict(os.environ, RUST_LOG=os.environ.get("CALLTRAIL_BENCH_LOG", "info,calltrail::store=debug"))
    log = open(log_path, "wb")
    d = subprocess.Popen(
        [args.bin, "--config", cfg, "--log-format", "json", "run"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    # Started: the daemon has opened the store, loaded the lookup's memory
    # and serves HTTP; give it a few seconds more to settle.
    deadline = time.time() + 900
    while time.time() < deadline and d.poll() is None:
        with open(log_path, "rb") as f:
            if b"HTTP API listening" in f.read():
                break
        time.sleep(0.5)
    time.sleep(5)
    if d.poll() is not None:
        sys.exit("the daemon exited at start; see %s" % log_path)

    rss, samples_t = [], []
    cpu0 = proc_cpu_s(d.pid)
    start = time.time()
    written = 0
    next_sample = start
    with open(ql, "ab", buffering=0) as out:
        while written < len(lines):
            now = time.time()
            due = min(len(lines), int((now - start) * args.rate) + 1)
            while written < due:
                out.write(lines[written])
                written += 1
            if now >= next_sample:
                rss.append(proc_rss_mb(d.pid))
                samples_t.append(now - start)
                next_sample += 1.0
            time.sleep(max(0.0, min(next_sample, start + written / args.rate) - time.time()))
    elapsed = time.time() - start
    cpu1 = proc_cpu_s(d.pid)
    # Let the deriver catch up with the last lines (a few seconds), still sampling.
    for _ in range(10):
        rss.append(proc_rss_mb(d.pid))
        time.sleep(1)
    probes = run_probes(d, ql, log_path, probe_lines, args.probe_lines, args.probe_gap, rss)
    d.send_signal(signal.SIGTERM)
    try:
        d.wait(timeout=60)
    except subprocess.TimeoutExpired:
        d.kill()
    log.close()

    with open(log_path, "rb") as f:
        # The stream's passes (the probes' are counted apart).
        passes = state_steps(f.read(probes["log_offset"]))
    half = rss[len(rss) // 2:]
    ms = [p[0] for p in passes]
    result = {
        "label": args.label,
        "lines": written,
        "seconds": round(elapsed, 1),
        "rss_peak_mb": round(max(rss), 1),
        "rss_steady_mb": round(pct(half, 50), 1),
        "cpu_s": round(cpu1 - cpu0, 2),
        "cpu_ms_per_1000_lines": round((cpu1 - cpu0) * 1000.0 / max(1, written) * 1000.0, 1),
        "cpu_pct_of_core": round((cpu1 - cpu0) / elapsed * 100.0, 1),
        "passes": len(passes),
        "events_per_pass": round(sum(p[1] for p in passes) / max(1, len(passes)), 1),
        "pass_ms_p50": pct(ms, 50),
        "pass_ms_p99": pct(ms, 99),
        "pass_ms_mean": round(sum(ms) / max(1, len(ms)), 2),
        "pass_ms_per_event": round(sum(ms) / max(1, sum(p[1] for p in passes)), 3),
        "same_pass_blocks": len(probes["ms"]),
        "same_pass_events": round(sum(probes["events"]) / max(1, len(probes["events"])), 1),
        "same_pass_passes": sum(probes["passes"]),
        "same_pass_ms_p50": pct(probes["ms"], 50),
        "same_pass_ms_mean": round(sum(probes["ms"]) / max(1, len(probes["ms"])), 2),
        "exit": d.returncode,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
