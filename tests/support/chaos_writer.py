#!/usr/bin/env python3
"""Chaos writer for calltrail's chaos test (tests/it/chaos.rs).

A separate process that behaves like an Asterisk box plus logrotate: it
appends realistic queue_log lines (and, with --cdr, cdr_csv Master.csv
records) at a steady rate, and rotates the files at random moments in every
mode that keeps the data somewhere. On command it also destroys the current
file (truncate-and-rewrite, delete+recreate, delete+recreate reusing the
inode); the test only asks for that once the daemon provably read
everything.

Every line is unique (the call id carries a global call counter; no call
writes the same verb twice) and every write is logged to --truth as JSON
lines, so the test knows exactly what was written and where, independently
of calltrail:

  {"t":"line","stream":"queue_log","gen":3,"fp":"<16 hex>","off":1234,
   "call":"1717397243.17","verb":"CONNECT","split":false,"wall":1717.. }
  {"t":"gen","stream":"queue_log","gen":4,"by":"rename_create","wall":..}
  {"t":"op","stream":"queue_log","mode":"copytruncate","gen":3,
   "archive":"queue_log.1","wall":..,"detail":{...}}

`fp` is FNV-1a 64 of the file's first line (newline included) and `off` the
byte offset the line starts at, so `<source>:<fp>:<off>` is the event id
calltrail must give the line, whatever the file is called later.

Control on stdin, one command per line; each is answered on stdout:
  pause            -> "paused <lines written> <json state of the current files>"
  resume           -> "resumed"
  destroy MODE     -> "destroyed MODE <json detail>"   (only while paused;
                      then resumes)  MODE: truncate_rewrite | delete_recreate
                      | inode_reuse
  stop             -> "stopped <lines written>", then exit 0
At start it prints "ready".

Standard library only; deterministic for a given --seed (apart from the
real clock in timestamps and the interleaving with the test's commands).
"""

import argparse
import datetime
import gzip
import json
import os
import queue
import random
import shutil
import sys
import threading
import time

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = (1 << 64) - 1

# Rotation modes that keep every line somewhere (the writer picks them by itself).
SAFE_MODES = [
    "rename_create",  # logrotate `create`: mv f f.1 (shifting), new empty f
    "rename_create_late",  # same, but the writer keeps appending to the renamed file a while (postrotate reload comes later)
    "delaycompress",  # logrotate compress+delaycompress: f.1 -> f.2.gz, f -> f.1
    "asterisk_rotate",  # `logger rotate`: shift .1 -> .2 ..., f -> f.1, reopen, CONFIGRELOAD
    "dateext",  # logrotate dateext(+delaycompress): f -> f-YYYYMMDD-<epoch>, older dateext gzipped
    "copytruncate",  # logrotate copytruncate: cp f f.1 (shifting), truncate f in place
]
DESTRUCTIVE_MODES = ["truncate_rewrite", "delete_recreate", "inode_reuse"]

QUEUES = ["sales", "support", "billing", "vip"]
AGENTS = ["PJSIP/%d" % n for n in range(7001, 7013)] + ["Local/2004@from-internal/n", "Paty Marin"]
NAMES = ["Ivan Petrov", "Anna", "", "O'Brien, Pat", "Мария"]


def fnv1a64(data):
    h = FNV_OFFSET
    for b in data:
        h ^= b
        h = (h * FNV_PRIME) & MASK
    return h


