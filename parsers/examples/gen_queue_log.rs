//! Writes a deterministic, realistic Asterisk queue_log (or cdr_csv) file
//! for benchmarks and load tests.
//!
//! ```text
//! cargo run --release -p calltrail-parsers --example gen_queue_log -- \
//!     --lines 1000000 --out /tmp/ql.txt [--seed N] [--format queue_log|cdr_csv]
//! ```
//!
//! Without `--out` the lines go to stdout. The same seed and line count
//! always give the same bytes (see `benches/support/gen.rs` for the mix).

#[path = "../benches/support/gen.rs"]
mod gen;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

const USAGE: &str =
    "usage: gen_queue_log [--lines N] [--out FILE] [--seed N] [--format queue_log|cdr_csv]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_queue_log: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut lines: u64 = 1_000_000;
    let mut out: Option<String> = None;
    let mut seed = gen::DEFAULT_SEED;
    let mut format = "queue_log".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--lines" | "-n" => {
                lines = value()?
                    .replace('_', "")
                    .parse()
                    .map_err(|e| format!("--lines: {e}"))?
            }
            "--out" | "-o" => out = Some(value()?),
            "--seed" => seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--format" => format = value()?,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let sink: Box<dyn Write> = match &out {
        Some(path) => {
            Box::new(std::fs::File::create(path).map_err(|e| format!("cannot create {path}: {e}"))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = BufWriter::with_capacity(1 << 20, sink);
    let written = match format.as_str() {
        "queue_log" => gen::queue_log(&mut w, lines, seed),
        "cdr_csv" | "cdr" => gen::cdr_csv(&mut w, lines, seed),
        other => return Err(format!("unknown format {other:?}")),
    };
    written
        .and_then(|()| w.flush())
        .map_err(|e| format!("write failed: {e}"))?;
    if let Some(path) = out {
        eprintln!("gen_queue_log: wrote {lines} {format} lines to {path}");
    }
    Ok(())
}
