//! Every DBF sample in shared/reference/samples reads as its provenance
//! (samples/SOURCES.md) and its `*_summary.txt` say, and the WinTariff
//! mapping works end to end on a synthetic cp866 table written here.

use calltrail_parsers::dbf::{
    fnv1a64, guess_cyrillic, CharsetChoice, CharsetSource, DbfRecord, DbfTable, DbfValue,
    FieldType, WinTariffError, WinTariffMapper, WinTariffMapping,
};
use calltrail_parsers::phone::{NumberConfig, NumberNormalizer};
use calltrail_parsers::{AgentResolver, Charset, Direction, Disposition, EventKind, SourceContext};
use chrono::NaiveDate;

const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/reference/samples/"
);

const ALL_DBF: [&str; 11] = [
    "dbf-kladr-cp866/SOCRBASE.DBF",
    "dbf-kladr-cp866/FLAT.DBF",
    "dbf-infused-dbf/cp1251.dbf",
    "dbf-infused-dbf/dbase_03_cyrillic.dbf",
    "dbf-infused-dbf/dbase_83.dbf",
    "dbf-infused-dbf/dbase_8b.dbf",
    "dbf-dbase-rs/stations_with_deleted.dbf",
    "dbf-dbase-rs/cp850.dbf",
    "dbf-dbase-rs/cp936.dbf",
    "dbf-dbase-rs/contain_null_padded_numeric.dbf",
    "dbf-dbfread/memotest.dbf",
];

fn sample(rel: &str) -> Vec<u8> {
    let path = format!("{SAMPLES}{rel}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read sample {path}: {e}"))
}

fn auto(data: &[u8]) -> DbfTable<'_> {
    DbfTable::parse(data, CharsetChoice::Auto, Charset::Cp1251).expect("sample parses")
}

fn rows(t: &DbfTable<'_>) -> Vec<DbfRecord> {
    t.records().map(|r| r.expect("record reads")).collect()
}

fn text(t: &DbfTable<'_>, r: &DbfRecord, name: &str) -> String {
    match t.get(r, name) {
        Some(DbfValue::Text(s)) => s.clone(),
        other => panic!("{name}: expected text, got {other:?}"),
    }
}

fn num(t: &DbfTable<'_>, r: &DbfRecord, name: &str) -> Option<f64> {
    match t.get(r, name) {
        Some(DbfValue::Number(n)) => *n,
        other => panic!("{name}: expected a number, got {other:?}"),
    }
}

fn date(y: i32, m: u32, d: u32) -> DbfValue {
    DbfValue::Date(NaiveDate::from_ymd_opt(y, m, d))
}

// ---------------------------------------------------------------- summaries

/// What a `*_summary.txt` (infused/dbf's `dbf` CLI output) states.
struct Summary {
    version: u8,
    encoding: Option<String>,
    memo_file: bool,
    records: u32,
    /// name, type letter, length, decimal count
    fields: Vec<(String, char, u16, u8)>,
}

fn read_summary(rel: &str) -> Summary {
    let raw = String::from_utf8(sample(rel)).expect("summary is UTF-8");
    let value = |key: &str| {
        raw.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{rel}: no {key:?} line"))
            .to_string()
    };
    let ty = value("Type:");
    let hex = ty
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .map(|(h, _)| h)
        .expect("Type: (xx) …");
    let mut fields = Vec::new();
    let mut in_table = false;
    for l in raw.lines() {
        if l.starts_with("----") {
            in_table = true;
            continue;
        }
        if in_table && !l.trim().is_empty() {
            let p: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(p.len(), 4, "{rel}: field line {l:?}");
            fields.push((
                p[0].to_string(),
                p[1].chars().next().unwrap(),
                p[2].parse().unwrap(),
                p[3].parse().unwrap(),
            ));
        }
    }
    Summary {
        version: u8::from_str_radix(hex, 16).expect("hex version"),
        encoding: raw
            .lines()
            .find_map(|l| l.strip_prefix("Encoding:"))
            .map(|s| s.trim().to_string()),
        memo_file: value("Memo File:") == "true",
        records: value("Records:").parse().expect("record count"),
        fields,
    }
}

