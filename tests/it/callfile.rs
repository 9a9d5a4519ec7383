//! The call-file writer (`calltrail_sinks::callfile`) over a real spool
//! directory, read back by an independent model of Asterisk's `pbx_spool`
//! (`support::asterisk_callfile`); the model itself first checked against
//! what a real Asterisk did with call files
//! (`shared/reference/asterisk-probes/report.txt`, `==== call files`).
//!
//! "Asterisk" here is the test: it renames files into `outgoing_done/` and
//! appends progress and `Status:` lines byte for byte as the report shows.

use crate::support::asterisk_callfile::{parse, parse_with, Reader, SpoolCall};
use calltrail_sinks::callfile::{
    self, CallFile, CallFileError, CallFileOutcome, CallStatus, Field, ProgressTag, Var, VarKind,
    MAX_LINE_BYTES,
};
use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------
// The report

/// One `-- wrote <name> …` probe of the report's call-file section.
struct Probe {
    name: String,
    written: Vec<u8>,
    user_event: Option<String>,
    done: Vec<u8>,
}

fn report() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/asterisk-probes/report.txt");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn report_probes() -> Vec<Probe> {
    let text = report();
    let start = text
        .find("==== call files (pbx_spool)")
        .expect("report.txt has a ==== call files section");
    let section = &text[start..];
    let section = &section[..section[4..].find("\n====").map_or(section.len(), |i| i + 4)];
    let mut probes: Vec<Probe> = Vec::new();
    #[derive(PartialEq)]
    enum In {
        Nothing,
        Written,
        Done,
    }
    let mut state = In::Nothing;
    for line in section.lines() {
        if let Some(rest) = line.strip_prefix("-- wrote ") {
            let name = rest.split_whitespace().next().expect("a name").to_string();
            probes.push(Probe {
                name,
                written: Vec::new(),
                user_event: None,
                done: Vec::new(),
            });
            state = In::Written;
            continue;
        }
        let Some(p) = probes.last_mut() else {
            continue;
        };
        if line.is_empty() {
            state = In::Nothing;
        } else if let Some(rest) = line.strip_prefix("      ") {
            if state == In::Done {
                p.done.extend_from_slice(rest.as_bytes());
                p.done.push(b'\n');
            }
        } else if let Some(rest) = line.strip_prefix("   ") {
            if let Some(ev) = rest.strip_prefix("dialplan ran: UserEvent ") {
                p.user_event = Some(ev.to_string());
            }
            state = if rest.starts_with("outgoing_done/") {
                In::Done
            } else {
                In::Nothing
            };
        } else if state == In::Written {
            p.written.extend_from_slice(line.as_bytes());
            p.written.push(b'\n');
        }
    }
    probes
}

