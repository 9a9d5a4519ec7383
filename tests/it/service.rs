//! calltrail installed like a service (docs/operations.md):
//!
//! * the systemd unit and its callbacks drop-in (`samples/`) pass
//!   `systemd-analyze verify` — and fail it when a directive is broken —
//!   and keep their sandbox (`systemd-analyze security --offline`);
//! * the `.deb`, packed by cargo-deb from this test build, installs into a
//!   throwaway root with dpkg (`--root`, its maintainer scripts run
//!   chrootless on `DPKG_ROOT`, services barred by the root's
//!   `policy-rc.d`): the binary runs, the unit, the user, its group and the
//!   state directory are there — in that root, the host's user database and
//!   dpkg log untouched — and the config is a conffile that `check-config`
//!   accepts and that stores Asterisk's log once its paths are moved into
//!   the root;
//! * the backup docs/operations.md documents: the store copied while the
//!   daemon is frozen mid-ingest opens, matches its checkpoint line for
//!   line, and resumes to every line once with derived state equal to a
//!   rebuild.

use crate::chaos::{queue_only_config, state_differs_from_rederived, QUEUE_SOURCE};
use crate::daemon::{self, calltrail, query_i64, query_json, Daemon};
use crate::support::tools::{self, CmdOutput};
use crate::support::wait_until;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

fn sample(name: &str) -> PathBuf {
    tools::repo_root().join("samples").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create dir");
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Runs a command to completion (10 minutes at most).
fn run(cmd: &mut Command) -> CmdOutput {
    tools::run(cmd, 10 * MINUTE)
}

/// `systemd-analyze verify UNIT` (drop-ins in `UNIT.d/` beside it): Ok when
/// it exits 0 and says nothing. It exits 0 on an unknown key or a value it
/// cannot parse, which it only reports, so anything it says is a failure.
fn verify(unit: &Path) -> Result<(), String> {
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .current_dir(unit.parent().expect("unit dir")));
    if out.success() && out.stdout.trim().is_empty() && out.stderr.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{out:?}"))
    }
}

/// `systemd-analyze security --offline=true UNIT`: the overall exposure
/// (0 to 10) and the whole report.
fn exposure(unit: &Path) -> (f64, String) {
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .current_dir(unit.parent().expect("unit dir")));
    let report = format!("{}{}", out.stdout, out.stderr);
    let level = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for calltrail.service:"))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in: {report}"));
    (level, report)
}

/// Whether the security report rates `setting` as confined (✓) rather than
/// exposed (✗).
fn confined(report: &str, setting: &str) -> bool {
    let line = report
        .lines()
        .find(|l| l.contains(setting))
        .unwrap_or_else(|| panic!("{setting} not in the security report: {report}"));
    assert!(
        line.contains('✓') || line.contains('✗'),
        "no mark on the line of {setting}: {line}"
    );
    line.contains('✓')
}

/// Copies the unit as installed (from `unit`) into `dir`, its ExecStart
/// pointing at `binary` (verify insists that the program exists), with the
/// callbacks drop-in beside it when `callbacks` is given. Returns the copy.
fn unit_copy(dir: &Path, unit: &Path, binary: &Path, callbacks: Option<&Path>) -> PathBuf {
    let text = read(unit);
    let exec = "ExecStart=/usr/bin/calltrail ";
    assert!(text.contains(exec), "the unit's ExecStart changed: {text}");
    let copy = dir.join("calltrail.service");
    write(
        &copy,
        &text.replace(exec, &format!("ExecStart={} ", binary.display())),
    );
    let drop_in = dir.join("calltrail.service.d").join("callbacks.conf");
    match callbacks {
        Some(c) => write(&drop_in, &read(c)),
        None => {
            let _ = std::fs::remove_file(&drop_in);
        }
    }
    copy
}

