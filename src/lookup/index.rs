//! The lookup's memory: every party's facts, every agent's presence and
//! interface, and the directory of known numbers, loaded from the store
//! when `run` starts and then kept current by the state deriver (a
//! [`StateObserver`]) and by the directory's API. A lookup reads only
//! this: it never scans history.

use super::decision::{decide, Ask, Decision};
use super::parties::Parties;
use super::window::{Policy, Window};
use crate::clock::Clock;
use crate::config::Config;
use crate::state::party_facts::{of_party, AgentNames};
use crate::state::{
    party_call_row, read_presence, AgentPresence, CallRow, Changes, StateConfig, StateObserver,
    PARTY_CALL_COLUMNS,
};
use crate::store::directory::{self, Entry};
use crate::store::{Store, StoreError};
use calltrail_parsers::{NumberConfig, NumberNormalizer};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The longest `number` a lookup takes (digits and a leading `+`).
pub const MAX_NUMBER_LEN: usize = 32;

/// An agent's interface as last seen: `(interface, is a device, µs)`.
type Iface = (String, bool, i64);

/// See the module doc.
pub struct Index {
    policy: Policy,
    window: Window,
    tz: Tz,
    state: StateConfig,
    clock: Clock,
    normalizer: Mutex<NumberNormalizer>,
    parties: RwLock<Parties>,
    agents: RwLock<HashMap<String, AgentPresence>>,
    interfaces: RwLock<HashMap<String, Iface>>,
    directory: RwLock<HashMap<String, Arc<Entry>>>,
    /// Lookups that matched a directory entry since the last flush.
    hits: Mutex<HashMap<String, (i64, DateTime<Utc>)>>,
    /// While the tables are being read ([`Index::load`]): the changes the
    /// deriver committed meanwhile, applied on top once read. `None` once
    /// loaded (lookups are answered only then).
    loading: Mutex<Option<Vec<Changes>>>,
    /// Told of every answered lookup (`employee_lookup` rules).
    hook: std::sync::OnceLock<Arc<dyn LookupHook>>,
}

/// Something to do when a lookup is answered (it must be quick: the
/// dialplan waits for the answer, not for the hook's work).
pub trait LookupHook: Send + Sync {
    /// `call` is the dialplan's call id when it gave one (`call=${UNIQUEID}`
    /// over HTTP, `agi_uniqueid` over FastAGI).
    fn looked_up(&self, d: &Decision, call: Option<&str>);
}

/// The index is still being read from the store (a start with a long
/// history takes seconds): the lookup answers 503 / nothing, and the
/// dialplan routes normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the lookup index is still loading")]
pub struct NotReady;

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Sizes of the index (logged at start).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub parties: usize,
    /// The parties' heap, in bytes, about ([`Parties::heap_bytes`]).
    pub parties_bytes: u64,
    pub agents: usize,
    pub numbers: usize,
}

impl Index {
    /// An empty index for `cfg`'s `[lookup]`, `[numbers]` and `[state]`.
    pub fn new(cfg: &Config, clock: Clock) -> anyhow::Result<Index> {
        let policy = Policy::parse(&cfg.lookup.policy)
            .ok_or_else(|| anyhow::anyhow!("[lookup] policy {:?}", cfg.lookup.policy))?;
        let window = Window::parse(&cfg.lookup.window)
            .map_err(|e| anyhow::anyhow!("[lookup] window {:?}: {e}", cfg.lookup.window))?;
        let tz = match &cfg.lookup.timezone {
            Some(z) => z
                .parse()
                .map_err(|e| anyhow::anyhow!("[lookup] timezone {z:?}: {e}"))?,
            None => crate::numbers::zone(cfg),
        };
        let normalizer = NumberNormalizer::new(NumberConfig {
            default_region: cfg.numbers.default_region.clone(),
            max_internal_len: cfg.numbers.max_internal_len,
            match_last_digits: cfg.numbers.match_last_digits,
        })
        .map_err(|e| anyhow::anyhow!("[numbers] default_region: {e}"))?;
        Ok(Index {
            policy,
            window,
            tz,
            state: cfg.state_config(),
            clock,
            normalizer: Mutex::new(normalizer),
            parties: RwLock::default(),
            agents: RwLock::default(),
            interfaces: RwLock::default(),
            directory: RwLock::default(),
            hits: Mutex::default(),
            loading: Mutex::new(Some(Vec::new())),
            hook: std::sync::OnceLock::new(),
        })
    }

