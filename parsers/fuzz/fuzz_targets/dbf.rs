//! DBF: the input is a table snapshot, parsed with every `CharsetChoice`;
//! every record is decoded and mapped with the WinTariff mapper (the default
//! mapping, and one that maps the roles onto the table's own fields so the
//! mapping code is reached on arbitrary tables). Also `guess_cyrillic`.
#![no_main]

mod common;

use calltrail_parsers::dbf::{
    fnv1a64, guess_cyrillic, ldid_charset, CharsetChoice, DbfTable, FieldType, WinTariffMapper,
    WinTariffMapping,
};
use calltrail_parsers::Charset;
use libfuzzer_sys::fuzz_target;

fn choices() -> Vec<CharsetChoice> {
    let mut v = vec![CharsetChoice::Auto, CharsetChoice::Ldid];
    v.extend(Charset::ALL.iter().map(|&c| CharsetChoice::Fixed(c)));
    v
}

/// Roles mapped onto the table's fields in order; `date` is the first D, T
/// or C field (the types the mapper reads a start time from).
fn own_mapping(table: &DbfTable<'_>) -> WinTariffMapping {
    let names: Vec<&str> = table.fields().iter().map(|f| f.name.as_str()).collect();
    let at = |i: usize| names.get(i).copied().unwrap_or("").to_string();
    let date = table
        .fields()
        .iter()
        .find(|f| {
            matches!(
                f.field_type,
                FieldType::Date | FieldType::DateTime | FieldType::Character
            )
        })
        .map(|f| f.name.clone())
        .unwrap_or_else(|| at(0));
    WinTariffMapping {
        calltype: at(0),
        callerid: at(1),
        extension: at(2),
        number: at(3),
        duration: at(4),
        date,
        time: at(5),
        ..WinTariffMapping::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = guess_cyrillic(data);
    let _ = fnv1a64(data);
    if let Some(&b) = data.get(29) {
        let _ = ldid_charset(b);
    }
    let [(ctx, cfg), _] = common::variants();
    let mut numbers = common::numbers(cfg);
    let mut agents = common::agents();
    let default_mapper = WinTariffMapper::new(WinTariffMapping::default());
    for (n, choice) in choices().into_iter().enumerate() {
        let Ok(table) = DbfTable::parse(data, choice, Charset::Cp1251) else {
            continue;
        };
        let _ = format!("{table:?}");
        let _ = (
            table.header().version_name(),
            table.header().is_visual_foxpro(),
        );
        let _ = (table.len(), table.is_empty(), table.header_record_count());
        let _ = (
            table.records_in_file(),
            table.record_stride(),
            table.trailing_bytes(),
        );
        let _ = (table.charset(), table.charset_source());
        for f in table.fields() {
            let _ = f.field_type.letter();
            let _ = table.field_index(&f.name);
            let _ = table.field(&f.name.to_ascii_lowercase());
        }
        let _ = table.record(table.len());
        let _ = table.record_bytes(table.len());
        let _ = table.field_bytes(0, table.fields().len());
        // Mapping and number work only on the first two choices: the others
        // differ in decoding alone.
        let own = WinTariffMapper::new(own_mapping(&table));
        let mappers = if n < 2 {
            vec![&default_mapper, &own]
        } else {
            vec![]
        };
        for m in &mappers {
            let _ = m.check_fields(&table);
        }
        for rec in table.records() {
            let Ok(rec) = rec else { continue };
            let _ = table.record_bytes(rec.index);
            for (i, v) in rec.values.iter().enumerate() {
                let _ = table.field_bytes(rec.index, i);
                let _ = (v.is_blank(), v.as_str(), v.as_f64(), v.to_text());
            }
            if let Some(f) = table.fields().first() {
                let _ = table.get(&rec, &f.name);
            }
            for m in &mappers {
                let _ = m.is_complete(&table, &rec);
                if let Ok(Some(ev)) =
                    m.record_to_event(&table, &rec, &ctx, &mut numbers, &mut agents)
                {
                    common::check_event(&ev);
                }
            }
        }
        let _ = table.records_from(table.len() / 2).count();
    }
});