/// The unit and the drop-in pass verify; a broken directive in either does
/// not; the sandbox's main settings hold, and the drop-in opens only what
/// callbacks need.
fn check_unit(dir: &Path, unit: &Path, drop_in: &Path, binary: &Path) {
    let plain = unit_copy(dir, unit, binary, None);
    verify(&plain).unwrap_or_else(|e| panic!("the unit fails verify: {e}"));
    let (alone, report) = exposure(&plain);
    assert!(
        alone <= 2.0,
        "exposure {alone} (at most 2.0 wanted):\n{report}"
    );
    for setting in [
        "ProtectSystem=",
        "ProtectHome=",
        "PrivateTmp=",
        "NoNewPrivileges=",
        "ProtectKernelTunables=",
        "ProtectKernelModules=",
        "CapabilityBoundingSet=~CAP_(CHOWN|FSETID|SETFCAP)",
        "SystemCallFilter=~@privileged",
        "RestrictAddressFamilies=~AF_PACKET",
    ] {
        assert!(
            confined(&report, setting),
            "{setting} not confined:\n{report}"
        );
    }

    let with = unit_copy(dir, unit, binary, Some(drop_in));
    verify(&with).unwrap_or_else(|e| panic!("the unit with callbacks.conf fails verify: {e}"));
    let (level, report) = exposure(&with);
    assert!(
        level <= 2.5,
        "exposure {level} with callbacks.conf:\n{report}"
    );
    // The drop-in is read (chown comes back), and the rest stays.
    assert!(
        !confined(&report, "CapabilityBoundingSet=~CAP_(CHOWN|FSETID|SETFCAP)"),
        "callbacks.conf did not grant CAP_CHOWN:\n{report}"
    );
    for setting in ["ProtectSystem=", "CapabilityBoundingSet=~CAP_SYS_ADMIN"] {
        assert!(
            confined(&report, setting),
            "{setting} not confined with callbacks.conf:\n{report}"
        );
    }

    // The check itself fails on a broken unit or drop-in.
    let good_unit = read(&with);
    let good_drop_in = read(drop_in);
    for (in_unit, from, to) in [
        (true, "ProtectSystem=strict", "ProtectSystem=strictest"),
        (true, "Restart=on-failure", "Restrat=on-failure"),
        (true, "MemoryMax=768M", "MemoryMax=lots"),
        (false, "ReadWritePaths=", "ReadWritePath="),
        (
            false,
            "AmbientCapabilities=CAP_CHOWN",
            "AmbientCapability=CAP_CHOWN",
        ),
        (false, "SystemCallFilter=@chown", "SystemCallFilter=@chowm"),
    ] {
        let (path, good) = if in_unit {
            (with.clone(), &good_unit)
        } else {
            (
                dir.join("calltrail.service.d/callbacks.conf"),
                &good_drop_in,
            )
        };
        // A directive is a line of its own (the comments may quote it).
        let (from, to) = (format!("\n{from}"), format!("\n{to}"));
        assert!(
            good.contains(&from),
            "{from:?} is gone from {}",
            path.display()
        );
        let broken = good.replacen(&from, &to, 1);
        let to = &to[1..];
        let line = 1 + broken
            .lines()
            .position(|l| l.starts_with(to))
            .expect("the broken line");
        write(&path, &broken);
        let verdict = verify(&with);
        write(&path, good);
        let why = verdict
            .err()
            .unwrap_or_else(|| panic!("verify accepted {to:?} in {}", path.display()));
        let place = format!("{}:{line}:", path.display());
        assert!(
            why.contains(&place),
            "verify's complaint about {to:?} does not point at {place}: {why}"
        );
    }
    verify(&with).expect("the restored unit verifies again");
}

#[test]
fn the_unit_and_its_callbacks_drop_in_pass_systemd_analyze_verify() {
    let tmp = tempfile::tempdir().expect("tempdir");
    check_unit(
        tmp.path(),
        &sample("calltrail.service"),
        &sample("calltrail.service.d/callbacks.conf"),
        Path::new(daemon::bin()),
    );
    // The command line it runs is `run` with the package's config.
    let text = read(&sample("calltrail.service"));
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let cli = <calltrail::cli::Cli as clap::Parser>::try_parse_from(exec.split_whitespace())
        .unwrap_or_else(|e| panic!("ExecStart={exec}: {e}"));
    assert_eq!(cli.config, Path::new("/etc/calltrail/calltrail.toml"));
    assert!(
        matches!(cli.command, calltrail::cli::Command::Run { once: false }),
        "{cli:?}"
    );
}

/// The target directory of this test build (`…/debug/calltrail` → `…`).
fn target_dir() -> PathBuf {
    Path::new(daemon::bin())
        .ancestors()
        .nth(2)
        .expect("target dir")
        .to_path_buf()
}