#[test]
fn the_model_reads_the_probe_files_as_the_real_asterisk_did() {
    let probes = report_probes();
    let names: Vec<&str> = probes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["probe-ok.call", "probe-busy.call"]);

    let ok = &probes[0];
    let call = parse(&ok.written).expect("the probe file is valid");
    // What the real Asterisk showed: the dialplan ran with the Setvar and the
    // CallerID split into name and number.
    let ev = ok.user_event.as_deref().expect("probe-ok ran the dialplan");
    assert!(ev.contains("'Who': 'call-file-ok'"), "{ev}");
    assert!(ev.contains("'CallerID': 'Callback <201>'"), "{ev}");
    assert_eq!(call.vars, [("WHO".to_string(), "call-file-ok".to_string())]);
    assert_eq!(
        (call.cid_name.as_str(), call.cid_num.as_str()),
        ("Callback", "201")
    );
    assert_eq!(
        (call.tech.as_str(), call.dest.as_str()),
        ("Local", "callfile@probe/n")
    );
    assert_eq!((call.app.as_str(), call.data.as_str()), ("Wait", "2"));
    assert_eq!(
        (call.max_retries, call.retry_time, call.wait_time),
        (1, 3, 10)
    );
    assert!(call.archive && call.always_delete);
    assert!(call.warnings.is_empty(), "{:?}", call.warnings);

    // The archived files: the model still reads the call, counting retries
    // from the progress lines Asterisk appended.
    let done_ok = parse(&ok.done).expect("archived probe-ok");
    assert_eq!((done_ok.retries, done_ok.calling_pid), (0, 27676));
    assert!(
        done_ok
            .keys
            .ends_with(&["startretry".into(), "status".into()]),
        "{:?}",
        done_ok.keys
    );
    let busy = &probes[1];
    assert!(busy.user_event.is_none());
    let done_busy = parse(&busy.done).expect("archived probe-busy");
    assert_eq!((done_busy.retries, done_busy.calling_pid), (1, 27676));
    // The only warning: `Status` is not a key apply_outgoing knows (it is
    // only ever appended to archived files).
    assert_eq!(
        done_busy.warnings,
        ["Unknown keyword 'status' at line 15".to_string()]
    );

    // And calltrail's reader agrees with the real archive.
    let spool = Spool::new();
    for (probe, status, attempts) in [
        (ok, CallStatus::Completed, 1),
        (busy, CallStatus::Expired, 2),
    ] {
        fs::write(spool.done(&probe.name), &probe.done).expect("write archive");
        assert_eq!(
            callfile::outcome(spool.path(), &probe.name).expect("outcome"),
            CallFileOutcome::Done { status, attempts },
            "{}",
            probe.name
        );
    }
    // probe-busy's lines as calltrail parses them.
    fs::write(spool.outgoing("probe-busy.call"), &busy.done).expect("write");
    let CallFileOutcome::Pending(p) =
        callfile::outcome(spool.path(), "probe-busy.call").expect("outcome")
    else {
        panic!("a file in outgoing/ is pending");
    };
    let tags: Vec<(ProgressTag, u64, i64, i64)> = p
        .lines
        .iter()
        .map(|l| (l.tag, l.pid, l.retries, l.unix_time))
        .collect();
    assert_eq!(
        tags,
        [
            (ProgressTag::StartRetry, 27676, 1, 1_796_321_100),
            (ProgressTag::EndRetry, 27676, 1, 1_796_321_097),
            (ProgressTag::StartRetry, 27676, 2, 1_796_321_103),
        ]
    );
}

// ---------------------------------------------------------------------------
// A spool and a fake Asterisk

struct Spool(tempfile::TempDir);

impl Spool {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("outgoing")).expect("outgoing");
        fs::create_dir(dir.path().join("outgoing_done")).expect("outgoing_done");
        Self(dir)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn outgoing(&self, name: &str) -> PathBuf {
        self.path().join("outgoing").join(name)
    }
    fn done(&self, name: &str) -> PathBuf {
        self.path().join("outgoing_done").join(name)
    }
    fn ls(&self, dir: &str) -> BTreeSet<String> {
        fs::read_dir(self.path().join(dir))
            .expect("ls")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect()
    }
}

/// `safe_append`: `"\n%s: %ld %d (%ld)\n"`.
fn asterisk_progress(path: &Path, tag: &str, pid: u32, retries: i32, time: i64) {
    append(path, &format!("\n{tag}: {pid} {retries} ({time})\n"));
}

/// `remove_from_queue` with `Archive: yes`: rename, then `"Status: %s\n"`.
fn asterisk_archive(spool: &Spool, name: &str, status: &str) {
    fs::rename(spool.outgoing(name), spool.done(name)).expect("archive");
    append(&spool.done(name), &format!("Status: {status}\n"));
}

fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
}

// ---------------------------------------------------------------------------
// What the writer must produce

fn base() -> CallFile {
    CallFile {
        channel: "Local/cb@calltrail-callback/n".into(),
        callerid_name: "Callback".into(),
        callerid_num: "+79161234567".into(),
        context: "calltrail-callback-connect".into(),
        extension: "s".into(),
        priority: 1,
        max_retries: 0,
        retry_time_s: 300,
        wait_time_s: 60,
        account: None,
        archive: true,
        vars: vec![
            Var::text("CT_EPISODE", "ep42"),
            Var::number("CT_NUMBER", "+79161234567"),
        ],
    }
}

