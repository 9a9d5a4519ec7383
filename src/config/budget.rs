//! `[store] memory_budget`: the whole process's memory, shared out. DuckDB
//! gets a documented share as its `memory_limit` (its buffer pool and the
//! working memory of its queries; past it DuckDB spills to disk or fails a
//! query), its worker threads follow from that share, and what scales with
//! memory on calltrail's side — the lines of an import batch in flight, the
//! events a bulk derivation step holds — is capped to fit what is left
//! beside DuckDB and the process's fixed part (the binary, the libraries,
//! DuckDB's instance, the tailers, HTTP). In `run` the lookup's index lives
//! in that rest; when it outgrows it, DuckDB's limit gives way
//! ([`Limits::shrunk_for`]).
//!
//! The figures are measured (`calltrail import` of a 2 M-line generated
//! queue_log, peak RSS by `/usr/bin/time -v`, DuckDB pinned at 256 MB):
//! an idle process holds 53 MB; an import holds about 620 bytes per line of
//! its batch size (the batches read, parsed, queued and stored at once:
//! 381 MB at 122,880 lines a batch, 461 MB at 245,760); a bulk derivation
//! holds about 3.6 KB per event of its step beside ~58 MB more than DuckDB's
//! limit (547 MB at 50,000 events a step, 727 MB at 100,000, 1,085 MB at
//! 200,000). With the default budget (DuckDB 204.8 MB, import batches of
//! 245,760 lines then, steps of 44,800 events then) the whole import of those
//! 2 M lines with their state peaked at 509 MB (before the budget: 1,563
//! MB). On 10 M lines that batch went past the budget (602 MB); the heap
//! is now trimmed after every batch and step, and the default budget takes
//! batches of 122,880 lines (see [`IMPORT_BYTES_PER_LINE`]).

use super::StoreConfig;

/// DuckDB's share of the budget when `[store] memory_limit` is not given.
pub const DUCKDB_SHARE_PERCENT: u64 = 40;

/// DuckDB's memory limit at least, whatever the share (a store of 80,000
/// events could not be derived under 45 MB; it could under 64 MB).
pub const MIN_DUCKDB_LIMIT: u64 = 64_000_000;

/// What the process holds beside DuckDB's limit and its batches: 53 MB
/// idle, ~58 MB more while deriving, ~15 MB more left by an import before
/// (measured, see above).
pub const PROCESS_RESERVE: u64 = 128_000_000;

/// DuckDB's memory per worker thread below which another thread is not
/// given.
pub const MEMORY_PER_THREAD: u64 = 100_000_000;

/// The smallest budget calltrail accepts. Below ~400 MB the process's
/// fixed part, DuckDB's floor and the smallest batches no longer fit in
/// it: the budget then shares out DuckDB's limit and shrinks the batches
/// as far as they go, and the RSS goes beyond it.
pub const MIN_BUDGET: u64 = 128_000_000;

/// What one line of an import's batch size costs while the batch is in
/// flight (read, split, parsed into Arrow columns, queued, inserted), as
/// the budget counts it. Measured on a 10 M-line import (`--no-state`,
/// the heap trimmed after each batch, default budget): peak 525 MB at
/// 245,760 lines a batch, 487 MB (and faster) at 122,880; 640 bytes a line
/// (measured on 2 M lines) let the default budget pick the bigger batch,
/// which went past the budget on 10 M.
pub const IMPORT_BYTES_PER_LINE: u64 = 1_400;

/// What one event of a bulk derivation step costs on calltrail's side
/// (the events read, what the step touched, the rows it rebuilds), as the
/// budget counts it. 4,000 (measured on 2 M events) gave steps of 44,800
/// events with the default budget, and on 10 M events of history the
/// derivation peaked at 526 MB (`rederive`) and 565 MB (`import`); 5,500
/// (32,581 events) at 482 MB and 542 MB: the steps of a long history touch
/// callers with more calls. 7,000 (25,600 events): 454 MB and 508 MB;
/// then, with the parties' calls read sorted (faster: 417 -> 348 s and
/// 503 -> 391 s), 477 MB and 519 MB. 8,000 (22,400 events): the import
/// at 478 MB.
pub const DERIVE_BYTES_PER_EVENT: u64 = 8_000;

