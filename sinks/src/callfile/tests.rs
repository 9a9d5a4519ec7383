//! Unit tests of the call-file writer: every rejection, the rendered bytes,
//! the spool's write/outcome/cancel.

use super::render::check_file_name;
use super::*;
use std::time::{Duration, UNIX_EPOCH};

fn sample() -> CallFile {
    CallFile {
        channel: "Local/201@from-internal/n".into(),
        callerid_name: "Иван Петров".into(),
        callerid_num: "+79161234567".into(),
        context: "calltrail-callback".into(),
        extension: "s".into(),
        priority: 1,
        max_retries: 2,
        retry_time_s: 300,
        wait_time_s: 45,
        account: Some("callback".into()),
        archive: true,
        vars: vec![
            Var::text("CT_EPISODE", "ep42"),
            Var::number("CT_NUMBER", "+79161234567"),
        ],
    }
}

#[track_caller]
fn rejects(file: &CallFile, field: Field, reason: Reason) {
    match file.render() {
        Err(CallFileError::Invalid {
            field: f,
            reason: r,
        }) => {
            assert_eq!((f, r), (field, reason), "{file:?}");
        }
        other => panic!("expected a rejection of {field}, got {other:?}"),
    }
}

fn with(f: impl FnOnce(&mut CallFile)) -> CallFile {
    let mut file = sample();
    f(&mut file);
    file
}

#[test]
fn renders_byte_for_byte() {
    let expected = "Channel: Local/201@from-internal/n\n\
                    CallerID: \"Иван Петров\" <+79161234567>\n\
                    Context: calltrail-callback\n\
                    Extension: s\n\
                    Priority: 1\n\
                    MaxRetries: 2\n\
                    RetryTime: 300\n\
                    WaitTime: 45\n\
                    Account: callback\n\
                    Archive: yes\n\
                    Set: CT_EPISODE=ep42\n\
                    Set: CT_NUMBER=+79161234567\n";
    assert_eq!(sample().render().expect("valid"), expected);
}

#[test]
fn renders_minimal_file() {
    let file = with(|f| {
        f.channel = "PJSIP/201".into();
        f.callerid_name.clear();
        f.callerid_num = "201".into();
        f.account = None;
        f.archive = false;
        f.vars.clear();
        f.max_retries = 0;
    });
    assert_eq!(
        file.render().expect("valid"),
        "Channel: PJSIP/201\nCallerID: \"\" <201>\nContext: calltrail-callback\n\
         Extension: s\nPriority: 1\nMaxRetries: 0\nRetryTime: 300\nWaitTime: 45\n\
         Archive: no\n"
    );
}

#[test]
fn accepts_the_documented_channel_forms() {
    for ch in [
        "Local/201@from-internal/n",
        "Local/cb@calltrail-callback",
        "PJSIP/201",
        "PJSIP/79161234567@trunk",
        "SIP/provider-01",
        "IAX2/provider/79161234567",
        "DAHDI/g1/79161234567",
        "DAHDI/1",
    ] {
        with(|f| f.channel = ch.into())
            .render()
            .unwrap_or_else(|e| panic!("{ch}: {e}"));
    }
}

#[test]
fn rejects_bad_channels() {
    use Reason::*;
    let pat = |s| with(|f| f.channel = String::from(s));
    let shape = Pattern(
        "Local/exten@context[/n], PJSIP|SIP/dest[@endpoint], IAX2|DAHDI/dest or IAX2|DAHDI/peer/dest",
    );
    let tech = Pattern("a technology among PJSIP, SIP, IAX2, DAHDI, Local");
    for (ch, reason) in [
        ("", Empty),
        ("PJSIP/201\nApplication: System", ControlChar('\n')),
        ("PJSIP/201\r", ControlChar('\r')),
        ("PJSIP/2\x0001", ControlChar('\0')),
        ("PJSIP/201;x", Semicolon),
        ("PJSIP/${EXTEN}", Substitution),
        ("PJSIP/$[1+1]", Substitution),
        (" PJSIP/201", Blank),
        ("PJSIP/201 ", Blank),
        ("PJSIP/201&PJSIP/202", ForbiddenChar('&')),
        ("PJSIP/201,30,tT", ForbiddenChar(',')),
        ("PJSIP/201|30", ForbiddenChar('|')),
        ("PJSIP/20 1", ForbiddenChar(' ')),
        ("PJSIP/20$1", ForbiddenChar('$')),
        ("PJSIP/2é1", ForbiddenChar('é')),
        ("PJSIP/#1", ForbiddenChar('#')),
        ("PJSIP", Pattern("Tech/resource")),
        ("System/rm", tech.clone()),
        ("pjsip/201", tech.clone()),
        ("PJSIP/", shape.clone()),
        ("PJSIP/a@b@c", shape.clone()),
        ("PJSIP/201/n", shape.clone()),
        ("Local/201", shape.clone()),
        ("Local/201@ctx/j", shape.clone()),
        ("Local/201@ctx/n/n", shape.clone()),
        ("Local/@ctx", shape.clone()),
        ("Local/201@", shape.clone()),
        ("DAHDI/g1/2/3", shape.clone()),
        ("IAX2//201", shape),
    ] {
        rejects(&pat(ch), Field::Channel, reason);
    }
    let long = format!("PJSIP/{}", "1".repeat(MAX_CHANNEL_BYTES));
    rejects(
        &pat(&long),
        Field::Channel,
        TooLong {
            len: long.len(),
            max: MAX_CHANNEL_BYTES,
        },
    );
}