/// Packs the `.deb` from this test build into `out` (cargo-deb with
/// `--profile dev --no-build`: the package's assets and scripts, this
/// build's binary, stripped). Returns its path.
fn build_deb(out: &Path) -> PathBuf {
    std::fs::create_dir_all(out).expect("out dir");
    let cargo_deb = tools::cargo_deb();
    let o = run(Command::new(&cargo_deb)
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--output",
        ])
        .arg(out)
        .arg("--manifest-path")
        .arg(tools::repo_root().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir())
        .current_dir(tools::repo_root()));
    assert!(o.success(), "cargo-deb failed: {o:?}");
    // cargo-deb's work directory (the stripped binary, ~80 MB): not left in
    // the target directory.
    let _ = std::fs::remove_dir_all(target_dir().join("calltrail"));
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("read out dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(
        debs.len(),
        1,
        "one .deb wanted in {}: {debs:?}",
        out.display()
    );
    debs[0].clone()
}

/// A file's size and modification time, if it exists.
type Stamp = Option<(u64, i64, i64)>;

/// What of the host the install must not change: the user database and
/// dpkg's log and status (size and modification time; as non-root, shadow
/// files may not be readable).
fn host_state() -> Vec<(String, Stamp)> {
    [
        "/etc/passwd",
        "/etc/group",
        "/etc/shadow",
        "/etc/gshadow",
        "/var/log/dpkg.log",
        "/var/lib/dpkg/status",
    ]
    .iter()
    .map(|p| {
        let m = std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.mtime(), m.mtime_nsec()));
        (p.to_string(), m)
    })
    .collect()
}

