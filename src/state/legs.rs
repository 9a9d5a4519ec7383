//! Which call ids are one call. Asterisk writes one call as several CDR rows
//! with different uniqueids: a queue member reached through a Local channel
//! (FreePBX's `Local/205@from-queue/n`) gets a row of its own, whose
//! `channel` is the `;2` half of the Local channel that the caller's row
//! dialled (its `dstchannel`, the `;1` half); with `cdr_custom` layouts that
//! log it, `linkedid` ties every leg. These rows are **legs** of the call,
//! not calls: grouped here, they become attempts of the call they belong to
//! (`calls.rs`, `attempts.rs`).
//!
//! The grouping is a pure function of the set of events, so it does not
//! depend on which row or file arrived first:
//! - a call id with queue_log lines is **anchored**: it is a call, never
//!   folded into another (two anchored ids are never merged, even when
//!   related: a transfer into a second queue stays two calls);
//! - CDR rows are related by the Local pair (`channel` = `X;2` where another
//!   row's `dst_channel` = `X;1`) and, failing that, by `linked_id`; a
//!   relation merges two groups unless both are anchored; pairs are applied
//!   before linkedids, each kind in id order;
//! - a group's call id is its anchor, else its earliest uniqueid (the
//!   caller's channel exists before the channels it dials).
//!
//! Only Asterisk CDR rows take part: Oktell's `IdChain` (also `linked_id`)
//! keeps its own meaning.

use super::calls::Ev;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The Local channel a name is one half of, and which half
/// (`Local/205@from-queue-0000004a;2` → (`Local/205@from-queue-0000004a`, 2)).
pub fn local_half(channel: &str) -> Option<(&str, u8)> {
    let (base, half) = channel.rsplit_once(';')?;
    if !base.starts_with("Local/") {
        return None;
    }
    match half {
        "1" => Some((base, 1)),
        "2" => Some((base, 2)),
        _ => None,
    }
}

/// Whether `e` is an Asterisk CDR row (the only rows grouped into legs).
pub fn is_asterisk_cdr(e: &Ev) -> bool {
    e.kind == "call_record"
        && matches!(
            e.source_kind.as_str(),
            "asterisk_cdr_csv" | "asterisk_cdr_custom"
        )
}

/// Orders uniqueids as Asterisk makes them (`<epoch>.<counter>`), by number;
/// anything else after those, as text.
pub fn uniqueid_key(id: &str) -> (u8, i64, i64, &str) {
    let parsed = id
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)));
    match parsed {
        Some((a, b)) => (0, a, b, ""),
        None => (1, 0, 0, id),
    }
}

/// A call id within its PBX.
pub type CallKey = (String, String);

struct Sets {
    parent: Vec<usize>,
    anchored: Vec<bool>,
    /// The set's earliest id (index into `keys`), kept at its root.
    first: Vec<usize>,
}

impl Sets {
    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }
}

