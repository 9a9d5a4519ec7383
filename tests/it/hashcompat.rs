//! The dialplan lookup's body encoder (`calltrail::serve::hashcompat`)
//! against a model of Asterisk's `CURL()` + `CURLOPT(hashcompat)` + `HASH()`
//! (`support::asterisk_curl`), the model itself first checked against what a
//! real Asterisk put in `HASH()`/`HASHKEYS()` for the exact bytes a server
//! sent (`shared/reference/asterisk-probes/report.txt`, `==== CURL()`).

use crate::support::asterisk_curl::{hash_from_body, Hash, Mode};
use calltrail::serve::hashcompat::{encode, MAX_VALUE_BYTES};
use std::path::Path;

/// One `-- cNN` probe of the report's CURL section.
struct Probe {
    id: String,
    mode: String,
    body: Option<Vec<u8>>,
    hashkeys: Option<String>,
    values: Vec<(String, String)>,
}

fn report() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/asterisk-probes/report.txt");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A Python literal as the report prints it: `b'…'`/`b"…"` (bytes) or
/// `'…'`/`"…"` (str; `\xNN`, `\uNNNN` are code points, written as UTF-8).
fn py_literal(lit: &str) -> Vec<u8> {
    let (bytes_lit, rest) = match lit.strip_prefix('b') {
        Some(r) => (true, r),
        None => (false, lit),
    };
    let quote = rest.chars().next().expect("a quoted literal");
    assert!(quote == '\'' || quote == '"', "not a literal: {lit}");
    let inner = rest
        .strip_prefix(quote)
        .and_then(|r| r.strip_suffix(quote))
        .unwrap_or_else(|| panic!("unterminated literal: {lit}"));
    let mut out = Vec::new();
    let mut chars = inner.chars();
    let push_char = |out: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            push_char(&mut out, c);
            continue;
        }
        let e = chars.next().expect("escape at the end of a literal");
        let simple = match e {
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            '0' => Some(0),
            '\\' | '\'' | '"' => Some(e as u8),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let digits = match e {
            'x' => 2,
            'u' if !bytes_lit => 4,
            'U' if !bytes_lit => 8,
            _ => panic!("unknown escape \\{e} in {lit}"),
        };
        let hex: String = chars.by_ref().take(digits).collect();
        let n = u32::from_str_radix(&hex, 16).expect("hex escape");
        if bytes_lit {
            out.push(u8::try_from(n).expect("a byte"));
        } else {
            push_char(&mut out, char::from_u32(n).expect("a code point"));
        }
    }
    out
}

fn py_str(lit: &str) -> String {
    String::from_utf8(py_literal(lit)).expect("a str literal is UTF-8")
}

fn curl_probes() -> Vec<Probe> {
    let text = report();
    let start = text
        .find("==== CURL()")
        .expect("report.txt has a ==== CURL() section");
    let section = &text[start..];
    let section = &section[..section[4..].find("\n====").map_or(section.len(), |i| i + 4)];
    let mut probes: Vec<Probe> = Vec::new();
    for line in section.lines() {
        let t = line.trim();
        if let Some(head) = t.strip_prefix("-- ") {
            let id = head.split_whitespace().next().unwrap_or("").to_string();
            let mode = head
                .split_whitespace()
                .find_map(|w| w.strip_prefix("hashcompat="))
                .unwrap_or("")
                .to_string();
            probes.push(Probe {
                id,
                mode,
                body: None,
                hashkeys: None,
                values: Vec::new(),
            });
            continue;
        }
        let Some(probe) = probes.last_mut() else {
            continue;
        };
        if let Some(lit) = t.strip_prefix("body bytes : ") {
            probe.body = Some(py_literal(lit));
        } else if let Some(lit) = t.strip_prefix("HASHKEYS(resp) = ") {
            probe.hashkeys = Some(py_str(lit));
        } else if let Some(rest) = t.strip_prefix("HASH(resp,") {
            let (key, lit) = rest.split_once(") = ").expect("HASH(resp,key) = '…'");
            probe.values.push((key.to_string(), py_str(lit)));
        }
    }
    probes
}

#[test]
fn the_model_decodes_every_probe_as_the_real_asterisk_did() {
    let probes = curl_probes();
    assert!(
        probes.len() >= 20,
        "only {} CURL probes parsed",
        probes.len()
    );
    let mut checked = Vec::new();
    for p in &probes {
        let mode = match p.mode.as_str() {
            "yes" => Mode::Yes,
            "legacy" => Mode::Legacy,
            _ => continue,
        };
        let Some(body) = &p.body else {
            continue; // refused, timed out, or an error page the report does not show
        };
        let keys = p
            .hashkeys
            .as_ref()
            .unwrap_or_else(|| panic!("{}: a body but no HASHKEYS line", p.id));
        assert!(!p.values.is_empty(), "{}: no HASH() lines", p.id);
        let hash = hash_from_body("resp", body, mode)
            .unwrap_or_else(|| panic!("{}: the model set nothing for a body", p.id));
        assert_eq!(hash.keys(), *keys, "{}: HASHKEYS(resp)", p.id);
        for (key, value) in &p.values {
            assert_eq!(hash.get(key), *value, "{}: HASH(resp,{key})", p.id);
        }
        checked.push(p.id.as_str());
    }
    assert!(
        checked.len() >= 10,
        "only {} probes checked: {checked:?}",
        checked.len()
    );
}

