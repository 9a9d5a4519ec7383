//! Oktell `A_Stat_Connections_1x1` export → one event per closed leg.
//!
//! The export is re-read whenever it changes (a scheduled `sqlcmd`/`bcp`
//! job rewrites it). Rows are inserted when a leg starts and updated later
//! (`TimeAnswer`, `TimeStop`; FORMATS.md §d, §g.19).
//!
//! **Identity** is the leg's `Id` column (the connection id; `IdChain` joins
//! the legs of one call). **Open legs** (`TimeStop` NULL/empty) are
//! remembered in `snapshot_rows` with version 0 and emit nothing; on every
//! re-read they are examined again, and the first snapshot in which the leg
//! is closed emits it (`event_id` = `<source>:leg:<Id>:v1`, `verb`
//! `OKTELL`). A closed leg whose values (the parser's typed
//! [`fingerprint`](calltrail_parsers::oktell::OktellLeg::fingerprint), not
//! the text) change in a later export emits the next version (`verb`
//! `OKTELL_UPDATE`, `:v2`, …); an unchanged leg never emits again, and a leg
//! that appears open again after it was emitted is ignored. When one export
//! holds the same `Id` twice (concatenated exports), a closed row wins over
//! an open one, and the last closed row over earlier ones. Legs that leave
//! the export (a sliding-window query) keep their state.
//!
//! **Rejects**: a line that does not parse is stored with its byte offset,
//! line number and reason, once per distinct line content (and occurrence)
//! — re-reading the same export adds none.

use super::{Delta, Engine, SnapshotError};
use crate::store::{RejectRow, RowState};
use calltrail_parsers::hash::fnv1a64;
use calltrail_parsers::oktell::{OktellLeg, OktellParser};
use calltrail_parsers::{AgentResolver, NumberNormalizer, SourceContext, Str};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// Verb of a version after the first.
pub const VERB_UPDATE: &str = "OKTELL_UPDATE";

/// The diff engine of one Oktell export.
pub struct OktellEngine {
    source: String,
    parser: OktellParser,
    rows: HashMap<String, RowState>,
    rejected: HashSet<String>,
}

/// One parsed leg and where it was.
struct Seen {
    line_no: u64,
    leg: OktellLeg,
}

impl OktellEngine {
    pub fn new(
        ctx: SourceContext,
        numbers: NumberNormalizer,
        agents: AgentResolver,
        states: Vec<RowState>,
    ) -> OktellEngine {
        OktellEngine {
            source: ctx.source.to_string(),
            parser: OktellParser::new(ctx, numbers, agents),
            rows: states.into_iter().map(|s| (s.row_id.clone(), s)).collect(),
            rejected: HashSet::new(),
        }
    }

