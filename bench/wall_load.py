#!/usr/bin/env python3
"""What open wallboards cost the daemon (issue 14, must-show 3): 50 boards
open at once for 10 minutes must cost the daemon less than 5 % of one core
beyond idle and add nothing to the append -> DuckDB latency, measured side
by side in one run. Run by bench/wall_load.sh (which builds the binary);
stdlib Python only.

Setup: the real `calltrail run` daemon on a temp store, following one
queue_log (time zone Europe/Moscow), HTTP and FastAGI on free ports of
127.0.0.1, no Kafka. Before the first phase the agents join their queues
(ADDMEMBER: 14 agents, 1-2 of 4 queues each) and the stream runs for
--warmup-s, so the boards have calls, agents and figures "today".

The stream, through every phase: realistic call flows of bench/latency.py
(its `write_lines` and tests/support/chaos_writer.py's `Call`: DID,
ENTERQUEUE, RINGNOANSWER, CONNECT, COMPLETECALLER/AGENT, ABANDON,
EXITWITHTIMEOUT, EXITWITHKEY over 4 queues and 14 agents, about 12 calls
at once), --rate lines/s (default 5), one write() per line; and every 15 s
an agent pauses (with a reason) or comes back (PAUSE/UNPAUSE in each of its
queues, not timed).

Phases, each --phase-s long, with --gap-s between them (not measured):
idle, walls, idle, walls, ..., idle (--pairs walls phases, one more idle
phase than walls phases, so the idle phases bracket the loaded ones and a
linear drift, e.g. the store growing, cancels between the two kinds).
Default --phase-s: 600 / --pairs, so the loaded phases total 10 minutes.

* daemon CPU: utime + stime of /proc/<pid>/stat (every thread of the
  process) at the phase's start and end -> % of one core over the phase's
  wall time. Target: walls - idle < 5 % of one core (totals per kind).
* append -> DuckDB, as bench/latency.py measures it: append time is
  time.time() taken just before the write() of the line; stored time is the
  event's `ingested_at` (the start of its batch's transaction), read after
  the run with `calltrail query` (the daemon holds the file). A line belongs
  to the phase its append time falls in. p50/p99/max per phase and per
  kind. Target "adds nothing": the walls phases' p99 exceeds the idle
  phases' p99 by no more than the idle phases' own spread (max - min of
  their per-phase p99s).
* walls: --clients (50) boards, all opened at the phase's start and
  closed at its end. Each behaves like the page in a browser: GET /wall,
  /wall/wall.js, /wall/wall.css on one keep-alive connection (each must be
  200), then GET /api/wall/stream on its own connection, held open for the
  whole phase, every event read and parsed as server-sent events (chunked
  transfer decoded). Half the boards show every queue, the other half one
  queue each (`?queues=`, as a team's TV would). Per client: events, bytes
  on the wire, data bytes, how many times the board's content changed
  (generated_at aside). A client "got updates" when its board changed and
  the last board's offered_today (its queues) is above the first one's; a
  filtered board must hold its queue only.

The bench's own CPU per phase (os.times(): writer + clients) is printed
beside the daemon's: both share the machine.
"""

import argparse
import http.client
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# The latency bench's method and helpers (it puts tests/support on the path
# for chaos_writer's call flows).
from latency import W, free_port, pct, wait_port, write_lines  # noqa: E402
from chaos_writer import AGENTS, QUEUES  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
GENERATED_AT = re.compile(rb'"generated_at":"[^"]*"')


def proc_cpu_s(pid):
    """utime + stime of the process (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def threads_cpu_s(pid):
    """utime + stime per thread name (threads of one name summed; a thread
    that ended between two samples is missing from the later one)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.find("(") + 1:s.rfind(")")]
        fields = s[s.rfind(")") + 2:].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def proc_rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def self_cpu_s():
    t = os.times()
    return t.user + t.system