/// What Asterisk must make of `file`, derived from the struct (not from the
/// rendered text).
fn expected(file: &CallFile) -> SpoolCall {
    let (tech, dest) = file.channel.split_once('/').expect("Tech/dest");
    let mut keys: Vec<String> = [
        "channel",
        "callerid",
        "context",
        "extension",
        "priority",
        "maxretries",
        "retrytime",
        "waittime",
    ]
    .map(String::from)
    .to_vec();
    if file.account.is_some() {
        keys.push("account".into());
    }
    keys.push("archive".into());
    keys.extend(file.vars.iter().map(|_| "set".to_string()));
    SpoolCall {
        tech: tech.into(),
        dest: dest.into(),
        cid_name: file.callerid_name.clone(),
        cid_num: file.callerid_num.clone(),
        app: String::new(),
        data: String::new(),
        context: file.context.clone(),
        exten: file.extension.clone(),
        priority: file.priority as i32,
        max_retries: file.max_retries as i32,
        retry_time: file.retry_time_s as i32,
        wait_time: file.wait_time_s as i32,
        retries: 0,
        calling_pid: 0,
        account: file.account.clone().unwrap_or_default(),
        codecs: Vec::new(),
        vars: file
            .vars
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect(),
        archive: file.archive,
        always_delete: true,
        early_media: false,
        keys,
        warnings: Vec::new(),
    }
}

/// The model reads `bytes` as exactly `file`, with both line readers.
#[track_caller]
fn assert_reads_as(bytes: &[u8], file: &CallFile) {
    let want = expected(file);
    for reader in [Reader::Master, Reader::Fgets256] {
        let got = parse_with(bytes, reader).unwrap_or_else(|e| {
            panic!(
                "{reader:?}: invalid: {e}\n{}",
                String::from_utf8_lossy(bytes)
            )
        });
        assert_eq!(got, want, "{reader:?}\n{}", String::from_utf8_lossy(bytes));
    }
    assert!(
        bytes
            .split(|&b| b == b'\n')
            .all(|l| l.len() <= MAX_LINE_BYTES),
        "a line over {MAX_LINE_BYTES} bytes"
    );
}

#[test]
fn a_written_file_reads_back_exactly() {
    let spool = Spool::new();
    let mut file = base();
    file.channel = "PJSIP/79161234567@trunk".into();
    file.callerid_name = "Иван Петров (VIP), O'Brien & Co | No#1".into();
    file.priority = 3;
    file.max_retries = 2;
    file.retry_time_s = 120;
    file.wait_time_s = 25;
    file.account = Some("callback".into());
    file.vars.push(Var::text("__CT_QUEUE", "support"));
    file.vars
        .push(Var::text("CT_NOTE", "a=b, c|d & <e> 'f' \"g\" 50%"));
    let path = callfile::write(spool.path(), "ct-ep42-1.call", &file, None, None).expect("write");
    assert_eq!(path, spool.outgoing("ct-ep42-1.call"));
    let bytes = fs::read(&path).expect("read");
    assert_eq!(bytes, file.render().expect("render").into_bytes());
    assert_reads_as(&bytes, &file);
    assert_eq!(
        spool.ls("outgoing"),
        BTreeSet::from(["ct-ep42-1.call".into()])
    );
    assert!(spool.ls("outgoing_done").is_empty());
    assert!(spool.ls("tmp").is_empty(), "the temp file is gone");
}

#[test]
fn a_future_mtime_and_the_owner_are_kept() {
    let spool = Spool::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let when = UNIX_EPOCH + Duration::from_secs(now + 3600);
    let me = fs::metadata(spool.path()).expect("stat");
    let path = callfile::write(
        spool.path(),
        "ct-later.call",
        &base(),
        Some(when),
        Some((me.uid(), me.gid())),
    )
    .expect("write");
    let meta = fs::metadata(&path).expect("stat");
    assert_eq!(meta.modified().expect("mtime"), when);
    assert_eq!((meta.uid(), meta.gid()), (me.uid(), me.gid()));
    assert_eq!(meta.mode() & 0o7777 & !0o660, 0, "mode {:o}", meta.mode());
    assert_reads_as(&fs::read(&path).expect("read"), &base());
}

