//! Parse throughput (criterion), in lines per second:
//!
//! * `queue_log/ref_steady` (the headline figure): the zero-copy typed
//!   parse (`parse_line_ref` → `EventRef`: kind, UTC time, interned queue
//!   and agent, E.164 caller, data fields) with one parser reused across
//!   iterations (warm caches);
//! * `queue_log/ref_import`: the same with a fresh parser per iteration
//!   (cold caches: every distinct caller goes through libphonenumber once);
//! * `queue_log/import`: owned `Event`s (`parse_line`), a fresh
//!   `QueueLogParser` over the whole 1 M-line queue_log per iteration, i.e.
//!   importing a file;
//! * `queue_log/steady`: owned `Event`s, one parser reused across
//!   iterations (warm caches), i.e. tailing a live log;
//! * `cdr_csv/import`: a fresh `CdrParser` (layout `Auto`) over 200 k
//!   generated cdr_csv records.
//!
//! The queue_log input is `$CALLTRAIL_BENCH_FILE` when set (`bench/parse.sh`
//! points it at the file DuckDB loads), else generated in memory
//! (`benches/support/gen.rs`, the `gen_queue_log` example's generator).
//! `$CALLTRAIL_BENCH_LINES` overrides the generated line counts (queue_log;
//! CDR gets a fifth) for a quick run.
//!
//! `cargo bench -p calltrail-parsers --bench parse`; medians land in
//! `$CARGO_TARGET_DIR/criterion/<group>/<bench>/new/estimates.json`
//! (nanoseconds per iteration; one iteration = all lines).

#[path = "support/gen.rs"]
mod gen;

use calltrail_parsers::cdr::{CdrLayout, CdrParser};
use calltrail_parsers::{
    AgentResolver, NumberConfig, NumberNormalizer, QueueLogParser, SourceContext, SourceKind,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

fn line_count() -> u64 {
    std::env::var("CALLTRAIL_BENCH_LINES")
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

fn queue_log_input() -> Vec<u8> {
    if let Ok(path) = std::env::var("CALLTRAIL_BENCH_FILE") {
        let data =
            std::fs::read(&path).unwrap_or_else(|e| panic!("CALLTRAIL_BENCH_FILE={path}: {e}"));
        eprintln!("queue_log input: {path} ({} bytes)", data.len());
        return data;
    }
    let mut data = Vec::with_capacity(80 << 20);
    gen::queue_log(&mut data, line_count(), gen::DEFAULT_SEED).expect("write to memory");
    data
}

fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

fn queue_log_parser() -> QueueLogParser {
    QueueLogParser::new(
        SourceContext::new("bench", "pbx1"),
        NumberNormalizer::new(NumberConfig::default()).expect("RU is a region"),
        AgentResolver::default(),
    )
}

/// Parses every line; returns how many gave an event (so nothing is
/// optimized away, and the caller can check the input was sensible).
fn parse_all(p: &mut QueueLogParser, lines: &[&[u8]]) -> usize {
    let mut events = 0;
    for l in lines {
        if let Ok(Some(ev)) = p.parse_line(black_box(l)) {
            events += 1;
            black_box(ev);
        }
    }
    events
}

/// [`parse_all`] through the zero-copy view.
fn parse_all_ref(p: &mut QueueLogParser, lines: &[&[u8]]) -> usize {
    let mut events = 0;
    for l in lines {
        if let Ok(Some(ev)) = p.parse_line_ref(black_box(l)) {
            events += 1;
            black_box(&ev);
        }
    }
    events
}

fn queue_log(c: &mut Criterion) {
    let data = queue_log_input();
    let lines = lines(&data);
    let parsed = parse_all(&mut queue_log_parser(), &lines);
    assert!(
        parsed * 100 >= lines.len() * 99,
        "only {parsed} of {} lines parsed: not a queue_log?",
        lines.len()
    );
    eprintln!("queue_log: {} lines, {} events", lines.len(), parsed);

    let mut g = c.benchmark_group("queue_log");
    g.throughput(Throughput::Elements(lines.len() as u64));
    // One iteration is the whole file (a fraction of a second to seconds).
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(15));
    let mut warm = queue_log_parser();
    parse_all_ref(&mut warm, &lines);
    g.bench_function("ref_steady", |b| {
        b.iter(|| parse_all_ref(&mut warm, &lines))
    });
    g.bench_function("ref_import", |b| {
        b.iter_batched(
            queue_log_parser,
            |mut p| {
                black_box(parse_all_ref(&mut p, &lines));
                p
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("import", |b| {
        b.iter_batched(
            queue_log_parser,
            |mut p| {
                black_box(parse_all(&mut p, &lines));
                p
            },
            BatchSize::PerIteration,
        )
    });
    let mut warm = queue_log_parser();
    parse_all(&mut warm, &lines);
    g.bench_function("steady", |b| b.iter(|| parse_all(&mut warm, &lines)));
    g.finish();
}

fn cdr_parser() -> CdrParser {
    CdrParser::new(
        SourceContext::new("bench", "pbx1"),
        SourceKind::AsteriskCdrCsv,
        CdrLayout::Auto,
        NumberNormalizer::new(NumberConfig::default()).expect("RU is a region"),
        AgentResolver::default(),
    )
}

fn cdr(c: &mut Criterion) {
    let n = (line_count() / 5).max(1);
    let mut data = Vec::with_capacity(64 << 20);
    gen::cdr_csv(&mut data, n, gen::DEFAULT_SEED).expect("write to memory");
    let lines = lines(&data);
    let parse = |p: &mut CdrParser| {
        lines
            .iter()
            .filter(|l| matches!(p.parse_line(black_box(l)), Ok(Some(_))))
            .count()
    };
    let parsed = parse(&mut cdr_parser());
    assert_eq!(parsed, lines.len(), "every generated CDR parses");

    let mut g = c.benchmark_group("cdr_csv");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(15));
    g.bench_function("import", |b| {
        b.iter_batched(
            cdr_parser,
            |mut p| {
                black_box(parse(&mut p));
                p
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, queue_log, cdr);
criterion_main!(benches);