def stats_ms(values):
    """p50/p99/max/min in ms of values in seconds (None when empty)."""
    if not values:
        return None
    ms = [x * 1000.0 for x in values]
    return {"p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "max_ms": max(ms), "min_ms": min(ms), "n": len(ms)}


# -- the stream -------------------------------------------------------------

def membership():
    """Each agent's queues: one or two of the four, fixed."""
    out = {}
    for i, agent in enumerate(AGENTS):
        qs = [QUEUES[i % len(QUEUES)]]
        if i % 3 == 0:
            qs.append(QUEUES[(i + 1) % len(QUEUES)])
        out[agent] = qs
    return out


def append_raw(path, lines):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, "".join(lines).encode())
    finally:
        os.close(fd)


class Writer(threading.Thread):
    """The steady stream: bench/latency.py's write_lines, one second of
    lines at a time, and an agent pausing or coming back every 15 s."""

    def __init__(self, path, rate, members):
        super().__init__(daemon=True)
        self.path, self.rate, self.members = path, rate, members
        self.w = W(14)
        self.calls, self.next_callno = [], [0]
        self.appended = {}  # (call id, verb) -> time.time() of the append
        self.paused = set()
        self.stop = False
        self.error = None

    def run(self):
        try:
            per_chunk = max(1, int(round(self.rate)))
            last_pause = time.monotonic()
            while not self.stop:
                write_lines(self.path, per_chunk, self.rate, self.w, self.calls, self.appended, self.next_callno)
                if time.monotonic() - last_pause >= 15.0:
                    last_pause = time.monotonic()
                    self.pause_or_unpause()
        except Exception as e:  # reported by the main thread
            self.error = repr(e)

    def pause_or_unpause(self):
        agent = self.w.rng.choice(sorted(self.members))
        now = int(time.time())
        if agent in self.paused:
            self.paused.discard(agent)
            lines = ["%d|NONE|%s|%s|UNPAUSE|\n" % (now, q, agent) for q in self.members[agent]]
        else:
            self.paused.add(agent)
            reason = self.w.rng.choice(["lunch", "break", "training"])
            lines = ["%d|NONE|%s|%s|PAUSE|%s\n" % (now, q, agent, reason) for q in self.members[agent]]
        append_raw(self.path, lines)


# -- the boards -------------------------------------------------------------

class Board:
    """One wallboard's event stream: a raw HTTP/1.1 connection, the chunked
    body decoded, server-sent events parsed."""

    def __init__(self, idx, queue):
        self.idx, self.queue = idx, queue
        self.path = "/api/wall/stream" + ("?queues=" + queue if queue else "")
        self.page_status = []  # statuses of /wall, wall.js, wall.css
        self.sock = None
        self.head_done = False
        self.status = None
        self.chunked = False
        self.raw = b""
        self.data_left = 0
        self.crlf_left = 0
        self.text = b""
        self.ended = False
        self.wire_bytes = 0
        self.data_bytes = 0
        self.events = 0
        self.comments = 0
        self.changes = 0
        self.prev = None
        self.first = None
        self.last = None
        self.error = None

    def feed(self, data):
        self.wire_bytes += len(data)
        self.raw += data
        if not self.head_done:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            lines = self.raw[:i].decode("latin-1").split("\r\n")
            self.raw = self.raw[i + 4:]
            self.status = int(lines[0].split()[1])
            headers = {}
            for l in lines[1:]:
                k, _, v = l.partition(":")
                headers[k.strip().lower()] = v.strip()
            self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            self.head_done = True
            if self.status != 200 or not headers.get("content-type", "").startswith("text/event-stream"):
                self.error = "status %s, content-type %r" % (self.status, headers.get("content-type"))
        if self.chunked:
            while not self.ended:
                if self.data_left == 0 and self.crlf_left == 0:
                    i = self.raw.find(b"\r\n")
                    if i < 0:
                        break
                    size = int(self.raw[:i].split(b";")[0], 16)
                    self.raw = self.raw[i + 2:]
                    if size == 0:
                        self.ended = True
                        break
                    self.data_left, self.crlf_left = size, 2
                if self.data_left:
                    take = min(self.data_left, len(self.raw))
                    if not take:
                        break
                    self.text += self.raw[:take]
                    self.raw = self.raw[take:]
                    self.data_left -= take
                if self.data_left == 0 and self.crlf_left:
                    take = min(self.crlf_left, len(self.raw))
                    if not take:
                        break
                    self.raw = self.raw[take:]
                    self.crlf_left -= take
        else:
            self.text += self.raw
            self.raw = b""
        self.parse()

    def parse(self):
        while True:
            i = self.text.find(b"\n\n")
            if i < 0:
                return
            block, self.text = self.text[:i], self.text[i + 2:]
            event, data = None, []
            for line in block.split(b"\n"):
                if line.startswith(b":"):
                    self.comments += 1
                elif line.startswith(b"event:"):
                    event = line[6:].strip()
                elif line.startswith(b"data:"):
                    d = line[5:]
                    data.append(d[1:] if d.startswith(b" ") else d)
            if event != b"wall":
                continue
            payload = b"\n".join(data)
            self.events += 1
            self.data_bytes += len(payload)
            content = GENERATED_AT.sub(b"", payload)
            if self.prev is not None and content != self.prev:
                self.changes += 1
            self.prev = content
            if self.first is None:
                self.first = payload
            self.last = payload

    def summary(self):
        s = {
            "client": self.idx,
            "queues": self.queue or "all",
            "pages": self.page_status,
            "status": self.status,
            "events": self.events,
            "changes": self.changes,
            "wire_bytes": self.wire_bytes,
            "data_bytes": self.data_bytes,
            "keepalives": self.comments,
            "error": self.error,
        }
        ok = self.error is None and self.page_status == [200, 200, 200] and self.events >= 2
        if ok:
            first, last = json.loads(self.first), json.loads(self.last)
            s["offered_first"] = sum(q["offered_today"] for q in first["queues"])
            s["offered_last"] = sum(q["offered_today"] for q in last["queues"])
            if self.queue and any(q["queue"] != self.queue for q in last["queues"]):
                s["error"] = "a board of %s shows %s" % (self.queue, [q["queue"] for q in last["queues"]])
                ok = False
            ok = ok and self.changes >= 1 and s["offered_last"] > s["offered_first"]
        s["updated"] = ok
        return s