/// Lines per import batch at most: two of DuckDB's row groups, so that a
/// transaction's rows are merged into the table as the row groups DuckDB
/// wrote while inserting them, and so that DuckDB's two threads each take
/// one.
pub const MAX_IMPORT_BATCH: usize = 2 * crate::store::ROW_GROUP_ROWS;
/// Lines per import batch at least: one row group. A transaction of less
/// is re-appended row by row at commit: slower (100,000 lines a batch took
/// 1.4x as long) and, measured, no smaller (61,440 lines a batch peaked at
/// 499 MB, 122,880 at 381 MB).
pub const MIN_IMPORT_BATCH: usize = crate::store::ROW_GROUP_ROWS;
/// Events per bulk derivation step at most (`Store::derive_all`).
pub const MAX_DERIVE_STEP: usize = crate::store::BULK_DERIVE_STEP;
/// Events per bulk derivation step at least.
pub const MIN_DERIVE_STEP: usize = 20_000;
/// Events per live deriver's pass at most (`run`; a pass takes what
/// arrived since the last one, a few dozen events at a call center's
/// pace, up to this after a restart or an outage). What `run` keeps free
/// beside the lookup's memory for a pass ([`DERIVE_BYTES_PER_EVENT`] each)
/// is taken from DuckDB's limit, so the step is smaller than a bulk one:
/// with 20,000 (140 MB) the daemon on 10 M events of history left DuckDB
/// 90 MB and its passes re-read most of what they scan; with 5,000 (35
/// MB) DuckDB had 195 MB, and the process peaked at 516 MB, past the
/// default budget (bench/footprint.sh). Catching up takes more passes.
pub const LIVE_DERIVE_STEP: usize = 10_000;

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

    /// What is left of the budget beside DuckDB's limit and
    /// [`PROCESS_RESERVE`]: in `run`, the lookup's index and the live
    /// deriver's small steps live there.
    pub fn rest(&self) -> u64 {
        self.budget
            .saturating_sub(self.memory_limit + PROCESS_RESERVE)
    }

    /// When `held` bytes (the lookup's index) do not fit in [`Limits::rest`]:
    /// DuckDB's limit lowered by the excess (not below
    /// [`MIN_DUCKDB_LIMIT`]), so that the process stays within the budget.
    pub fn shrunk_for(&self, held: u64) -> Option<Limits> {
        let over = held.checked_sub(self.rest()).filter(|o| *o > 0)?;
        let memory_limit = self
            .memory_limit
            .saturating_sub(over)
            .max(MIN_DUCKDB_LIMIT.min(self.memory_limit));
        (memory_limit < self.memory_limit).then_some(Limits {
            memory_limit,
            ..*self
        })
    }
}

/// Gives the heap's freed pages back to the system (glibc keeps what a
/// phase freed, in every thread's arena, and counts it in the RSS): called
/// between an import's reading and its derivation, whose peaks would
/// otherwise add up (measured: 534 MB for the two in one process, 453 MB
/// and 482 MB apart). Elsewhere than glibc: nothing.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes an integer and only walks the allocator's
    // own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How many malloc arenas glibc may keep (its default is eight per core,