    /// Parses every line; legs keyed by `Id` (closed beats open, last wins).
    fn parse(&mut self, bytes: &[u8], delta: &mut Delta) -> Vec<Seen> {
        self.parser.reset();
        let file_fp = format!(
            "{:016x}",
            fnv1a64(split_lines(bytes).first().map_or(&[][..], |l| l.2))
        );
        let mut order: Vec<String> = Vec::new();
        let mut legs: HashMap<String, Seen> = HashMap::new();
        let mut occurrences: HashMap<u64, u32> = HashMap::new();
        let mut last = (0u64, 0u64, &[][..]);
        for (offset, line_no, raw) in split_lines(bytes) {
            delta.records += 1;
            last = (offset, line_no, raw);
            match self.parser.parse_line(raw) {
                Ok(Some(leg)) => {
                    let keep = match legs.get(&leg.id) {
                        None => {
                            order.push(leg.id.clone());
                            true
                        }
                        Some(prev) => !leg.is_open() || prev.leg.is_open(),
                    };
                    if keep {
                        legs.insert(leg.id.clone(), Seen { line_no, leg });
                    }
                }
                Ok(None) => {}
                Err(e) => self.reject(
                    delta,
                    &file_fp,
                    offset,
                    line_no,
                    raw,
                    &mut occurrences,
                    e.to_string(),
                ),
            }
        }
        if let Err(e) = self.parser.finish() {
            let (offset, line_no, raw) = last;
            self.reject(
                delta,
                &file_fp,
                offset,
                line_no,
                raw,
                &mut occurrences,
                e.to_string(),
            );
        }
        order
            .into_iter()
            .filter_map(|id| legs.remove(&id))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn reject(
        &self,
        delta: &mut Delta,
        file_fp: &str,
        offset: u64,
        line_no: u64,
        raw: &[u8],
        occurrences: &mut HashMap<u64, u32>,
        reason: String,
    ) {
        // Content without the line ending: a re-save with CRLF is the same line.
        let content = raw.strip_suffix(b"\n").unwrap_or(raw);
        let h = fnv1a64(content.strip_suffix(b"\r").unwrap_or(content));
        let n = occurrences.entry(h).or_insert(0);
        *n += 1;
        let id = format!("{}:line:{h:016x}:{n}", self.source);
        if self.rejected.contains(&id) {
            return;
        }
        tracing::warn!(source = %self.source, line = line_no, offset, reason = %reason, "line rejected");
        delta.rejects.push(RejectRow {
            reject_id: id,
            file_fp: file_fp.to_string(),
            byte_offset: offset,
            line_no,
            raw: raw.to_vec(),
            reason,
        });
    }
}

/// Lines of `bytes` as (byte offset, 1-based line number, bytes with the
/// newline). A last line without a newline counts: the snapshot is whole.
fn split_lines(bytes: &[u8]) -> Vec<(u64, u64, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let end = bytes[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| pos + i + 1);
        out.push((pos as u64, out.len() as u64 + 1, &bytes[pos..end]));
        pos = end;
    }
    out
}

impl Engine for OktellEngine {
    fn apply(&mut self, bytes: &[u8], now: DateTime<Utc>) -> Result<Delta, SnapshotError> {
        let mut delta = Delta::default();
        for Seen { line_no, leg } in self.parse(bytes, &mut delta) {
            let old = self.rows.get(&leg.id).cloned();
            let mut st = old.clone().unwrap_or_else(|| RowState {
                row_id: leg.id.clone(),
                record_index: line_no,
                key_hash: 0,
                row_hash: 0,
                emitted_hash: None,
                version: 0,
                deleted: false,
                marked_deleted: false,
                first_seen_at: now,
            });
            let fp = leg.fingerprint();
            st.record_index = line_no;
            st.row_hash = fp;
            if !leg.is_open() && st.emitted_hash != Some(fp) {
                if let Some(mut ev) = self.parser.to_event(&leg) {
                    let v = st.version + 1;
                    ev.event_id = format!("{}:leg:{}:v{v}", self.source, leg.id);
                    if v > 1 {
                        ev.verb = Str::from(VERB_UPDATE);
                    }
                    delta.events.push(ev);
                    st.version = v;
                    st.emitted_hash = Some(fp);
                }
            }
            if old.as_ref() != Some(&st) {
                delta.states.push(st);
            }
        }
        Ok(delta)
    }

    fn committed(&mut self, delta: &Delta) {
        for s in &delta.states {
            self.rows.insert(s.row_id.clone(), s.clone());
        }
        for r in &delta.rejects {
            self.rejected.insert(r.reject_id.clone());
        }
    }

    fn next_deadline(&self) -> Option<DateTime<Utc>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::split_lines;

    #[test]
    fn lines_with_offsets_and_a_last_line_without_newline() {
        let l = split_lines(b"a\r\nbc\n\nd");
        let got: Vec<(u64, u64, &[u8])> = l;
        assert_eq!(
            got,
            vec![
                (0, 1, &b"a\r\n"[..]),
                (3, 2, &b"bc\n"[..]),
                (6, 3, &b"\n"[..]),
                (7, 4, &b"d"[..])
            ]
        );
    }
}
