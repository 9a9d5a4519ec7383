//! Turning read lines into stored facts: parse each line, give every event
//! its deterministic id, collect rejects with their position and reason,
//! ask the rules for actions, and commit it all (with the checkpoint) in one
//! store transaction. Shared by `run` (tailing) and `import` (backfill).

use crate::config::{Config, SourceConfig};
use crate::rules::Rules;
use crate::store::arrow_stage::EventColumns;
use crate::store::{
    CallerInfo, Checkpoint, CommitStats, NewAction, RejectRow, Span, Store, StoreError,
    StoredOffsets,
};
use crate::tail::{fp_hex, Batch, Framing};
use anyhow::Context;
use calltrail_parsers::cdr::{CdrLayout, CdrParser};
use calltrail_parsers::{Event, QueueLogParser, SourceKind};
use chrono::Utc;
use chrono_tz::Tz;
use std::collections::HashMap;

/// Running totals for one source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    pub lines: u64,
    pub blank: u64,
    pub events: u64,
    pub duplicates: u64,
    pub rejects: u64,
    pub actions: u64,
}

impl IngestStats {
    /// `self - o`, field by field (what happened between two snapshots).
    pub fn sub(&mut self, o: &IngestStats) {
        self.lines -= o.lines;
        self.blank -= o.blank;
        self.events -= o.events;
        self.duplicates -= o.duplicates;
        self.rejects -= o.rejects;
        self.actions -= o.actions;
    }

    pub fn add(&mut self, o: &IngestStats) {
        self.lines += o.lines;
        self.blank += o.blank;
        self.events += o.events;
        self.duplicates += o.duplicates;
        self.rejects += o.rejects;
        self.actions += o.actions;
    }
}

/// The record parser of a line-oriented source.
pub enum LineParser {
    QueueLog(Box<QueueLogParser>),
    Cdr(Box<CdrParser>),
}

impl LineParser {
    /// One record → an event, nothing (blank, header) or a reason.
    pub fn parse(&mut self, raw: &[u8]) -> Result<Option<Event>, String> {
        match self {
            LineParser::QueueLog(p) => p.parse_line(raw).map_err(|e| e.to_string()),
            LineParser::Cdr(p) => p.parse_line(raw).map_err(|e| e.to_string()),
        }
    }

    /// How records are delimited in the file.
    pub fn framing(&self) -> Framing {
        match self {
            LineParser::QueueLog(_) => Framing::Lines,
            LineParser::Cdr(_) => Framing::Csv,
        }
    }

    fn timezone(&self) -> Tz {
        match self {
            LineParser::QueueLog(p) => p.context().timezone,
            LineParser::Cdr(p) => p.context().timezone,
        }
    }
}

/// The framing a source kind's files use (`None`: not a line source).
pub fn framing_of(kind: SourceKind) -> Option<Framing> {
    match kind {
        SourceKind::AsteriskQueueLog => Some(Framing::Lines),
        SourceKind::AsteriskCdrCsv | SourceKind::AsteriskCdrCustom => Some(Framing::Csv),
        SourceKind::WintariffDbf | SourceKind::OktellCsv | SourceKind::Derived => None,
    }
}

/// What a batch parsed into.
#[derive(Debug, Default)]
pub struct Parsed {
    pub events: Vec<Event>,
    pub rejects: Vec<RejectRow>,
    pub blank: u64,
}

/// Turns batches of one source into events with their ids, and rejects
/// with their positions. No store access, so it can run on its own thread.
pub struct BatchParser {
    source: String,
    parser: LineParser,
    /// The file whose header row the CDR parser has seen.
    primed_fp: Option<u64>,
}