    /// Loads everything from the store, then applies the changes committed
    /// meanwhile and starts answering. Set the index as the store's
    /// observer ([`Store::observe_state`]) first: then no change is lost
    /// (one committed before the read is in it, one after is told).
    pub fn load(&self, store: &Store) -> Result<Sizes, StoreError> {
        let db = |what: &'static str| move |e: duckdb::Error| StoreError::Db { what, source: e };
        let (agents, ifaces, parties) = store.with_conn(|conn| {
            let presence = read_presence(conn, None).map_err(db("reading agent_status"))?;
            let agents: HashMap<String, AgentPresence> = presence
                .into_iter()
                .filter_map(|(a, p)| Some((a, p?)))
                .collect();
            let ifaces = load_interfaces(conn).map_err(db("reading interfaces"))?;
            let now = self.clock.now().timestamp_micros();
            let parties =
                load_parties(conn, &self.state, now).map_err(db("reading the calls of callers"))?;
            Ok::<_, StoreError>((agents, ifaces, parties))
        })?;
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        // The directory last, under the lock the admin API's reloads take
        // too: a change made while the rest was read is in it.
        store.with_conn(|conn| self.install_directory(conn))?;
        *write(&self.agents) = agents;
        *write(&self.interfaces) = ifaces;
        *write(&self.parties) = parties;
        for changes in loading.take().unwrap_or_default() {
            self.apply(changes);
        }
        drop(loading);
        Ok(self.sizes())
    }

