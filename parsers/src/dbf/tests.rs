//! Table-level unit tests: synthetic tables, count/size disagreement,
//! charset choice, NULL flags, and random garbage that must never panic.

use super::*;
use crate::agent::AgentResolver;
use crate::phone::{NumberConfig, NumberNormalizer};
use crate::SourceContext;

/// (name, type, length, decimal count, VFP flags)
type Desc<'n> = (&'n [u8], u8, u8, u8, u8);

/// A minimal DBF writer: header, descriptors, 0x0D, `pad` header bytes
/// (the VFP backlink), records (`flag` + concatenated field bytes, each
/// padded to the record length with spaces), optional 0x1A.
fn build(
    version: u8,
    ldid: u8,
    fields: &[Desc<'_>],
    pad: usize,
    records: &[(u8, Vec<u8>)],
    header_count: Option<u32>,
    eof: bool,
) -> Vec<u8> {
    let rl: usize = 1 + fields.iter().map(|f| usize::from(f.2)).sum::<usize>();
    let hl = 32 + 32 * fields.len() + 1 + pad;
    let mut b = vec![0u8; 32];
    b[0] = version;
    b[1..4].copy_from_slice(&[124, 11, 21]);
    let count = header_count.unwrap_or(records.len() as u32);
    b[4..8].copy_from_slice(&count.to_le_bytes());
    b[8..10].copy_from_slice(&(hl as u16).to_le_bytes());
    b[10..12].copy_from_slice(&(rl as u16).to_le_bytes());
    b[29] = ldid;
    for (name, t, len, dec, flags) in fields {
        let mut d = [0u8; 32];
        d[..name.len()].copy_from_slice(name);
        d[11] = *t;
        d[16] = *len;
        d[17] = *dec;
        d[18] = *flags;
        b.extend_from_slice(&d);
    }
    b.push(0x0D);
    b.extend(std::iter::repeat_n(0u8, pad));
    for (flag, data) in records {
        let mut r = vec![*flag];
        r.extend_from_slice(data);
        r.resize(rl, b' ');
        b.extend(r);
    }
    if eof {
        b.push(0x1A);
    }
    b
}

fn pad(s: &[u8], n: usize) -> Vec<u8> {
    let mut v = s.to_vec();
    v.resize(n, b' ');
    v
}

fn simple_table(records: &[(u8, Vec<u8>)], header_count: Option<u32>, eof: bool) -> Vec<u8> {
    build(
        0x03,
        0x00,
        &[(b"NAME\0junk", b'C', 8, 0, 0), (b"N", b'N', 4, 0, 0)],
        0,
        records,
        header_count,
        eof,
    )
}

fn rec(name: &[u8], n: &[u8]) -> Vec<u8> {
    let mut v = pad(name, 8);
    v.extend(pad(n, 4));
    v
}

#[test]
fn reads_a_simple_table() {
    let data = simple_table(
        &[
            (b' ', rec(b"alpha", b"  12")),
            (b'*', rec(b"beta", b"    ")),
        ],
        None,
        true,
    );
    let t = DbfTable::parse(&data, CharsetChoice::Auto, Charset::Cp866).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t.header_record_count(), 2);
    assert_eq!(t.records_in_file(), 2);
    assert_eq!(t.trailing_bytes(), 1);
    assert_eq!(t.fields()[0].name, "NAME");
    assert_eq!(t.fields()[1].offset, 9);
    assert_eq!(t.charset_source(), CharsetSource::Fallback);
    let rows: Vec<DbfRecord> = t.records().map(Result::unwrap).collect();
    assert_eq!(
        rows[0].values,
        vec![DbfValue::Text("alpha".into()), DbfValue::Number(Some(12.0))]
    );
    assert!(!rows[0].deleted);
    assert!(rows[1].deleted);
    assert_eq!(rows[1].values[1], DbfValue::Number(None));
    assert_eq!(
        t.get(&rows[0], "name"),
        Some(&DbfValue::Text("alpha".into()))
    );
    assert_eq!(t.get(&rows[0], "nope"), None);
    assert_eq!(rows[0].hash, fnv1a64(t.record_bytes(0).unwrap()));
    assert_ne!(rows[0].hash, rows[1].hash);
    assert_eq!(t.field_bytes(0, 1), Some(&b"  12"[..]));
    assert!(t.record(2).is_none());
    assert_eq!(t.records_from(1).count(), 1);
    assert_eq!(t.records_from(9).count(), 0);
}