#[test]
fn the_same_name_is_never_written_twice() {
    let spool = Spool::new();
    let first = callfile::write(spool.path(), "ct-ep1-1.call", &base(), None, None).expect("write");
    let original = fs::read(&first).expect("read");
    let mut other = base();
    other.callerid_num = "201".into();
    let err = callfile::write(spool.path(), "ct-ep1-1.call", &other, None, None)
        .expect_err("already queued");
    assert!(
        matches!(&err, CallFileError::AlreadyThere { path } if *path == first),
        "{err:?}"
    );
    assert!(!err.is_transient());
    asterisk_archive(&spool, "ct-ep1-1.call", "Completed");
    let err = callfile::write(spool.path(), "ct-ep1-1.call", &other, None, None)
        .expect_err("already done");
    assert!(
        matches!(&err, CallFileError::AlreadyThere { path } if *path == spool.done("ct-ep1-1.call")),
        "{err:?}"
    );
    assert!(spool.ls("outgoing").is_empty());
    let archived = fs::read(spool.done("ct-ep1-1.call")).expect("read");
    assert_eq!(&archived[..original.len()], &original[..]);

    // Concurrent writers of one name: exactly one wins.
    let spool = Arc::new(Spool::new());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let spool = Arc::clone(&spool);
            std::thread::spawn(move || {
                let mut file = base();
                file.vars[0].value = format!("writer{i}");
                callfile::write(spool.path(), "same.call", &file, None, None)
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(CallFileError::AlreadyThere { .. }))));
    assert_eq!(spool.ls("outgoing"), BTreeSet::from(["same.call".into()]));
}

#[test]
fn no_temp_file_ever_appears_in_outgoing() {
    let spool = Arc::new(Spool::new());
    let stop = Arc::new(AtomicBool::new(false));
    const N: usize = 300;
    let watcher = {
        let spool = Arc::clone(&spool);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            let mut scans = 0usize;
            loop {
                let done = stop.load(Ordering::SeqCst);
                for name in spool.ls("outgoing") {
                    if seen.insert(name.clone()) {
                        // Whatever appears is a complete call file, at once.
                        let bytes = fs::read(spool.outgoing(&name)).expect("read");
                        let call =
                            parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}: {bytes:?}"));
                        let last = call.vars.last().map(|(n, _)| n.as_str());
                        assert_eq!(last, Some("CT_LAST"), "{name} is complete");
                    }
                }
                scans += 1;
                if done {
                    return (seen, scans);
                }
            }
        })
    };
    for i in 0..N {
        let mut file = base();
        file.vars[0].value = format!("ep{i}");
        file.vars.push(Var::text("CT_LAST", "1"));
        callfile::write(spool.path(), &format!("ct-ep{i}-1.call"), &file, None, None)
            .expect("write");
    }
    stop.store(true, Ordering::SeqCst);
    let (seen, scans) = watcher.join().expect("watcher");
    let want: BTreeSet<String> = (0..N).map(|i| format!("ct-ep{i}-1.call")).collect();
    assert_eq!(
        seen, want,
        "only the final names ever appeared ({scans} scans)"
    );
    assert!(scans > 1);
    assert!(spool.ls("tmp").is_empty());
}