#[test]
fn infused_samples_match_their_summaries() {
    for name in ["cp1251", "dbase_03_cyrillic", "dbase_83", "dbase_8b"] {
        let s = read_summary(&format!("dbf-infused-dbf/{name}_summary.txt"));
        let data = sample(&format!("dbf-infused-dbf/{name}.dbf"));
        let t = auto(&data);
        assert_eq!(t.header().version, s.version, "{name}: version");
        assert_eq!(t.header_record_count(), s.records, "{name}: header count");
        assert_eq!(t.len(), s.records, "{name}: readable records");
        assert_eq!(t.records().filter(|r| r.is_ok()).count() as u32, s.records);
        let got: Vec<(String, char, u16, u8)> = t
            .fields()
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    f.field_type.letter(),
                    f.length,
                    f.decimal_count,
                )
            })
            .collect();
        assert_eq!(got, s.fields, "{name}: fields");
        let has_memo = t.fields().iter().any(|f| f.field_type == FieldType::Memo);
        assert_eq!(has_memo, s.memo_file, "{name}: memo file");
        if let Some(enc) = &s.encoding {
            assert_eq!(t.charset().name(), enc, "{name}: encoding");
            assert_eq!(t.charset_source(), CharsetSource::Ldid);
        }
    }
}

// ------------------------------------------------------------- per sample

#[test]
fn kladr_socrbase_is_cp866_with_ldid_zero() {
    let data = sample("dbf-kladr-cp866/SOCRBASE.DBF");
    let t = auto(&data);
    assert_eq!(t.header().version, 0x03);
    assert_eq!(t.header().ldid, 0);
    assert_eq!(
        t.header().last_update[0],
        10,
        "two-digit year as SOURCES.md says"
    );
    assert_eq!(
        (t.len(), t.header_record_count(), t.records_in_file()),
        (148, 148, 148)
    );
    assert_eq!(t.trailing_bytes(), 1, "just the 0x1A");
    let names: Vec<&str> = t.fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["LEVEL", "SCNAME", "SOCRNAME", "KOD_T_ST"]);
    let lens: Vec<u16> = t.fields().iter().map(|f| f.length).collect();
    assert_eq!(lens, [5, 10, 29, 3]);
    assert!(t
        .fields()
        .iter()
        .all(|f| f.field_type == FieldType::Character));

    // LDID 0 + auto: the letter-frequency guess picks cp866.
    assert_eq!(
        (t.charset(), t.charset_source()),
        (Charset::Cp866, CharsetSource::Guessed)
    );
    let body = &data[usize::from(t.header().header_length)..];
    assert_eq!(guess_cyrillic(body), Some(Charset::Cp866));

    let r = rows(&t);
    assert_eq!(text(&t, &r[0], "SCNAME"), "АО");
    assert_eq!(text(&t, &r[0], "socrname"), "Автономный округ");
    assert_eq!(text(&t, &r[0], "KOD_T_ST"), "101");
    assert_eq!(text(&t, &r[1], "SOCRNAME"), "Автономная область");
    assert_eq!(text(&t, &r[147], "SCNAME"), "Чувашия");
    assert_eq!(text(&t, &r[147], "KOD_T_ST"), "108");
    assert!(r.iter().all(|r| !r.deleted));

    // Forced to cp1251 it decodes, wrongly, and no longer matches.
    let wrong =
        DbfTable::parse(&data, CharsetChoice::Fixed(Charset::Cp1251), Charset::Cp866).unwrap();
    let w = wrong.record(0).unwrap().unwrap();
    assert_ne!(text(&wrong, &w, "SCNAME"), "АО");
    // LDID mode without a guess takes the fallback.
    let fb = DbfTable::parse(&data, CharsetChoice::Ldid, Charset::Cp866).unwrap();
    assert_eq!(
        (fb.charset(), fb.charset_source()),
        (Charset::Cp866, CharsetSource::Fallback)
    );
}

