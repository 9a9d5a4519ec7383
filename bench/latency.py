#!/usr/bin/env python3
"""Latency of calltrail: line appended -> event in DuckDB, and -> message
consumable from Kafka. Run by bench/latency.sh (which builds the binary and
finds the tools); prints p50/p99/max per phase and a baseline measured in
the same run.

Setup: a real tansu broker (memory storage), the real `calltrail run`
daemon following a queue_log, an independent kafka-python consumer.

* append time: wall clock (time.time()) right after the write() of the line
  returned; lines are realistic queue_log call flows (the chaos writer's
  generator), each identified by (call id, verb).
* -> DuckDB: the event's `ingested_at` column, which the store takes at the
  start of the batch's transaction (Utc::now() in Store::commit_batch). The
  daemon holds the DuckDB file exclusively, so it is read after the run with
  `calltrail query`. This is a lower bound of "committed"; the commit itself
  ends a little later (the Kafka figure is an upper bound: the publisher
  only reads committed events).
* -> Kafka: the wall time at which the consumer got the message (fetch wait
  5 ms), matched by the event's call_id and verb.
* baseline: the same consumer reading messages a kafka-python producer
  (acks=all, no linger) sends at the same rate to the same broker: the
  broker's own produce -> consume latency on this machine, right now.

Phases: steady (--rate lines/s for --seconds), then a burst (--burst lines
written back to back), each reported separately.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# kafka-python is imported where it is used: bench/wall_load.py imports this
# module's helpers (line writer, percentiles, ports) with stdlib Python only.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
from chaos_writer import Call  # noqa: E402  (the realistic call-flow generator)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout, what, log):
    """Waits until `proc` accepts connections on `port`."""
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("%s did not start; see %s" % (what, log))
            time.sleep(0.1)


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def fmt(values):
    if not values:
        return "n=0"
    ms = [x * 1000.0 for x in values]
    return "p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms  min %5.1f ms  n=%d" % (pct(ms, 50), pct(ms, 99), max(ms), min(ms), len(ms))


class Consumer(threading.Thread):
    """Reads a topic from the start; calls key(value) and records the first
    receive time per key."""

    def __init__(self, bootstrap, topic, key):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.key = bootstrap, topic, key
        self.got = {}
        self.count = 0
        self.stop = False
        self.ready = threading.Event()

    def run(self):
        from kafka import KafkaConsumer, TopicPartition

        c = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=5,
            allow_auto_create_topics=False,
        )
        parts = None
        while not parts:
            parts = c.partitions_for_topic(self.topic)
            if not parts:
                time.sleep(0.1)
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        c.poll(timeout_ms=100)
        self.ready.set()
        while not self.stop:
            for records in c.poll(timeout_ms=50).values():
                now = time.time()
                for r in records:
                    self.count += 1
                    k = self.key(r)
                    if k is not None and k not in self.got:
                        self.got[k] = now
        c.close()


def create_topic(bootstrap, topic, partitions):
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()


def baseline(bootstrap, rate, seconds):
    """kafka-python produce -> consume on the same broker, same rate, with
    messages the size of calltrail's (~700 bytes of JSON), for as long as the
    steady phase (a broker may slow down as its log grows)."""
    from kafka import KafkaProducer

    create_topic(bootstrap, "baseline", 3)
    cons = Consumer(bootstrap, "baseline", lambda r: r.key.decode())
    cons.start()
    cons.ready.wait(30)
    prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    sent = {}
    n = int(rate * seconds)
    t0 = time.monotonic()
    for i in range(n):
        key = str(i)
        sent[key] = time.time()
        prod.send("baseline", key=key.encode(), value=key.ljust(700).encode())
        prod.flush()  # one message at a time, like one line at a time
        delay = t0 + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    deadline = time.time() + 30
    while len(cons.got) < n and time.time() < deadline:
        time.sleep(0.05)
    cons.stop = True
    prod.close()
    return [(sent[k], cons.got[k] - sent[k]) for k in sent if k in cons.got], n


class W:
    """What Call needs of a writer: an RNG."""

    def __init__(self, seed):
        self.rng = random.Random(seed)


def write_lines(path, count, rate, w, calls, appended, next_callno):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    t0 = time.monotonic()
    for i in range(count):
        while len(calls) < 12:
            next_callno[0] += 1
            calls.append(Call(w, next_callno[0]))
        call = w.rng.choice(calls)
        line, meta = call.next_line(w)
        if not call.steps:
            calls.remove(call)
        data = line.encode()
        # The line is appended during this write: take the time just before
        # it (taking it after could be late by a scheduling delay).
        appended[(meta["call"], meta["verb"])] = time.time()
        os.write(fd, data)
        if rate:
            delay = t0 + (i + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    os.close(fd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calltrail", required=True)
    ap.add_argument("--tansu", required=True)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--burst", type=int, default=2000)
    ap.add_argument("--baseline-seconds", type=float, default=None,
                    help="default: as long as the steady phase")
    ap.add_argument("--poll-ms", type=int, default=500, help="the source's poll_interval_ms (default: calltrail's default)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--history", help="a calltrail store to start from (copied first), e.g. the year of "
                    "history bench/state.sh generates: latency with a big store, not an empty one")
    ap.add_argument("--duckdb-baseline", help="JSON from duckdb_insert_baseline.py (one-row commit p50/p99)")
    args = ap.parse_args()
    if args.baseline_seconds is None:
        args.baseline_seconds = args.seconds

    work = tempfile.mkdtemp(prefix="calltrail-latency-")
    port = free_port()
    bootstrap = "127.0.0.1:%d" % port
    url = "tcp://" + bootstrap
    broker_log = open(os.path.join(work, "tansu.log"), "w")
    broker = subprocess.Popen(
        [args.tansu, "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        stdout=broker_log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, RUST_LOG="warn", NO_COLOR="1"),
    )
    daemon = None
    try:
        wait_port(port, broker, 20, "tansu", broker_log.name)
        time.sleep(0.5)

        print("latency: baseline: kafka-python produce -> consume, %.0f msg/s for %.0f s ..." % (args.rate, args.baseline_seconds), flush=True)
        base_timed, base_n = baseline(bootstrap, args.rate, args.baseline_seconds)
        base = [l for _, l in base_timed]

        topic = "calltrail.events"
        create_topic(bootstrap, topic, 3)
        os.makedirs(os.path.join(work, "logs"))
        cfg = os.path.join(work, "calltrail.toml")
        http_port = free_port()
        with open(cfg, "w") as f:
            f.write(
                '[store]\npath = "store.duckdb"\n[numbers]\ndefault_region = "RU"\n'
                '[[sources]]\nname = "pbx1-queue"\nkind = "asterisk_queue_log"\npath = "logs/queue_log"\n'
                'pbx = "pbx1"\ntimezone = "Europe/Moscow"\npoll_interval_ms = %d\n'
                '[email]\noutbox = "outbox"\n'
                '[http]\nlisten = "127.0.0.1:%d"\n'
                '[kafka]\nbrokers = "%s"\ntopic = "%s"\n' % (args.poll_ms, http_port, bootstrap, topic)
            )
        if args.history:
            print("latency: copying the history store %s ..." % args.history, flush=True)
            shutil.copyfile(args.history, os.path.join(work, "store.duckdb"))
        # Only the events of this run are measured.
        history_seq = 0
        if args.history:
            out = subprocess.run(
                [args.calltrail, "--config", cfg, "query", "--format", "json",
                 "SELECT coalesce(max(seq), 0) AS s FROM events"],
                check=True, capture_output=True,
            )
            history_seq = json.loads(out.stdout)[0]["s"]
        daemon_log = open(os.path.join(work, "daemon.log"), "w")
        daemon = subprocess.Popen(
            [args.calltrail, "--config", cfg, "--log", os.environ.get("CALLTRAIL_BENCH_LOG", "info"), "run"],
            stdout=subprocess.DEVNULL,
            stderr=daemon_log,
        )
        def key(r):
            try:
                e = json.loads(r.value)
            except ValueError:
                return None
            if e.get("source") != "pbx1-queue" or e.get("kind") == "heartbeat":
                return None  # state changes the daemon derives, heartbeats: not a line
            return (e.get("call_id"), e.get("verb"))

        cons = Consumer(bootstrap, topic, key)
        # The topic exists (created above), so the consumer is ready at once.
        cons.start()
        cons.ready.wait(30)
        # The daemon is ready when its HTTP API answers (it opens the store,
        # which may migrate a big one first), then starts following.
        wait_port(http_port, daemon, 600, "the daemon", daemon_log.name)
        time.sleep(1.0)

        w = W(1)
        calls, next_callno = [], [0]
        steady, burst = {}, {}
        log_path = os.path.join(work, "logs", "queue_log")
        print("latency: steady: %.0f lines/s for %.0f s ..." % (args.rate, args.seconds), flush=True)
        write_lines(log_path, int(args.rate * args.seconds), args.rate, w, calls, steady, next_callno)
        time.sleep(2.0)
        print("latency: burst: %d lines back to back ..." % args.burst, flush=True)
        write_lines(log_path, args.burst, 0, w, calls, burst, next_callno)

        keys = list(steady) + list(burst)
        deadline = time.time() + 300
        while time.time() < deadline and not all(k in cons.got for k in keys):
            time.sleep(0.2)
        cons.stop = True
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        daemon = None

        out = subprocess.run(
            [args.calltrail, "--config", cfg, "query", "--format", "json",
             "SELECT call_id, verb, epoch_us(ingested_at) AS us FROM events WHERE seq > %d" % history_seq],
            check=True, capture_output=True,
        )
        stored = {(r["call_id"], r["verb"]): r["us"] / 1e6 for r in json.loads(out.stdout)}

        print()
        print("calltrail latency (%s), same run, same machine (load %s):" % (os.path.basename(args.calltrail), os.getloadavg()))
        for name, appended in (("steady %.0f lines/s x %.0f s" % (args.rate, args.seconds), steady), ("burst %d lines" % args.burst, burst)):
            db = [stored[k] - t for k, t in appended.items() if k in stored]
            kf = [cons.got[k] - t for k, t in appended.items() if k in cons.got]
            print("  %s:" % name)
            print("    append -> DuckDB (batch commit start): %s  (missing %d)" % (fmt(db), len(appended) - len(db)))
            print("    append -> consumable from Kafka:       %s  (missing %d)" % (fmt(kf), len(appended) - len(kf)))
        # In 10 s windows: does latency drift as the store and the topic grow?
        def windows(timed):
            if not timed:
                return ""
            t0 = min(t for t, _ in timed)
            w = {}
            for t, lat in timed:
                w.setdefault(int((t - t0) // 10), []).append(lat)
            return "  ".join("%d-%ds %.0f" % (i * 10, i * 10 + 10, pct(v, 99) * 1e3) for i, v in sorted(w.items()))
        print("  p99 (ms) per 10 s window, steady append -> Kafka: %s" % windows(
            [(t, cons.got[k] - t) for k, t in steady.items() if k in cons.got]))
        print("  p99 (ms) per 10 s window, baseline produce -> consume: %s" % windows(base_timed))
        print("  baseline, kafka-python produce -> consume (%.0f msg/s): %s  (missing %d)" % (args.rate, fmt(base), base_n - len(base)))
        kf_all = [cons.got[k] - t for k, t in steady.items() if k in cons.got]
        db_all = [stored[k] - t for k, t in steady.items() if k in stored]
        duck = None
        if args.duckdb_baseline:
            with open(args.duckdb_baseline) as f:
                duck = json.load(f)
            print("  baseline, DuckDB %s one-row INSERT+COMMIT (bench/duckdb_insert_baseline.py): p50 %7.1f ms  p99 %7.1f ms"
                  % (duck["version"], duck["p50_s"] * 1e3, duck["p99_s"] * 1e3))
        if base and kf_all:
            print("  steady p99: append -> Kafka %.1fx the broker's produce -> consume p99%s"
                  % (pct(kf_all, 99) / pct(base, 99),
                     "; append -> DuckDB %.1fx a bare one-row DuckDB commit p99" % (pct(db_all, 99) / duck["p99_s"]) if duck and db_all else ""))
            print("  target p99 < 50 ms (steady): DuckDB %s (%.1f ms), Kafka %s (%.1f ms)" % (
                "met" if pct(db_all, 99) < 0.05 else "NOT met", pct(db_all, 99) * 1e3,
                "met" if pct(kf_all, 99) < 0.05 else "NOT met", pct(kf_all, 99) * 1e3))
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        broker.kill()
        broker.wait()
        if args.keep:
            print("latency: working directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