#[test]
fn outcome_follows_a_call_through_asterisk() {
    let spool = Spool::new();
    let name = "ct-ep7-1.call";
    assert_eq!(
        callfile::outcome(spool.path(), name).expect("outcome"),
        CallFileOutcome::Missing
    );
    let mut file = base();
    file.max_retries = 1;
    file.retry_time_s = 3;
    let path = callfile::write(spool.path(), name, &file, None, None).expect("write");
    let pending = |spool: &Spool| match callfile::outcome(spool.path(), name).expect("outcome") {
        CallFileOutcome::Pending(p) => p,
        other => panic!("pending expected, got {other:?}"),
    };
    assert_eq!(
        (pending(&spool).started(), pending(&spool).failed()),
        (0, 0)
    );

    // Attempt 1 is launched, fails; attempt 2 is launched (report.txt's
    // probe-busy sequence).
    asterisk_progress(&path, "StartRetry", 27676, 1, 1_796_321_100);
    let p = pending(&spool);
    assert_eq!((p.started(), p.failed(), p.archiving), (1, 0, false));
    asterisk_progress(&path, "EndRetry", 27676, 1, 1_796_321_097);
    asterisk_progress(&path, "StartRetry", 27676, 2, 1_796_321_103);
    let p = pending(&spool);
    assert_eq!((p.started(), p.failed()), (2, 1));
    // Asterisk's own reading of the file is unchanged, the retries counted.
    let call = parse(&fs::read(&path).expect("read")).expect("valid");
    let mut want = expected(&file);
    want.retries = 1;
    want.calling_pid = 27676;
    want.keys
        .extend(["startretry", "endretry", "startretry"].map(String::from));
    assert_eq!(call, want);

    // Renamed into outgoing_done/, Status: not appended yet: still pending.
    fs::rename(&path, spool.done(name)).expect("rename");
    let p = pending(&spool);
    assert!(p.archiving);
    assert_eq!(p.started(), 2);
    append(&spool.done(name), "Status: Expired\n");
    assert_eq!(
        callfile::outcome(spool.path(), name).expect("outcome"),
        CallFileOutcome::Done {
            status: CallStatus::Expired,
            attempts: 2
        }
    );
    assert!(!callfile::cancel(spool.path(), name).expect("cancel"));

    // Completed on the first attempt.
    let name = "ct-ep8-1.call";
    let path = callfile::write(spool.path(), name, &base(), None, None).expect("write");
    asterisk_progress(&path, "StartRetry", 27676, 1, 1_796_321_097);
    asterisk_archive(&spool, name, "Completed");
    assert_eq!(
        callfile::outcome(spool.path(), name).expect("outcome"),
        CallFileOutcome::Done {
            status: CallStatus::Completed,
            attempts: 1
        }
    );

    // An invalid file: Failed with no attempt.
    fs::write(
        spool.outgoing("bad.call"),
        "Channel: PJSIP/201\nArchive: yes\n",
    )
    .expect("write");
    assert!(parse(&fs::read(spool.outgoing("bad.call")).expect("read")).is_err());
    asterisk_archive(&spool, "bad.call", "Failed");
    assert_eq!(
        callfile::outcome(spool.path(), "bad.call").expect("outcome"),
        CallFileOutcome::Done {
            status: CallStatus::Failed,
            attempts: 0
        }
    );

    // Cancelled while queued.
    let name = "ct-ep9-1.call";
    callfile::write(spool.path(), name, &base(), None, None).expect("write");
    assert!(callfile::cancel(spool.path(), name).expect("cancel"));
    assert_eq!(
        callfile::outcome(spool.path(), name).expect("outcome"),
        CallFileOutcome::Missing
    );
    assert!(!callfile::cancel(spool.path(), name).expect("cancel"));
}

// ---------------------------------------------------------------------------
// Injection

/// Hostile strings, each tried in every field.
fn corpus() -> Vec<String> {
    let mut c: Vec<String> = [
        "\n",
        "a\nApplication: System\nData: rm -rf /",
        "x\" <1>\nApplication: System",
        "a\rb",
        "a\r\nChannel: PJSIP/666",
        "a\0b",
        "a\tb",
        "a\u{7f}",
        "a\u{85}b",
        "a\u{2028}b",
        ";",
        "a;b",
        "a\\;b",
        "a\\;;b",
        "|",
        "a|b",
        ",",
        "201,30,tT",
        "&",
        "PJSIP/1&PJSIP/2",
        "\"",
        "say \"hi\"",
        "'quoted'",
        "${SHELL(rm -rf /)}",
        "$[1+1]",
        "${EXTEN}",
        "<script>alert(1)</script>",
        "`id`",
        "$(id)",
        "a && rm -rf / ; echo",
        "x > /etc/passwd",
        "* ? ~ ! % ^",
        "#",
        "#1",
        "a #b",
        "a#b",
        " lead",
        "trail ",
        "\u{a0}nbsp",
        "",
        "back\\slash",
        "CDR(userfield)",
        "__CT_INHERITED",
        "a=b",
        "a:b",
        "Local/1@ctx/n",
        "PJSIP/201",
        "+79161234567",
        "201",
        "from-internal",
        "ep42",
        "Иван Петров",
        "O'Brien & Sons, Ltd. | No#1 (VIP)",
    ]
    .map(String::from)
    .to_vec();
    c.push("x".repeat(10 * 1024));
    c.push("Я".repeat(40)); // 80 bytes: one over the caller-id name limit
    c.push("Я".repeat(39)); // 78 bytes
    c.push(String::from_utf8_lossy(b"\xff\xfe inv\xc3alid \xe2\x82").into_owned());
    c.push(format!("a{}", "b".repeat(300)));
    c
}