impl BatchParser {
    pub fn new(source: &str, parser: LineParser) -> BatchParser {
        BatchParser {
            source: source.to_string(),
            parser,
            primed_fp: None,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn framing(&self) -> Framing {
        self.parser.framing()
    }

    /// Parses every record of `batch` straight into event columns, without
    /// building owned events, leaving out the records stored before
    /// (`stored`: queue_log; `None` for sources whose parser has no
    /// zero-copy form, which use [`BatchParser::parse`]).
    pub fn parse_columns(
        &mut self,
        batch: &Batch,
        stored: &StoredOffsets,
    ) -> Option<ParsedColumns> {
        let LineParser::QueueLog(p) = &mut self.parser else {
            return None;
        };
        let fp = fp_hex(batch.file_fp);
        let mut out = ParsedColumns {
            columns: EventColumns::with_capacity(batch.lines.len()),
            rejects: Vec::new(),
            blank: 0,
            duplicates: 0,
        };
        let mut id = String::new();
        for line in &batch.lines {
            let seen = stored.contains(line.offset);
            id.clear();
            use std::fmt::Write;
            let _ = write!(id, "{}:{}:{}", self.source, fp, line.offset);
            match p.parse_line_ref(&line.bytes) {
                Ok(Some(_)) if seen => out.duplicates += 1,
                Ok(Some(ev)) => out.columns.push_ref(&ev, &id),
                Ok(None) => out.blank += 1,
                Err(_) if seen => {}
                Err(e) => out.rejects.push(RejectRow {
                    reject_id: id.clone(),
                    file_fp: fp.clone(),
                    byte_offset: line.offset,
                    line_no: line.line_no,
                    raw: line.bytes.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        Some(out)
    }

    /// [`BatchParser::parse_columns`] for any line source: queue_log
    /// straight into columns, the others (CDR) through owned events.
    pub fn parse_any_columns(&mut self, batch: &Batch, stored: &StoredOffsets) -> ParsedColumns {
        if let Some(cols) = self.parse_columns(batch, stored) {
            return cols;
        }
        let parsed = self.parse(batch);
        let mut out = ParsedColumns {
            columns: EventColumns::with_capacity(parsed.events.len()),
            rejects: Vec::new(),
            blank: parsed.blank,
            duplicates: 0,
        };
        for ev in &parsed.events {
            if crate::store::offset_of(&ev.event_id).is_some_and(|o| stored.contains(o)) {
                out.duplicates += 1;
            } else {
                out.columns.push(ev);
            }
        }
        out.rejects = parsed
            .rejects
            .into_iter()
            .filter(|r| !stored.contains(r.byte_offset))
            .collect();
        out
    }

    /// Parses every record of `batch`.
    pub fn parse(&mut self, batch: &Batch) -> Parsed {
        let fp = fp_hex(batch.file_fp);
        // A CDR export's header row names the columns: when reading starts
        // in the middle of a file, let the parser see it first.
        if self.primed_fp != Some(batch.file_fp) {
            self.primed_fp = Some(batch.file_fp);
            let starts_mid_file = batch.lines.first().is_some_and(|l| l.offset > 0);
            if matches!(self.parser, LineParser::Cdr(_)) && starts_mid_file {
                let _ = self.parser.parse(&batch.head);
            }
        }
        let mut out = Parsed {
            events: Vec::with_capacity(batch.lines.len()),
            ..Parsed::default()
        };
        for line in &batch.lines {
            match self.parser.parse(&line.bytes) {
                Ok(Some(mut ev)) => {
                    ev.event_id = format!("{}:{}:{}", self.source, fp, line.offset);
                    out.events.push(ev);
                }
                Ok(None) => out.blank += 1,
                Err(e) => {
                    tracing::warn!(source = %self.source, line = line.line_no, offset = line.offset, reason = %e, "record rejected");
                    out.rejects.push(RejectRow {
                        reject_id: format!("{}:{}:{}", self.source, fp, line.offset),
                        file_fp: fp.clone(),
                        byte_offset: line.offset,
                        line_no: line.line_no,
                        raw: line.bytes.clone(),
                        reason: e,
                    });
                }
            }
        }
        out
    }
}

/// The stretch of its file a batch was read from (`None` when it has no
/// records: it only moves the checkpoint).
pub fn span_of(batch: &Batch) -> Option<Span> {
    let (first, last) = (batch.lines.first()?, batch.lines.last()?);
    Some(Span {
        file_fp: fp_hex(batch.file_fp),
        start: first.offset,
        end: batch.end_offset.max(last.offset + 1),
        last: last.offset,
    })
}

/// A batch parsed straight into columns ([`BatchParser::parse_columns`]).
pub struct ParsedColumns {
    pub columns: EventColumns,
    /// Rejects not stored before.
    pub rejects: Vec<RejectRow>,
    pub blank: u64,
    /// Events left out: their lines are already stored.
    pub duplicates: u64,
}

/// Parses and stores the lines of one source.
pub struct Ingest {
    source: String,
    parser: BatchParser,
    rules: Option<Rules>,
    store: Store,
    /// Caller of recent calls (from ENTERQUEUE), for events that name only
    /// the call (ABANDON, EXITWITHTIMEOUT, …). Bounded; the store answers
    /// for calls that fell out of it or entered before a restart.
    callers: HashMap<String, CallerInfo>,
    pub stats: IngestStats,
}

const MAX_REMEMBERED_CALLS: usize = 50_000;

/// Builds the parser context for a source from the config.
pub fn parser_for(cfg: &Config, src: &SourceConfig) -> anyhow::Result<LineParser> {
    let (ctx, numbers, agents) = crate::snapshot::context_for(cfg, src)?;
    Ok(match src.kind {
        SourceKind::AsteriskQueueLog => {
            LineParser::QueueLog(Box::new(QueueLogParser::new(ctx, numbers, agents)))
        }
        SourceKind::AsteriskCdrCsv | SourceKind::AsteriskCdrCustom => {
            let layout = match (&src.columns, &src.layout) {
                (Some(cols), _) => CdrLayout::columns(cols)
                    .map_err(|e| anyhow::anyhow!("source {}: columns: {e}", src.name))?,
                (None, Some(name)) => CdrLayout::from_name(name)
                    .with_context(|| format!("source {}: unknown CDR layout {name:?}", src.name))?,
                (None, None) if src.kind == SourceKind::AsteriskCdrCustom => {
                    CdrLayout::CdrCustomDefault
                }
                (None, None) => CdrLayout::Auto,
            };
            LineParser::Cdr(Box::new(
                CdrParser::new(ctx, src.kind, layout, numbers, agents)
                    .with_max_extension_len(cfg.numbers.max_internal_len),
            ))
        }
        other => anyhow::bail!(
            "source {}: {other} is not a line-oriented source (it is read as a snapshot)",
            src.name
        ),
    })
}

impl Ingest {
    /// `with_rules = false` for imports: history creates no actions.
    pub fn new(
        cfg: &Config,
        src: &SourceConfig,
        store: Store,
        with_rules: bool,
    ) -> anyhow::Result<Ingest> {
        let parser = parser_for(cfg, src)?;
        let tz = parser.timezone();
        Ok(Ingest {
            source: src.name.clone(),
            parser: BatchParser::new(&src.name, parser),
            rules: with_rules.then(|| Rules::new(cfg, tz)),
            store,
            callers: HashMap::new(),
            stats: IngestStats::default(),
        })
    }

    /// The caller of `ev`'s call: its own fields, else remembered from the
    /// call's entering event (this batch, recent batches, or the store).
    fn caller_for(
        &mut self,
        ev: &calltrail_parsers::Event,
        batch: &[calltrail_parsers::Event],
    ) -> Result<Option<CallerInfo>, StoreError> {
        if let Some(own) = CallerInfo::of(ev) {
            if let Some(call) = &ev.call_id {
                if self.callers.len() >= MAX_REMEMBERED_CALLS {
                    self.callers.clear();
                }
                self.callers.insert(call.clone(), own.clone());
            }
            return Ok(Some(own));
        }
        let Some(call) = &ev.call_id else {
            return Ok(None);
        };
        if let Some(c) = self.callers.get(call) {
            return Ok(Some(c.clone()));
        }
        if !ev.kind.is_missed() {
            return Ok(None);
        }
        // Not seen since start: this batch is not committed yet, so look there too.
        if let Some(c) = batch
            .iter()
            .rev()
            .filter(|e| e.call_id.as_ref() == Some(call))
            .find_map(CallerInfo::of)
        {
            return Ok(Some(c));
        }
        self.store.caller_of_call(&self.source, call)
    }

    /// The source's name.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// How this source's records are delimited.
    pub fn framing(&self) -> Framing {
        self.parser.parser.framing()
    }

    /// Parses a batch and commits it; `checkpoint` says whether the source's
    /// read position moves with it (tailing) or not (import).
    pub fn process(&mut self, batch: &Batch, checkpoint: bool) -> Result<IngestStats, StoreError> {
        let now = Utc::now();
        let Parsed {
            events,
            rejects,
            blank,
        } = self.parser.parse(batch);
        let mut actions: Vec<NewAction> = Vec::new();
        if self.rules.is_some() {
            for (i, ev) in events.iter().enumerate() {
                let caller = self.caller_for(ev, &events[..i])?;
                if let Some(rules) = &self.rules {
                    actions.extend(rules.actions_for(ev, caller.as_ref(), now));
                }
            }
        }
        let cp = checkpoint.then(|| Checkpoint {
            file_fp: fp_hex(batch.checkpoint.file_fp),
            dev: batch.checkpoint.devino.map_or(0, |d| d.dev),
            inode: batch.checkpoint.devino.map_or(0, |d| d.ino),
            byte_offset: batch.checkpoint.offset,
            line_no: batch.checkpoint.line_no,
        });
        let c: CommitStats = self.store.commit_batch(
            self.parser.source(),
            &events,
            &rejects,
            &actions,
            cp.as_ref(),
            span_of(batch).as_ref(),
        )?;
        let s = IngestStats {
            lines: batch.lines.len() as u64,
            blank,
            events: c.inserted as u64,
            duplicates: c.duplicates as u64,
            rejects: rejects.len() as u64,
            actions: c.actions as u64,
        };
        self.stats.add(&s);
        Ok(s)
    }
}
