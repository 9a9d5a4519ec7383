#!/usr/bin/env python3
"""Independent Kafka client for the calltrail integration tests.

Written with kafka-python on purpose: it shares no code with the product's
librdkafka producer, so a test that reads back what calltrail published checks
the wire format, not the product against itself.

Modes (all take --bootstrap HOST:PORT --topic T):

  consume (default)
      --expect N --timeout SECONDS [--group G] [--linger SECONDS]
      Reads the topic from the earliest offset until N messages arrived or the
      timeout passed. With --linger it keeps reading that many seconds more
      after reaching N (to catch duplicates). Prints one JSON object per line,
      ordered by (partition, offset):
        {"key": str|null, "value": str, "partition": p, "offset": o,
         "headers": [[name, value], ...]}
      Keys, values and header values are decoded as UTF-8 (invalid bytes are
      replaced). Exit 0 if at least N messages were read, 1 otherwise (with a
      message on stderr; what was read is still printed).
      Without --group the partitions are assigned directly (no consumer group:
      fast, nothing committed). With --group it joins that consumer group.
      --skip-header NAME=VALUE leaves out (neither counted nor printed) the
      messages carrying that header (calltrail's heartbeats: kind=heartbeat);
      --only-header NAME=VALUE keeps only those.

  --produce VALUE [--produce VALUE ...] [--key K]
      Sends the values (in order, same key) and waits for the acks.
      Prints one JSON object per message: {"partition": p, "offset": o}.

  --create-topic --partitions N
      Creates the topic (replication factor 1). Exit 0 also if it exists.

  --list-topics
      Prints the topic names, one per line.
"""

import argparse
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError


def text(raw):
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")


def consume(args):
    deadline = time.monotonic() + args.timeout
    common = dict(
        bootstrap_servers=args.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        # Never let the checker create the topic: a missing topic must stay
        # missing so that a product that published nothing fails the test.
        allow_auto_create_topics=False,
        client_id="calltrail-test-consumer",
    )
    if args.group:
        # tansu takes about twice the session timeout to finish a join with
        # kafka-python's default (10 s -> ~23 s); 6 s brings it down to ~3 s.
        consumer = KafkaConsumer(
            args.topic,
            group_id=args.group,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            **common,
        )
    else:
        consumer = KafkaConsumer(group_id=None, **common)
        partitions = None
        while time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(args.topic)
            if partitions:
                break
            time.sleep(0.2)
        if not partitions:
            print(
                f"kafka_consume: topic {args.topic!r} does not exist after "
                f"{args.timeout}s (0 of {args.expect} messages)",
                file=sys.stderr,
            )
            consumer.close()
            return 1
        tps = [TopicPartition(args.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)

    def header_filter(spec):
        if spec is None:
            return None
        name, _, value = spec.partition("=")
        return (name, value.encode())

    skip, only = header_filter(args.skip_header), header_filter(args.only_header)

    def wanted(record):
        headers = [(k, v) for k, v in (record.headers or [])]
        if skip is not None and skip in headers:
            return False
        return only is None or only in headers

    got = []
    linger_until = None
    while True:
        now = time.monotonic()
        if len(got) >= args.expect and linger_until is None:
            linger_until = now + args.linger
        stop_at = linger_until if linger_until is not None else deadline
        if now >= stop_at:
            break
        wait_ms = max(1, min(500, int((stop_at - now) * 1000)))
        for records in consumer.poll(timeout_ms=wait_ms).values():
            got.extend(r for r in records if wanted(r))
    consumer.close()

    got.sort(key=lambda r: (r.partition, r.offset))
    for r in got:
        print(
            json.dumps(
                {
                    "key": text(r.key),
                    "value": text(r.value),
                    "partition": r.partition,
                    "offset": r.offset,
                    "headers": [[k, text(v)] for k, v in (r.headers or [])],
                },
                ensure_ascii=False,
            )
        )
    sys.stdout.flush()
    if len(got) < args.expect:
        print(
            f"kafka_consume: got {len(got)} of {args.expect} messages from "
            f"topic {args.topic!r} within {args.timeout}s",
            file=sys.stderr,
        )
        return 1
    return 0


def produce(args):
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        client_id="calltrail-test-producer",
    )
    key = args.key.encode() if args.key is not None else None
    futures = [producer.send(args.topic, key=key, value=v.encode()) for v in args.produce]
    for f in futures:
        md = f.get(timeout=args.timeout)
        print(json.dumps({"partition": md.partition, "offset": md.offset}))
    producer.close()
    return 0


def create_topic(args):
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id="calltrail-test-admin")
    try:
        admin.create_topics([NewTopic(args.topic, args.partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
    return 0


def list_topics(args):
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id="calltrail-test-admin")
    for name in sorted(admin.list_topics()):
        print(name)
    admin.close()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True, help="HOST:PORT")
    ap.add_argument("--topic", help="topic name (all modes but --list-topics)")
    ap.add_argument("--expect", type=int, default=1, help="messages to wait for")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds")
    ap.add_argument("--group", help="consumer group (default: direct assignment)")
    ap.add_argument("--linger", type=float, default=0.0, help="seconds to keep reading after --expect")
    ap.add_argument("--skip-header", metavar="NAME=VALUE", help="leave out messages with this header")
    ap.add_argument("--only-header", metavar="NAME=VALUE", help="keep only messages with this header")
    ap.add_argument("--produce", action="append", metavar="VALUE", help="produce VALUE (repeatable)")
    ap.add_argument("--key", help="key for --produce")
    ap.add_argument("--create-topic", action="store_true")
    ap.add_argument("--partitions", type=int, default=1, help="for --create-topic")
    ap.add_argument("--list-topics", action="store_true")
    args = ap.parse_args()
    if not args.list_topics and not args.topic:
        ap.error("--topic is required")
    if args.list_topics:
        return list_topics(args)
    if args.create_topic:
        return create_topic(args)
    if args.produce:
        return produce(args)
    return consume(args)


if __name__ == "__main__":
    sys.exit(main())