/// Every field a string can go into, with the field the writer must name
/// when it rejects the string.
/// Puts a string into one field of a [`CallFile`].
type Setter = fn(&mut CallFile, &str);

fn fields() -> Vec<(&'static str, Setter, Field)> {
    let fields: [(&'static str, Setter, Field); 9] = [
        ("channel", |f, s| f.channel = s.into(), Field::Channel),
        (
            "callerid_name",
            |f, s| f.callerid_name = s.into(),
            Field::CallerIdName,
        ),
        (
            "callerid_num",
            |f, s| f.callerid_num = s.into(),
            Field::CallerIdNum,
        ),
        ("context", |f, s| f.context = s.into(), Field::Context),
        ("extension", |f, s| f.extension = s.into(), Field::Extension),
        ("account", |f, s| f.account = Some(s.into()), Field::Account),
        (
            "var name",
            |f, s| f.vars = vec![Var::text(s, "v")],
            Field::VarName(0),
        ),
        (
            "text var value",
            |f, s| f.vars = vec![Var::text("CT_X", s)],
            Field::VarValue("CT_X".into()),
        ),
        (
            "number var value",
            |f, s| f.vars = vec![Var::number("CT_N", s)],
            Field::VarValue("CT_N".into()),
        ),
    ];
    fields.into()
}

#[test]
fn every_hostile_string_in_every_field_is_rejected_or_read_back_as_is() {
    let spool = Spool::new();
    let mut accepted: Vec<(String, String)> = Vec::new();
    let mut rejected = 0usize;
    for (label, set, field) in fields() {
        for (i, s) in corpus().into_iter().enumerate() {
            let mut file = base();
            set(&mut file, &s);
            let name = format!("inj-{}-{i}.call", label.replace(' ', "_"));
            match callfile::write(spool.path(), &name, &file, None, None) {
                Err(CallFileError::Invalid { field: f, reason }) => {
                    assert_eq!(f, field, "{label} {s:?}: rejected as {f} ({reason})");
                    let msg = CallFileError::Invalid {
                        field: f.clone(),
                        reason: reason.clone(),
                    }
                    .to_string();
                    assert!(
                        msg.contains(&field.to_string()) && msg.contains(&reason.to_string()),
                        "{msg}"
                    );
                    assert!(!spool.outgoing(&name).exists());
                    rejected += 1;
                }
                Err(e) => panic!("{label} {s:?}: unexpected error {e}"),
                Ok(path) => {
                    // Exactly one call, the value intact, no extra key or var.
                    let bytes = fs::read(&path).expect("read");
                    assert_reads_as(&bytes, &file);
                    accepted.push((label.to_string(), s));
                }
            }
        }
    }
    assert!(spool.ls("tmp").is_empty());
    // The corpus must exercise both sides in the free-text fields.
    let accepted_in = |label: &str| accepted.iter().filter(|(l, _)| l == label).count();
    assert!(accepted_in("callerid_name") >= 15, "{accepted:?}");
    assert!(accepted_in("text var value") >= 15, "{accepted:?}");
    assert!(rejected >= 300, "only {rejected} rejections");
    // Hostile printable text that the caller-id name carries verbatim.
    for s in [
        "'quoted'",
        "a|b",
        "201,30,tT",
        "PJSIP/1&PJSIP/2",
        "`id`",
        "$(id)",
        "a && rm -rf / ; echo",
        "* ? ~ ! % ^",
        "Иван Петров",
    ] {
        let expect_ok = !s.contains(';');
        assert_eq!(
            accepted.contains(&("callerid_name".into(), s.into())),
            expect_ok,
            "{s:?}"
        );
    }
    let lossy = String::from_utf8_lossy(b"\xff\xfe inv\xc3alid \xe2\x82").into_owned();
    assert!(accepted.contains(&("callerid_name".into(), lossy)));
}

/// The model is not a rubber stamp: the same strings written naively (no
/// validation) give Asterisk extra keys, cut values or other calls.
#[test]
fn naive_rendering_would_be_injected_and_the_model_sees_it() {
    let naive = |name: &str, var: &str| {
        format!(
            "Channel: Local/cb@calltrail-callback/n\nCallerID: \"{name}\" <201>\n\
             Context: calltrail-callback-connect\nExtension: s\nSet: CT_X={var}\n"
        )
    };
    let call = parse(naive("x\" <1>\nApplication: System\nData: rm -rf /", "v").as_bytes())
        .expect("valid");
    assert_eq!(
        (call.app.as_str(), call.data.as_str()),
        ("System", "rm -rf /\" <201>")
    );
    assert_eq!(call.cid_num, "1");
    let call = parse(naive("a\r\nChannel: PJSIP/666", "v").as_bytes()).expect("valid");
    assert_eq!(call.tech, "PJSIP");
    let call = parse(naive("Office #2", "a;b").as_bytes()).expect("valid");
    assert_eq!(
        (call.cid_name.as_str(), call.cid_num.as_str()),
        ("\"Office", ""),
        "the comment cut the line before the number"
    );
    assert_eq!(call.vars, [("CT_X".to_string(), "a".to_string())]);
    let call = parse(naive("n", "a #b").as_bytes()).expect("valid");
    assert_eq!(call.vars[0].1, "a");
    let call = parse(naive("n", " padded ").as_bytes()).expect("valid");
    assert_eq!(call.vars[0].1, " padded");
    let call = parse(naive(&"Я".repeat(40), "v").as_bytes()).expect("valid");
    assert!(
        call.cid_name.starts_with(&"Я".repeat(39)) && call.cid_name != "Я".repeat(40),
        "an 80-byte name loses its last byte: {:?}",
        call.cid_name
    );
    assert!(!call.warnings.is_empty(), "half a character is left");
    // A 300-byte line: master reads it whole, a 256-byte fgets splits it and
    // runs the tail as a key.
    // `Set: CT_X=` is 10 bytes: 10 + 245 fill the 255 bytes fgets keeps.
    let long = format!("{}Application: System", "a".repeat(245));
    let master = parse(naive("n", &long).as_bytes()).expect("valid");
    let legacy = parse_with(naive("n", &long).as_bytes(), Reader::Fgets256).expect("valid");
    assert_eq!((master.app.as_str(), legacy.app.as_str()), ("", "System"));
    // Function-write names are set as written.
    let call = parse(b"Channel: PJSIP/1\nExtension: s\nSet: CDR(userfield)=x\n").expect("valid");
    assert_eq!(call.vars[0].0, "CDR(userfield)");
}

#[test]
fn the_writer_never_emits_a_line_the_small_buffer_splits() {
    // The longest values every field accepts still fit in 254 bytes.
    let mut file = base();
    file.channel = format!("PJSIP/{}", "9".repeat(194));
    file.callerid_name = "Я".repeat(39);
    file.callerid_num = format!("+{}", "9".repeat(20));
    file.context = "c".repeat(79);
    file.extension = "e".repeat(79);
    file.account = Some("a".repeat(19));
    file.vars = vec![
        Var::text("V".repeat(64), "x".repeat(MAX_LINE_BYTES - 5 - 64 - 1)),
        Var {
            name: "N".into(),
            value: format!("+{}", "1".repeat(20)),
            kind: VarKind::Number,
        },
    ];
    let spool = Spool::new();
    let path = callfile::write(spool.path(), "max.call", &file, None, None).expect("write");
    let bytes = fs::read(&path).expect("read");
    let longest = bytes.split(|&b| b == b'\n').map(<[u8]>::len).max();
    assert_eq!(longest, Some(MAX_LINE_BYTES));
    assert_reads_as(&bytes, &file);
}
