//! WinTariff DBF call table → versioned `call_record` events.
//!
//! WinTariff appends a row when a call is logged and fills CALLTYPE (and
//! maybe more) in place a few seconds later; rows may be marked deleted
//! (`*`) and the table may be packed (deleted rows removed, later rows move
//! up) or rewritten (FORMATS.md §c.1, §c.3, §g.17).
//!
//! **Identity.** A row is identified by its *key*: a hash of the raw bytes
//! of the key fields (`key_fields`, default the mapping's date, time and
//! extension fields, which the writer sets when the row appears and never
//! changes). Each snapshot is matched against the stored states by key:
//! at the same record index (unchanged, or updated in place) or at another
//! index (a packed table: the row moved, it is the same call); rows that
//! share a key are told apart by content first, then by order.
//! A row that matches nothing is a new identity, `row_id` =
//! `<record index>:<key hash, 16 hex>` at first sight, kept for life. So an
//! index reused by a different call (other date/time/extension) is a new
//! row, never an update of the call that used to live there. A stored row
//! that is not in the snapshot any more (packed out, table truncated) is
//! kept and emits nothing.
//!
//! **Versions.** A live row is *due* once CALLTYPE is filled (the mapper's
//! `is_complete`) or `grace_s` after it was first seen. A due row whose
//! content (record bytes, delete flag excluded) differs from the content
//! last handled emits the next version: v1 is the call (`verb`
//! `WINTARIFF`), v2… are updates (`verb` `WINTARIFF_UPDATE`, all fields
//! re-read). A row marked deleted after it was emitted emits a deletion
//! marker as the next version (`kind` `other`, `verb` `WINTARIFF_DELETED`,
//! fields as last read); a row deleted before it was emitted emits nothing.
//! `event_id` = `<source>:rec:<row_id>:v<N>`, `call_id` = `row_id`, so a
//! consumer keeps the highest version per `call_id`.
//!
//! **Count vs size.** [`DbfTable`] reads `min(header count, records in
//! file)`: records past the header's count are picked up once the writer
//! updates the count; a count beyond the file's size reads what is there.
//! The disagreement is logged.
//!
//! **Rejects.** A record whose delete flag is garbage, or a due row that
//! does not map (bad date, bad duration), goes to `rejects` with its byte
//! offset, its 1-based record number and the reason; the next content of
//! that row is tried again. A file that is not a readable DBF at all is one
//! reject for that file content.

use super::{Delta, Engine, SnapshotError};
use crate::config::SnapshotOptions;
use crate::store::{RejectRow, RowState};
use calltrail_parsers::dbf::{
    CharsetChoice, DbfRecord, DbfTable, WinTariffMapper, WinTariffMapping,
};
use calltrail_parsers::hash::{fnv1a64, Fnv1a};
use calltrail_parsers::{
    AgentResolver, Event, EventKind, NumberNormalizer, SourceContext, SourceKind, Str,
};
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};

/// Longest grace time honoured (a year), whatever the config says.
const MAX_GRACE_S: u64 = 366 * 24 * 3600;

/// Verb of a version after the first.
pub const VERB_UPDATE: &str = "WINTARIFF_UPDATE";
/// Verb of a deletion marker.
pub const VERB_DELETED: &str = "WINTARIFF_DELETED";

/// The diff engine of one WinTariff source.
pub struct DbfEngine {
    ctx: SourceContext,
    numbers: NumberNormalizer,
    agents: AgentResolver,
    mapper: WinTariffMapper,
    choice: CharsetChoice,
    /// Configured key fields (`None`: the mapping's defaults, when present).
    key_fields: Option<Vec<String>>,
    grace: Duration,
    rows: HashMap<String, RowState>,
    /// Reject ids already stored (or found stored) by this process.
    rejected: HashSet<String>,
    deadline: Option<DateTime<Utc>>,
    /// Last count/size disagreement logged, to log each once.
    logged_mismatch: Option<(u32, u32)>,
}

/// One readable record of the snapshot.
struct Current {
    index: u32,
    key: u64,
    /// Every key field is blank: such a row is only ever matched at its
    /// own index (blank rows elsewhere are not the same call).
    blank_key: bool,
    hash: u64,
    record: DbfRecord,
}