class Boards(threading.Thread):
    """--clients boards on one selector: opened when started, read until
    stopped."""

    def __init__(self, port, n):
        super().__init__(daemon=True)
        self.port = port
        self.boards = [Board(i, None if i % 2 == 0 else QUEUES[(i // 2) % len(QUEUES)]) for i in range(n)]
        self.opened = threading.Event()
        self.open_s = None
        self.stop = False
        self.error = None

    def open_board(self, b, sel):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            page = "/wall" + ("?queues=" + b.queue if b.queue else "")
            for path in (page, "/wall/wall.js", "/wall/wall.css"):
                c.request("GET", path, headers={"Accept-Language": "en"})
                r = c.getresponse()
                r.read()
                b.page_status.append(r.status)
        finally:
            c.close()
        s = socket.create_connection(("127.0.0.1", self.port), 10)
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n"
                   "Cache-Control: no-cache\r\n\r\n" % (b.path, self.port)).encode())
        s.setblocking(False)
        b.sock = s
        sel.register(s, selectors.EVENT_READ, b)

    def run(self):
        sel = selectors.DefaultSelector()
        try:
            t0 = time.monotonic()
            for b in self.boards:
                self.open_board(b, sel)
            self.open_s = time.monotonic() - t0
            self.opened.set()
            while not self.stop:
                for key, _ in sel.select(0.2):
                    b = key.data
                    try:
                        data = b.sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        data, b.error = b"", "recv: %s" % e
                    if not data:
                        b.error = b.error or "the daemon closed the stream"
                        sel.unregister(b.sock)
                        continue
                    b.feed(data)
        except Exception as e:  # reported by the main thread
            self.error = repr(e)
        finally:
            self.opened.set()
            for b in self.boards:
                if b.sock is not None:
                    b.sock.close()
            sel.close()


# -- the run ----------------------------------------------------------------

def write_config(work, http_port, agi_port, poll_ms):
    os.makedirs(os.path.join(work, "logs"))
    cfg = os.path.join(work, "calltrail.toml")
    with open(cfg, "w") as f:
        f.write(
            "# Written by bench/wall_load.py.\n"
            '[store]\npath = "store.duckdb"\n[numbers]\ndefault_region = "RU"\n'
            '[[sources]]\nname = "pbx1-queue"\nkind = "asterisk_queue_log"\npath = "logs/queue_log"\n'
            'pbx = "pbx1"\ntimezone = "Europe/Moscow"\npoll_interval_ms = %d\n'
            '[email]\noutbox = "outbox"\n'
            '[http]\nlisten = "127.0.0.1:%d"\n'
            '[agi]\nlisten = "127.0.0.1:%d"\n' % (poll_ms, http_port, agi_port)
        )
    return cfg


def fmt_lat(s):
    if not s:
        return "%8s %8s %8s %6s" % ("-", "-", "-", "n=0")
    return "%8.1f %8.1f %8.1f %6d" % (s["p50_ms"], s["p99_ms"], s["max_ms"], s["n"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calltrail", required=True)
    ap.add_argument("--rate", type=float, default=5.0, help="queue_log lines per second (default 5)")
    ap.add_argument("--clients", type=int, default=50, help="wallboards open in a walls phase (default 50)")
    ap.add_argument("--pairs", type=int, default=2, help="walls phases (each between two idle ones; default 2)")
    ap.add_argument("--phase-s", type=float, default=None, help="seconds per phase (default 600 / --pairs)")
    ap.add_argument("--gap-s", type=float, default=3.0, help="unmeasured seconds between phases (default 3)")
    ap.add_argument("--warmup-s", type=float, default=None, help="stream before the first phase (default 30; --quick 10)")
    ap.add_argument("--quick", action="store_true", help="30 s phases, 10 s warm-up: a check of the bench, not a figure")
    ap.add_argument("--poll-ms", type=int, default=500, help="the source's poll_interval_ms (calltrail's default)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (daemon.log, store, queue_log)")
    args = ap.parse_args()
    if args.phase_s is None:
        args.phase_s = 30.0 if args.quick else 600.0 / args.pairs
    if args.warmup_s is None:
        args.warmup_s = 10.0 if args.quick else 30.0

    def on_signal(signum, _frame):
        raise SystemExit("wall_load: stopped by signal %d" % signum)

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    work = tempfile.mkdtemp(prefix="calltrail-wall-load-")
    daemon = None
    writer = None
    boards = None
    try:
        http_port, agi_port = free_port(), free_port()
        while agi_port == http_port:
            agi_port = free_port()
        cfg = write_config(work, http_port, agi_port, args.poll_ms)
        log_path = os.path.join(work, "logs", "queue_log")
        members = membership()
        now = int(time.time())
        append_raw(log_path, ["%d|NONE|%s|%s|ADDMEMBER|\n" % (now, q, a) for a, qs in members.items() for q in qs])
        daemon_log = open(os.path.join(work, "daemon.log"), "w")
        daemon = subprocess.Popen(
            [args.calltrail, "--config", cfg, "--log", os.environ.get("CALLTRAIL_BENCH_LOG", "info"), "run"],
            cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=daemon_log,
        )
        wait_port(http_port, daemon, 120, "the daemon", daemon_log.name)
        writer = Writer(log_path, args.rate, members)
        writer.start()
        print("wall_load: daemon pid %d, %s lines/s; warm-up %.0f s, then %d phases of %.0f s (%d boards in each "
              "walls phase) ..." % (daemon.pid, args.rate, args.warmup_s, 2 * args.pairs + 1, args.phase_s,
                                    args.clients), flush=True)
        time.sleep(args.warmup_s)

        kinds = ["idle", "walls"] * args.pairs + ["idle"]
        phases = []
        for i, kind in enumerate(kinds):
            if daemon.poll() is not None:
                raise SystemExit("the daemon exited (%s); see %s" % (daemon.returncode, daemon_log.name))
            if writer.error:
                raise SystemExit("the writer failed: %s" % writer.error)
            ph = {"phase": "%s-%d" % (kind, kinds[: i + 1].count(kind)), "kind": kind}
            t0, c0, s0, th0 = time.time(), proc_cpu_s(daemon.pid), self_cpu_s(), threads_cpu_s(daemon.pid)
            if kind == "walls":
                boards = Boards(http_port, args.clients)
                boards.start()
                boards.opened.wait(120)
            time.sleep(max(0.0, t0 + args.phase_s - time.time()))
            t1, c1, s1, th1 = time.time(), proc_cpu_s(daemon.pid), self_cpu_s(), threads_cpu_s(daemon.pid)
            ph.update(start=t0, end=t1, wall_s=t1 - t0, daemon_cpu_s=c1 - c0, bench_cpu_s=s1 - s0,
                      daemon_pct=100.0 * (c1 - c0) / (t1 - t0), bench_pct=100.0 * (s1 - s0) / (t1 - t0),
                      rss_mib=proc_rss_mib(daemon.pid),
                      threads_pct={n: 100.0 * (v - th0.get(n, 0.0)) / (t1 - t0) for n, v in th1.items()})
            if kind == "walls":
                boards.stop = True
                boards.join(30)
                if boards.error:
                    raise SystemExit("the boards failed: %s" % boards.error)
                ph["open_s"] = boards.open_s
                ph["clients"] = [b.summary() for b in boards.boards]
                boards = None
            phases.append(ph)
            print("wall_load: %-8s daemon %5.1f %% of one core, bench %5.1f %%%s" % (
                ph["phase"], ph["daemon_pct"], ph["bench_pct"],
                ", %d/%d boards updated" % (sum(c["updated"] for c in ph["clients"]), args.clients)
                if kind == "walls" else ""), flush=True)
            time.sleep(args.gap_s)

        writer.stop = True
        writer.join(10)
        time.sleep(2.0)  # the last lines stored
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        daemon = None
        out = subprocess.run(
            [args.calltrail, "--config", cfg, "--log", "warn", "query", "--format", "json",
             "SELECT call_id, verb, epoch_us(ingested_at) AS us FROM events"],
            check=True, capture_output=True, cwd=work,
        )
        stored = {(r["call_id"], r["verb"]): r["us"] / 1e6 for r in json.loads(out.stdout)}
        report(args, phases, writer.appended, stored)
    finally:
        if boards is not None:
            boards.stop = True
        if writer is not None:
            writer.stop = True
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        if args.keep:
            print("wall_load: working directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(args, phases, appended, stored):
    missing = [k for k in appended if k not in stored]
    by_kind = {"idle": [], "walls": []}
    for ph in phases:
        lat = [stored[k] - t for k, t in appended.items() if ph["start"] <= t < ph["end"] and k in stored]
        ph["lines"] = sum(1 for t in appended.values() if ph["start"] <= t < ph["end"])
        ph["latency"] = stats_ms(lat)
        by_kind[ph["kind"]].extend(lat)

    def kind_cpu(kind):
        ps = [p for p in phases if p["kind"] == kind]
        return 100.0 * sum(p["daemon_cpu_s"] for p in ps) / sum(p["wall_s"] for p in ps)

    idle_cpu, walls_cpu = kind_cpu("idle"), kind_cpu("walls")
    idle_lat, walls_lat = stats_ms(by_kind["idle"]), stats_ms(by_kind["walls"])
    idle_p99s = [p["latency"]["p99_ms"] for p in phases if p["kind"] == "idle" and p["latency"]]
    spread = max(idle_p99s) - min(idle_p99s) if idle_p99s else float("nan")
    clients = [c for p in phases if p["kind"] == "walls" for c in p["clients"]]

    print()
    print("calltrail wallboard load (%s), %d boards, %.0f lines/s, %.0f s phases, same run, %s, %d cores, load %s:"
          % (os.path.basename(args.calltrail), args.clients, args.rate, args.phase_s, cpu_model(), os.cpu_count(),
             ", ".join("%.2f" % x for x in os.getloadavg())))
    print()
    print("  %-8s %7s %14s %12s %8s %6s   %-33s %s" % ("phase", "wall s", "daemon %core", "bench %core", "RSS MiB",
                                                      "lines", "append->DuckDB p50/p99/max ms, n",
                                                      "boards: events, KiB per board (min/median/max)"))
    for ph in phases:
        extra = ""
        if ph["kind"] == "walls":
            ev = sorted(c["events"] for c in ph["clients"])
            kb = sorted(c["wire_bytes"] / 1024.0 for c in ph["clients"])
            extra = "%d/%d/%d, %.0f/%.0f/%.0f (opened in %.2f s)" % (
                ev[0], ev[len(ev) // 2], ev[-1], kb[0], kb[len(kb) // 2], kb[-1], ph["open_s"] or 0)
        print("  %-8s %7.1f %14.2f %12.2f %8.0f %6d   %s   %s" % (ph["phase"], ph["wall_s"], ph["daemon_pct"],
                                                               ph["bench_pct"], ph["rss_mib"], ph["lines"],
                                                               fmt_lat(ph["latency"]), extra))
    print("  %-8s %7s %14.2f %12s %8s %6s   %s" % ("idle", "", idle_cpu, "", "", "", fmt_lat(idle_lat)))
    print("  %-8s %7s %14.2f %12s %8s %6s   %s" % ("walls", "", walls_cpu, "", "", "", fmt_lat(walls_lat)))
    names = sorted({n for ph in phases for n in ph["threads_pct"]},
                   key=lambda n: -sum(ph["threads_pct"].get(n, 0.0) for ph in phases))
    print()
    print("  daemon CPU per thread name, %% of one core: %s" % ", ".join(names))
    for ph in phases:
        print("  %-8s %s" % (ph["phase"], "  ".join("%6.2f" % ph["threads_pct"].get(n, 0.0) for n in names)))
    print()
    cpu_delta = walls_cpu - idle_cpu
    cpu_ok = cpu_delta < 5.0
    print("  daemon CPU: walls %.2f %% vs idle %.2f %% of one core: +%.2f %% (%.2fx idle); target < 5 %%: %s"
          % (walls_cpu, idle_cpu, cpu_delta, walls_cpu / idle_cpu if idle_cpu else float("nan"),
             "PASS" if cpu_ok else "MISS"))
    lat_ok = None
    if idle_lat and walls_lat:
        d99 = walls_lat["p99_ms"] - idle_lat["p99_ms"]
        lat_ok = d99 <= spread
        print("  append -> DuckDB p99: walls %.1f ms vs idle %.1f ms: %+.1f ms (%.2fx idle); p50 %+.1f ms (%.2fx)"
              % (walls_lat["p99_ms"], idle_lat["p99_ms"], d99, walls_lat["p99_ms"] / idle_lat["p99_ms"],
                 walls_lat["p50_ms"] - idle_lat["p50_ms"], walls_lat["p50_ms"] / idle_lat["p50_ms"]))
        print("    idle phases' own p99 spread (max - min of %s ms): %.1f ms; target: walls - idle <= that spread: %s"
              % ("/".join("%.1f" % x for x in idle_p99s), spread, "PASS" if lat_ok else "MISS"))
    print("    lines appended %d, not found in the store %d" % (len(appended), len(missing)))
    updated = sum(c["updated"] for c in clients)
    pages_ok = sum(c["pages"] == [200, 200, 200] for c in clients)
    print("  boards: %d/%d got /wall, wall.js and wall.css (200); %d/%d got updates (content changed, offered_today "
          "grew, a filtered board held its queue only); %d events and %.1f MiB on the wire in all"
          % (pages_ok, len(clients), updated, len(clients), sum(c["events"] for c in clients),
             sum(c["wire_bytes"] for c in clients) / 2**20))
    for c in clients:
        if not c["updated"]:
            print("    board %d (%s): %s" % (c["client"], c["queues"], json.dumps(c)))
    boards_ok = updated == len(clients) and pages_ok == len(clients)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
                "args": vars(args),
                "phases": phases,
                "idle": {"daemon_pct": idle_cpu, "latency": idle_lat, "p99_spread_ms": spread},
                "walls": {"daemon_pct": walls_cpu, "latency": walls_lat},
                "targets": {"cpu_delta_pct": cpu_delta, "cpu_pass": cpu_ok, "latency_pass": lat_ok,
                            "boards_pass": boards_ok},
                "missing_lines": len(missing),
            }, f, indent=1)
        print("  figures: %s" % args.json)
    if not (cpu_ok and lat_ok and boards_ok and not missing):
        sys.exit(1)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