/// Groups the call ids of `events` into calls: call id → the call id of
/// the call it is part of (itself for a call's own id). Every call id of
/// `events` is a key.
pub fn group(events: &[&Ev]) -> HashMap<CallKey, CallKey> {
    let keys: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.pbx.as_str(), e.call_id.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index: HashMap<(&str, &str), usize> =
        keys.iter().enumerate().map(|(i, &k)| (k, i)).collect();
    let idx = |e: &Ev| index.get(&(e.pbx.as_str(), e.call_id.as_str())).copied();
    let mut sets = Sets {
        parent: (0..keys.len()).collect(),
        anchored: vec![false; keys.len()],
        first: (0..keys.len()).collect(),
    };
    // Who dialled each Local channel's `;1` half; who runs its `;2` half.
    let mut dialled: BTreeMap<(&str, &str), BTreeSet<usize>> = BTreeMap::new();
    let mut runs: BTreeMap<(&str, &str), BTreeSet<usize>> = BTreeMap::new();
    let mut linked: BTreeMap<(&str, &str), BTreeSet<usize>> = BTreeMap::new();
    for &e in events {
        let Some(i) = idx(e) else { continue };
        if e.kind != "call_record" {
            sets.anchored[i] = true;
            continue;
        }
        if !is_asterisk_cdr(e) {
            continue;
        }
        if let Some((base, 1)) = e.dst_channel.as_deref().and_then(local_half) {
            dialled.entry((&e.pbx, base)).or_default().insert(i);
        }
        if let Some((base, 2)) = e.channel.as_deref().and_then(local_half) {
            runs.entry((&e.pbx, base)).or_default().insert(i);
        }
        if let Some(l) = e.linked_id.as_deref().filter(|l| !l.is_empty()) {
            linked.entry((&e.pbx, l)).or_default().insert(i);
        }
    }
    let mut relations: Vec<(usize, usize)> = Vec::new();
    for (k, legs) in &runs {
        if let Some(callers) = dialled.get(k) {
            for &c in callers {
                relations.extend(legs.iter().map(|&l| (c, l)));
            }
        }
    }
    for ids in linked.values() {
        let mut it = ids.iter();
        if let Some(&first) = it.next() {
            relations.extend(it.map(|&o| (first, o)));
        }
    }
    let earlier = |a: usize, b: usize| uniqueid_key(keys[a].1) < uniqueid_key(keys[b].1);
    for (a, b) in relations {
        let (ra, rb) = (sets.find(a), sets.find(b));
        if ra == rb || (sets.anchored[ra] && sets.anchored[rb]) {
            continue;
        }
        // The anchored root stays root; otherwise either will do.
        let (root, child) = if sets.anchored[rb] {
            (rb, ra)
        } else {
            (ra, rb)
        };
        sets.parent[child] = root;
        sets.anchored[root] |= sets.anchored[child];
        let (fa, fb) = (sets.first[root], sets.first[child]);
        sets.first[root] = if earlier(fb, fa) { fb } else { fa };
    }
    let mut out = HashMap::with_capacity(keys.len());
    for i in 0..keys.len() {
        let r = sets.find(i);
        let call = if sets.anchored[r] { r } else { sets.first[r] };
        let owned = |(pbx, id): (&str, &str)| (pbx.to_string(), id.to_string());
        out.insert(owned(keys[i]), owned(keys[call]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdr(id: &str, channel: &str, dst: &str, linked: Option<&str>) -> Ev {
        Ev {
            pbx: "p".into(),
            call_id: id.into(),
            event_id: format!("cdr:{id}:{channel}"),
            kind: "call_record".into(),
            source_kind: "asterisk_cdr_csv".into(),
            channel: (!channel.is_empty()).then(|| channel.to_string()),
            dst_channel: (!dst.is_empty()).then(|| dst.to_string()),
            linked_id: linked.map(str::to_string),
            ..Ev::default()
        }
    }

    fn queue(id: &str) -> Ev {
        Ev {
            pbx: "p".into(),
            call_id: id.into(),
            event_id: format!("q:{id}"),
            kind: "enter_queue".into(),
            source_kind: "asterisk_queue_log".into(),
            ..Ev::default()
        }
    }

    fn grouped(evs: &[Ev]) -> HashMap<CallKey, CallKey> {
        group(&evs.iter().collect::<Vec<_>>())
    }

    fn call_of(g: &HashMap<CallKey, CallKey>, id: &str) -> String {
        g[&("p".to_string(), id.to_string())].1.clone()
    }

    #[test]
    fn halves() {
        assert_eq!(
            local_half("Local/205@from-queue-0000004a;2"),
            Some(("Local/205@from-queue-0000004a", 2))
        );
        assert_eq!(local_half("PJSIP/205-0000004a"), None);
        assert_eq!(local_half("Local/205@from-queue/n"), None);
        assert!(uniqueid_key("1796321147.3") < uniqueid_key("1796321147.10"));
        assert!(uniqueid_key("1796321147.10") < uniqueid_key("abc"));
    }

    /// The sample's first queue call: one trunk row per member attempt, one
    /// agent-leg row per member rung, in any order, with or without the
    /// queue_log line.
    #[test]
    fn local_member_legs_are_one_call_in_any_order() {
        let rows = vec![
            cdr("1796321147.3", "Local/204@from-queue-00000001;2", "", None),
            cdr("1796321147.7", "Local/206@from-queue-00000003;2", "", None),
            cdr(
                "1796321147.1",
                "Local/4951112244@from-pstn-00000000;2",
                "Local/204@from-queue-00000001;1",
                None,
            ),
            cdr(
                "1796321147.1",
                "Local/4951112244@from-pstn-00000000;2",
                "Local/206@from-queue-00000003;1",
                None,
            ),
            // Another call, not related.
            cdr("1796321150.12", "PJSIP/trunk-0001", "PJSIP/201-0002", None),
        ];
        for with_queue in [false, true] {
            let mut evs = rows.clone();
            if with_queue {
                evs.push(queue("1796321147.1"));
            }
            for rot in 0..evs.len() {
                evs.rotate_left(1);
                let g = grouped(&evs);
                for id in ["1796321147.1", "1796321147.3", "1796321147.7"] {
                    assert_eq!(call_of(&g, id), "1796321147.1", "{id} rot {rot}");
                }
                assert_eq!(call_of(&g, "1796321150.12"), "1796321150.12");
            }
        }
        // A leg alone (its call's row not read yet) is its own call for now.
        let g = grouped(&rows[..1]);
        assert_eq!(call_of(&g, "1796321147.3"), "1796321147.3");
    }

    #[test]
    fn linkedid_ties_legs_but_never_two_queue_calls() {
        let evs = vec![
            cdr("10.5", "Local/201@from-queue-01;2", "", Some("10.0")),
            cdr("10.1", "PJSIP/trunk-01", "Local/201@x-99;1", Some("10.0")),
            queue("10.1"),
            // A consultation that entered a queue of its own: linked, but a
            // call of its own.
            cdr("10.9", "PJSIP/201-02", "", Some("10.0")),
            queue("10.9"),
        ];
        let g = grouped(&evs);
        assert_eq!(call_of(&g, "10.5"), "10.1");
        assert_eq!(call_of(&g, "10.1"), "10.1");
        assert_eq!(call_of(&g, "10.9"), "10.9");
    }

    #[test]
    fn oktell_chains_are_left_alone() {
        let mut a = cdr("a", "", "", Some("chain"));
        let mut b = cdr("b", "", "", Some("chain"));
        a.source_kind = "oktell_csv".into();
        b.source_kind = "oktell_csv".into();
        let g = grouped(&[a, b]);
        assert_eq!(
            (call_of(&g, "a"), call_of(&g, "b")),
            ("a".into(), "b".into())
        );
    }
}