class Stream:
    """One log file the writer appends to (queue_log or Master.csv)."""

    def __init__(self, w, name, path, keep_open):
        self.w = w
        self.name = name
        self.path = path
        self.keep_open = keep_open  # queue_log: one fd kept open (fopen "a"); cdr: open/append/close per record
        self.fd = None
        self.gen = 0
        self.fp = None  # fingerprint of the current generation's first line
        self.size = 0  # bytes in the current generation (we are the only writer)
        self.late = 0  # lines still to go to the renamed file before "reload"
        self.late_target = None  # (fd, gen, fp, size) of the renamed file
        self.missing = True  # the file does not exist yet
        self.recreate_at = None
        self.dateext_plain = None  # the newest uncompressed dateext archive

    # -- generations ------------------------------------------------------
    def new_gen(self, by):
        self.gen += 1
        self.fp = None
        self.size = 0
        self.w.log({"t": "gen", "stream": self.name, "gen": self.gen, "by": by})

    def open_fd(self):
        if self.fd is None:
            existed = os.path.exists(self.path)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if not existed:
                self.missing = False

    def close_fd(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    # -- writing ----------------------------------------------------------
    def write_line(self, line, meta):
        data = line.encode("utf-8")
        if self.late > 0 and self.late_target is not None:
            # Asterisk still has the renamed file open until its logger reload.
            fd, gen, fp, size = self.late_target
            self._emit(fd, data, gen, fp, size, meta, late=True)
            self.late_target = (fd, gen, fp, size + len(data))
            self.late -= 1
            if self.late == 0:
                os.close(fd)
                self.late_target = None
            return
        if self.missing and self.recreate_at is not None and time.time() < self.recreate_at:
            return False
        if self.missing:
            self.new_gen("created")
            self.missing = False
            self.recreate_at = None
        if self.keep_open:
            self.open_fd()
            fd = self.fd
        else:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if self.size == 0:
            # The identity is the first *line*, newline included (a CDR
            # record with a raw newline spans two lines).
            self.fp = "%016x" % fnv1a64(data[: data.index(b"\n") + 1])
        self._emit(fd, data, self.gen, self.fp, self.size, meta, late=False)
        self.size += len(data)
        if not self.keep_open:
            os.close(fd)
        return True

    def _emit(self, fd, data, gen, fp, off, meta, late):
        split = self.w.rng.random() < self.w.split_prob and len(data) > 10
        rec = {"t": "line", "stream": self.name, "gen": gen, "fp": fp, "off": off, "len": len(data), "split": split, "late": late}
        rec.update(meta)
        # Log first: the truth must hold every line the daemon may see.
        self.w.log(rec)
        if split:
            cut = self.w.rng.randrange(1, len(data) - 1)
            os.write(fd, data[:cut])
            time.sleep(self.w.rng.uniform(0.001, 0.03))
            os.write(fd, data[cut:])
        else:
            os.write(fd, data)
        self.w.lines += 1

    # -- archives ---------------------------------------------------------
    def numbered(self):
        """Existing numbered archives: [(n, path)], highest first."""
        d, base = os.path.split(self.path)
        out = []
        for entry in os.listdir(d):
            if not entry.startswith(base + "."):
                continue
            rest = entry[len(base) + 1 :]
            gz = rest.endswith(".gz")
            num = rest[:-3] if gz else rest
            if num.isdigit():
                out.append((int(num), gz, os.path.join(d, entry)))
        out.sort(reverse=True)
        return out

    def shift(self, compress_from=None):
        """Renames f.N[.gz] to f.N+1[.gz], highest first; with compress_from,
        the plain archive that lands on that number is gzipped (delaycompress)."""
        for n, gz, p in self.numbered():
            dst = "%s.%d%s" % (self.path, n + 1, ".gz" if gz else "")
            os.rename(p, dst)
            if not gz and compress_from is not None and n + 1 >= compress_from:
                gzip_file(dst)

    # -- rotations --------------------------------------------------------
    def rotate(self, mode):
        if self.missing or self.gen == 0 or self.late_target is not None:
            return None
        old_gen, old_fp, old_size = self.gen, self.fp, self.size
        detail = {"old_size": old_size}
        if mode in ("rename_create", "rename_create_late", "delaycompress", "asterisk_rotate"):
            self.shift(compress_from=2 if mode == "delaycompress" else None)
            archive = self.path + ".1"
            os.rename(self.path, archive)
            if mode == "rename_create_late" and self.keep_open and self.fd is not None:
                # postrotate `logger reload` comes later: a few more lines go to the renamed file.
                self.late = self.w.rng.randint(1, 20)
                self.late_target = (self.fd, old_gen, old_fp, old_size)
                self.fd = None
                detail["late_lines"] = self.late
            else:
                self.close_fd()
            if self.keep_open:
                # logrotate `create` (and Asterisk's reopen) make the new file at once.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                self.new_gen(mode)
            else:
                # cdr_csv opens per record: the new file appears with the next record.
                self.missing = True
                self.recreate_at = None
        elif mode == "dateext":
            stamp = datetime.datetime.now().strftime("%Y%m%d")
            archive = "%s-%s" % (self.path, stamp)
            n = 0
            while os.path.exists(archive) or os.path.exists(archive + ".gz"):
                n += 1
                archive = "%s-%s-%d" % (self.path, stamp, int(time.time()) * 100 + n)
            os.rename(self.path, archive)
            self.close_fd()
            if self.dateext_plain is not None and os.path.exists(self.dateext_plain):
                gzip_file(self.dateext_plain)  # delaycompress: the previous one now
            self.dateext_plain = archive
            if self.keep_open:
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                self.new_gen(mode)
            else:
                self.missing = True
        elif mode == "copytruncate":
            self.shift()
            archive = self.path + ".1"
            shutil.copyfile(self.path, archive)
            os.truncate(self.path, 0)
            # The fd (O_APPEND) stays open and now writes at 0.
            self.new_gen(mode)
        else:
            raise ValueError(mode)
        detail["archive"] = os.path.basename(archive)
        self.w.log({"t": "op", "stream": self.name, "mode": mode, "gen": old_gen, "fp": old_fp, "detail": detail})
        if mode == "asterisk_rotate" and self.name == "queue_log":
            # Asterisk's logger reload writes CONFIGRELOAD into the new file.
            # Not two in one second: the line would repeat, and with it the
            # new file's fingerprint.
            while int(time.time()) == self.w.last_reload_epoch:
                time.sleep(0.02)
            self.w.last_reload_epoch = int(time.time())
            self.write_line(
                "%d|NONE|NONE|NONE|CONFIGRELOAD|\n" % self.w.last_reload_epoch,
                {"call": "NONE", "verb": "CONFIGRELOAD", "epoch": self.w.last_reload_epoch},
            )
        return mode

    def destroy(self, mode):
        if self.late_target is not None:
            fd = self.late_target[0]
            os.close(fd)
            self.late_target = None
            self.late = 0
        old_gen, old_fp, old_size = self.gen, self.fp, self.size
        detail = {"old_size": old_size, "existed": not self.missing}
        if mode == "truncate_rewrite":
            if self.missing:
                return None
            self.close_fd()
            fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC)
            os.close(fd)
            self.new_gen(mode)
        elif mode in ("delete_recreate", "inode_reuse"):
            if self.missing:
                return None
            old_ino = os.stat(self.path).st_ino
            self.close_fd()
            os.unlink(self.path)
            if mode == "inode_reuse":
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.close(fd)
                detail["inode_reused"] = os.stat(self.path).st_ino == old_ino
                self.new_gen(mode)
            else:
                # Gone for a while: the file "does not exist yet" again.
                self.missing = True
                self.recreate_at = time.time() + self.w.rng.uniform(0.0, 1.0)
                detail["gap_s"] = round(self.recreate_at - time.time(), 3)
        else:
            raise ValueError(mode)
        self.w.log({"t": "op", "stream": self.name, "mode": mode, "gen": old_gen, "fp": old_fp, "detail": detail})
        return detail

    def state(self):
        return {"path": os.path.basename(self.path), "gen": self.gen, "fp": self.fp, "size": self.size, "missing": self.missing}


