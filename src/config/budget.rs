//! `[store] memory_budget`: the whole process's memory, shared out. DuckDB
//! gets a documented share as its `memory_limit` (its buffer pool and the
//! working memory of its queries; past it DuckDB spills to disk or fails a
//! query), its worker threads follow from that share, and what scales with
//! memory on calltrail's side — the lines of an import batch in flight, the
//! events a bulk derivation step holds — is capped to fit the rest, next to
//! the tailers' buffers, the lookup's index and the HTTP server.

use super::StoreConfig;

/// DuckDB's share of the budget when `[store] memory_limit` is not given:
/// half (the rest: import batches or derivation steps, the lookup's index,
/// the tailers, HTTP, librdkafka's queue, the allocator's slack).
pub const DUCKDB_SHARE_PERCENT: u64 = 50;

/// DuckDB's memory per worker thread below which another thread is not
/// given (DuckDB's own guidance is at least 125 MB a thread).
pub const MEMORY_PER_THREAD: u64 = 125_000_000;

/// The smallest budget calltrail accepts: DuckDB needs some tens of MB to
/// open a store and write a row group.
pub const MIN_BUDGET: u64 = 64_000_000;

/// What one line of an import costs while its batch is in flight (read,
/// split, parsed into Arrow columns, queued, inserted), times the batches
/// in flight at once (one parsed, two queued, one stored).
pub const IMPORT_BYTES_PER_LINE: u64 = 1_000;

/// What one event of a bulk derivation step costs on calltrail's side
/// (the events read, what the step touched, the rows it rebuilds).
pub const DERIVE_BYTES_PER_EVENT: u64 = 1_000;

/// Lines per import batch at most: two of DuckDB's row groups, so that a
/// transaction's rows are merged into the table as the row groups DuckDB
/// wrote while inserting them (a transaction of less than one row group is
/// re-appended row by row at commit: 100,000 lines per batch took 1.4x as
/// long), and so that DuckDB's two threads each take one.
pub const MAX_IMPORT_BATCH: usize = 2 * crate::store::ROW_GROUP_ROWS;
/// Lines per import batch at least, however small the budget.
pub const MIN_IMPORT_BATCH: usize = 8_192;
/// Events per bulk derivation step at most (`Store::derive_all`).
pub const MAX_DERIVE_STEP: usize = crate::store::BULK_DERIVE_STEP;
/// Events per bulk derivation step at least.
pub const MIN_DERIVE_STEP: usize = 20_000;

/// What a budget comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole process's budget, in bytes.
    pub budget: u64,
    /// DuckDB's `memory_limit`, in bytes.
    pub memory_limit: u64,
    /// DuckDB's worker threads.
    pub threads: u32,
    /// Lines per import batch (one transaction each).
    pub import_batch: usize,
    /// Events per step of a bulk derivation (`import`, `rederive`).
    pub derive_step: usize,
}

impl Limits {
    /// DuckDB's `memory_limit` setting (whole KiB, which DuckDB reads back
    /// as the same number of bytes).
    pub fn duckdb_memory_limit(&self) -> String {
        format!("{}KiB", (self.memory_limit / 1024).max(1))
    }
}