#[test]
fn count_and_size_disagree() {
    // Header says 5, file holds 2 and half a record: 2 readable.
    let mut data = simple_table(
        &[(b' ', rec(b"a", b"1")), (b' ', rec(b"b", b"2"))],
        Some(5),
        false,
    );
    data.extend_from_slice(b" half");
    let t = DbfTable::parse(&data, CharsetChoice::Auto, Charset::Cp866).unwrap();
    assert_eq!(
        (t.len(), t.header_record_count(), t.records_in_file()),
        (2, 5, 2)
    );
    assert_eq!(t.trailing_bytes(), 5);
    // Header says 1, file holds 2 (header not yet updated): 1 readable.
    let data = simple_table(
        &[(b' ', rec(b"a", b"1")), (b' ', rec(b"b", b"2"))],
        Some(1),
        true,
    );
    let t = DbfTable::parse(&data, CharsetChoice::Auto, Charset::Cp866).unwrap();
    assert_eq!(
        (t.len(), t.header_record_count(), t.records_in_file()),
        (1, 1, 2)
    );
    // A 0x1A where record 1 starts ends the table, junk after it ignored.
    let mut data = simple_table(&[(b' ', rec(b"a", b"1"))], Some(3), true);
    data.extend(std::iter::repeat_n(b'x', 30));
    let t = DbfTable::parse(&data, CharsetChoice::Auto, Charset::Cp866).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t.records_in_file(), 3);
}

#[test]
fn bad_delete_flag_is_a_record_error() {
    let data = simple_table(
        &[(b'?', rec(b"a", b"1")), (b' ', rec(b"b", b"2"))],
        None,
        true,
    );
    let t = DbfTable::parse(&data, CharsetChoice::Auto, Charset::Cp866).unwrap();
    let rows: Vec<_> = t.records().collect();
    assert_eq!(
        rows[0],
        Err(DbfError::BadDeleteFlag {
            index: 0,
            flag: b'?'
        })
    );
    assert!(rows[1].is_ok());
    assert!(rows[0]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("record 0"));
}

#[test]
fn charset_choices() {
    // "Вход" in cp866 and cp1251.
    let dos = [0x82, 0xE5, 0xAE, 0xA4];
    let win = [0xC2, 0xF5, 0xEE, 0xE4];
    for (bytes, ldid, choice, want, src) in [
        (
            &dos,
            0x00,
            CharsetChoice::Auto,
            Charset::Cp866,
            CharsetSource::Guessed,
        ),
        (
            &win,
            0x00,
            CharsetChoice::Auto,
            Charset::Cp1251,
            CharsetSource::Guessed,
        ),
        (
            &dos,
            0x26,
            CharsetChoice::Auto,
            Charset::Cp866,
            CharsetSource::Ldid,
        ),
        (
            &win,
            0x00,
            CharsetChoice::Ldid,
            Charset::Cp1252,
            CharsetSource::Fallback,
        ),
        (
            &win,
            0xC9,
            CharsetChoice::Ldid,
            Charset::Cp1251,
            CharsetSource::Ldid,
        ),
        (
            &dos,
            0xC9,
            CharsetChoice::Fixed(Charset::Cp866),
            Charset::Cp866,
            CharsetSource::Fixed,
        ),
    ] {
        let data = build(
            0x03,
            ldid,
            &[(b"T", b'C', 4, 0, 0)],
            0,
            &[(b' ', bytes.to_vec())],
            None,
            true,
        );
        let t = DbfTable::parse(&data, choice, Charset::Cp1252).unwrap();
        assert_eq!(
            (t.charset(), t.charset_source()),
            (want, src),
            "{choice:?} ldid {ldid:#x}"
        );
        if want != Charset::Cp1252 {
            let r = t.record(0).unwrap().unwrap();
            assert_eq!(r.values[0], DbfValue::Text("Вход".into()));
        }
    }
}

#[test]
fn non_ascii_names_and_lookup() {
    // Name "ТИП" in cp866 (not UTF-8): decoded with the table charset.
    let data = build(
        0x03,
        0x65,
        &[
            (&[0x92, 0x88, 0x8F], b'C', 2, 0, 0),
            ("ДАТА".as_bytes(), b'D', 8, 0, 0),
        ],
        0,
        &[(b' ', b"ab20240127".to_vec())],
        None,
        true,
    );
    let t = DbfTable::parse(&data, CharsetChoice::Auto, Charset::Cp1251).unwrap();
    assert_eq!(t.fields()[0].name, "ТИП");
    assert_eq!(t.fields()[1].name, "ДАТА");
    assert_eq!(t.field_index("тип"), Some(0));
    assert_eq!(t.field_index(" дата "), Some(1));
    let r = t.record(0).unwrap().unwrap();
    assert_eq!(
        t.get(&r, "Дата").and_then(DbfValue::to_text).as_deref(),
        Some("2024-01-27")
    );
}

