//! `[calendars.NAME]` on the real binary: check-config names every bad
//! spec and date; `calltrail calendar` answers open/closed and the next
//! opening across a night, a weekend, a holiday and a DST change.

use crate::daemon::calltrail;
use std::path::{Path, PathBuf};

fn config(dir: &Path, calendars: &str) -> PathBuf {
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, format!("[store]\npath = \"s.duckdb\"\n{calendars}")).expect("config");
    cfg
}

fn ask(cfg: &Path, args: &[&str]) -> String {
    let mut all = vec!["calendar"];
    all.extend_from_slice(args);
    let out = calltrail(cfg, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const OFFICE: &str = r#"
[calendars.office]
timezone = "Europe/Berlin"
hours = ["09:00-17:59,mon-fri,*,*"]
closed = ["*,*,24-26,dec"]
holidays = ["2026-12-31"]
"#;

#[test]
fn nights_weekends_holidays_and_dst() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), OFFICE);
    let cases = [
        // A night: Thursday 22:00 → Friday 09:00 CET.
        (
            "2026-12-03T22:00:00+01:00",
            "closed",
            "2026-12-04T08:00:00Z",
        ),
        // A weekend: Friday 18:00 → Monday 09:00.
        (
            "2026-12-04T18:00:00+01:00",
            "closed",
            "2026-12-07T08:00:00Z",
        ),
        // Christmas (yearly) and New Year's Eve (dated): 23 Dec 18:00 →
        // Monday 28 Dec; 30 Dec 18:00 → Friday 1 Jan 2027.
        (
            "2026-12-23T18:00:00+01:00",
            "closed",
            "2026-12-28T08:00:00Z",
        ),
        (
            "2026-12-30T18:00:00+01:00",
            "closed",
            "2027-01-01T08:00:00Z",
        ),
        // DST: Friday 27 March 2026 18:00 CET → Monday 30 March 09:00 CEST.
        (
            "2026-03-27T18:00:00+01:00",
            "closed",
            "2026-03-30T07:00:00Z",
        ),
        // Open, closing at 18:00 local.
        ("2026-12-03T10:00:00+01:00", "open", "2026-12-03T17:00:00Z"),
    ];
    for (at, state, next) in cases {
        let out = ask(&cfg, &["office", "--at", at]);
        assert!(out.contains(&format!(": {state}\n")), "{at}: {out}");
        assert!(out.contains(next), "{at}: want {next}: {out}");
    }
    let out = ask(
        &cfg,
        &[
            "22:00-05:59,*",
            "--timezone",
            "Europe/Moscow",
            "--at",
            "2026-12-03T12:00:00Z",
        ],
    );
    assert!(
        out.contains("closed") && out.contains("2026-12-03T19:00:00Z"),
        "{out}"
    );
}

#[test]
fn check_config_names_every_bad_spec_and_date() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        r#"
[calendars.bad]
timezone = "Europe/Moskow"
hours = ["09:00-17:59,mon-fri", "9:00-18:00,monday", "25:00"]
closed = ["*,*,*,january"]
holidays = ["2026-12-31", "31.12.2026"]
"#,
    );
    let out = calltrail(&cfg, &["check-config"]);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for want in [
        "calendars.bad.timezone",
        "calendars.bad.hours[1]",
        "\"monday\"",
        "calendars.bad.hours[2]",
        "calendars.bad.closed[0]",
        "calendars.bad.holidays[1]",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(!text.contains("hours[0]"), "{text}");
    let cfg = config(dir.path(), OFFICE);
    let out = calltrail(&cfg, &["calendar", "9:00,funday"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("funday") && e.contains("(office)"), "{e}");
}
