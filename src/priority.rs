//! Bulk work (`import`, `rederive`) yields to the PBX it runs beside: it
//! raises its own niceness by [`NICE_STEP`] (at most to 19) and takes the
//! lowest best-effort IO priority, for every thread of the process (Linux
//! keeps both per thread; threads started later, DuckDB's among them,
//! inherit them). `--no-nice` leaves both alone; `run` never calls this (the
//! systemd unit sets the daemon's priority). Lowering one's own priority
//! needs no privilege; what could not be applied is said at debug level
//! and the work goes on.

/// How much bulk work raises its niceness.
pub const NICE_STEP: i32 = 10;

/// `IOPRIO_WHO_PROCESS` (linux/ioprio.h): `who` is a thread id.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
/// `IOPRIO_CLASS_BE`: best effort, the default class.
const IOPRIO_CLASS_BE: libc::c_int = 2;
/// `IOPRIO_CLASS_SHIFT`.
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
/// The lowest priority level of the best-effort class.
pub const IOPRIO_LOWEST: libc::c_int = 7;

/// What [`lower_for_bulk`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Threads of the process when it ran.
    pub threads: usize,
    /// The niceness before and after (of the calling thread), or why not.
    pub nice: Result<(i32, i32), String>,
    /// Best-effort level [`IOPRIO_LOWEST`] set on every thread, or why not.
    pub io: Result<(), String>,
}

/// The ids of the process's threads (`/proc/self/task`), else the calling
/// thread alone (`0`).
fn threads() -> Vec<libc::id_t> {
    let ids: Vec<libc::id_t> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        vec![0]
    } else {
        ids
    }
}

/// A thread's niceness.
fn nice_of(tid: libc::id_t) -> Result<i32, std::io::Error> {
    // SAFETY: errno is this thread's own; getpriority takes plain integers.
    // It may return -1 as a valid niceness, so errno tells an error.
    unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS, tid);
        let e = std::io::Error::last_os_error();
        if n == -1 && e.raw_os_error().is_some_and(|c| c != 0) {
            return Err(e);
        }
        Ok(n)
    }
}

fn set_nice(tid: libc::id_t, nice: i32) -> Result<(), std::io::Error> {
    // SAFETY: plain integers; raising one's own niceness is always allowed.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn set_io_lowest(tid: libc::id_t) -> Result<(), std::io::Error> {
    let prio = (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | IOPRIO_LOWEST;
    // SAFETY: the ioprio_set syscall takes three integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, prio) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A thread's IO priority (class << 13 | level), for tests.
#[cfg(test)]
fn io_of(tid: libc::id_t) -> libc::c_long {
    // SAFETY: the ioprio_get syscall takes two integers.
    unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid) }
}

/// Lowers the CPU and IO priority of every thread of the process, and logs
/// what was applied (debug).
pub fn lower_for_bulk() -> Applied {
    let tids = threads();
    let nice = nice_of(0)
        .map_err(|e| format!("cannot read the niceness: {e}"))
        .and_then(|before| {
            let target = (before + NICE_STEP).min(19);
            for &t in &tids {
                // Another thread's own niceness, raised by the same step.
                let to = nice_of(t).map_or(target, |n| (n + NICE_STEP).min(19).max(target));
                set_nice(t, to).map_err(|e| format!("setpriority: {e}"))?;
            }
            Ok((before, target))
        });
    let io = tids
        .iter()
        .try_for_each(|&t| set_io_lowest(t).map_err(|e| format!("ioprio_set: {e}")));
    let applied = Applied {
        threads: tids.len(),
        nice,
        io,
    };
    match (&applied.nice, &applied.io) {
        (Ok((from, to)), Ok(())) => tracing::debug!(
            nice_from = from,
            nice_to = to,
            io = "best-effort 7",
            threads = applied.threads,
            "bulk work at a lower CPU and IO priority (--no-nice keeps it)"
        ),
        (nice, io) => tracing::debug!(
            ?nice,
            ?io,
            threads = applied.threads,
            "bulk work's priority only partly lowered"
        ),
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run in a process of its own (`cargo test` threads share one): the
    /// test re-executes itself with a marker, and the child lowers its
    /// priority and reports what its threads have.
    #[test]
    fn every_thread_lowered_and_new_threads_inherit_it() {
        if std::env::var_os("CALLTRAIL_PRIORITY_CHILD").is_some() {
            // A thread started before, one after.
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let before = std::thread::spawn(move || {
                let _ = rx.recv();
                // SAFETY: gettid takes nothing.
                let tid = unsafe { libc::gettid() } as libc::id_t;
                (nice_of(tid).unwrap(), io_of(tid))
            });
            let start = nice_of(0).unwrap();
            let applied = lower_for_bulk();
            let _ = tx.send(());
            let (nice_before, io_before) = before.join().unwrap();
            let (nice_after, io_after) = std::thread::spawn(|| (nice_of(0).unwrap(), io_of(0)))
                .join()
                .unwrap();
            println!(
                "RESULT {start} {nice_before} {io_before} {nice_after} {io_after} {:?} {:?}",
                applied.nice.as_ref().ok(),
                applied.io
            );
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "priority::tests::every_thread_lowered_and_new_threads_inherit_it",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CALLTRAIL_PRIORITY_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| Some(l.split_once("RESULT ")?.1))
            .unwrap_or_else(|| panic!("no result from the child: {text}"));
        let f: Vec<&str> = line.split(' ').collect();
        let start: i32 = f[0].parse().unwrap();
        let want = (start + NICE_STEP).min(19);
        let lowest = i64::from((IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | IOPRIO_LOWEST);
        assert_eq!(
            f[1].parse::<i32>().unwrap(),
            want,
            "a thread started before: {line}"
        );
        assert_eq!(
            f[3].parse::<i32>().unwrap(),
            want,
            "a thread started after: {line}"
        );
        assert!(line.contains(&format!("Some(({start}, {want}))")), "{line}");
        // ioprio_set may be refused in a sandbox (seccomp): then it says so.
        if line.ends_with("Ok(())") {
            assert_eq!(f[2].parse::<i64>().unwrap(), lowest, "{line}");
            assert_eq!(f[4].parse::<i64>().unwrap(), lowest, "{line}");
        } else {
            assert!(line.contains("ioprio_set"), "{line}");
        }
    }
}