#[test]
fn rejects_bad_callerid_names() {
    use Reason::*;
    let name = |s: &str| with(|f| f.callerid_name = s.into());
    for (n, reason) in [
        ("a\nChannel: x", ControlChar('\n')),
        ("a\rb", ControlChar('\r')),
        ("a\0b", ControlChar('\0')),
        ("a\tb", ControlChar('\t')),
        ("a\u{7f}b", ControlChar('\u{7f}')),
        ("a\u{85}b", ControlChar('\u{85}')),
        ("a\u{2028}b", ControlChar('\u{2028}')),
        ("a;b", Semicolon),
        ("a\\;b", Semicolon),
        ("${SHELL(rm -rf /)}", Substitution),
        ("$[1+1]", Substitution),
        (" Ivan", Blank),
        ("Ivan ", Blank),
        ("Ivan\u{a0}", Blank),
        ("#1 client", Comment),
        ("Office #2", Comment),
        ("say \"hi\"", ForbiddenChar('"')),
        ("<script>", ForbiddenChar('<')),
        ("a>b", ForbiddenChar('>')),
        ("back\\slash", ForbiddenChar('\\')),
    ] {
        rejects(&name(n), Field::CallerIdName, reason);
    }
    let max = "Я".repeat(39); // 78 bytes
    name(&max).render().expect("78 bytes fit");
    name(&format!("{max}x")).render().expect("79 bytes fit");
    rejects(
        &name(&format!("{max}xy")),
        Field::CallerIdName,
        TooLong { len: 80, max: 79 },
    );
    // Punctuation that is harmless in a quoted caller-id name.
    name("O'Brien & Sons, Ltd. | No#1 (VIP) 50% $5 {x} [y]")
        .render()
        .expect("printable text");
}

#[test]
fn rejects_bad_numbers_everywhere_a_number_goes() {
    use Reason::*;
    let shape = Pattern(r"^\+?[0-9]{3,20}$");
    for (n, reason) in [
        ("", Empty),
        ("12", shape.clone()),
        ("+12", shape.clone()),
        ("123456789012345678901", shape.clone()),
        ("++123", shape.clone()),
        ("12a3", shape.clone()),
        ("１２３", shape.clone()),
        ("+7 916", shape.clone()),
        ("201\n", ControlChar('\n')),
        ("201;", Semicolon),
        (" 201", Blank),
        ("#201", Comment),
        ("${CALLERID(num)}", Substitution),
        ("1234567890123456789012", TooLong { len: 22, max: 21 }),
    ] {
        rejects(
            &with(|f| f.callerid_num = n.into()),
            Field::CallerIdNum,
            reason.clone(),
        );
        rejects(
            &with(|f| f.vars = vec![Var::number("CT_NUMBER", n)]),
            Field::VarValue("CT_NUMBER".into()),
            reason,
        );
    }
    for ok in ["201", "+79161234567", "12345678901234567890"] {
        with(|f| f.callerid_num = ok.into()).render().expect(ok);
    }
}

