#!/usr/bin/env python3
"""Baseline for the "-> DuckDB" leg of bench/latency.sh: what DuckDB itself
costs on this machine, right now, for what the store does per line.

A file database with a table shaped like calltrail's `events` (VARCHAR
primary key + 30 columns); for --rows rows:
  1. one row per transaction (INSERT OR IGNORE + COMMIT): the latency of the
     smallest possible commit, p50/p99, and CPU per row;
  2. the same rows as one transaction executing a prepared single-row
     INSERT per row (the store's per-batch pattern): CPU per row;
  3. the same rows as ONE multi-row INSERT through a staging table: CPU per
     row (what a bulk path would cost).
Prints one line per measurement, prefixed "duckdb-baseline:".
"""

import argparse
import json
import os
import shutil
import tempfile
import time

import duckdb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--json", help="also write the one-row commit figures here (for latency.py)")
    args = ap.parse_args()
    n = args.rows
    d = tempfile.mkdtemp(prefix="calltrail-duckbase-")
    try:
        con = duckdb.connect(os.path.join(d, "x.duckdb"))
        cols = ", ".join("c%d VARCHAR" % i for i in range(30))
        con.execute("CREATE TABLE events (event_id VARCHAR PRIMARY KEY, %s)" % cols)
        q = "INSERT OR IGNORE INTO events VALUES (%s)" % ", ".join(["?"] * 31)

        def row(i):
            return ["pbx1-queue:%016x:%d" % (i * 7919, i * 64)] + ["value %d of row %d" % (j, i) for j in range(30)]

        lat = []
        c0 = time.process_time()
        for i in range(n):
            t = time.perf_counter()
            con.execute("BEGIN")
            con.execute(q, row(i))
            con.execute("COMMIT")
            lat.append(time.perf_counter() - t)
        cpu1 = (time.process_time() - c0) / n
        lat.sort()
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"p50_s": lat[n // 2], "p99_s": lat[min(n - 1, int(n * 0.99))], "version": duckdb.__version__}, f)
        print("duckdb-baseline: DuckDB %s, one-row INSERT+COMMIT: p50 %.1f ms  p99 %.1f ms  (%.2f ms CPU/row, n=%d)"
              % (duckdb.__version__, lat[n // 2] * 1e3, lat[min(n - 1, int(n * 0.99))] * 1e3, cpu1 * 1e3, n))

        c0 = time.process_time()
        w0 = time.perf_counter()
        con.execute("BEGIN")
        con.executemany(q, [row(i) for i in range(n, 2 * n)])  # prepared once, executed per row
        con.execute("COMMIT")
        print("duckdb-baseline: %d executions of one prepared single-row INSERT, one transaction: %.2f ms CPU/row, %.2f s wall"
              % (n, (time.process_time() - c0) / n * 1e3, time.perf_counter() - w0))

        values = ", ".join("(" + ", ".join("'%s'" % v for v in row(i)) + ")" for i in range(2 * n, 3 * n))
        c0 = time.process_time()
        w0 = time.perf_counter()
        con.execute("BEGIN")
        con.execute("CREATE TEMP TABLE staging AS SELECT * FROM events LIMIT 0")
        con.execute("INSERT INTO staging VALUES " + values)
        con.execute("INSERT OR IGNORE INTO events SELECT * FROM staging")
        con.execute("COMMIT")
        print("duckdb-baseline: %d rows as one multi-row INSERT via a staging table: %.3f ms CPU/row, %.2f s wall"
              % (n, (time.process_time() - c0) / n * 1e3, time.perf_counter() - w0))
        con.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