def gzip_file(path):
    with open(path, "rb") as src, gzip.open(path + ".gz.tmp", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.rename(path + ".gz.tmp", path + ".gz")
    os.unlink(path)


class Call:
    def __init__(self, w, callno):
        now = int(time.time())
        self.id = "%d.%d" % (now, callno)
        self.queue = w.rng.choice(QUEUES)
        self.caller = w.rng.choice(["8916%07d", "+7 495 %07d", "%07d"]) % w.rng.randrange(10**7)
        self.name = w.rng.choice(NAMES)
        self.start = now
        self.agent = w.rng.choice(AGENTS)
        outcome = w.rng.choices(["answered", "abandon", "timeout", "key"], [6, 2, 1, 1])[0]
        steps = []
        if w.rng.random() < 0.4:
            steps.append("DID")
        steps.append("ENTERQUEUE")
        if outcome == "answered":
            if w.rng.random() < 0.3:
                steps.append("RINGNOANSWER")
            steps += ["CONNECT", w.rng.choice(["COMPLETECALLER", "COMPLETEAGENT"])]
        else:
            if w.rng.random() < 0.3:
                steps.append("RINGNOANSWER")
            steps.append({"abandon": "ABANDON", "timeout": "EXITWITHTIMEOUT", "key": "EXITWITHKEY"}[outcome])
        self.steps = steps
        self.outcome = outcome
        self.answered_at = None
        self.hold = 0

    def next_line(self, w):
        verb = self.steps.pop(0)
        now = int(time.time())
        wait = max(0, now - self.start)
        agent = "NONE"
        if verb == "DID":
            data = "4957877871"
        elif verb == "ENTERQUEUE":
            data = "|%s|1" % self.caller
            if self.name and w.rng.random() < 0.5:
                data += "|" + self.name.replace("|", "_")
        elif verb == "RINGNOANSWER":
            agent = w.rng.choice(AGENTS)
            data = str(w.rng.randrange(1000, 15000))
        elif verb == "CONNECT":
            agent = self.agent
            self.hold = wait
            self.answered_at = now
            data = "%d|%d.%d|%d" % (wait, now, w.rng.randrange(10**6), w.rng.randrange(1, 20))
        elif verb in ("COMPLETECALLER", "COMPLETEAGENT"):
            agent = self.agent
            data = "%d|%d|1" % (self.hold, max(0, now - (self.answered_at or now)))
        elif verb == "EXITWITHKEY":
            data = "5|1|1|%d" % wait
        else:  # ABANDON, EXITWITHTIMEOUT
            data = "1|1|%d" % wait
        line = "%d|%s|%s|%s|%s|%s\n" % (now, self.id, self.queue, agent, verb, data)
        return line, {"call": self.id, "verb": verb, "epoch": now}

    def cdr_line(self, w):
        now = int(time.time())
        fmt = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        clid = '"%s" <%s>' % (self.name, self.caller) if self.name else self.caller
        q = lambda s: '"' + s.replace('"', '""') + '"'
        answered = self.answered_at is not None
        cols = [
            q(""),
            q(self.caller),
            q("500"),
            q("from-pstn"),
            q(clid),
            q("PJSIP/trunk-%08x" % (fnv1a64(self.id.encode()) & 0xFFFFFFFF)),
            q(self.agent + "-00000001" if answered else ""),
            q("Queue"),
            q("%s,t" % self.queue),
            q(fmt(self.start)),
            q(fmt(self.answered_at)) if answered else "",
            q(fmt(now)),
            str(now - self.start),
            str(now - self.answered_at) if answered else "0",
            q("ANSWERED" if answered else "NO ANSWER"),
            q("DOCUMENTATION"),
            q(self.id),
            # A userfield set by the dialplan can hold a raw newline (cdr_csv
            # escapes nothing): one record over two lines.
            q("callback\nrequested" if w.rng.random() < 0.02 else ""),
        ]
        return ",".join(cols) + "\n", {"call": self.id, "verb": "CDR", "epoch": now}


class Writer:
    def __init__(self, args):
        self.rng = random.Random(args.seed)
        self.args = args
        self.split_prob = args.split_prob
        self.truth = open(args.truth, "a", buffering=1)
        self.lines = 0
        self.callno = 0
        self.calls = []
        self.last_reload_epoch = 0
        self.streams = [Stream(self, "queue_log", os.path.join(args.dir, "queue_log"), keep_open=True)]
        if args.cdr:
            self.streams.append(Stream(self, "cdr", os.path.join(args.dir, "Master.csv"), keep_open=False))
        self.modes = [m for m in args.modes.split(",") if m]
        for m in self.modes:
            if m not in SAFE_MODES:
                raise SystemExit("unknown mode %r (known: %s)" % (m, ",".join(SAFE_MODES)))
        self.pending_cdr = []

    def log(self, rec):
        rec["wall"] = time.time()
        self.truth.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def step(self):
        """Writes one queue_log line (and the CDR of a call that ended)."""
        while len(self.calls) < self.args.concurrent:
            self.callno += 1
            self.calls.append(Call(self, self.callno))
        call = self.rng.choice(self.calls)
        ql = self.streams[0]
        if ql.missing and ql.recreate_at is not None and time.time() < ql.recreate_at:
            return
        line, meta = call.next_line(self)
        if ql.write_line(line, meta) is False:
            raise AssertionError("queue_log write refused")
        if not call.steps:
            self.calls.remove(call)
            if self.args.cdr:
                self.pending_cdr.append(call)
        if self.args.cdr and self.pending_cdr:
            cdr = self.streams[1]
            if not (cdr.missing and cdr.recreate_at is not None and time.time() < cdr.recreate_at):
                for c in self.pending_cdr:
                    line, meta = c.cdr_line(self)
                    cdr.write_line(line, meta)
                self.pending_cdr = []

    def maybe_rotate(self):
        if not self.modes:
            return
        for s in self.streams:
            if self.rng.random() < self.rotate_p:
                s.rotate(self.rng.choice(self.modes))

    def state(self):
        return {s.name: s.state() for s in self.streams}

    def run(self):
        cmds = queue.Queue()

        def reader():
            for line in sys.stdin:
                cmds.put(line.strip())
            cmds.put("stop")

        threading.Thread(target=reader, daemon=True).start()
        interval = 1.0 / self.args.rate
        # Chance per line to rotate a stream: on average every --rotate-mean-s.
        self.rotate_p = interval / self.args.rotate_mean_s
        print("ready", flush=True)
        paused = False
        next_t = time.monotonic()
        while True:
            try:
                while True:
                    cmd = cmds.get_nowait() if not paused else cmds.get()
                    parts = cmd.split()
                    if not parts:
                        continue
                    if parts[0] == "pause":
                        paused = True
                        # Finish a late-write tail so the state is simple.
                        print("paused %d %s" % (self.lines, json.dumps(self.state())), flush=True)
                    elif parts[0] == "resume":
                        paused = False
                        next_t = time.monotonic()
                        print("resumed", flush=True)
                    elif parts[0] == "destroy":
                        detail = {s.name: s.destroy(parts[1]) for s in self.streams}
                        paused = False
                        next_t = time.monotonic()
                        print("destroyed %s %s" % (parts[1], json.dumps(detail)), flush=True)
                    elif parts[0] == "stop":
                        for s in self.streams:
                            s.close_fd()
                            if s.late_target is not None:
                                os.close(s.late_target[0])
                        self.truth.close()
                        print("stopped %d" % self.lines, flush=True)
                        return
                    else:
                        print("error unknown command %r" % cmd, flush=True)
            except queue.Empty:
                pass
            self.step()
            self.maybe_rotate()
            next_t += interval
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:
                next_t = time.monotonic()  # fell behind (loaded machine): don't burst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True, help="directory of queue_log (and Master.csv)")
    ap.add_argument("--truth", required=True, help="JSON-lines log of every write and rotation")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--rate", type=float, default=400.0, help="queue_log lines per second")
    ap.add_argument("--rotate-mean-s", type=float, default=1.5, help="mean seconds between rotations of a file")
    ap.add_argument("--modes", default=",".join(SAFE_MODES), help="rotation modes to pick from")
    ap.add_argument("--concurrent", type=int, default=12, help="calls in progress at once")
    ap.add_argument("--split-prob", type=float, default=0.01, help="share of lines written in two pieces")
    ap.add_argument("--cdr", action="store_true", help="also write Master.csv records")
    Writer(ap.parse_args()).run()


if __name__ == "__main__":
    main()