/// A size as DuckDB's `memory_limit` takes it: a number and a unit (`B`,
/// `KB`/`KiB` … `TB`/`TiB`, case-insensitive; `KB` is 1000 bytes, `KiB`
/// 1024, as DuckDB counts), in bytes; `None` for anything else.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n = num.parse::<f64>().ok().filter(|n| *n > 0.0 && n.is_finite())?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * factor;
    (bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// The machine's cores (1 when they cannot be told).
fn cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

impl StoreConfig {
    /// What `memory_budget` (and an explicit `memory_limit` or `threads`)
    /// come to on this machine. The config's checks have accepted the sizes;
    /// one that does not parse counts as the default.
    pub fn limits(&self) -> Limits {
        limits(
            parse_size(&self.memory_budget)
                .or_else(|| parse_size(super::DEFAULT_MEMORY_BUDGET))
                .unwrap_or(512_000_000),
            self.memory_limit.as_deref().and_then(parse_size),
            self.threads,
            cores(),
        )
    }
}

/// The derivation itself: `budget` bytes for the process; DuckDB's limit
/// `explicit_limit`, else its share; `threads`, else one per
/// [`MEMORY_PER_THREAD`] of DuckDB's limit, between 1 and `cores`; the
/// batch sizes capped to what is left beside DuckDB.
pub fn limits(budget: u64, explicit_limit: Option<u64>, threads: Option<u32>, cores: u32) -> Limits {
    let memory_limit = explicit_limit.unwrap_or(budget / 100 * DUCKDB_SHARE_PERCENT);
    let threads = threads.filter(|t| *t > 0).unwrap_or_else(|| {
        let by_memory = u32::try_from(memory_limit / MEMORY_PER_THREAD).unwrap_or(u32::MAX);
        by_memory.clamp(1, cores.max(1))
    });
    // An explicit limit may leave less than half beside it; never count on
    // less than a tenth of the budget.
    let rest = budget.saturating_sub(memory_limit).max(budget / 10);
    let fit = |per_item: u64, lo: usize, hi: usize| -> usize {
        usize::try_from(rest / per_item)
            .unwrap_or(usize::MAX)
            .clamp(lo, hi)
    };
    Limits {
        budget,
        memory_limit,
        threads,
        import_batch: fit(IMPORT_BYTES_PER_LINE, MIN_IMPORT_BATCH, MAX_IMPORT_BATCH),
        derive_step: fit(DERIVE_BYTES_PER_EVENT, MIN_DERIVE_STEP, MAX_DERIVE_STEP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_counted_as_duckdb_counts_them() {
        assert_eq!(parse_size("512MB"), Some(512_000_000));
        assert_eq!(parse_size(" 1.5 GiB "), Some(1_610_612_736));
        assert_eq!(parse_size("4096b"), Some(4096));
        assert_eq!(parse_size("2tb"), Some(2_000_000_000_000));
        for bad in ["", "1", "GB", "-1GB", "0GB", "0.1B", "1 GBs", "1e3MB", "99999999TB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_default_budget_fits_a_small_host() {
        let l = StoreConfig::default().limits();
        assert_eq!(l.budget, 512_000_000);
        assert_eq!(l.memory_limit, 256_000_000);
        assert!(l.threads >= 1 && l.threads <= 2, "{l:?}");
        let l = limits(512_000_000, None, None, 8);
        assert_eq!(l.threads, 2, "one thread per 125 MB of DuckDB's limit");
        assert_eq!(l.duckdb_memory_limit(), "250000KiB");
    }

    #[test]
    fn threads_follow_the_limit_and_the_cores() {
        assert_eq!(limits(64_000_000, None, None, 8).threads, 1);
        assert_eq!(limits(4_000_000_000, None, None, 8).threads, 8);
        assert_eq!(limits(4_000_000_000, None, None, 2).threads, 2);
        assert_eq!(limits(4_000_000_000, None, Some(3), 2).threads, 3, "explicit wins");
        assert_eq!(limits(4_000_000_000, None, None, 0).threads, 1);
    }

    #[test]
    fn an_explicit_limit_wins() {
        let l = limits(1_000_000_000, Some(800_000_000), None, 2);
        assert_eq!(l.memory_limit, 800_000_000);
        // Only a fifth is left: the batches shrink to fit it.
        let wide = limits(1_000_000_000, None, None, 2);
        assert!(l.import_batch <= wide.import_batch);
        assert!(l.derive_step <= wide.derive_step);
    }

    #[test]
    fn batches_shrink_with_the_budget_and_stay_within_bounds() {
        let big = limits(16_000_000_000, None, None, 2);
        assert_eq!(big.import_batch, MAX_IMPORT_BATCH);
        assert_eq!(big.derive_step, MAX_DERIVE_STEP);
        let tiny = limits(MIN_BUDGET, None, None, 2);
        assert!(tiny.import_batch >= MIN_IMPORT_BATCH);
        assert!(tiny.derive_step >= MIN_DERIVE_STEP);
        assert!(tiny.import_batch < MAX_IMPORT_BATCH);
        let mut last = limits(MIN_BUDGET, None, None, 2);
        for mb in [128, 256, 512, 1024, 2048, 4096] {
            let l = limits(mb * 1_000_000, None, None, 2);
            assert!(l.import_batch >= last.import_batch, "{mb} MB");
            assert!(l.derive_step >= last.derive_step, "{mb} MB");
            assert!(l.memory_limit > last.memory_limit, "{mb} MB");
            last = l;
        }
    }
}