impl DbfEngine {
    pub fn new(
        ctx: SourceContext,
        numbers: NumberNormalizer,
        agents: AgentResolver,
        opts: &SnapshotOptions,
        states: Vec<RowState>,
    ) -> anyhow::Result<DbfEngine> {
        let choice = match opts.charset_from.as_str() {
            "fixed" => CharsetChoice::Fixed(ctx.fallback_charset),
            "ldid" => CharsetChoice::Ldid,
            _ => CharsetChoice::Auto,
        };
        let mut e = DbfEngine {
            ctx,
            numbers,
            agents,
            mapper: WinTariffMapper::new(opts.wintariff.clone()),
            choice,
            key_fields: opts.key_fields.clone(),
            // Validation allows a week; the clamp keeps date arithmetic safe anyway.
            grace: Duration::seconds(i64::try_from(opts.grace_s.min(MAX_GRACE_S)).unwrap_or(0)),
            rows: states.into_iter().map(|s| (s.row_id.clone(), s)).collect(),
            rejected: HashSet::new(),
            deadline: None,
            logged_mismatch: None,
        };
        e.deadline = e.compute_deadline();
        Ok(e)
    }

    /// Overrides the grace time (imports: zero).
    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
        self.deadline = self.compute_deadline();
    }

    /// Before the first snapshot: the earliest grace deadline of any stored row.
    fn compute_deadline(&self) -> Option<DateTime<Utc>> {
        self.rows
            .values()
            .filter(|s| !s.deleted && s.emitted_hash.is_none())
            .map(|s| s.first_seen_at + self.grace)
            .min()
    }

    fn source(&self) -> &str {
        &self.ctx.source
    }

    /// Field indexes of the key fields in this table.
    fn key_indexes(&self, table: &DbfTable<'_>) -> Result<Vec<usize>, SnapshotError> {
        match &self.key_fields {
            Some(names) => names
                .iter()
                .map(|n| {
                    table.field_index(n).ok_or_else(|| {
                        SnapshotError::Mapping(format!(
                            "key field {n:?} is not in the table; its fields are: {}",
                            field_list(table)
                        ))
                    })
                })
                .collect(),
            None => {
                let m: &WinTariffMapping = self.mapper.mapping();
                Ok([&m.date, &m.time, &m.extension]
                    .into_iter()
                    .filter(|n| !n.trim().is_empty())
                    .filter_map(|n| table.field_index(n))
                    .collect())
            }
        }
    }

    fn reject(
        &self,
        id: String,
        file_fp: &str,
        table: &DbfTable<'_>,
        index: u32,
        reason: String,
    ) -> RejectRow {
        let offset =
            usize::from(table.header().header_length) + index as usize * table.record_stride();
        tracing::warn!(source = %self.source(), record = u64::from(index) + 1, offset, reason = %reason, "record rejected");
        RejectRow {
            reject_id: id,
            file_fp: file_fp.to_string(),
            byte_offset: offset as u64,
            line_no: u64::from(index) + 1,
            raw: table.record_bytes(index).unwrap_or_default().to_vec(),
            reason,
        }
    }

    /// Maps `record` (as if live) and stamps it as version `version` of `row_id`.
    fn event(
        &mut self,
        table: &DbfTable<'_>,
        record: &DbfRecord,
        row_id: &str,
        version: u32,
        deletion: bool,
    ) -> Result<Event, String> {
        let mut live = record.clone();
        live.deleted = false;
        let mapped = self.mapper.record_to_event(
            table,
            &live,
            &self.ctx,
            &mut self.numbers,
            &mut self.agents,
        );
        let mut ev = match mapped {
            Ok(Some(ev)) => ev,
            Ok(None) => return Err("row could not be mapped".into()),
            Err(e) if deletion => {
                // A marker must still go out: the bare envelope.
                tracing::debug!(source = %self.source(), error = %e, "deleted row does not map; marker without fields");
                Event::new(
                    SourceKind::WintariffDbf,
                    self.ctx.source.clone(),
                    self.ctx.pbx.clone(),
                    Utc::now(),
                    EventKind::Other,
                    Str::from(VERB_DELETED),
                )
            }
            Err(e) => return Err(e.to_string()),
        };
        ev.event_id = format!("{}:rec:{row_id}:v{version}", self.source());
        ev.call_id = Some(row_id.to_string());
        if deletion {
            ev.kind = EventKind::Other;
            ev.verb = Str::from(VERB_DELETED);
        } else if version > 1 {
            ev.verb = Str::from(VERB_UPDATE);
        }
        Ok(ev)
    }

    /// Matches the snapshot's records to stored identities (see the module
    /// docs); returns, per record, the stored row id or `None` (new).
    ///
    /// Passes, each over the records still unmatched in index order, each
    /// taking the lowest-index stored row still free: same index, key and
    /// content (unchanged); same key and content elsewhere (moved by a
    /// pack); same index and key (updated in place); same key elsewhere
    /// (moved and updated). Content before position keeps rows that share
    /// a key (the same extension twice in one second) apart when a pack
    /// moves them. Rows with an all-blank key only match at their index.
    fn match_rows(&self, current: &[Current]) -> Vec<Option<String>> {
        type Sig = (Option<u64>, u64, Option<u64>);
        let passes: [fn(u64, u64, u64) -> Sig; 4] = [
            |i, k, h| (Some(i), k, Some(h)),
            |_, k, h| (None, k, Some(h)),
            |i, k, _| (Some(i), k, None),
            |_, k, _| (None, k, None),
        ];
        let mut taken: HashSet<&str> = HashSet::new();
        let mut out: Vec<Option<String>> = vec![None; current.len()];
        for (pass, sig) in passes.into_iter().enumerate() {
            let elsewhere = pass % 2 == 1;
            let mut cands: HashMap<Sig, Vec<(u64, &str)>> = HashMap::new();
            for s in self
                .rows
                .values()
                .filter(|s| !taken.contains(s.row_id.as_str()))
            {
                cands
                    .entry(sig(s.record_index, s.key_hash, s.row_hash))
                    .or_default()
                    .push((s.record_index, &s.row_id));
            }
            for v in cands.values_mut() {
                v.sort_unstable();
                v.reverse(); // pop() takes the lowest index
            }
            for (i, c) in current.iter().enumerate() {
                if out[i].is_some() || (elsewhere && c.blank_key) {
                    continue;
                }
                let Some(list) = cands.get_mut(&sig(u64::from(c.index), c.key, c.hash)) else {
                    continue;
                };
                while let Some((_, id)) = list.pop() {
                    if taken.insert(id) {
                        out[i] = Some(id.to_string());
                        break;
                    }
                }
            }
            if out.iter().all(Option::is_some) {
                break;
            }
        }
        out
    }
}

