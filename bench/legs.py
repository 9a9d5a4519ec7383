"""Writes N copies of the real Asterisk sample (asterisk-live-r1), each moved
N x 700 s later with its uniqueids, linkedids and Local channel numbers made
unique: queue_log, Master.csv as written (agent legs tied to their calls by
Local channel halves) and Master-nolinks.csv (the same rows with channel and
dstchannel blanked, so nothing ties the legs: the baseline of bench/legs.sh).

    python3 bench/legs.py SAMPLE_DIR OUT_DIR COPIES
"""

import csv
import datetime as dt
import re
import sys

STEP = 700  # seconds between copies (the sample spans about 11 minutes)
UID = re.compile(r"^(\d{10})\.(\d+)$")
CHAN = re.compile(r"-([0-9a-f]{8});([12])$")


def uid(value, k):
    m = UID.match(value)
    if not m:
        return value
    return f"{int(m.group(1)) + k * STEP}.{int(m.group(2)) + k * 100000}"


def chan(value, k):
    return CHAN.sub(lambda m: f"-{int(m.group(1), 16) + k * 0x10000:08x};{m.group(2)}", value)


def when(value, k):
    if not value:
        return value
    t = dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S") + dt.timedelta(seconds=k * STEP)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def main():
    sample, out, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    qlog = open(f"{sample}/queue_log", encoding="utf-8").read().splitlines()
    rows = list(csv.reader(open(f"{sample}/Master.csv", encoding="utf-8")))
    with open(f"{out}/queue_log", "w", encoding="utf-8") as q:
        for k in range(copies):
            for line in qlog:
                f = line.split("|")
                f[0] = str(int(f[0]) + k * STEP)
                f[1] = uid(f[1], k)
                if f[4] == "CONNECT" and len(f) > 6:
                    f[6] = uid(f[6], k)
                q.write("|".join(f) + "\n")
    with open(f"{out}/Master.csv", "w", encoding="utf-8", newline="") as a, open(
        f"{out}/Master-nolinks.csv", "w", encoding="utf-8", newline=""
    ) as b:
        wa = csv.writer(a, quoting=csv.QUOTE_ALL)
        wb = csv.writer(b, quoting=csv.QUOTE_ALL)
        for k in range(copies):
            for r in rows:
                r = list(r)
                r[5], r[6] = chan(r[5], k), chan(r[6], k)
                r[9], r[10], r[11] = when(r[9], k), when(r[10], k), when(r[11], k)
                r[16] = uid(r[16], k)
                wa.writerow(r)
                r[5], r[6] = "", ""
                wb.writerow(r)


if __name__ == "__main__":
    main()