/// Hostile values and what `HASH(lk,name)` must show for them.
fn hostile() -> Vec<(String, String)> {
    let same = |s: &str| (s.to_string(), s.to_string());
    let long = format!("x{}", "Я".repeat(2048)); // 4097 bytes
    let long_cut = format!("x{}", "Я".repeat(99)); // 199 bytes: the next Я would end at 201
    assert!(long_cut.len() <= MAX_VALUE_BYTES && long_cut.len() + 2 > MAX_VALUE_BYTES);
    let long_ascii = "A".repeat(4096);
    vec![
        same("Ivan Petrov"),
        same("a+b"),
        same("Petrov&Sons"),
        same("a=b&c=d"),
        same("x,y"),
        same("f(x)"),
        ("\"q\"".into(), "q".into()),
        ("say \"hi".into(), "say hi".into()),
        same("[b]"),
        same("back\\slash"),
        same("Иван Петров"),
        same("1;DROP TABLE"),
        same("%0d%0a"),
        same("\\r\\n"),
        ("\r\n".into(), "".into()),
        ("a\r\nb".into(), "ab".into()),
        same(""),
        (long, long_cut),
        (long_ascii, "A".repeat(MAX_VALUE_BYTES)),
        ("a\0b".into(), "ab".into()),
        ("(x".into(), "x".into()),
        ("a]b[".into(), "ab".into()),
        same("${EXTEN}$[1+1]|'~*!"),
        same("  spaced  "),
        same("trailing\\"),
    ]
}

/// `s` for a failure message: quoted, or its length when long.
fn short(s: &str) -> String {
    if s.len() <= 120 {
        format!("{s:?}")
    } else {
        format!(
            "<{} bytes: {:?}…>",
            s.len(),
            s.chars().take(20).collect::<String>()
        )
    }
}

fn decode(body: &str, mode: Mode) -> Hash {
    hash_from_body("lk", body.as_bytes(), mode)
        .unwrap_or_else(|| panic!("nothing set for body {body:?}"))
}

#[test]
fn each_hostile_value_round_trips_in_order_with_ok_last() {
    for (value, want) in hostile() {
        let body = encode(&[("v", "1"), ("name", &value), ("agent", "201"), ("ok", "1")]);
        assert!(
            !body.contains(['\n', '\r', ' ']) && body.is_ascii(),
            "not one ASCII line: {body:?}"
        );
        for mode in [Mode::Yes, Mode::Legacy] {
            let hash = decode(&body, mode);
            let ctx = format!("{} as {} ({mode:?})", short(&value), short(&body));
            assert_eq!(hash.get("name"), want, "{ctx}");
            assert_eq!(hash.get("v"), "1", "{ctx}");
            assert_eq!(hash.get("agent"), "201", "{ctx}");
            assert_eq!(hash.get("ok"), "1", "{ctx}");
            // HASHKEYS lists the newest first: the sentinel set last is first.
            assert_eq!(hash.keys(), "ok,agent,name,v", "{ctx}");
        }
    }
}

#[test]
fn all_hostile_values_in_one_answer() {
    let cases = hostile();
    let keys: Vec<String> = (0..14).map(|i| format!("f{i}")).collect();
    let mut pairs: Vec<(&str, &str)> = vec![("v", "1")];
    for (key, (value, _)) in keys.iter().zip(&cases) {
        pairs.push((key, value));
    }
    pairs.push(("ok", "1"));
    let body = encode(&pairs);
    for mode in [Mode::Yes, Mode::Legacy] {
        let hash = decode(&body, mode);
        for (key, (value, want)) in keys.iter().zip(&cases) {
            assert_eq!(
                hash.get(key),
                *want,
                "{key}: {} in {} ({mode:?})",
                short(value),
                short(&body)
            );
        }
        let mut order: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        order.reverse();
        assert_eq!(hash.keys(), order.join(","), "{mode:?}");
        assert_eq!(hash.get("ok"), "1");
    }
}

#[test]
fn a_cut_answer_has_no_sentinel() {
    // What the dialplan's `HASH(lk,ok)=1` check relies on: a body cut
    // anywhere before its end (timeout) never shows ok=1.
    let body = encode(&[("v", "1"), ("name", "Petrov&Sons (VIP)"), ("ok", "1")]);
    for cut in 1..body.len() {
        let hash = decode(&body[..cut], Mode::Yes);
        assert_ne!(hash.get("ok"), "1", "cut at {cut}: {:?}", &body[..cut]);
    }
    assert_eq!(decode(&body, Mode::Yes).get("ok"), "1");
}

#[test]
fn the_model_follows_the_documented_edge_cases() {
    // INTEGRATIONS.md §1.3; no probe of the report covers these.
    let body = b"a=x%00y&b=%2G1&c=+&d=e=f&g\r\n ";
    let yes = hash_from_body("lk", body, Mode::Yes).expect("a body");
    assert_eq!(yes.get("a"), "x", "%00 ends the value");
    assert_eq!(
        yes.get("b"),
        "\u{2}1",
        "one hex digit read, two bytes skipped"
    );
    assert_eq!(yes.get("c"), "+");
    assert_eq!(yes.get("d"), "e=f", "key/value on the first =");
    assert_eq!(yes.get("g"), "", "no = and trailing blanks trimmed");
    assert_eq!(yes.keys(), "g,d,c,b,a");
    let legacy = hash_from_body("lk", body, Mode::Legacy).expect("a body");
    assert_eq!(legacy.get("c"), " ");
    assert!(hash_from_body("lk", b"", Mode::Yes).is_none());

    // HASH() takes 100 items; the 100th holds the rest, unsplit.
    let many: Vec<String> = (0..150).map(|i| format!("k{i}={i}")).collect();
    let hash = hash_from_body("lk", many.join("&").as_bytes(), Mode::Yes).expect("a body");
    assert_eq!(hash.get("k98"), "98");
    assert_eq!(hash.get("k99"), "");
    let keys = hash.keys();
    assert!(keys.starts_with("k99,k100,"), "{keys}");
    assert!(keys.ends_with(",k1,k0"), "{keys}");
}