#[test]
fn kladr_flat_is_header_only_without_eof() {
    let data = sample("dbf-kladr-cp866/FLAT.DBF");
    let t = auto(&data);
    assert_eq!(
        (t.len(), t.header_record_count(), t.records_in_file()),
        (0, 0, 0)
    );
    assert!(t.is_empty());
    assert_eq!(t.trailing_bytes(), 0);
    assert_eq!(t.records().count(), 0);
    assert!(t.record(0).is_none());
    let f: Vec<(&str, u16)> = t
        .fields()
        .iter()
        .map(|f| (f.name.as_str(), f.length))
        .collect();
    assert_eq!(
        f,
        [
            ("NAME", 20),
            ("CODE", 23),
            ("INDEX", 6),
            ("GNINMB", 4),
            ("UNO", 4),
            ("NP", 4)
        ]
    );
    assert_eq!(t.record_stride(), 62);
    // Nothing to guess from: the fallback.
    assert_eq!(t.charset_source(), CharsetSource::Fallback);
}

#[test]
fn infused_cp1251_vfp_backlink() {
    let data = sample("dbf-infused-dbf/cp1251.dbf");
    let t = auto(&data);
    assert!(t.header().is_visual_foxpro());
    assert_eq!(
        t.header().header_length,
        360,
        "32 + 2×32 + 1 + 263 backlink"
    );
    assert_eq!(t.header().ldid, 0xC9);
    assert_eq!(t.header().table_flags, 0x01);
    let r = rows(&t);
    assert_eq!(num(&t, &r[0], "RN"), Some(1.0));
    assert_eq!(text(&t, &r[0], "NAME"), "амбулаторно-поликлиническое");
    assert_eq!(text(&t, &r[1], "NAME"), "больничное");
    assert_eq!(num(&t, &r[3], "rn"), Some(4.0));
    assert_eq!(
        text(&t, &r[3], "NAME"),
        "образовательное медицинское учреждение"
    );
}

#[test]
fn infused_cyrillic_utf8_names() {
    let data = sample("dbf-infused-dbf/dbase_03_cyrillic.dbf");
    let t = auto(&data);
    assert_eq!(t.header().ldid, 0xF0);
    assert_eq!(t.header().last_update[0], 124, "years since 1900");
    assert_eq!(t.fields()[0].name, "ШАР");
    assert_eq!(t.fields()[1].name, "ПЛОЩА", "11-byte name without NUL");
    // Unknown LDID, UTF-8 data: the guess says UTF-8.
    assert_eq!(
        (t.charset(), t.charset_source()),
        (Charset::Utf8, CharsetSource::Guessed)
    );
    let r = rows(&t);
    assert_eq!(text(&t, &r[0], "шар"), "Номер");
    assert_eq!(num(&t, &r[0], "ПЛОЩА"), Some(36.3));
    assert_eq!(text(&t, &r[1], "ШАР"), "Культ");
    assert_eq!(num(&t, &r[1], "площа"), Some(99.99));
}

#[test]
fn infused_dbase_83_memo_refs_without_memo_file() {
    let data = sample("dbf-infused-dbf/dbase_83.dbf");
    let t = auto(&data);
    assert_eq!(t.record_stride(), 805);
    let r = rows(&t);
    let first = &r[0];
    assert_eq!(num(&t, first, "ID"), Some(87.0));
    assert_eq!(text(&t, first, "CODE"), "1");
    assert_eq!(text(&t, first, "NAME"), "Assorted Petits Fours");
    assert_eq!(text(&t, first, "THUMBNAIL"), "graphics/00000001/t_1.jpg");
    assert_eq!(num(&t, first, "PRICE"), Some(0.0));
    assert_eq!(num(&t, first, "WEIGHT"), Some(5.51));
    assert_eq!(t.get(first, "DESC"), Some(&DbfValue::Memo(Some(1))));
    assert_eq!(
        t.get(first, "TAXABLE"),
        Some(&DbfValue::Logical(Some(true)))
    );
    let last = &r[66];
    assert_eq!(num(&t, last, "ID"), Some(94.0));
    assert_eq!(text(&t, last, "CODE"), "BD02");
    assert_eq!(text(&t, last, "NAME"), "Trio of Biscotti");
    assert_eq!(num(&t, last, "PRICE"), Some(29.75));
    assert_eq!(t.get(last, "DESC"), Some(&DbfValue::Memo(Some(78))));
    assert_eq!(
        t.get(last, "TAXABLE"),
        Some(&DbfValue::Logical(Some(false)))
    );
    assert_eq!(t.get(last, "ACTIVE"), Some(&DbfValue::Logical(Some(true))));
}

