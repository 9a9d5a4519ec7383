//! Parses a queue_log file with one parser and prints how many lines, events
//! and rejects it saw and the rate: a quick check of parse speed on real
//! files, and a fixed workload for instruction-count profiling
//! (`valgrind --tool=callgrind`), which is repeatable on a busy machine.
//!
//!     cargo run --release -p calltrail-parsers --example parse_file -- FILE [REPEAT] [owned|ref]
//!
//! `owned` (the default) builds an owned `Event` per line (`parse_line`, the
//! tailing path); `ref` takes the zero-copy typed view (`parse_line_ref`).

use calltrail_parsers::{
    AgentResolver, NumberConfig, NumberNormalizer, QueueLogParser, SourceContext,
};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: parse_file FILE [REPEAT] [owned|ref]")?;
    let repeat: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(1);
    let borrowed = match args.next().as_deref() {
        None | Some("owned") => false,
        Some("ref") => true,
        Some(other) => return Err(format!("mode {other:?}: expected owned or ref").into()),
    };
    let bytes = std::fs::read(&path)?;
    let mut parser = QueueLogParser::new(
        SourceContext::new("bench", "pbx"),
        NumberNormalizer::new(NumberConfig::default())?,
        AgentResolver::default(),
    );
    // Split once, outside the timed loop (as the criterion bench does), so
    // that the per-line cost is the parser's alone.
    let split: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    let (mut lines, mut events, mut rejects) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    for _ in 0..repeat {
        for &line in &split {
            lines += 1;
            let outcome = if borrowed {
                parser.parse_line_ref(line).map(|e| e.is_some())
            } else {
                parser.parse_line(line).map(|e| e.is_some())
            };
            match outcome {
                Ok(true) => events += 1,
                Ok(false) => {}
                Err(_) => rejects += 1,
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{lines} lines, {events} events, {rejects} rejects in {secs:.3} s: {:.2} M lines/s",
        lines as f64 / secs / 1e6
    );
    Ok(())
}