#[test]
fn rejects_bad_context_extension_account() {
    use Reason::*;
    type Setter = fn(&mut CallFile, &str);
    let setters: [(Field, Setter); 3] = [
        (Field::Context, |f, v| f.context = v.into()),
        (Field::Extension, |f, v| f.extension = v.into()),
        (Field::Account, |f, v| f.account = Some(v.into())),
    ];
    for (field, set) in setters {
        let file = |v: &str| with(|f| set(f, v));
        for (v, reason) in [
            ("", Empty),
            ("a\nb", ControlChar('\n')),
            ("a;b", Semicolon),
            ("a b", ForbiddenChar(' ')),
            ("a,b", ForbiddenChar(',')),
            ("a@b", ForbiddenChar('@')),
            ("a/b", ForbiddenChar('/')),
            ("a|b", ForbiddenChar('|')),
            ("a&b", ForbiddenChar('&')),
            ("é", ForbiddenChar('é')),
            ("#a", Comment),
            ("${X}", Substitution),
        ] {
            rejects(&file(v), field.clone(), reason);
        }
        file("abc_1.2+3-4").render().expect("valid name");
    }
    rejects(
        &with(|f| f.context = "c".repeat(80)),
        Field::Context,
        TooLong { len: 80, max: 79 },
    );
    with(|f| f.extension = "9".repeat(79))
        .render()
        .expect("79 fit");
    rejects(
        &with(|f| f.account = Some("a".repeat(20))),
        Field::Account,
        TooLong { len: 20, max: 19 },
    );
}

#[test]
fn rejects_out_of_range_numbers() {
    let range = |value: u32, min: u32, max: u32| Reason::OutOfRange {
        value: value.into(),
        min: min.into(),
        max: max.into(),
    };
    rejects(
        &with(|f| f.priority = 0),
        Field::Priority,
        range(0, 1, i32::MAX as u32),
    );
    rejects(
        &with(|f| f.priority = u32::MAX),
        Field::Priority,
        range(u32::MAX, 1, i32::MAX as u32),
    );
    rejects(
        &with(|f| f.max_retries = 101),
        Field::MaxRetries,
        range(101, 0, MAX_RETRIES),
    );
    rejects(
        &with(|f| f.retry_time_s = 0),
        Field::RetryTime,
        range(0, 1, MAX_RETRY_TIME_S),
    );
    rejects(
        &with(|f| f.wait_time_s = 0),
        Field::WaitTime,
        range(0, 1, MAX_WAIT_TIME_S),
    );
    rejects(
        &with(|f| f.wait_time_s = 3601),
        Field::WaitTime,
        range(3601, 1, MAX_WAIT_TIME_S),
    );
}