#[test]
fn infused_dbase_8b_types() {
    let data = sample("dbf-infused-dbf/dbase_8b.dbf");
    let t = auto(&data);
    let r = rows(&t);
    assert_eq!(text(&t, &r[0], "CHARACTER"), "One");
    assert_eq!(num(&t, &r[0], "NUMERICAL"), Some(1.0));
    assert_eq!(t.get(&r[0], "DATE"), Some(&date(1970, 1, 1)));
    assert_eq!(
        t.get(&r[0], "LOGICAL"),
        Some(&DbfValue::Logical(Some(true))),
        "'Y'"
    );
    assert_eq!(num(&t, &r[0], "FLOAT"), Some(1.23456789012346));
    assert_eq!(t.get(&r[0], "MEMO"), Some(&DbfValue::Memo(Some(1))));
    assert_eq!(t.get(&r[1], "DATE"), Some(&date(1970, 12, 31)));
    let last = &r[9];
    assert_eq!(
        text(&t, last, "CHARACTER"),
        "Ten records stored in this database"
    );
    assert_eq!(num(&t, last, "NUMERICAL"), Some(10.0));
    assert_eq!(t.get(last, "DATE"), Some(&DbfValue::Date(None)));
    assert_eq!(t.get(last, "LOGICAL"), Some(&DbfValue::Logical(None)));
    assert_eq!(num(&t, last, "FLOAT"), Some(0.1));
    assert_eq!(t.get(last, "MEMO"), Some(&DbfValue::Memo(None)));
}

#[test]
fn dbase_rs_stations_with_deleted() {
    let data = sample("dbf-dbase-rs/stations_with_deleted.dbf");
    let t = auto(&data);
    // The header says 1016 bytes per record, the four 254-byte C fields
    // need 1017, and the records really are 1017 apart: the stride follows
    // the fields, and what SOURCES.md saw as "7 bytes of trailing padding,
    // no 0x1A" is the shortfall of 6 × 1 byte plus the 0x1A.
    assert_eq!(t.header().record_length, 1016);
    assert_eq!(t.record_stride(), 1017);
    assert_eq!(
        (t.len(), t.header_record_count(), t.records_in_file()),
        (6, 6, 6)
    );
    assert_eq!(t.trailing_bytes(), 1);
    assert_eq!(data.last(), Some(&0x1A));
    let names: Vec<&str> = t.fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["name", "marker-col", "marker-sym", "line"]);

    let r = rows(&t);
    assert!(r[0].deleted);
    assert_eq!(text(&t, &r[0], "NAME"), "Van Dorn Street");
    let live: Vec<&DbfRecord> = r.iter().filter(|r| !r.deleted).collect();
    assert_eq!(live.len(), 5);
    assert_eq!(
        text(&t, live[0], "name"),
        "Franconia-Springfield",
        "no shifted bytes"
    );
    assert_eq!(text(&t, live[0], "marker-col"), "#0000ff");
    assert_eq!(text(&t, live[0], "marker-sym"), "rail-metro");
    assert_eq!(text(&t, live[0], "line"), "blue");
    assert_eq!(text(&t, &r[5], "name"), "Metro Center");
    assert_eq!(text(&t, &r[5], "line"), "red");

    // The WinTariff mapping skips the deleted row before looking at fields;
    // live rows of this non-WinTariff table are a mapping error.
    let (ctx, mut numbers, mut agents) = parts();
    let m = WinTariffMapper::new(WinTariffMapping::default());
    assert_eq!(
        m.record_to_event(&t, &r[0], &ctx, &mut numbers, &mut agents),
        Ok(None)
    );
    for row in &live {
        let err = m
            .record_to_event(&t, row, &ctx, &mut numbers, &mut agents)
            .unwrap_err();
        assert!(matches!(err, WinTariffError::MissingField { .. }), "{err}");
    }
}