    /// Whether lookups are answered (the index is loaded).
    pub fn ready(&self) -> bool {
        self.loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    pub fn sizes(&self) -> Sizes {
        Sizes {
            parties: read(&self.parties).len(),
            parties_bytes: read(&self.parties).heap_bytes(),
            agents: read(&self.agents).len(),
            numbers: read(&self.directory).len(),
        }
    }

    /// Reads the whole directory again (after a change through the API).
    pub fn load_directory(&self, conn: &duckdb::Connection) -> Result<(), StoreError> {
        let _serial = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        self.install_directory(conn)
    }

    fn install_directory(&self, conn: &duckdb::Connection) -> Result<(), StoreError> {
        let all = directory::list(conn)?;
        *write(&self.directory) = all
            .into_iter()
            .map(|e| (e.number.clone(), Arc::new(e)))
            .collect();
        Ok(())
    }

    /// The policy and window of `[lookup]`.
    pub fn defaults(&self) -> (Policy, Window) {
        (self.policy, self.window)
    }

    /// The decision for `number` (as the dialplan sent it), by `policy`
    /// and `window` (the configured ones when `None`).
    /// Sets the hook told of every answered lookup (once).
    pub fn set_hook(&self, hook: Arc<dyn LookupHook>) {
        let _ = self.hook.set(hook);
    }

    /// [`Index::lookup`], then the hook (the dialplan's lookups).
    pub fn lookup_call(
        &self,
        number: &str,
        policy: Option<Policy>,
        window: Option<Window>,
        call: Option<&str>,
    ) -> Result<Decision, NotReady> {
        let d = self.lookup(number, policy, window)?;
        if let Some(h) = self.hook.get() {
            h.looked_up(&d, call);
        }
        Ok(d)
    }

    pub fn lookup(
        &self,
        number: &str,
        policy: Option<Policy>,
        window: Option<Window>,
    ) -> Result<Decision, NotReady> {
        if !self.ready() {
            return Err(NotReady);
        }
        let now = self.clock.now();
        let window = window.unwrap_or(self.window);
        let ask = Ask {
            policy: policy.unwrap_or(self.policy),
            window,
            window_start: window.start(now, self.tz),
            now,
            missed_expiry_us: i64::from(self.state.missed_expiry_hours) * 3_600_000_000,
        };
        let shown: String = number.chars().take(MAX_NUMBER_LEN).collect();
        if let Err(why) = check_number(number) {
            return Ok(Decision::unknown(&shown, why, &ask));
        }
        let key = {
            let mut n = self.normalizer.lock().unwrap_or_else(|p| p.into_inner());
            n.normalize(number.trim())
        };
        let Some(key) = key else {
            return Ok(Decision::unknown(
                &shown,
                "not a phone number calltrail can normalize",
                &ask,
            ));
        };
        let entry = read(&self.directory).get(&key).cloned();
        let facts = read(&self.parties).get(&key);
        let d = decide(
            &shown,
            &key,
            entry.as_deref(),
            facts.as_ref(),
            |a| read(&self.agents).get(a).cloned(),
            |a| read(&self.interfaces).get(a).map(|i| i.0.clone()),
            &ask,
        );
        if d.known.is_some() {
            let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
            let h = hits.entry(key).or_insert((0, now));
            h.0 += 1;
            h.1 = now;
        }
        Ok(d)
    }

    /// The hits counted since the last call, to add to the store.
    pub fn take_hits(&self) -> Vec<(String, i64, DateTime<Utc>)> {
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        hits.drain().map(|(k, (n, at))| (k, n, at)).collect()
    }
}

/// Why `number` is not one a lookup takes: digits with an optional
/// leading `+`, at most [`MAX_NUMBER_LEN`] characters (empty, `anonymous`
/// and the like get the unknown answer too).
pub fn check_number(number: &str) -> Result<(), &'static str> {
    let n = number.trim();
    if n.is_empty() {
        return Err("no number (withheld)");
    }
    if n.len() > MAX_NUMBER_LEN {
        return Err("longer than 32 characters");
    }
    let digits = n.strip_prefix('+').unwrap_or(n);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not digits with an optional leading +");
    }
    Ok(())
}

impl StateObserver for Index {
    fn committed(&self, changes: Changes) {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(buffer) = loading.as_mut() {
            buffer.push(changes);
            return;
        }
        drop(loading);
        self.apply(changes);
    }
}

impl Index {
    /// Applies one commit's changes (each a whole party's facts, a whole
    /// agent's presence, an interface seen: applying one twice is harmless).
    fn apply(&self, changes: Changes) {
        if !changes.parties.is_empty() {
            let mut parties = write(&self.parties);
            for (p, f) in changes.parties {
                parties.set(&p, &f);
            }
        }
        if !changes.agents.is_empty() {
            let mut agents = write(&self.agents);
            for (a, p) in changes.agents {
                match p {
                    Some(p) => agents.insert(a, p),
                    None => agents.remove(&a),
                };
            }
        }
        if !changes.interfaces.is_empty() {
            let mut ifaces = write(&self.interfaces);
            for (agent, iface, device, at) in changes.interfaces {
                remember(&mut ifaces, agent, (iface, device, at));
            }
        }
    }
}

/// Keeps the better of two interfaces of an agent: a device over a Local
/// channel, then the later.
fn remember(map: &mut HashMap<String, Iface>, agent: String, new: Iface) {
    match map.get(&agent) {
        Some(old) if (old.1, old.2) > (new.1, new.2) => {}
        _ => {
            map.insert(agent, new);
        }
    }
}