#[test]
fn vfp_backlink_and_null_flags() {
    // VFP with a 263-byte backlink; B nullable, C nullable, _NullFlags.
    let fields: [Desc<'_>; 3] = [
        (b"A", b'C', 3, 0, 0x02),
        (b"B", b'I', 4, 0, 0x02),
        (b"_NullFlags", b'0', 1, 0, 0x05),
    ];
    let mut r1 = b"abc".to_vec();
    r1.extend(7i32.to_le_bytes());
    r1.push(0b10); // B is NULL
    let mut r2 = b"   ".to_vec();
    r2.extend(0i32.to_le_bytes());
    r2.push(0b01); // A is NULL
    let data = build(
        0x30,
        0x03,
        &fields,
        263,
        &[(b' ', r1), (b' ', r2)],
        None,
        true,
    );
    let t = DbfTable::parse(&data, CharsetChoice::Auto, Charset::Cp866).unwrap();
    assert_eq!(usize::from(t.header().header_length), 32 + 96 + 1 + 263);
    assert_eq!(t.charset(), Charset::Cp1252);
    let rows: Vec<DbfRecord> = t.records().map(Result::unwrap).collect();
    assert_eq!(rows[0].values[0], DbfValue::Text("abc".into()));
    assert_eq!(rows[0].values[1], DbfValue::Null);
    assert_eq!(rows[1].values[0], DbfValue::Null);
    assert_eq!(rows[1].values[1], DbfValue::Int(0));
    assert_eq!(rows[1].values[2], DbfValue::Raw(vec![1]));
}

#[test]
fn utf8_table_is_detected() {
    let data = build(
        0x03,
        0xF0,
        &[("ШАР".as_bytes(), b'C', 10, 0, 0)],
        0,
        &[(b' ', "Номер".as_bytes().to_vec())],
        None,
        true,
    );
    let t = DbfTable::parse(&data, CharsetChoice::Auto, Charset::Cp1251).unwrap();
    assert_eq!(t.charset(), Charset::Utf8);
    assert_eq!(
        t.record(0).unwrap().unwrap().values[0],
        DbfValue::Text("Номер".into())
    );
}

#[test]
fn stride_follows_fields_when_header_is_short() {
    let mut data = simple_table(
        &[(b' ', rec(b"a", b"1")), (b' ', rec(b"second", b"2"))],
        None,
        true,
    );
    // Claim 12 bytes per record while the fields need 13.
    data[10..12].copy_from_slice(&12u16.to_le_bytes());
    let t = DbfTable::parse(&data, CharsetChoice::Auto, Charset::Cp866).unwrap();
    assert_eq!(t.header().record_length, 12);
    assert_eq!(t.record_stride(), 13);
    assert_eq!(t.len(), 2);
    let r = t.record(1).unwrap().unwrap();
    assert_eq!(r.values[0], DbfValue::Text("second".into()));
}

fn wintariff_parts() -> (SourceContext, NumberNormalizer, AgentResolver) {
    let mut ctx = SourceContext::new("wt", "pbx1");
    ctx.timezone = "Europe/Moscow".parse().unwrap();
    (
        ctx,
        NumberNormalizer::new(NumberConfig::default()).unwrap(),
        AgentResolver::default(),
    )
}

