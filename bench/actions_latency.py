#!/usr/bin/env python3
"""Latency of calltrail's actions (issue 13): the queue_log line that opens
a missed-call episode -> the callback's call file in `<spool>/outgoing/`,
and -> the SMS at Kannel's (fake) SMSC; beside the bare cost of placing a
file the way calltrail places a call file and of one Kannel round trip,
measured in the same run. Run by bench/actions_latency.sh (which builds the
binary and finds Kannel); stdlib only.

Setup, all on 127.0.0.1 in one temp dir:

* a real Kannel: bearerbox + fakesmsc (`-m 0`: prints every message
  bearerbox delivers to it, nothing else) + smsbox with one sendsms-user,
  the kannel.conf of tests/it/support/kannel.rs;
* the real `calltrail run` daemon following a queue_log (time zone UTC),
  with two `missed_opened` rules and no calendar (so every moment is in
  business hours: actions are due at once): `action = "callback"` (call
  files, `[callbacks] per_minute = 0`: no pacing) and `action = "sms"`
  (Cyrillic text, `[sms] gateway = "kannel"`, `mobile_only = true`).

Per episode, one write() of two lines to the queue_log (O_APPEND, no
buffering in between):

    <t>|<callid>|support|NONE|ENTERQUEUE||8916xxxxxxx|1
    <t+30>|<callid>|support|NONE|ABANDON|1|1|30

with t two minutes ago and a distinct Russian mobile number per episode
(calltrail normalizes 8916… to +7916…). The append time is
time.monotonic() taken right after that write() returned (the lines are
complete in the file from then on). A watcher thread polls every
--watch-ms (default 1 ms):

* `<spool>/outgoing/`: a new file is read and matched by its
  `Set: CT_NUMBER=+7916…` line (calltrail renames it in complete, so one
  read suffices);
* fakesmsc's log (its stderr): each `Got message N: <from to type …>` line
  is matched by its receiver.

The time seen is the monotonic clock right after the listdir() / read()
that showed it, so each figure includes up to one poll period (plus the
watcher's own scheduling) on top of the real latency. An episode whose
file or SMS did not arrive within --timeout (10 s) after its append is
missing: counted and listed, never dropped silently.

Baselines, same run, same machine, same watcher:

* file: what calltrail's spool writer (sinks/src/callfile/spool.rs) does,
  in a spool on the same filesystem: stat outgoing/, look for the name in
  outgoing/ and outgoing_done/, create tmp/<name> exclusively, write ~300
  bytes, fsync the file, rename into outgoing/, fsync outgoing/ (timed in
  process, perf_counter; back to back). The same without both fsyncs is
  printed beside it, for reference.
* Kannel: one HTTP GET to smsbox's sendsms on a fresh connection (as
  calltrail's client does: no keep-alive), the query calltrail's Kannel
  client builds (username, password, to=%2B7926…, text, from, coding=2,
  charset=UTF-8; the same Cyrillic text as the rule's), paced at --rate,
  -> the message seen in fakesmsc's log by the same watcher. The GET ->
  `202 Accepted` time is printed too.

Breakdown (from the store, read through the daemon's API at the end; wall
clock, so only as good as time.time() vs the daemon's Utc::now()):
append -> the ABANDON line's `ingested_at` (start of its batch's
transaction) -> the action row's `created_at` (the deriver's now) -> its
`done_at` (settled after the call file was placed / Kannel said 202).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

# What tests/it/support/kannel.rs uses.
ADMIN_PASSWORD = "ct-admin"
KANNEL_USER = "calltrail"
KANNEL_PASSWORD = "ct-secret"
GLOBAL_SENDER = "CallTrail"
SENDER = "Shop"  # [sms] sender: calltrail sends it as `from`
# One SMS part in UCS-2 (<= 70 characters), Cyrillic: coding=2.
SMS_TEXT = "Мы пропустили ваш звонок и перезвоним. Спасибо!"
START_TIMEOUT = 20.0


def free_ports(n):
    """n distinct ports of 127.0.0.1 that were free a moment ago (all bound
    at once, then released)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def stats_ms(values):
    """p50/p99/max/min in ms of values in seconds (None when empty)."""
    if not values:
        return None
    ms = [x * 1000.0 for x in values]
    return {"p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "max_ms": max(ms), "min_ms": min(ms), "n": len(ms)}


def http_get(port, path, timeout=5.0):
    """One GET on a fresh connection: (status, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Connection": "close"})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def tail(path, n):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return "<%s>" % e


class Procs:
    """The children this run started; each killed by its own pid."""

    def __init__(self):
        self.procs = []  # (name, Popen)

    def start(self, name, argv, out_path, cwd, env=None, append=True):
        out = open(out_path, "ab" if append else "wb")
        try:
            p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True)
        finally:
            out.close()
        self.procs.append((name, p))
        return p

    def stop(self, p, sig=signal.SIGKILL, wait=10.0):
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(wait)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = [(n, q) for n, q in self.procs if q is not p]

    def stop_all(self):
        for _, p in reversed(list(self.procs)):
            self.stop(p)


class Kannel:
    """bearerbox + fakesmsc + smsbox, as tests/it/support/kannel.rs starts
    them."""

    def __init__(self, dir, bins, procs):
        self.dir, self.bins, self.procs = dir, bins, procs
        self.admin, self.smsbox_port, self.smsc, self.sendsms = free_ports(4)
        self.fakesmsc_log = os.path.join(dir, "fakesmsc-1.log")

    def sendsms_url(self):
        return "http://127.0.0.1:%d/cgi-bin/sendsms" % self.sendsms

    def conf(self):
        return os.path.join(self.dir, "kannel.conf")

    def write_config(self):
        d = self.dir
        with open(self.conf(), "w") as f:
            f.write(
                "# Written by bench/actions_latency.py (the conf of tests/it/support/kannel.rs).\n"
                "group = core\n"
                "admin-port = %d\n"
                "admin-interface = 127.0.0.1\n"
                "admin-password = %s\n"
                "smsbox-port = %d\n"
                "smsbox-interface = 127.0.0.1\n"
                "box-allow-ip = \"127.0.0.1\"\n"
                "dlr-storage = internal\n"
                "log-file = \"%s/bearerbox.log\"\n"
                "log-level = 1\n"
                "access-log = \"%s/access.log\"\n"
                "\n"
                "group = smsc\n"
                "smsc = fake\n"
                "smsc-id = FAKE\n"
                "port = %d\n"
                "our-host = 127.0.0.1\n"
                "connect-allow-ip = 127.0.0.1\n"
                "\n"
                "group = smsbox\n"
                "bearerbox-host = 127.0.0.1\n"
                "bearerbox-port = %d\n"
                "sendsms-port = %d\n"
                "sendsms-interface = 127.0.0.1\n"
                "global-sender = %s\n"
                "log-file = \"%s/smsbox.log\"\n"
                "log-level = 1\n"
                "\n"
                "group = sendsms-user\n"
                "username = %s\n"
                "password = %s\n"
                "max-messages = 10\n"
                "concatenation = true\n"
                % (self.admin, ADMIN_PASSWORD, self.smsbox_port, d, d, self.smsc, self.smsbox_port,
                   self.sendsms, GLOBAL_SENDER, d, KANNEL_USER, KANNEL_PASSWORD)
            )

    def status(self):
        try:
            st, body = http_get(self.admin, "/status.txt?password=" + ADMIN_PASSWORD, timeout=2.0)
            return body if st == 200 else ""
        except (OSError, http.client.HTTPException):
            return ""

    def smsbox_connected(self):
        return any(l.strip().startswith("smsbox:") and "on-line" in l for l in self.status().splitlines())

    def sendsms_answers(self):
        try:
            http_get(self.sendsms, "/", timeout=2.0)
            return True
        except (OSError, http.client.HTTPException):
            return False

    def await_up(self, what, p, ready):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise RuntimeError("%s exited (%s)" % (what, p.returncode))
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError("%s was not ready within %.0f s" % (what, START_TIMEOUT))

    def start(self):
        self.write_config()
        p = self.procs.start("bearerbox", [self.bins["bearerbox"], "-v", "2", self.conf()],
                             os.path.join(self.dir, "bearerbox.out"), self.dir)
        self.await_up("bearerbox", p, lambda: "Status: running" in self.status())
        # -m 0: generate nothing, only print what bearerbox delivers (the
        # message argument is required all the same).
        p = self.procs.start("fakesmsc", [self.bins["fakesmsc"], "-H", "127.0.0.1", "-r", str(self.smsc),
                                          "-m", "0", "1 2 text nop"], self.fakesmsc_log, self.dir, append=False)
        self.await_up("fakesmsc", p, lambda: "(online" in self.status())
        p = self.procs.start("smsbox", [self.bins["smsbox"], "-v", "2", self.conf()],
                             os.path.join(self.dir, "smsbox.out"), self.dir)
        # smsbox opens its HTTP port before it connects to bearerbox.
        self.await_up("smsbox", p, lambda: self.sendsms_answers() and self.smsbox_connected())

    def diagnostics(self):
        out = ["Kannel in %s" % self.dir]
        for name in ("bearerbox.log", "bearerbox.out", "smsbox.log", "smsbox.out", "fakesmsc-1.log"):
            out.append("--- %s:\n%s" % (name, tail(os.path.join(self.dir, name), 15)))
        return "\n".join(out)


def start_kannel(work, bins, procs, attempts=3):
    """A started Kannel; new ports on each attempt (a free port may be taken
    between choosing it and a box's bind)."""
    failures = []
    for attempt in range(1, attempts + 1):
        d = os.path.join(work, "kannel-%d" % attempt)
        os.makedirs(d)
        k = Kannel(d, bins, procs)
        try:
            k.start()
            return k
        except RuntimeError as e:
            failures.append("--- attempt %d: %s\n%s" % (attempt, e, k.diagnostics()))
            procs.stop_all()
    raise SystemExit("Kannel failed to start %d times:\n%s" % (attempts, "\n".join(failures)))


class Watcher(threading.Thread):
    """Polls the spool's outgoing/ and fakesmsc's log; records the first
    time each number was seen (monotonic)."""

    def __init__(self, outgoing, fakesmsc_log, poll_s):
        super().__init__(daemon=True)
        self.outgoing, self.log_path, self.poll_s = outgoing, fakesmsc_log, poll_s
        self.calls = {}  # +7916… -> monotonic time seen
        self.sms = {}  # receiver -> monotonic time seen
        self.sms_types = {}  # fakesmsc's type field -> count
        self.sms_dups = 0  # messages to a number already seen
        self.unmatched_files = []
        self.seen_files = set()
        self.polls = 0
        self.stop = False
        self.error = None

    def run(self):
        try:
            self.loop()
        except Exception as e:  # reported by the main thread
            self.error = repr(e)

    def loop(self):
        log = None
        buf = b""
        while not self.stop:
            # fakesmsc's log.
            if log is None and os.path.exists(self.log_path):
                log = open(self.log_path, "rb")
            if log is not None:
                data = log.read()
                if data:
                    t = time.monotonic()
                    buf += data
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        self.sms_line(line.decode("utf-8", "replace"), t)
            # The spool.
            try:
                names = os.listdir(self.outgoing)
            except FileNotFoundError:
                names = []
            t = time.monotonic()
            for name in names:
                if name in self.seen_files:
                    continue
                try:
                    with open(os.path.join(self.outgoing, name), "rb") as f:
                        text = f.read().decode("utf-8", "replace")
                except OSError:
                    continue  # gone or unreadable: looked at again next poll
                self.seen_files.add(name)
                number = None
                for l in text.splitlines():
                    if l.startswith("Set: CT_NUMBER="):
                        number = l[len("Set: CT_NUMBER="):].strip()
                if number is None:
                    self.unmatched_files.append(name)
                elif number not in self.calls:
                    self.calls[number] = t
            self.polls += 1
            time.sleep(self.poll_s)
        if log is not None:
            log.close()

    def sms_line(self, line, t):
        mark = " Got message "
        at = line.find(mark)
        if at < 0:
            return
        _, sep, body = line[at + len(mark):].partition(": <")
        if not sep:
            return
        fields = body.split(" ", 3)
        if len(fields) < 3:
            return  # a continuation line of a 7-bit text: not expected here
        to, kind = fields[1], fields[2]
        self.sms_types[kind] = self.sms_types.get(kind, 0) + 1
        if to in self.sms:
            self.sms_dups += 1
        else:
            self.sms[to] = t


def file_baseline(root, n, fsync):
    """Seconds per call file placed as sinks/src/callfile/spool.rs places
    one (see the module doc); back to back."""
    spool = os.path.join(root, "spool-fsync" if fsync else "spool-nofsync")
    tmp, outgoing, done = (os.path.join(spool, d) for d in ("tmp", "outgoing", "outgoing_done"))
    for d in (tmp, outgoing, done):
        os.makedirs(d)
    body_tpl = ("Channel: Local/support@calltrail-queues/n\nCallerID: \"Callback\" <+7916%07d>\n"
                "Context: calltrail-callback\nExtension: s\nPriority: 1\nMaxRetries: 2\nRetryTime: 300\n"
                "WaitTime: 30\nArchive: yes\nSet: CT_NUMBER=+7916%07d\n"
                "Set: CT_CALLBACK=rule:cb:state:missed_opened:+7916%07d:%016x\nSet: CT_QUEUE=support\n")
    out = []
    for i in range(n):
        name = "ct-bench-%06d.call" % i
        body = (body_tpl % (i, i, i, i)).encode()
        t0 = time.perf_counter()
        os.stat(outgoing)
        for d in (outgoing, done):
            try:
                os.lstat(os.path.join(d, name))
            except FileNotFoundError:
                pass
        src = os.path.join(tmp, name)
        fd = os.open(src, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.write(fd, body)
        if fsync:
            os.fsync(fd)
        os.close(fd)
        os.rename(src, os.path.join(outgoing, name))
        if fsync:
            dfd = os.open(outgoing, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
        out.append(time.perf_counter() - t0)
    return out, len(body)


def sendsms_path(url_path, to, text, sender):
    """The query calltrail's Kannel client builds (sinks/src/sms/kannel.rs):
    every value %XX-encoded outside [A-Za-z0-9-._~]; a text 7 bits cannot
    carry gets coding=2&charset=UTF-8."""
    q = [("username", KANNEL_USER), ("password", KANNEL_PASSWORD), ("to", to), ("text", text)]
    if sender:
        q.append(("from", sender))
    q += [("coding", "2"), ("charset", "UTF-8")]
    return url_path + "?" + "&".join("%s=%s" % (urllib.parse.quote(k, safe=""), urllib.parse.quote(v, safe=""))
                                     for k, v in q)


def kannel_baseline(kannel, watcher, n, rate, timeout):
    """GET sendsms (fresh connection) -> seen in fakesmsc's log, paced at
    `rate`; (round trips, GET->202 times, missing numbers, non-202 answers)."""
    sent = {}
    replies = []
    bad = []
    t0 = time.monotonic()
    for i in range(n):
        to = "+7926%07d" % (2000000 + i)
        path = sendsms_path("/cgi-bin/sendsms", to, SMS_TEXT, SENDER)
        start = time.monotonic()
        sent[to] = start
        try:
            status, body = http_get(kannel.sendsms, path, timeout=15.0)
        except (OSError, http.client.HTTPException) as e:
            status, body = None, repr(e)
        replies.append(time.monotonic() - start)
        if status != 202:
            bad.append("%s: %s %s" % (to, status, body.strip()))
        delay = t0 + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    deadline = max(sent.values()) + timeout
    while time.monotonic() < deadline and not all(k in watcher.sms for k in sent):
        time.sleep(0.01)
    rt, missing = [], []
    for k, t in sent.items():
        lat = watcher.sms[k] - t if k in watcher.sms else None
        if lat is None or lat > timeout:
            missing.append(k)
        else:
            rt.append(lat)
    return rt, replies, missing, bad


def query(calltrail, cfg, sql):
    out = subprocess.run([calltrail, "--config", cfg, "--log", "warn", "query", "--format", "json", sql],
                         capture_output=True)
    if out.returncode != 0:
        return None, out.stderr.decode("utf-8", "replace").strip()
    try:
        return json.loads(out.stdout or b"[]"), None
    except ValueError as e:
        return None, "unreadable query output: %s" % e


def write_config(work, http_port, agi_port, kannel, poll_ms):
    with open(os.path.join(work, "kannel.pass"), "w") as f:
        f.write(KANNEL_PASSWORD + "\n")
    os.chmod(os.path.join(work, "kannel.pass"), 0o600)
    open(os.path.join(work, "queue_log"), "w").close()
    # An Asterisk spool has both (calltrail would create them, with a warning).
    for d in ("outgoing", "outgoing_done"):
        os.makedirs(os.path.join(work, "spool", d))
    cfg = os.path.join(work, "calltrail.toml")
    with open(cfg, "w") as f:
        f.write(
            "# Written by bench/actions_latency.py. No [calendars]: every rule acts at\n"
            "# once (always in business hours).\n"
            "[store]\npath = \"store.duckdb\"\n"
            "[numbers]\ndefault_region = \"RU\"\n"
            "[email]\noutbox = \"outbox\"\nfrom = \"calltrail@pbx.example\"\n"
            "[[sources]]\nname = \"q\"\nkind = \"asterisk_queue_log\"\npath = \"queue_log\"\n"
            "pbx = \"pbx1\"\ntimezone = \"UTC\"\npoll_interval_ms = %d\n"
            "\n[http]\nlisten = \"127.0.0.1:%d\"\n"
            "\n[agi]\nlisten = \"127.0.0.1:%d\"\n"
            "\n[callbacks]\nspool = \"spool\"\nper_minute = 0\n"
            "\n[sms]\ngateway = \"kannel\"\nsender = \"%s\"\nmobile_only = true\n"
            "[sms.kannel]\nurl = \"%s\"\nusername = \"%s\"\npassword = { file = \"kannel.pass\" }\n"
            "\n[[rules]]\nname = \"cb\"\nwhen = \"missed_opened\"\naction = \"callback\"\n"
            "\n[[rules]]\nname = \"sorry\"\nwhen = \"missed_opened\"\naction = \"sms\"\ntext = \"%s\"\n"
            % (poll_ms, http_port, agi_port, SENDER, kannel.sendsms_url(), KANNEL_USER, SMS_TEXT)
        )
    return cfg


def wait_log(path, needle, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if needle.encode() in f.read():
                    return True
        except OSError:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def fs_type(path):
    """The filesystem type of `path` (the longest mount point above it)."""
    path = os.path.realpath(path)
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    mnt = parts[1].replace("\\040", " ")
                    if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                        best, kind = mnt, parts[2]
    except OSError:
        pass
    return "%s on %s" % (kind, best or "?")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calltrail", required=True, help="the calltrail binary")
    ap.add_argument("--bearerbox", default="/usr/sbin/bearerbox")
    ap.add_argument("--smsbox", default="/usr/sbin/smsbox")
    ap.add_argument("--fakesmsc", default="/usr/lib/kannel/test/fakesmsc")
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--rate", type=float, default=5.0, help="episodes per second (also the Kannel baseline's rate)")
    ap.add_argument("--file-baseline", type=int, default=1000, help="call files placed for the file baseline")
    ap.add_argument("--kannel-baseline", type=int, default=100, help="messages sent for the Kannel baseline")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds after which a file / SMS counts as missing")
    ap.add_argument("--poll-ms", type=int, default=500,
                    help="the source's poll_interval_ms (default: calltrail's default; notify wakes it sooner)")
    ap.add_argument("--watch-ms", type=float, default=1.0, help="how often the bench polls the spool and fakesmsc's log")
    ap.add_argument("--target-ms", type=float, default=1000.0, help="the p99 target (issue 13: 1 s)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    args = ap.parse_args()
    if args.episodes < 1 or args.rate <= 0:
        ap.error("--episodes must be >= 1 and --rate > 0")

    def on_signal(signum, _frame):
        raise SystemExit("actions_latency: stopped by signal %d" % signum)

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    for name in ("calltrail", "bearerbox", "smsbox", "fakesmsc"):
        p = getattr(args, name)
        if not os.path.isfile(p):
            raise SystemExit("actions_latency: %s not found at %s" % (name, p))

    work = tempfile.mkdtemp(prefix="calltrail-actions-latency-")
    procs = Procs()
    daemon = None
    watcher = None
    try:
        # 1. Kannel, and the watcher (it serves the Kannel baseline too).
        print("actions_latency: starting Kannel (bearerbox, fakesmsc, smsbox) in %s ..." % work, flush=True)
        bins = {"bearerbox": args.bearerbox, "smsbox": args.smsbox, "fakesmsc": args.fakesmsc}
        kannel = start_kannel(work, bins, procs)
        watcher = Watcher(os.path.join(work, "spool", "outgoing"), kannel.fakesmsc_log, args.watch_ms / 1000.0)
        watcher.start()

        # 2. Baselines.
        print("actions_latency: baseline: placing %d call files (fsync as calltrail, then without) ..."
              % args.file_baseline, flush=True)
        base_dir = os.path.join(work, "file-baseline")
        file_fsync, file_bytes = file_baseline(base_dir, args.file_baseline, True)
        file_nofsync, _ = file_baseline(base_dir, args.file_baseline, False)
        shutil.rmtree(base_dir, ignore_errors=True)
        print("actions_latency: baseline: %d SMS through Kannel at %.1f/s ..." % (args.kannel_baseline, args.rate),
              flush=True)
        k_rt, k_reply, k_missing, k_bad = kannel_baseline(kannel, watcher, args.kannel_baseline, args.rate,
                                                           args.timeout)

        # 3. calltrail.
        http_port, agi_port = free_ports(2)
        cfg = write_config(work, http_port, agi_port, kannel, args.poll_ms)
        check = subprocess.run([args.calltrail, "--config", cfg, "check-config"], capture_output=True)
        if check.returncode != 0:
            raise SystemExit("actions_latency: check-config refused %s:\n%s%s" % (
                cfg, check.stdout.decode("utf-8", "replace"), check.stderr.decode("utf-8", "replace")))
        daemon_log = os.path.join(work, "daemon.log")
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        env.pop("CALLTRAIL_NOW", None)
        daemon = procs.start("calltrail", [args.calltrail, "--config", cfg, "--log",
                                           os.environ.get("CALLTRAIL_BENCH_LOG", "info"), "run"],
                             daemon_log, work, env=env, append=False)
        if not wait_log(daemon_log, "HTTP API listening", daemon, 120):
            raise SystemExit("actions_latency: the daemon did not start; its log:\n%s" % tail(daemon_log, 40))
        time.sleep(1.0)  # let the tailer settle on the (empty) queue_log

        print("actions_latency: %d episodes at %.1f/s ..." % (args.episodes, args.rate), flush=True)
        appended = {}  # +7916… -> (monotonic, wall, call id)
        fd = os.open(os.path.join(work, "queue_log"), os.O_WRONLY | os.O_APPEND)
        t0 = time.monotonic()
        try:
            for i in range(args.episodes):
                raw = "8916%07d" % (1000000 + i)
                e164 = "+7" + raw[1:]
                t = int(time.time()) - 120
                callid = "%d.%d" % (t, i)
                data = ("%d|%s|support|NONE|ENTERQUEUE||%s|1\n%d|%s|support|NONE|ABANDON|1|1|30\n"
                        % (t, callid, raw, t + 30, callid)).encode()
                n = os.write(fd, data)  # O_APPEND, unbuffered: one write, nothing to flush
                appended[e164] = (time.monotonic(), time.time(), callid)
                if n != len(data):
                    raise SystemExit("actions_latency: short write to the queue_log (%d of %d)" % (n, len(data)))
                delay = t0 + (i + 1) / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        finally:
            os.close(fd)
        drive_s = time.monotonic() - t0
        deadline = max(m for m, _, _ in appended.values()) + args.timeout
        while time.monotonic() < deadline and not all(k in watcher.calls and k in watcher.sms for k in appended):
            time.sleep(0.01)

        def lat(seen):
            got, missing = {}, []
            for k, (m, _, _) in appended.items():
                if k in seen and seen[k] - m <= args.timeout:
                    got[k] = seen[k] - m
                else:
                    missing.append(k)
            return got, missing

        cf, cf_missing = lat(watcher.calls)
        sm, sm_missing = lat(watcher.sms)

        # 4. What the store says (through the daemon's API, while it runs).
        actions, q_err = query(args.calltrail, cfg,
                               "SELECT action_id, kind, status, last_error, payload, epoch_us(created_at) AS c, "
                               "epoch_us(done_at) AS d FROM actions ORDER BY created_at")
        lines, q_err2 = query(args.calltrail, cfg,
                              "SELECT call_id, epoch_us(ingested_at) AS i FROM events WHERE verb = 'ABANDON'")
        q_err = q_err or q_err2
        status_counts = {}
        breakdown = {"callback": {"ingest": [], "created": [], "done": [], "wait": []},
                     "sms": {"ingest": [], "created": [], "done": [], "wait": []}}
        problems = []  # actions not done: (kind, number, status, error)
        ingested = {r["call_id"]: r["i"] / 1e6 for r in (lines or []) if r.get("i") is not None}
        wall_by_number = {k: (w, c) for k, (_, w, c) in appended.items()}
        for r in actions or []:
            key = (r["kind"], r["status"])
            status_counts[key] = status_counts.get(key, 0) + 1
            try:
                p = json.loads(r["payload"])
            except (TypeError, ValueError):
                p = {}
            number = p.get("to") if r["kind"] == "sms" else p.get("caller")
            if r["status"] != "done":
                problems.append((r["kind"], number, r["status"], r["last_error"]))
            if number in wall_by_number and r["kind"] in breakdown:
                wall, callid = wall_by_number[number]
                b = breakdown[r["kind"]]
                if callid in ingested:
                    b["ingest"].append(ingested[callid] - wall)
                if r["c"] is not None:
                    b["created"].append(r["c"] / 1e6 - wall)
                if r["d"] is not None and r["status"] == "done":
                    b["done"].append(r["d"] / 1e6 - wall)
                    if r["c"] is not None:
                        b["wait"].append((r["d"] - r["c"]) / 1e6)  # same clock: no skew

        procs.stop(daemon, signal.SIGTERM, 30)
        daemon_rc = daemon.returncode
        daemon = None
        watcher.stop = True
        watcher.join(5)

        # 5. The report.
        cf_s, sm_s = stats_ms(list(cf.values())), stats_ms(list(sm.values()))
        ff_s, fn_s = stats_ms(file_fsync), stats_ms(file_nofsync)
        kr_s, kq_s = stats_ms(k_rt), stats_ms(k_reply)
        target = args.target_ms

        def row(name, s, missing=None, total=None):
            if s is None:
                return "  %-44s %9s %9s %9s   n=0%s" % (name, "-", "-", "-",
                                                          "  missing %d/%d" % (missing, total) if total else "")
            extra = "  missing %d/%d" % (missing, total) if total is not None else ""
            return "  %-44s %9.1f %9.1f %9.1f   n=%d%s" % (name, s["p50_ms"], s["p99_ms"], s["max_ms"], s["n"], extra)

        def ratio(a, b, key):
            if a is None or b is None or b[key] <= 0:
                return None
            return a[key] / b[key]

        def verdict(s, missing):
            if s is None:
                return "MISS (nothing arrived)"
            ok = s["p99_ms"] < target and missing == 0
            why = "" if missing == 0 else ", %d missing" % missing
            return "%s (p99 %.1f ms%s)" % ("PASS" if ok else "MISS", s["p99_ms"], why)

        n = len(appended)
        print()
        print("calltrail actions latency (%s; %d episodes at %.1f/s written in %.1f s), same run, same machine"
              % (args.calltrail, n, args.rate, drive_s))
        print("  load %s, %d CPUs; spool on %s; no calendar: always in business hours, actions due at once;"
              % (" ".join("%.2f" % x for x in os.getloadavg()), os.cpu_count() or 0, fs_type(work)))
        print("  [callbacks] per_minute = 0 (no pacing); source poll_interval_ms = %d (notify first); "
              "bench watcher polls every %.1f ms" % (args.poll_ms, args.watch_ms))
        print()
        print("  %-44s %9s %9s %9s" % ("path", "p50 ms", "p99 ms", "max ms"))
        print(row("queue_log append -> call file in outgoing/", cf_s, len(cf_missing), n))
        print(row("queue_log append -> SMS at Kannel's SMSC", sm_s, len(sm_missing), n))
        print(row("baseline: place a call file (fsync, rename)", ff_s))
        print(row("  (same without the two fsyncs)", fn_s))
        print(row("baseline: Kannel GET sendsms -> at the SMSC", kr_s, len(k_missing), args.kannel_baseline))
        print(row("  (GET sendsms -> 202 answer alone)", kq_s))
        print()
        r = {
            "callfile_p50_x": ratio(cf_s, ff_s, "p50_ms"), "callfile_p99_x": ratio(cf_s, ff_s, "p99_ms"),
            "sms_p50_x": ratio(sm_s, kr_s, "p50_ms"), "sms_p99_x": ratio(sm_s, kr_s, "p99_ms"),
        }

        def x(v):
            return "-" if v is None else "%.0fx" % v if v >= 10 else "%.1fx" % v

        print("  ratio to the baseline:  call file p50 %s, p99 %s (over placing a file with fsync);"
              % (x(r["callfile_p50_x"]), x(r["callfile_p99_x"])))
        print("                          SMS       p50 %s, p99 %s (over one Kannel round trip)"
              % (x(r["sms_p50_x"]), x(r["sms_p99_x"])))
        def deciles(values):
            return " ".join("%.0f" % (pct(values, q) * 1e3) for q in range(10, 100, 10))

        print("  deciles (p10 … p90, ms): call file %s;  SMS %s" % (deciles(list(cf.values())),
                                                                  deciles(list(sm.values()))))
        print("  target p99 < %.0f ms, in business hours: call file %s; SMS %s"
              % (target, verdict(cf_s, len(cf_missing)), verdict(sm_s, len(sm_missing))))
        if breakdown["callback"]["created"] or breakdown["sms"]["created"]:
            print()
            print("  breakdown from the store, p50 / p99 ms (append -> …: wall clock, the bench's vs the daemon's):")

            def pp(values):
                s = stats_ms(values)
                return "-" if s is None else "%.1f / %.1f" % (s["p50_ms"], s["p99_ms"])

            for kind in ("callback", "sms"):
                b = breakdown[kind]
                print("    %-8s append -> ABANDON line ingested_at %s;  -> action created_at %s;  -> done_at %s"
                      % (kind, pp(b["ingest"]), pp(b["created"]), pp(b["done"])))
                print("    %-8s action created_at -> done_at (the worker's pick-up and the send) %s"
                      % ("", pp(b["wait"])))
        print()
        print("  actions by kind/status: %s" % (", ".join("%s %s %d" % (k, s, c) for (k, s), c in
                                                          sorted(status_counts.items())) or "none read"))
        if q_err:
            print("  (reading the store failed: %s)" % q_err)
        print("  fakesmsc message types: %s%s" % (", ".join("%s %d" % kv for kv in sorted(watcher.sms_types.items())),
                                                  "; %d messages to a number already seen" % watcher.sms_dups
                                                  if watcher.sms_dups else ""))
        if watcher.unmatched_files:
            print("  call files without CT_NUMBER: %s" % ", ".join(watcher.unmatched_files[:5]))
        if watcher.error:
            print("  WATCHER FAILED: %s" % watcher.error)
        for label, miss in (("call file", cf_missing), ("SMS", sm_missing), ("Kannel baseline SMS", k_missing)):
            if miss:
                print("  missing %s (none within %.0f s) for %d numbers: %s%s"
                      % (label, args.timeout, len(miss), ", ".join(miss[:10]), " …" if len(miss) > 10 else ""))
        if k_bad:
            print("  Kannel baseline answers other than 202: %d, e.g. %s" % (len(k_bad), k_bad[0]))
        for kind, number, st, err in problems[:10]:
            print("  action %s for %s: %s%s" % (kind, number, st, " (%s)" % err if err else ""))
        if daemon_rc not in (0, None):
            print("  the daemon exited with %s on SIGTERM; see %s" % (daemon_rc, daemon_log))

        if args.json:
            figures = {
                "bench": "actions_latency",
                "calltrail": args.calltrail,
                "episodes": n,
                "rate_per_s": args.rate,
                "business_hours": "always (no calendar)",
                "per_minute": 0,
                "poll_interval_ms": args.poll_ms,
                "watch_ms": args.watch_ms,
                "loadavg": os.getloadavg(),
                "cpus": os.cpu_count(),
                "filesystem": fs_type(work),
                "callfile": cf_s, "callfile_missing": cf_missing,
                "sms": sm_s, "sms_missing": sm_missing,
                "baseline_file_fsync": dict(ff_s or {}, bytes=file_bytes),
                "baseline_file_nofsync": fn_s,
                "baseline_kannel_roundtrip": kr_s, "baseline_kannel_missing": k_missing,
                "baseline_kannel_reply": kq_s,
                "ratios": r,
                "target_p99_ms": target,
                "callfile_pass": bool(cf_s and cf_s["p99_ms"] < target and not cf_missing),
                "sms_pass": bool(sm_s and sm_s["p99_ms"] < target and not sm_missing),
                "breakdown_ms": {kind: {k: stats_ms(v) for k, v in b.items()} for kind, b in breakdown.items()},
                "actions_by_status": {"%s %s" % k: c for k, c in status_counts.items()},
                "fakesmsc_types": watcher.sms_types,
            }
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=2, ensure_ascii=False)
                f.write("\n")
            print("  figures written to %s" % args.json)
    finally:
        if watcher is not None:
            watcher.stop = True
        if daemon is not None:
            procs.stop(daemon, signal.SIGTERM, 10)
        procs.stop_all()
        if args.keep:
            print("actions_latency: working directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