#[test]
fn rejects_bad_variables() {
    use Reason::*;
    let var = |name: &str, value: &str| with(|f| f.vars = vec![Var::text(name, value)]);
    for (name, reason) in [
        ("", Empty),
        ("CDR(userfield)", FunctionWrite),
        ("SHELL(rm -rf /)", FunctionWrite),
        ("A B", ForbiddenChar(' ')),
        ("A=B", ForbiddenChar('=')),
        ("A-B", ForbiddenChar('-')),
        ("Я", ForbiddenChar('Я')),
        ("1ABC", Pattern("^_{0,2}[A-Za-z][A-Za-z0-9_]*$")),
        ("___X", Pattern("^_{0,2}[A-Za-z][A-Za-z0-9_]*$")),
        ("_", Pattern("^_{0,2}[A-Za-z][A-Za-z0-9_]*$")),
        ("A\nB", ControlChar('\n')),
        ("A;B", Semicolon),
        ("${X}", Substitution),
    ] {
        rejects(&var(name, "x"), Field::VarName(0), reason);
    }
    rejects(
        &var(&"A".repeat(65), "x"),
        Field::VarName(0),
        TooLong { len: 65, max: 64 },
    );
    var(&"A".repeat(64), "x").render().expect("64 fit");
    var("__CT_X", "x").render().expect("inherited var");

    let value = |v: &str| var("CT_X", v);
    let field = || Field::VarValue("CT_X".into());
    for (v, reason) in [
        ("a\nApplication: System", ControlChar('\n')),
        ("a\r", ControlChar('\r')),
        ("a\0", ControlChar('\0')),
        ("a;b", Semicolon),
        ("a\\;b", Semicolon),
        ("${SHELL(rm -rf /)}", Substitution),
        ("$[1+1]", Substitution),
        (" a", Blank),
        ("a ", Blank),
        ("#a", Comment),
        ("a #b", Comment),
        ("Иван", ForbiddenChar('И')),
    ] {
        rejects(&value(v), field(), reason);
    }
    for ok in [
        "", "ep42", "a=b", "a#b", "x,y|z&w", "<script>", "'\"q\"'", "a b",
    ] {
        value(ok).render().unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
}

#[test]
fn rejects_duplicate_and_too_many_variables() {
    for (a, b) in [
        ("CT_X", "CT_X"),
        ("CT_X", "ct_x"),
        ("CT_X", "__CT_X"),
        ("_A", "A"),
    ] {
        rejects(
            &with(|f| f.vars = vec![Var::text(a, "1"), Var::text(b, "2")]),
            Field::VarName(1),
            Reason::Duplicate,
        );
    }
    let many: Vec<Var> = (0..=MAX_VARS)
        .map(|i| Var::text(format!("V{i}"), "x"))
        .collect();
    rejects(
        &with(|f| f.vars = many),
        Field::Vars,
        Reason::TooMany {
            count: MAX_VARS + 1,
            max: MAX_VARS,
        },
    );
}

#[test]
fn rejects_lines_over_the_limit() {
    // "Set: " + 64 + "=" + value: a 200-byte value makes a 270-byte line.
    let name = "V".repeat(64);
    let value = "x".repeat(200);
    rejects(
        &with(|f| f.vars = vec![Var::text(name.as_str(), value.as_str())]),
        Field::VarValue(name.clone()),
        Reason::LineTooLong { len: 270 },
    );
    let value = "x".repeat(MAX_LINE_BYTES - 5 - 64 - 1);
    let text = with(|f| f.vars = vec![Var::text(name.as_str(), value.as_str())])
        .render()
        .expect("exactly at the limit");
    assert!(text.lines().all(|l| l.len() <= MAX_LINE_BYTES));
    // The longest possible caller-id line fits.
    let cid = with(|f| {
        f.callerid_name = "Я".repeat(39);
        f.callerid_num = format!("+{}", "9".repeat(20));
    })
    .render()
    .expect("valid");
    assert!(cid.lines().all(|l| l.len() <= MAX_LINE_BYTES));
}

#[test]
fn file_names() {
    for ok in ["ct-ep42-1.call", "a.call", "A_b.c-1.call"] {
        check_file_name(ok).expect(ok);
    }
    for (bad, reason) in [
        ("", Reason::Empty),
        (".call", Reason::Empty),
        ("x.txt", Reason::Pattern("<name>.call")),
        ("x.call.tmp", Reason::Pattern("<name>.call")),
        (".x.call", Reason::Pattern("a name not starting with `.`")),
        ("../x.call", Reason::ForbiddenChar('/')),
        ("a/b.call", Reason::ForbiddenChar('/')),
        ("a b.call", Reason::ForbiddenChar(' ')),
        ("a\n.call", Reason::ControlChar('\n')),
        ("é.call", Reason::ForbiddenChar('é')),
    ] {
        match check_file_name(bad) {
            Err(CallFileError::Invalid { field, reason: r }) => {
                assert_eq!((field, r), (Field::FileName, reason), "{bad:?}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let long = format!("{}.call", "a".repeat(101));
    assert!(matches!(
        check_file_name(&long),
        Err(CallFileError::Invalid {
            reason: Reason::TooLong { len: 101, max: 100 },
            ..
        })
    ));
}

fn spool() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("outgoing")).expect("outgoing");
    fs::create_dir(dir.path().join("outgoing_done")).expect("outgoing_done");
    dir
}

#[test]
fn write_places_the_file_once_with_its_mtime() {
    let dir = spool();
    let when = UNIX_EPOCH + Duration::from_secs(4_102_444_800); // 2100-01-01
    let path = write(dir.path(), "ct-1.call", &sample(), Some(when), None).expect("write");
    assert_eq!(path, dir.path().join("outgoing/ct-1.call"));
    assert_eq!(
        fs::read_to_string(&path).expect("read"),
        sample().render().expect("valid")
    );
    let meta = fs::metadata(&path).expect("stat");
    assert_eq!(meta.modified().expect("mtime"), when);
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    assert_eq!(
        mode & !0o660,
        0,
        "mode {mode:o}: at most rw for owner and group"
    );
    assert_eq!(
        fs::read_dir(dir.path().join("tmp")).expect("tmp").count(),
        0
    );
    let again = write(dir.path(), "ct-1.call", &sample(), None, None);
    assert!(
        matches!(&again, Err(CallFileError::AlreadyThere { path: p }) if *p == path),
        "{again:?}"
    );
    fs::rename(&path, dir.path().join("outgoing_done/ct-1.call")).expect("archive");
    let again = write(dir.path(), "ct-1.call", &sample(), None, None);
    assert!(
        matches!(&again, Err(CallFileError::AlreadyThere { path: p }) if p.ends_with("outgoing_done/ct-1.call")),
        "{again:?}"
    );
    assert!(!path.exists());
}

#[test]
fn write_checks_before_touching_the_disk() {
    let dir = spool();
    let bad = with(|f| f.callerid_num = "x".into());
    assert!(matches!(
        write(dir.path(), "ct-1.call", &bad, None, None),
        Err(CallFileError::Invalid {
            field: Field::CallerIdNum,
            ..
        })
    ));
    assert!(matches!(
        write(dir.path(), ".ct.call", &sample(), None, None),
        Err(CallFileError::Invalid {
            field: Field::FileName,
            ..
        })
    ));
    assert!(!dir.path().join("tmp").exists());
    assert_eq!(
        fs::read_dir(dir.path().join("outgoing"))
            .expect("ls")
            .count(),
        0
    );
}

#[test]
fn write_needs_the_outgoing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = write(dir.path(), "ct-1.call", &sample(), None, None).expect_err("no spool");
    assert!(matches!(err, CallFileError::Io { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[test]
fn write_replaces_a_planted_temp_symlink_instead_of_following_it() {
    let dir = spool();
    fs::create_dir(dir.path().join("tmp")).expect("tmp");
    let victim = dir.path().join("victim");
    fs::write(&victim, b"keep").expect("victim");
    std::os::unix::fs::symlink(&victim, dir.path().join("tmp/ct-1.call")).expect("symlink");
    write(dir.path(), "ct-1.call", &sample(), None, None).expect("write");
    assert_eq!(fs::read(&victim).expect("victim"), b"keep");
}

#[test]
fn outcome_reads_progress_and_status() {
    let dir = spool();
    assert_eq!(
        outcome(dir.path(), "ct-1.call").expect("outcome"),
        CallFileOutcome::Missing
    );
    let path = write(dir.path(), "ct-1.call", &sample(), None, None).expect("write");
    assert_eq!(
        outcome(dir.path(), "ct-1.call").expect("outcome"),
        CallFileOutcome::Pending(Progress::default())
    );
    let append = |p: &Path, s: &str| {
        OpenOptions::new()
            .append(true)
            .open(p)
            .and_then(|mut f| f.write_all(s.as_bytes()))
            .expect("append");
    };
    append(&path, "\nStartRetry: 27676 1 (1796321100)\n");
    append(&path, "\nEndRetry: 27676 1 (1796321097)\n");
    append(&path, "\nStartRetry: 27676 2 (1796321103)\nStatus: Exp");
    let CallFileOutcome::Pending(p) = outcome(dir.path(), "ct-1.call").expect("outcome") else {
        panic!("pending expected");
    };
    assert_eq!((p.started(), p.failed(), p.archiving), (2, 1, false));
    assert_eq!(
        p.lines[1],
        ProgressLine {
            tag: ProgressTag::EndRetry,
            pid: 27676,
            retries: 1,
            unix_time: 1_796_321_097
        }
    );
    let done = dir.path().join("outgoing_done/ct-1.call");
    fs::rename(&path, &done).expect("archive");
    let CallFileOutcome::Pending(p) = outcome(dir.path(), "ct-1.call").expect("outcome") else {
        panic!("pending expected while Status: is incomplete");
    };
    assert!(p.archiving);
    append(&done, "ired\n");
    assert_eq!(
        outcome(dir.path(), "ct-1.call").expect("outcome"),
        CallFileOutcome::Done {
            status: CallStatus::Expired,
            attempts: 2
        }
    );
    assert!(!cancel(dir.path(), "ct-1.call").expect("cancel"));
    assert!(done.exists());
}

#[test]
fn outcome_rejects_malformed_appended_lines() {
    let dir = spool();
    for bad in [
        "StartRetry: x 1 (2)\n",
        "StartRetry: 1 1 2\n",
        "EndRetry: 1  (2)\n",
        "Status: Done\n",
    ] {
        fs::write(dir.path().join("outgoing_done/x.call"), bad).expect("write");
        let err = outcome(dir.path(), "x.call").expect_err(bad);
        assert!(
            matches!(err, CallFileError::Malformed { .. }),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn cancel_removes_a_queued_file() {
    let dir = spool();
    write(dir.path(), "ct-1.call", &sample(), None, None).expect("write");
    assert!(cancel(dir.path(), "ct-1.call").expect("cancel"));
    assert!(!cancel(dir.path(), "ct-1.call").expect("cancel"));
    assert_eq!(
        outcome(dir.path(), "ct-1.call").expect("outcome"),
        CallFileOutcome::Missing
    );
    assert!(matches!(
        cancel(dir.path(), "../x.call"),
        Err(CallFileError::Invalid {
            field: Field::FileName,
            ..
        })
    ));
}