fn field_list(table: &DbfTable<'_>) -> String {
    table
        .fields()
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Engine for DbfEngine {
    fn apply(&mut self, bytes: &[u8], now: DateTime<Utc>) -> Result<Delta, SnapshotError> {
        let mut delta = Delta::default();
        // Set again below from the rows of a usable snapshot; an unusable
        // one waits for the next change (or rescan) instead of a hot loop.
        self.deadline = None;
        let table = match DbfTable::parse(bytes, self.choice, self.ctx.fallback_charset) {
            Ok(t) => t,
            Err(e) => {
                let id = format!("{}:table:{:016x}", self.source(), fnv1a64(bytes));
                if !self.rejected.contains(&id) {
                    tracing::warn!(source = %self.source(), error = %e, "not a readable DBF table");
                    delta.rejects.push(RejectRow {
                        reject_id: id,
                        file_fp: format!("{:016x}", fnv1a64(bytes.get(..32).unwrap_or(bytes))),
                        byte_offset: 0,
                        line_no: 0,
                        raw: bytes.get(..512).unwrap_or(bytes).to_vec(),
                        reason: e.to_string(),
                    });
                }
                return Ok(delta);
            }
        };
        self.mapper
            .check_fields(&table)
            .map_err(|e| SnapshotError::Mapping(e.to_string()))?;
        let keys = self.key_indexes(&table)?;
        let hl = usize::from(table.header().header_length);
        let file_fp = format!("{:016x}", fnv1a64(bytes.get(32..hl).unwrap_or_default()));
        let counts = (table.header_record_count(), table.records_in_file());
        if counts.0 != counts.1 && self.logged_mismatch != Some(counts) {
            tracing::info!(source = %self.source(), header_count = counts.0, records_in_file = counts.1, reading = table.len(),
                "header record count and file size disagree (writer active?); reading the smaller, re-checking on the next change");
            self.logged_mismatch = Some(counts);
        }

        let mut current = Vec::with_capacity(table.len() as usize);
        for index in 0..table.len() {
            delta.records += 1;
            match table.record(index) {
                Some(Ok(record)) => {
                    let raw = table.record_bytes(index).unwrap_or_default();
                    let mut k = Fnv1a::new();
                    let mut blank_key = true;
                    for &f in &keys {
                        let b = table.field_bytes(index, f).unwrap_or_default();
                        blank_key &= b.iter().all(|&x| x == b' ' || x == 0);
                        k.write(&(b.len() as u32).to_le_bytes());
                        k.write(b);
                    }
                    current.push(Current {
                        index,
                        key: k.finish(),
                        blank_key: blank_key && !keys.is_empty(),
                        hash: fnv1a64(raw.get(1..).unwrap_or_default()),
                        record,
                    });
                }
                Some(Err(e)) => {
                    let raw = table.record_bytes(index).unwrap_or_default();
                    let id = format!("{}:rec@{index}:{:016x}", self.source(), fnv1a64(raw));
                    if !self.rejected.contains(&id) {
                        delta
                            .rejects
                            .push(self.reject(id, &file_fp, &table, index, e.to_string()));
                    }
                }
                None => {}
            }
        }

        let matched = self.match_rows(&current);
        let mut new_ids: HashSet<String> = HashSet::new();
        // Only rows in this snapshot can become due; rows that left the
        // table must not keep the source re-reading.
        let mut deadline: Option<DateTime<Utc>> = None;
        for (c, id) in current.iter().zip(matched) {
            let old = id.as_ref().and_then(|id| self.rows.get(id)).cloned();
            let mut st = match old.clone() {
                Some(s) => s,
                None => {
                    let base = format!("{}:{:016x}", c.index, c.key);
                    let mut row_id = base.clone();
                    let mut n = 1;
                    while self.rows.contains_key(&row_id) || new_ids.contains(&row_id) {
                        n += 1;
                        row_id = format!("{base}.{n}");
                    }
                    new_ids.insert(row_id.clone());
                    RowState {
                        row_id,
                        record_index: u64::from(c.index),
                        key_hash: c.key,
                        row_hash: c.hash,
                        emitted_hash: None,
                        version: 0,
                        deleted: false,
                        marked_deleted: false,
                        first_seen_at: now,
                    }
                }
            };
            st.record_index = u64::from(c.index);
            st.row_hash = c.hash;
            st.deleted = c.record.deleted;
            if c.record.deleted {
                if st.version >= 1 && !st.marked_deleted {
                    let v = st.version + 1;
                    if let Ok(ev) = self.event(&table, &c.record, &st.row_id.clone(), v, true) {
                        delta.events.push(ev);
                        st.version = v;
                        st.marked_deleted = true;
                    }
                }
            } else {
                if st.marked_deleted {
                    // Undeleted: its content is emitted again as an update.
                    st.marked_deleted = false;
                    st.emitted_hash = None;
                }
                let complete = self
                    .mapper
                    .is_complete(&table, &c.record)
                    .map_err(|e| SnapshotError::Mapping(e.to_string()))?;
                let due = complete || now - st.first_seen_at >= self.grace;
                if due && st.emitted_hash != Some(c.hash) {
                    let v = st.version + 1;
                    match self.event(&table, &c.record, &st.row_id.clone(), v, false) {
                        Ok(ev) => {
                            delta.events.push(ev);
                            st.version = v;
                        }
                        Err(reason) => {
                            let id =
                                format!("{}:rec:{}:h{:016x}", self.source(), st.row_id, c.hash);
                            if !self.rejected.contains(&id) {
                                delta
                                    .rejects
                                    .push(self.reject(id, &file_fp, &table, c.index, reason));
                            }
                        }
                    }
                    st.emitted_hash = Some(c.hash);
                }
            }
            if !st.deleted && st.emitted_hash.is_none() {
                let d = st.first_seen_at + self.grace;
                deadline = Some(deadline.map_or(d, |x| x.min(d)));
            }
            if old.as_ref() != Some(&st) {
                delta.states.push(st);
            }
        }
        self.deadline = deadline;
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
        self.deadline
    }
}