#[test]
fn dbase_rs_code_pages() {
    let data = sample("dbf-dbase-rs/cp850.dbf");
    let t = auto(&data);
    assert_eq!(t.header().ldid, 0x03);
    // LDID 0x03 says cp1252 (dbfread's table), but the bytes are cp850.
    assert_eq!(
        (t.charset(), t.charset_source()),
        (Charset::Cp1252, CharsetSource::Ldid)
    );
    assert_eq!(t.trailing_bytes(), 0, "no 0x1A");
    let fixed =
        DbfTable::parse(&data, CharsetChoice::Fixed(Charset::Cp850), Charset::Cp1251).unwrap();
    let r = fixed.record(0).unwrap().unwrap();
    assert_eq!(text(&fixed, &r, "TEXT"), "Äöü!§$%&/");
    let wrong = t.record(0).unwrap().unwrap();
    assert_ne!(text(&t, &wrong, "TEXT"), "Äöü!§$%&/");

    let data = sample("dbf-dbase-rs/cp936.dbf");
    let t = auto(&data);
    assert_eq!(
        (t.charset(), t.charset_source()),
        (Charset::Cp936, CharsetSource::Ldid)
    );
    let r = t.record(0).unwrap().unwrap();
    assert_eq!(text(&t, &r, "TEST"), "测试中文");
}

#[test]
fn dbase_rs_null_padded_numeric() {
    let data = sample("dbf-dbase-rs/contain_null_padded_numeric.dbf");
    let t = auto(&data);
    assert_eq!(t.fields()[0].name, "number");
    assert_eq!(t.fields()[0].length, 50);
    let r = t.record(0).unwrap().unwrap();
    assert_eq!(r.values, vec![DbfValue::Number(Some(1234.0))]);
    assert_eq!(t.len(), 1);
}

#[test]
fn dbfread_memotest_one_deleted() {
    let data = sample("dbf-dbfread/memotest.dbf");
    let t = auto(&data);
    assert!(t.header().is_visual_foxpro());
    assert_eq!(t.header().table_flags & 0x02, 0x02, "has memo");
    let r = rows(&t);
    assert_eq!(r.len(), 3);
    assert_eq!(r.iter().filter(|r| r.deleted).count(), 1);
    assert_eq!(text(&t, &r[0], "NAME"), "Alice");
    assert_eq!(t.get(&r[0], "BIRTHDATE"), Some(&date(1987, 3, 1)));
    assert_eq!(t.get(&r[0], "MEMO"), Some(&DbfValue::Memo(Some(1))));
    assert_eq!(text(&t, &r[1], "NAME"), "Bob");
    assert_eq!(t.get(&r[1], "MEMO"), Some(&DbfValue::Memo(Some(2))));
    assert!(r[2].deleted);
    assert_eq!(text(&t, &r[2], "NAME"), "Deleted Guy");
    assert_eq!(t.get(&r[2], "BIRTHDATE"), Some(&date(1979, 12, 22)));
    assert_eq!(t.get(&r[2], "MEMO"), Some(&DbfValue::Memo(Some(4))));
}

#[test]
fn record_hash_is_fnv1a_of_the_raw_record() {
    for rel in ALL_DBF {
        let data = sample(rel);
        let t = auto(&data);
        for r in rows(&t) {
            assert_eq!(
                r.hash,
                fnv1a64(t.record_bytes(r.index).unwrap()),
                "{rel} #{}",
                r.index
            );
        }
    }
    // Stable across runs and Rust versions: pinned (computed independently
    // with a few lines of Python over the same 48 bytes).
    let data = sample("dbf-kladr-cp866/SOCRBASE.DBF");
    let t = auto(&data);
    assert_eq!(t.record_bytes(0).unwrap().len(), 48);
    assert_eq!(t.record(0).unwrap().unwrap().hash, 0x2b46_05e9_4cad_de8c);
}

// ----------------------------------------------------- garbage from samples

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn exercise(data: &[u8]) {
    let (ctx, mut numbers, mut agents) = parts();
    let m = WinTariffMapper::new(WinTariffMapping::default());
    for choice in [
        CharsetChoice::Auto,
        CharsetChoice::Ldid,
        CharsetChoice::Fixed(Charset::Cp866),
    ] {
        let Ok(t) = DbfTable::parse(data, choice, Charset::Cp1251) else {
            continue;
        };
        assert!(t.len() <= t.header_record_count() && t.len() <= t.records_in_file());
        let _ = m.check_fields(&t);
        for r in t.records().flatten() {
            for v in &r.values {
                let _ = v.to_text();
            }
            let _ = m.is_complete(&t, &r);
            let _ = m.record_to_event(&t, &r, &ctx, &mut numbers, &mut agents);
        }
    }
}