/// A root with just what dpkg and the maintainer scripts need: dpkg's
/// admin directory, the user database of a Debian host with Asterisk
/// installed (root, adm, asterisk), and a `policy-rc.d` that forbids
/// starting or stopping services (Debian's way of keeping a chroot's
/// packages from touching the running system).
fn throwaway_root(root: &Path) {
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    write(&root.join("var/lib/dpkg/status"), "");
    write(
        &root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\n\
         asterisk:x:110:114:Asterisk PBX daemon,,,:/var/lib/asterisk:/usr/sbin/nologin\n",
    );
    write(
        &root.join("etc/group"),
        "root:x:0:\nadm:x:4:\nasterisk:x:114:\n",
    );
    let policy = root.join("usr/sbin/policy-rc.d");
    write(&policy, "#!/bin/sh\nexit 101\n");
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// `dpkg --root=ROOT … -i DEB`: maintainer scripts run on the host with
/// `DPKG_ROOT` set (chrootless: the root has no shell), dependencies not
/// checked (the root has no other packages), dpkg's log kept in the root.
/// As non-root, under fakeroot (dpkg wants root to set owners).
fn dpkg_install(root: &Path, deb: &Path) -> CmdOutput {
    let mut args: Vec<String> = vec![
        format!("--root={}", root.display()),
        format!("--log={}", root.join("var/log/dpkg.log").display()),
        "--force-script-chrootless".into(),
        "--force-depends".into(),
    ];
    let as_root = nix::unistd::geteuid().is_root();
    let mut cmd = if as_root {
        Command::new("dpkg")
    } else {
        args.insert(0, "--force-not-root".into());
        let mut c = Command::new("fakeroot");
        c.arg("dpkg");
        c
    };
    cmd.args(&args).arg("-i").arg(deb);
    run(&mut cmd)
}

/// The `name:` line of a passwd or group file, split at `:`.
fn entry(file: &Path, name: &str) -> Vec<String> {
    read(file)
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {}:\n{}", file.display(), read(file)))
        .split(':')
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_deb_installs_into_a_throwaway_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let deb = build_deb(&tmp.path().join("out"));
    let version = env!("CARGO_PKG_VERSION");

    // What dpkg will read of it.
    let field = |name: &str| {
        let o = run(Command::new("dpkg-deb").arg("--field").arg(&deb).arg(name));
        assert!(o.success(), "dpkg-deb --field {name}: {o:?}");
        o.stdout.trim().to_owned()
    };
    assert_eq!(field("Package"), "calltrail");
    assert_eq!(field("Version"), format!("{version}-1"));
    let depends = field("Depends");
    for d in ["libc6", "systemd-sysusers", "systemd-tmpfiles"] {
        assert!(depends.contains(d), "Depends: {depends}");
    }
    let control = tmp.path().join("control");
    let o = run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    assert!(o.success(), "dpkg-deb -e: {o:?}");
    assert_eq!(
        read(&control.join("conffiles")),
        "/etc/calltrail/calltrail.toml\n"
    );
    let postinst = read(&control.join("postinst"));
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");
    assert!(
        postinst.contains("systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} calltrail.conf"),
        "no sysusers call in the postinst:\n{postinst}"
    );
    // Not started on install (nor enabled: below); restarted on upgrade if
    // it runs.
    assert!(
        postinst.contains("try-restart calltrail.service"),
        "{postinst}"
    );
    assert!(
        !postinst.contains("_dh_action=start") && !postinst.contains("deb-systemd-invoke start"),
        "the postinst starts the unit:\n{postinst}"
    );

    // Installed into a throwaway root.
    let root = tmp.path().join("root");
    throwaway_root(&root);
    let before = host_state();
    let o = dpkg_install(&root, &deb);
    assert!(o.success(), "dpkg -i into {}: {o:?}", root.display());
    assert_eq!(
        host_state(),
        before,
        "installing into the root changed the host"
    );
    let o = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Status} ${Version}", "calltrail"]));
    assert_eq!(
        o.stdout,
        format!("install ok installed {version}-1"),
        "dpkg-query: {o:?}"
    );

    // The files.
    let binary = root.join("usr/bin/calltrail");
    let o = run(Command::new(&binary).arg("--version"));
    assert!(o.success(), "{o:?}");
    assert_eq!(o.stdout.trim(), format!("calltrail {version}"));
    let unit = root.join("usr/lib/systemd/system/calltrail.service");
    let drop_in = root.join("usr/share/calltrail/calltrail.service.d/callbacks.conf");
    let config = root.join("etc/calltrail/calltrail.toml");
    for (installed, source) in [
        (&unit, sample("calltrail.service")),
        (&drop_in, sample("calltrail.service.d/callbacks.conf")),
        (&config, sample("calltrail.deb.toml")),
        (
            &root.join("usr/lib/sysusers.d/calltrail.conf"),
            sample("calltrail.sysusers"),
        ),
    ] {
        assert_eq!(read(installed), read(&source), "{}", installed.display());
    }
    assert!(
        read(&root.join("var/lib/dpkg/info/calltrail.conffiles"))
            .lines()
            .any(|l| l.trim() == "/etc/calltrail/calltrail.toml"),
        "dpkg does not hold the config as a conffile"
    );
    assert!(
        !root
            .join("etc/systemd/system/multi-user.target.wants/calltrail.service")
            .exists(),
        "the unit was enabled on install"
    );

    // What the maintainer scripts made, in the root.
    let user = entry(&root.join("etc/passwd"), "calltrail");
    assert_eq!(user[5], "/var/lib/calltrail", "{user:?}");
    assert_eq!(user[6], "/usr/sbin/nologin", "{user:?}");
    let uid: u32 = user[2].parse().expect("uid");
    let gid: u32 = user[3].parse().expect("gid");
    assert!(uid < 1000, "not a system user: {user:?}");
    let asterisk = entry(&root.join("etc/group"), "asterisk");
    assert!(
        asterisk[3].split(',').any(|m| m == "calltrail"),
        "calltrail is not in the group asterisk: {asterisk:?}"
    );
    let adm = entry(&root.join("etc/group"), "adm");
    assert!(!adm[3].contains("calltrail"), "{adm:?}");
    let state = std::fs::metadata(root.join("var/lib/calltrail")).expect("/var/lib/calltrail");
    assert!(state.is_dir());
    assert_eq!(state.mode() & 0o7777, 0o750);
    if nix::unistd::geteuid().is_root() {
        assert_eq!((state.uid(), state.gid()), (uid, gid));
    }

    // The unit as installed verifies, with the binary the package installed.
    check_unit(&tmp.path().join("verify"), &unit, &drop_in, &binary);

    // The config as installed: check-config accepts it as it is.
    let o = run(Command::new(&binary)
        .arg("--config")
        .arg(&config)
        .arg("check-config"));
    assert!(o.success(), "check-config of the installed config: {o:?}");
    assert!(
        o.stdout
            .contains("OK (1 source, store /var/lib/calltrail/calltrail.duckdb, kafka off, email outbox /var/lib/calltrail/outbox, http 127.0.0.1:8479)"),
        "{o:?}"
    );

    // And it works: its paths moved into the root (the only change besides
    // ports free for this test), Asterisk's sample log stored, each line
    // once.
    let log = root.join("var/log/asterisk/queue_log");
    std::fs::create_dir_all(log.parent().expect("log dir")).expect("mkdir");
    std::fs::copy(sample("queue_log"), &log).expect("copy the sample log");
    let text = read(&config);
    let moved = text
        .replace("\"/var/", &format!("\"{}/var/", root.display()))
        .replace(
            "# listen = \"127.0.0.1:8479\"",
            &format!("listen = \"127.0.0.1:{}\"", tools::free_port()),
        )
        + &format!("\n[agi]\nlisten = \"127.0.0.1:{}\"\n", tools::free_port());
    assert_ne!(moved, text);
    let rooted = tmp.path().join("rooted.toml");
    write(&rooted, &moved);
    let out = calltrail(&rooted, &["run", "--once"]);
    assert!(
        out.status.success(),
        "run --once with the installed config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&log).expect("read the log");
    let lines = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count() as i64;
    let stored = query_i64(&rooted, "SELECT count(*) FROM events")
        + query_i64(&rooted, "SELECT count(*) FROM rejects");
    assert_eq!(stored, lines, "events + rejects vs non-blank lines");
    assert!(root.join("var/lib/calltrail/calltrail.duckdb").is_file());
    assert!(root.join("var/lib/calltrail/outbox").is_dir());
}

/// The queue_log lines of call `i`, ended at `now` (Unix time) as Asterisk
/// writes them: enter, then an abandon (every third call) or a connect and
/// its completion.
fn call_lines(i: u64, now: u64) -> String {
    let call = format!("{now}.{i}");
    let caller = format!("7916{:07}", i % 5000);
    if i.is_multiple_of(3) {
        format!(
            "{}|{call}|sales|NONE|ENTERQUEUE||{caller}|1\n\
             {now}|{call}|sales|NONE|ABANDON|1|1|7\n",
            now - 7
        )
    } else {
        format!(
            "{}|{call}|sales|NONE|ENTERQUEUE||{caller}|1\n\
             {}|{call}|sales|PJSIP/201|CONNECT|5|{call}b|3\n\
             {now}|{call}|sales|PJSIP/201|COMPLETECALLER|5|55|1\n",
            now - 60,
            now - 55
        )
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Waits (polling twice a second: each query holds a read transaction,
/// which would hold DuckDB's automatic checkpoint back if asked
/// continuously) until the daemon behind `cfg` stored at least `n` events.
fn wait_for_events(cfg: &Path, n: i64) -> bool {
    for _ in 0..240 {
        if query_i64(cfg, "SELECT count(*) FROM events") >= n {
            return true;
        }
        thread::sleep(Duration::from_millis(500));
    }
    false
}

/// Whether every thread of `pid` is stopped (SIGSTOP is asynchronous).
fn all_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
            })
            .is_some_and(|state| state == "T" || state == "t")
    })
}