/// each holding on to what its threads freed).
pub const MALLOC_ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`], unless the operator
/// set `MALLOC_ARENA_MAX` (glibc reads it itself). Call it first thing,
/// before any thread starts. Measured on a 10 M-line `import` with its
/// state, default budget: peak RSS 508 MB with glibc's default, 484 MB
/// with two. Elsewhere than glibc: nothing.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt takes two integers and only sets the
        // allocator's parameter; no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
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
    let n = num
        .parse::<f64>()
        .ok()
        .filter(|n| *n > 0.0 && n.is_finite())?;
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
/// `explicit_limit`, else [`DUCKDB_SHARE_PERCENT`] of the budget (at least
/// [`MIN_DUCKDB_LIMIT`]); `threads`, else one per [`MEMORY_PER_THREAD`] of
/// DuckDB's limit, between 1 and `cores`; the batches sized to what is left
/// beside DuckDB's limit and [`PROCESS_RESERVE`], within their bounds.
pub fn limits(
    budget: u64,
    explicit_limit: Option<u64>,
    threads: Option<u32>,
    cores: u32,
) -> Limits {
    let memory_limit = explicit_limit
        .unwrap_or_else(|| (budget / 100 * DUCKDB_SHARE_PERCENT).max(MIN_DUCKDB_LIMIT));
    let threads = threads.filter(|t| *t > 0).unwrap_or_else(|| {
        let by_memory = u32::try_from(memory_limit / MEMORY_PER_THREAD).unwrap_or(u32::MAX);
        by_memory.clamp(1, cores.max(1))
    });
    let rest = budget.saturating_sub(memory_limit + PROCESS_RESERVE);
    let import_batch = if rest >= MAX_IMPORT_BATCH as u64 * IMPORT_BYTES_PER_LINE {
        MAX_IMPORT_BATCH
    } else {
        MIN_IMPORT_BATCH
    };
    let derive_step = usize::try_from(rest / DERIVE_BYTES_PER_EVENT)
        .unwrap_or(usize::MAX)
        .clamp(MIN_DERIVE_STEP, MAX_DERIVE_STEP);
    Limits {
        budget,
        memory_limit,
        threads,
        import_batch,
        derive_step,
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
        for bad in [
            "",
            "1",
            "GB",
            "-1GB",
            "0GB",
            "0.1B",
            "1 GBs",
            "1e3MB",
            "99999999TB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_default_budget_fits_a_small_host() {
        let l = StoreConfig::default().limits();
        assert_eq!(l.budget, 512_000_000);
        assert_eq!(l.memory_limit, 204_800_000);
        assert!(l.threads >= 1 && l.threads <= 2, "{l:?}");
        let l = limits(512_000_000, None, None, 8);
        assert_eq!(l.threads, 2, "one thread per 100 MB of DuckDB's limit");
        assert_eq!(l.duckdb_memory_limit(), "200000KiB");
        assert_eq!(l.import_batch, MIN_IMPORT_BATCH);
        assert_eq!(
            limits(1_000_000_000, None, None, 2).import_batch,
            MAX_IMPORT_BATCH
        );
        // 512 - 204.8 - 128 = 179.2 MB for a step: 22,400 events.
        assert_eq!(l.derive_step, 22_400);
        // What that comes to, by the measured costs: within the budget.
        let import =
            PROCESS_RESERVE + l.memory_limit + l.import_batch as u64 * IMPORT_BYTES_PER_LINE;
        let derive =
            PROCESS_RESERVE + l.memory_limit + l.derive_step as u64 * DERIVE_BYTES_PER_EVENT;
        assert!(
            import <= l.budget && derive <= l.budget,
            "{import} {derive}"
        );
    }

    #[test]
    fn duckdb_makes_room_for_what_the_index_holds() {
        let l = limits(512_000_000, None, None, 2);
        assert_eq!(l.rest(), 179_200_000);
        assert_eq!(l.shrunk_for(179_200_000), None, "it fits");
        let s = l.shrunk_for(200_000_000).unwrap();
        assert_eq!(s.memory_limit, 204_800_000 - 20_800_000);
        assert_eq!(s.threads, l.threads);
        assert_eq!(
            l.shrunk_for(1_000_000_000).unwrap().memory_limit,
            MIN_DUCKDB_LIMIT,
            "not below DuckDB's floor"
        );
        let tiny = limits(MIN_BUDGET, None, None, 2);
        assert_eq!(tiny.shrunk_for(u64::MAX), None, "already at the floor");
    }

    #[test]
    fn threads_follow_the_limit_and_the_cores() {
        assert_eq!(limits(128_000_000, None, None, 8).threads, 1);
        assert_eq!(limits(4_000_000_000, None, None, 8).threads, 8);
        assert_eq!(limits(4_000_000_000, None, None, 2).threads, 2);
        assert_eq!(
            limits(4_000_000_000, None, Some(3), 2).threads,
            3,
            "explicit wins"
        );
        assert_eq!(limits(4_000_000_000, None, None, 0).threads, 1);
    }

    #[test]
    fn an_explicit_limit_wins() {
        let l = limits(1_000_000_000, Some(800_000_000), None, 2);
        assert_eq!(l.memory_limit, 800_000_000);
        // Less is left: the batches shrink to fit it.
        let wide = limits(1_000_000_000, None, None, 2);
        assert_eq!(wide.memory_limit, 400_000_000);
        assert!(l.import_batch < wide.import_batch);
        assert!(l.derive_step < wide.derive_step);
    }

    #[test]
    fn batches_shrink_with_the_budget_and_stay_within_bounds() {
        let big = limits(16_000_000_000, None, None, 2);
        assert_eq!(big.import_batch, MAX_IMPORT_BATCH);
        assert_eq!(big.derive_step, MAX_DERIVE_STEP);
        let tiny = limits(MIN_BUDGET, None, None, 2);
        assert_eq!(tiny.memory_limit, MIN_DUCKDB_LIMIT, "DuckDB's floor");
        assert_eq!(tiny.import_batch, MIN_IMPORT_BATCH);
        assert_eq!(tiny.derive_step, MIN_DERIVE_STEP);
        let mut last = tiny;
        for mb in [256, 512, 1024, 2048, 4096] {
            let l = limits(mb * 1_000_000, None, None, 2);
            assert!(l.import_batch >= last.import_batch, "{mb} MB");
            assert!(l.derive_step >= last.derive_step, "{mb} MB");
            assert!(l.memory_limit > last.memory_limit, "{mb} MB");
            last = l;
        }
    }
}