#[test]
fn truncated_and_mutated_samples_never_panic() {
    let mut rng = Lcg(0xDBF);
    for rel in ALL_DBF {
        let data = sample(rel);
        // Every cut for small files, ~600 cuts for big ones.
        let step = (data.len() / 600).max(1);
        for cut in (0..=data.len()).step_by(step) {
            exercise(&data[..cut]);
        }
        for _ in 0..300 {
            let mut d = data.clone();
            for _ in 0..=rng.below(8) {
                // Bias towards the header, where mutations matter most.
                let span = if rng.below(2) == 0 {
                    d.len().min(400)
                } else {
                    d.len()
                };
                let i = rng.below(span);
                d[i] = rng.next() as u8;
            }
            exercise(&d);
        }
    }
}

// ------------------------------------------------- synthetic WinTariff table

/// (name, type, length)
type Desc = (&'static str, u8, u8);

/// A tiny dBase III writer: header (count given separately so it can
/// disagree with the data), descriptors, 0x0D, records, optional 0x1A.
/// Field values are encoded in cp866 and space-padded.
fn write_dbf(ldid: u8, fields: &[Desc], header_count: u32, rows: &[(bool, Vec<&str>)]) -> Vec<u8> {
    let rl = 1 + fields.iter().map(|f| usize::from(f.2)).sum::<usize>();
    let hl = 32 + 32 * fields.len() + 1;
    let mut b = vec![0u8; 32];
    b[0] = 0x03;
    b[1..4].copy_from_slice(&[124, 1, 27]);
    b[4..8].copy_from_slice(&header_count.to_le_bytes());
    b[8..10].copy_from_slice(&u16::try_from(hl).unwrap().to_le_bytes());
    b[10..12].copy_from_slice(&u16::try_from(rl).unwrap().to_le_bytes());
    b[29] = ldid;
    for (name, ty, len) in fields {
        let mut d = [0u8; 32];
        d[..name.len()].copy_from_slice(name.as_bytes());
        d[11] = *ty;
        d[16] = *len;
        b.extend_from_slice(&d);
    }
    b.push(0x0D);
    for (deleted, values) in rows {
        b.push(if *deleted { b'*' } else { b' ' });
        for ((_, ty, len), v) in fields.iter().zip(values) {
            let (enc, _, bad) = encoding_rs::IBM866.encode(v);
            assert!(!bad, "{v} is not cp866");
            let mut cell = enc.into_owned();
            assert!(cell.len() <= usize::from(*len), "{v} too long");
            if *ty == b'N' {
                // right-aligned
                let mut padded = vec![b' '; usize::from(*len) - cell.len()];
                padded.extend(cell);
                cell = padded;
            }
            cell.resize(usize::from(*len), b' ');
            b.extend(cell);
        }
    }
    b
}

const WT_FIELDS: [Desc; 7] = [
    ("CALLTYPE", b'C', 10),
    ("CALLERID", b'C', 16),
    ("EXTENSION", b'C', 6),
    ("NUMBER", b'C', 20),
    ("IDURATION", b'N', 6),
    ("DATE", b'D', 8),
    ("TIME", b'C', 8),
];

fn parts() -> (SourceContext, NumberNormalizer, AgentResolver) {
    let mut ctx = SourceContext::new("wintariff-main", "pbx1");
    ctx.timezone = "Europe/Moscow".parse().unwrap();
    (
        ctx,
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::new([("205".to_string(), "anna".to_string())]),
    )
}

fn wintariff_table() -> Vec<u8> {
    let rows = vec![
        (
            false,
            vec![
                "Входящий",
                "89161234567",
                "201",
                "84951234567",
                "125",
                "20240127",
                "19:23:16",
            ],
        ),
        (
            false,
            vec![
                "ИСХОДЯЩИЙ",
                "",
                "202",
                "8 (495) 765-43-21",
                "0",
                "20240127",
                "19:30:00",
            ],
        ),
        (
            false,
            vec![
                "Внутр",
                "204",
                "203",
                "internal",
                "10",
                "20240127",
                "19:31:05",
            ],
        ),
        (
            true,
            vec![
                "Входящий",
                "89160000000",
                "201",
                "",
                "5",
                "20240127",
                "19:32:00",
            ],
        ),
        (
            false,
            vec!["", "89261112233", "205", "", "0", "20240127", "19:40:00"],
        ),
    ];
    let mut data = write_dbf(0x00, &WT_FIELDS, 7, &rows);
    // The writer is mid-append: half of record 5 is on disk, no 0x1A yet,
    // and the header already counts 7.
    data.extend_from_slice(b" ISX");
    data
}

#[test]
fn wintariff_end_to_end() {
    let data = wintariff_table();
    let t = auto(&data);
    assert_eq!(
        (t.len(), t.header_record_count(), t.records_in_file()),
        (5, 7, 5)
    );
    assert_eq!(t.trailing_bytes(), 4);
    assert_eq!(
        (t.charset(), t.charset_source()),
        (Charset::Cp866, CharsetSource::Guessed)
    );
    let (ctx, mut numbers, mut agents) = parts();
    let m = WinTariffMapper::new(WinTariffMapping::default());
    m.check_fields(&t).unwrap();
    let r = rows(&t);
    let complete: Vec<bool> = r.iter().map(|x| m.is_complete(&t, x).unwrap()).collect();
    assert_eq!(complete, [true, true, true, true, false]);
    let mut ev = |i: usize| {
        m.record_to_event(&t, &r[i], &ctx, &mut numbers, &mut agents)
            .unwrap()
    };

    let inbound = ev(0).unwrap();
    assert_eq!(inbound.kind, EventKind::CallRecord);
    assert_eq!(inbound.verb.as_ref(), "WINTARIFF");
    assert_eq!(inbound.source.as_ref(), "wintariff-main");
    assert_eq!(inbound.call_id.as_deref(), Some("0"));
    assert_eq!(
        inbound.ts.to_rfc3339(),
        "2024-01-27T16:23:16+00:00",
        "Moscow is UTC+3"
    );
    assert_eq!(inbound.direction, Some(Direction::Inbound));
    assert_eq!(inbound.disposition, Some(Disposition::Answered));
    assert_eq!(inbound.talk_s, Some(125));
    assert_eq!(inbound.caller.as_deref(), Some("+79161234567"));
    assert_eq!(inbound.caller_raw.as_deref(), Some("89161234567"));
    assert_eq!(inbound.callee.as_deref(), Some("201"));
    assert_eq!(inbound.agent.as_deref(), Some("201"));
    assert_eq!(inbound.agent_raw.as_deref(), Some("201"));
    assert_eq!(inbound.info.as_deref(), Some("Входящий"));
    assert_eq!(
        inbound.data,
        ["Входящий", "89161234567", "201", "84951234567"]
    );
    assert!(inbound.event_id.is_empty(), "set by the ingest layer");

    let outbound = ev(1).unwrap();
    assert_eq!(outbound.direction, Some(Direction::Outbound));
    assert_eq!(outbound.disposition, Some(Disposition::NoAnswer));
    assert_eq!(outbound.talk_s, Some(0));
    assert_eq!(outbound.caller.as_deref(), Some("202"));
    assert_eq!(outbound.callee.as_deref(), Some("+74957654321"));
    assert_eq!(outbound.callee_raw.as_deref(), Some("8 (495) 765-43-21"));

    let internal = ev(2).unwrap();
    assert_eq!(internal.direction, Some(Direction::Internal));
    assert_eq!(internal.caller.as_deref(), Some("203"));
    assert_eq!(internal.callee.as_deref(), Some("204"));
    assert_eq!(internal.disposition, Some(Disposition::Answered));

    assert_eq!(ev(3), None, "deleted row");

    let incomplete = ev(4).unwrap();
    assert_eq!(incomplete.direction, None);
    assert_eq!(incomplete.info, None);
    assert_eq!(incomplete.caller.as_deref(), Some("+79261112233"));
    assert_eq!(incomplete.agent.as_deref(), Some("anna"), "alias applied");
    assert_eq!(incomplete.disposition, Some(Disposition::NoAnswer));
}

#[test]
fn wintariff_in_place_update_changes_only_that_hash() {
    let before = wintariff_table();
    let t0 = auto(&before);
    let h0: Vec<u64> = rows(&t0).iter().map(|r| r.hash).collect();
    // WinTariff fills CALLTYPE of row 4 in place and finishes the append.
    let mut after = before.clone();
    let at = usize::from(t0.header().header_length) + 4 * t0.record_stride() + 1;
    let (ct, _, _) = encoding_rs::IBM866.encode("Входящий");
    after[at..at + ct.len()].copy_from_slice(&ct);
    let t1 = auto(&after);
    let r1 = rows(&t1);
    let h1: Vec<u64> = r1.iter().map(|r| r.hash).collect();
    assert_eq!(h0[..4], h1[..4]);
    assert_ne!(h0[4], h1[4]);
    let m = WinTariffMapper::new(WinTariffMapping::default());
    assert!(m.is_complete(&t1, &r1[4]).unwrap());
    let (ctx, mut numbers, mut agents) = parts();
    let e = m
        .record_to_event(&t1, &r1[4], &ctx, &mut numbers, &mut agents)
        .unwrap()
        .unwrap();
    assert_eq!(e.direction, Some(Direction::Inbound));
    assert_eq!(e.callee.as_deref(), Some("205"));
    // Same rows read as fixed cp866: identical values, identical hashes.
    let fixed = DbfTable::parse(
        &after,
        CharsetChoice::Fixed(Charset::Cp866),
        Charset::Cp1251,
    )
    .unwrap();
    assert_eq!(rows(&fixed), r1);
}

#[test]
fn wintariff_configurable_names_and_single_datetime_text() {
    const FIELDS: [Desc; 5] = [
        ("DIR", b'C', 4),
        ("CID", b'C', 12),
        ("EXT", b'C', 4),
        ("DUR", b'C', 8),
        ("STARTED", b'C', 19),
    ];
    let rows_in = vec![
        (
            false,
            vec!["OUT", "", "301", "0:02:05", "27.01.2024 10:00:00"],
        ),
        (
            false,
            vec!["IN", "74951234567", "302", "", "2024-01-27 10:05:00"],
        ),
        (
            false,
            vec!["IN", "74951234567", "302", "soon", "2024-01-27 10:05:00"],
        ),
        (
            false,
            vec!["IN", "74951234567", "302", "1", "2024-02-30 10:05:00"],
        ),
    ];
    let data = write_dbf(0x65, &FIELDS, 4, &rows_in);
    let t = auto(&data);
    assert_eq!(t.charset_source(), CharsetSource::Ldid);
    let m = WinTariffMapper::new(WinTariffMapping {
        calltype: "dir".into(),
        callerid: "cid".into(),
        extension: "ext".into(),
        number: "".into(),
        duration: "dur".into(),
        date: "started".into(),
        time: "".into(),
        ..WinTariffMapping::default()
    });
    m.check_fields(&t).unwrap();
    let (mut ctx, mut numbers, mut agents) = parts();
    ctx.timezone = chrono_tz::Tz::UTC;
    let r = rows(&t);
    let mut ev = |i: usize| m.record_to_event(&t, &r[i], &ctx, &mut numbers, &mut agents);
    let out = ev(0).unwrap().unwrap();
    assert_eq!(out.ts.to_rfc3339(), "2024-01-27T10:00:00+00:00");
    assert_eq!(out.talk_s, Some(125));
    assert_eq!(out.direction, Some(Direction::Outbound));
    assert_eq!(out.caller.as_deref(), Some("301"));
    assert_eq!(out.callee, None, "no NUMBER role configured");
    let inb = ev(1).unwrap().unwrap();
    assert_eq!(inb.ts.to_rfc3339(), "2024-01-27T10:05:00+00:00");
    assert_eq!(inb.talk_s, None);
    assert_eq!(
        inb.disposition,
        Some(Disposition::Unknown),
        "blank duration"
    );
    assert_eq!(inb.caller.as_deref(), Some("+74951234567"));
    assert!(matches!(ev(2), Err(WinTariffError::BadDuration { .. })));
    let bad = ev(3).unwrap_err();
    assert!(matches!(bad, WinTariffError::BadDate { .. }), "{bad}");
    assert!(bad.to_string().contains("2024-02-30"), "{bad}");
}