fn signal(pid: u32, sig: &str) {
    let o = run(Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string()));
    assert!(o.success(), "kill -{sig} {pid}: {o:?}");
}

/// Calls appended at once (about 5 lines), every 4 ms: ~1,300 lines/s.
const BURST: u64 = 2;
/// Copies taken, one after every this many events more. (DuckDB folds its
/// WAL into the file at 16 MB, about 30,000 events here: more than this
/// test stores, so its copies are a database file from the last clean stop
/// with a WAL on top; a copy during a checkpoint is what a kill -9 during
/// one leaves, which the chaos tests cover.)
const EVERY: i64 = 4_000;
const COPIES: i64 = 2;

#[test]
fn a_store_copied_while_the_daemon_is_frozen_opens_and_resumes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t0 = std::time::Instant::now();
    let dir = tmp.path().join("live");
    std::fs::create_dir_all(dir.join("logs")).expect("mkdir");
    let cfg = queue_only_config(&dir, "");
    let log = dir.join("logs/queue_log");
    let mut first = String::new();
    for i in 0..200 {
        first.push_str(&call_lines(i, unix_now()));
    }
    write(&log, &first);
    // A store that has been running: its first lines folded into the
    // database file at a clean stop, the next ones in the WAL on top.
    let daemon = Daemon::start(&cfg, &dir.join("first.log"));
    daemon.wait_http();
    assert!(wait_for_events(&cfg, 1), "{}", daemon.log());
    daemon.terminate(MINUTE);
    let daemon = Daemon::start(&cfg, &dir.join("daemon.log"));
    daemon.wait_http();

    // Asterisk keeps writing: a few calls every few milliseconds.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(200));
    let writer = {
        let (stop, calls, log) = (stop.clone(), calls.clone(), log.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let i = calls.fetch_add(BURST, Ordering::Relaxed);
                let now = unix_now();
                let lines: String = (i..i + BURST).map(|i| call_lines(i, now)).collect();
                daemon::append(&log, lines.as_bytes());
                thread::sleep(Duration::from_millis(4));
            }
        })
    };

    // Copies, each taken while the daemon is frozen mid-ingest.
    let mut copies = Vec::new();
    for n in 0..COPIES {
        let want = EVERY * (n + 1);
        assert!(
            wait_for_events(&cfg, want),
            "the daemon stored fewer than {want} events:\n{}",
            daemon.log()
        );
        let copy = tmp.path().join(format!("copy{n}"));
        std::fs::create_dir_all(&copy).expect("mkdir");
        signal(daemon.pid(), "STOP");
        assert!(
            wait_until(Duration::from_secs(10), || all_stopped(daemon.pid())),
            "the daemon did not stop"
        );
        for (from, to) in [
            ("store.duckdb", "store.duckdb"),
            ("store.duckdb.wal", "store.duckdb.wal"),
        ] {
            match std::fs::copy(dir.join(from), copy.join(to)) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && from.ends_with(".wal") => {}
                Err(e) => panic!("copy {from}: {e}"),
            }
        }
        signal(daemon.pid(), "CONT");
        println!(
            "service: {:?} copy {n}: store {} bytes, WAL {:?} bytes",
            t0.elapsed(),
            std::fs::metadata(copy.join("store.duckdb")).map_or(0, |m| m.len()),
            std::fs::metadata(copy.join("store.duckdb.wal"))
                .ok()
                .map(|m| m.len())
        );
        copies.push(copy);
    }
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    let total = read(&log).lines().count() as i64;
    assert!(
        wait_until(3 * MINUTE, || query_i64(
            &cfg,
            "SELECT count(*) FROM events"
        ) == total),
        "the daemon did not store all {total} lines:\n{}",
        daemon.log()
    );
    // The set of event ids, in one row: how many, how many distinct, and a
    // sum of their hashes.
    let ids_sql = "SELECT count(*) AS n, count(DISTINCT event_id) AS distinct_ids, \
                   sum(hash(event_id)) AS h FROM events";
    let live_ids = query_json(&cfg, ids_sql);
    assert_eq!(
        live_ids[0]["n"], live_ids[0]["distinct_ids"],
        "{live_ids:?}"
    );
    assert_eq!(live_ids[0]["n"].as_i64(), Some(total), "{live_ids:?}");
    daemon.terminate(MINUTE);

    for copy in &copies {
        let copy_cfg = copy.join("calltrail.toml");
        write(
            &copy_cfg,
            &format!(
                "[store]\npath = \"store.duckdb\"\n[http]\nlisten = \"127.0.0.1:{}\"\n\
                 [agi]\nlisten = \"127.0.0.1:{}\"\n\
                 [[sources]]\nname = \"{QUEUE_SOURCE}\"\nkind = \"asterisk_queue_log\"\n\
                 path = \"{}\"\npbx = \"pbx1\"\n",
                tools::free_port(),
                tools::free_port(),
                log.display()
            ),
        );
        // It opens, and holds exactly the lines before its checkpoint.
        let row = query_json(
            &copy_cfg,
            &format!(
                "SELECT (SELECT byte_offset FROM checkpoints WHERE source = '{QUEUE_SOURCE}') \
                 AS byte_offset, (SELECT count(*) FROM events) AS events, \
                 (SELECT count(*) FROM rejects) AS rejects"
            ),
        );
        let (offset, events, rejects) = (
            row[0]["byte_offset"].as_u64().expect("a checkpoint") as usize,
            row[0]["events"].as_i64().expect("events"),
            row[0]["rejects"].as_i64().expect("rejects"),
        );
        let bytes = std::fs::read(&log).expect("read log");
        let before = bytes[..offset].iter().filter(|&&b| b == b'\n').count() as i64;
        assert_eq!(rejects, 0, "{}", copy.display());
        assert_eq!(
            events,
            before,
            "{}: events vs lines before the checkpoint (offset {offset})",
            copy.display()
        );
        assert!(
            events >= EVERY && events < total,
            "{}: {events} of {total}",
            copy.display()
        );
        println!(
            "service: {}: {events} of {total} lines, checkpoint at byte {offset}",
            copy.display()
        );
        // It resumes: every line once, the same events as the live store,
        // the derived state equal to a rebuild.
        let out = calltrail(&copy_cfg, &["run", "--once"]);
        assert!(
            out.status.success(),
            "run --once on {}: {}",
            copy.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            query_json(&copy_cfg, ids_sql),
            live_ids,
            "{}",
            copy.display()
        );
        let diffs = state_differs_from_rederived(&copy_cfg);
        assert!(diffs.is_empty(), "{}: {diffs:#?}", copy.display());
    }
}