#[test]
fn wintariff_datetime_field_and_errors() {
    // A T field for the start, IDURATION as I, CALLTYPE blank.
    let fields: [Desc<'_>; 6] = [
        (b"CALLTYPE", b'C', 4, 0, 0),
        (b"CALLERID", b'C', 12, 0, 0),
        (b"EXTENSION", b'C', 4, 0, 0),
        (b"NUMBER", b'C', 12, 0, 0),
        (b"IDURATION", b'I', 4, 0, 0),
        (b"STAMP", b'T', 8, 0, 0),
    ];
    let mut r = pad(b"", 4);
    r.extend(pad(b"", 12));
    r.extend(pad(b"201", 4));
    r.extend(pad(b"89161234567", 12));
    r.extend(30i32.to_le_bytes());
    r.extend(2_460_337i32.to_le_bytes());
    r.extend(((10 * 3600) * 1000i32).to_le_bytes());
    let data = build(0x30, 0x65, &fields, 263, &[(b' ', r)], None, true);
    let t = DbfTable::parse(&data, CharsetChoice::Auto, Charset::Cp866).unwrap();
    let rec = t.record(0).unwrap().unwrap();
    let (ctx, mut numbers, mut agents) = wintariff_parts();
    let m = WinTariffMapper::new(WinTariffMapping {
        date: "stamp".into(),
        ..WinTariffMapping::default()
    });
    m.check_fields(&t).unwrap();
    assert!(!m.is_complete(&t, &rec).unwrap());
    let ev = m
        .record_to_event(&t, &rec, &ctx, &mut numbers, &mut agents)
        .unwrap()
        .unwrap();
    assert_eq!(ev.ts.to_rfc3339(), "2024-01-27T07:00:00+00:00");
    assert_eq!(ev.talk_s, Some(30));
    assert_eq!(ev.direction, None);
    assert_eq!(ev.callee.as_deref(), Some("+79161234567"));
    assert_eq!(ev.agent.as_deref(), Some("201"));

    // The default DATE/TIME are missing from this table.
    let d = WinTariffMapper::new(WinTariffMapping::default());
    let err = d.check_fields(&t).unwrap_err();
    assert!(
        matches!(err, WinTariffError::MissingField { role: "date", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("STAMP"), "{err}");
    assert!(d
        .record_to_event(&t, &rec, &ctx, &mut numbers, &mut agents)
        .is_err());
}

/// A tiny deterministic generator (64-bit LCG, Knuth's MMIX constants).
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

/// Parses and fully walks `data`; must not panic whatever it is.
/// Returns how many records were decoded.
fn exercise(data: &[u8]) -> usize {
    let mut walked = 0;
    let (ctx, mut numbers, mut agents) = wintariff_parts();
    let m = WinTariffMapper::new(WinTariffMapping::default());
    for choice in [CharsetChoice::Auto, CharsetChoice::Fixed(Charset::Utf8)] {
        let Ok(t) = DbfTable::parse(data, choice, Charset::Cp1251) else {
            continue;
        };
        let _ = (t.trailing_bytes(), m.check_fields(&t));
        for r in t.records().flatten() {
            walked += 1;
            for v in &r.values {
                let _ = (v.to_text(), v.is_blank(), v.as_f64());
            }
            let _ = m.is_complete(&t, &r);
            let _ = m.record_to_event(&t, &r, &ctx, &mut numbers, &mut agents);
        }
    }
    walked
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Lcg(0x5EED);
    let mut walked = 0;
    for round in 0..3000 {
        let len = rng.below(600);
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half the rounds get a plausible header so records are reached.
        if round % 2 == 0 && data.len() >= 32 {
            data[0] = [0x03, 0x30, 0x83, 0x8B, 0xF5][rng.below(5)];
            let hl = 33 + 32 * rng.below(4) as u16;
            data[8..10].copy_from_slice(&hl.to_le_bytes());
            let rl = 1 + rng.below(40) as u16;
            data[10..12].copy_from_slice(&rl.to_le_bytes());
            for i in 0..rng.below(4) {
                let at = 32 + 32 * i + 11;
                if let Some(b) = data.get_mut(at) {
                    *b = b"CNFDLITBYM0VG"[rng.below(13)];
                }
            }
            if let Some(b) = data.get_mut(usize::from(hl) - 1) {
                *b = 0x0D;
            }
            let count = rng.below(20) as u32;
            data[4..8].copy_from_slice(&count.to_le_bytes());
            // Mostly valid delete flags, so values get decoded.
            let mut at = usize::from(hl);
            while at < data.len() {
                data[at] = [b' ', b' ', b'*', 0x1A][rng.below(4)];
                at += usize::from(rl);
            }
        }
        walked += exercise(&data);
    }
    // The plausible headers do reach record decoding.
    assert!(walked > 1000, "only {walked} records decoded");
}

#[test]
fn mutated_synthetic_tables_never_panic() {
    let base = build(
        0x30,
        0x00,
        &[
            (b"CALLTYPE", b'C', 4, 0, 0x02),
            (b"DATE", b'D', 8, 0, 0),
            (b"TIME", b'C', 8, 0, 0),
            (b"IDURATION", b'N', 5, 0, 0),
            (b"T", b'T', 8, 0, 0),
            (b"M", b'M', 4, 0, 0),
            (b"_NullFlags", b'0', 1, 0, 0x05),
        ],
        263,
        &[
            (b' ', b"IN  2024012710:00:00   12".to_vec()),
            (b'*', b"OUT 2024012710:00:01    0".to_vec()),
            (b' ', b"    20240127xx:00:00  abc".to_vec()),
            (b' ', b"IN          10:00:00    5".to_vec()),
        ],
        None,
        true,
    );
    let mut rng = Lcg(42);
    let mut walked = 0;
    for _ in 0..2000 {
        let mut d = base.clone();
        for _ in 0..=rng.below(6) {
            let i = rng.below(d.len());
            d[i] = rng.next() as u8;
        }
        if rng.below(2) == 0 {
            d.truncate(rng.below(d.len() + 1));
        }
        walked += exercise(&d);
    }
    assert!(walked > 4000, "only {walked} records decoded");
}
