//! Writes a deterministic, realistic Asterisk queue_log (or cdr_csv) file
//! for benchmarks and load tests.
//!
//! ```text
//! cargo run --release -p calltrail-parsers --example gen_queue_log -- \
//!     --lines 1000000 --out /tmp/ql.txt [--seed N] [--format queue_log|cdr_csv] \
//!     [--callers N]
//! ```
//!
//! Without `--out` the lines go to stdout. The same seed and line count
//! always give the same bytes (see `benches/support/gen.rs` for the mix).
//!
//! `--callers N` widens the pool external callers are drawn from (default
//! `gen::CALLERS`, 160 000: ~100 k distinct callers per 1 M lines, at most
//! 160 k however long the file). With it, the caller of every ENTERQUEUE
//! line that has an outside number is drawn again from a pool of N numbers,
//! skewed towards repeat callers the same way, by a second generator seeded
//! from `--seed`; every other byte stays as without it. `--callers 1600000`
//! gives ~1 M distinct callers in 10 M lines (~190 k in the first 1 M, which
//! are the same bytes). Without `--callers` the output is unchanged.

#[path = "../benches/support/gen.rs"]
mod gen;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

const USAGE: &str = "usage: gen_queue_log [--lines N] [--out FILE] [--seed N] \
                     [--format queue_log|cdr_csv] [--callers N]";

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
    let mut callers: Option<u64> = None;
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
            "--callers" => {
                let n: u64 = value()?
                    .replace('_', "")
                    .parse()
                    .map_err(|e| format!("--callers: {e}"))?;
                // Distinct numbers need n below the modulus of `national`.
                if n == 0 || n >= 900_000_000 {
                    return Err("--callers: between 1 and 899999999".to_string());
                }
                callers = Some(n);
            }
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
    let written = match (format.as_str(), callers) {
        ("queue_log", None) => gen::queue_log(&mut w, lines, seed),
        ("queue_log", Some(pool)) => {
            let mut redraw = Redraw::new(&mut w, pool, seed);
            gen::queue_log(&mut redraw, lines, seed).and_then(|()| redraw.finish())
        }
        ("cdr_csv" | "cdr", None) => gen::cdr_csv(&mut w, lines, seed),
        ("cdr_csv" | "cdr", Some(_)) => return Err("--callers is for queue_log only".into()),
        (other, _) => return Err(format!("unknown format {other:?}")),
    };
    written
        .and_then(|()| w.flush())
        .map_err(|e| format!("write failed: {e}"))?;
    if let Some(path) = out {
        eprintln!("gen_queue_log: wrote {lines} {format} lines to {path}");
    }
    Ok(())
}

/// `--callers`: passes queue_log lines through, drawing the outside caller
/// of each ENTERQUEUE line again from a pool of `pool` numbers.
struct Redraw<'w, W: Write> {
    out: &'w mut W,
    pool: u64,
    rng: gen::Rng,
    /// The current line, until its `\n`.
    line: Vec<u8>,
}

impl<'w, W: Write> Redraw<'w, W> {
    fn new(out: &'w mut W, pool: u64, seed: u64) -> Self {
        Redraw {
            out,
            pool,
            // Another stream than the generator's own.
            rng: gen::Rng::new(seed ^ 0x5EED_CA11_E125_0001),
            line: Vec::with_capacity(256),
        }
    }

    /// A caller number as `gen::caller` writes it, from the wider pool.
    fn caller(&mut self) -> String {
        let r = self.rng.below(self.pool);
        let k = if self.rng.pct(30) { r / 8 } else { r };
        let national = 9_000_000_000 + k * 9_973 % 999_999_999;
        match k % 6 {
            0..=2 => format!("8{national}"),
            3 | 4 => format!("+7{national}"),
            _ => format!("7{national}"),
        }
    }

    /// Writes one whole line (with its `\n`), the caller redrawn.
    fn emit(&mut self) -> std::io::Result<()> {
        let line = std::mem::take(&mut self.line);
        let fields: Vec<&[u8]> = line.split(|&b| b == b'|').collect();
        // ts|callid|queue|NONE|ENTERQUEUE|url|CALLER|pos[|name]
        let outside = fields.len() > 6
            && fields[4] == b"ENTERQUEUE"
            && fields[6].len() >= 11
            && fields[6].iter().all(|&b| b.is_ascii_digit() || b == b'+');
        if outside {
            let caller = self.caller();
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    self.out.write_all(b"|")?;
                }
                if i == 6 {
                    self.out.write_all(caller.as_bytes())?;
                } else {
                    self.out.write_all(f)?;
                }
            }
        } else {
            self.out.write_all(&line)?;
        }
        self.line = line;
        self.line.clear();
        Ok(())
    }

    /// Writes a last line without `\n`, if any.
    fn finish(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            self.emit()?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Redraw<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.emit()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