/// Every agent's interface from the stored events (the same rule as
/// `state::interface_of`, in SQL).
fn load_interfaces(conn: &duckdb::Connection) -> duckdb::Result<HashMap<String, Iface>> {
    let mut q = conn.prepare(
        "WITH c AS (
            SELECT agent, epoch_us(ts) AS t,
                   CASE WHEN source_kind IN ('asterisk_cdr_csv', 'asterisk_cdr_custom')
                        THEN regexp_replace(split_part(
                                 CASE WHEN direction = 'outbound' THEN channel ELSE dst_channel END,
                                 ';', 1), '-[0-9A-Fa-f]{8}$', '')
                        ELSE agent_raw END AS iface
            FROM events WHERE agent IS NOT NULL),
         d AS (
            SELECT agent, iface, t,
                   upper(split_part(iface, '/', 1)) IN ('PJSIP', 'SIP', 'IAX2', 'DAHDI') AS device
            FROM c
            WHERE regexp_matches(iface, '^(?i:pjsip|sip|iax2|dahdi|local)/[^\\s]+$'))
         SELECT agent, arg_max(iface, (device::INTEGER, t)), bool_or(device), max(t)
         FROM d
         GROUP BY agent",
    )?;
    let mut rows = q.query([])?;
    let mut out = HashMap::new();
    while let Some(r) = rows.next()? {
        let agent: String = r.get(0)?;
        let iface: String = r.get(1)?;
        let device: bool = r.get(2)?;
        let at: Option<i64> = r.get(3)?;
        out.insert(agent, (iface, device, at.unwrap_or(0)));
    }
    Ok(out)
}

/// Rows of `calls` a load reads (and DuckDB sorts) at once, about: the
/// table is read in slices of its parties (by hash), so that the sort
/// stays small beside the index being built (the whole 2.1 M calls of a
/// 10 M-event history sorted at once took the daemon to 675 MB).
const LOAD_SLICE_ROWS: i64 = 200_000;

/// Every party's facts from the `calls` table.
fn load_parties(conn: &duckdb::Connection, cfg: &StateConfig, now: i64) -> duckdb::Result<Parties> {
    let (parties, rows): (i64, i64) = conn.query_row(
        "SELECT count(DISTINCT party), count(*) FROM calls WHERE party IS NOT NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut out = Parties::with_capacity(usize::try_from(parties).unwrap_or(0));
    let slices = (rows / LOAD_SLICE_ROWS).max(1);
    let mut q = conn.prepare(&format!(
        "SELECT {PARTY_CALL_COLUMNS} FROM calls c
         WHERE c.party IS NOT NULL AND hash(c.party) % $1 = $2
         ORDER BY c.party"
    ))?;
    let mut names = AgentNames::default();
    let mut batch: Vec<CallRow> = Vec::new();
    for slice in 0..slices {
        let mut rows = q.query(duckdb::params![slices as u64, slice as u64])?;
        let mut cur: Option<String> = None;
        while let Some(r) = rows.next()? {
            let (party, row) = party_call_row(r)?;
            if cur.as_deref() != Some(party.as_str()) {
                if let Some(p) = cur.take() {
                    out.set(&p, &of_party(&batch, cfg, now, &mut names));
                }
                batch.clear();
                cur = Some(party);
            }
            batch.push(row);
        }
        if let Some(p) = cur.take() {
            out.set(&p, &of_party(&batch, cfg, now, &mut names));
        }
        batch.clear();
    }
    out.shrink_to_fit();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::PartyFacts;

    #[test]
    fn not_ready_until_loaded_and_nothing_committed_meanwhile_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let cfg = crate::config::parse("[store]\npath = \"s.duckdb\"\n", &path).unwrap();
        let store = Store::open(&cfg.store.path).unwrap();
        let index = Index::new(&cfg, Clock::System).unwrap();
        assert_eq!(index.lookup("+79161234567", None, None), Err(NotReady));
        // A commit while loading: buffered, applied after the read.
        let facts = PartyFacts {
            calls: 3,
            ended_calls: 3,
            ..PartyFacts::default()
        };
        index.committed(Changes {
            parties: vec![("+79161234567".into(), facts)],
            ..Changes::default()
        });
        index.load(&store).unwrap();
        let d = index.lookup("89161234567", None, None).unwrap();
        assert_eq!((d.calls, d.first_call), (3, false));
    }
}
