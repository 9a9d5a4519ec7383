//! Deterministic generators of realistic PBX logs for the parse benchmark
//! (`benches/parse.rs`) and the `gen_queue_log` example. No `rand`: a
//! seeded xorshift64*, so the same seed and line count always give the same
//! bytes.
//!
//! queue_log: calls through ~50 queues (numeric and named) answered by ~300
//! agents written as `PJSIP/201`, `Local/201@from-queue/n` or a member name,
//! ~100k distinct callers (per 1 M lines) as `89161234567`, `+79161234567` or `79161234567`
//! (plus some anonymous and internal ones), repeat callers more likely than
//! new ones. Each call is DID (some), ENTERQUEUE (3 or 4 data fields),
//! RINGNOANSWERs, then CONNECT + COMPLETECALLER/COMPLETEAGENT/TRANSFER/
//! ATTENDEDTRANSFER, or ABANDON / EXITWITHTIMEOUT / EXITWITHKEY; in between
//! agent PAUSE/UNPAUSE/ADDMEMBER/REMOVEMEMBER lines and a few verbs the
//! parser does not know. Epochs grow with overlapping calls (monotonic-ish),
//! call ids are `<epoch>.<n>`.
//!
//! cdr_csv: 18-column records (uniqueid + userfield) of inbound queue
//! calls, outbound and internal calls, every field quoted but the numbers,
//! as Asterisk's cdr_csv writes them.
#![allow(dead_code)]

use std::io::{self, Write};

/// xorshift64* (Vigna): small, fast, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Zero is the one state xorshift cannot leave.
        Rng((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `pct` percent.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

pub const DEFAULT_SEED: u64 = 0xCA11_7EA1;

const FIRST: [&str; 20] = [
    "Ivan", "Olga", "Sergey", "Anna", "Dmitry", "Elena", "Pavel", "Maria", "Alexey", "Irina",
    "Paty", "John", "Sara", "Tania", "Nikolay", "Yulia", "Artem", "Daria", "Oleg", "Natalia",
];
const LAST: [&str; 15] = [
    "Petrov",
    "Ivanova",
    "Smirnov",
    "Kuznetsova",
    "Popov",
    "Sokolova",
    "Lebedev",
    "Kozlova",
    "Marin",
    "Rembold",
    "Sangri",
    "Flores",
    "Novikov",
    "Morozova",
    "Volkov",
];
const QUEUE_WORDS: [&str; 25] = [
    "sales",
    "support",
    "billing",
    "vip",
    "callback",
    "retention",
    "tech",
    "delivery",
    "orders",
    "claims",
    "info",
    "partners",
    "hr",
    "reception",
    "night",
    "moscow",
    "spb",
    "kazan",
    "ekb",
    "nsk",
    "premium",
    "corporate",
    "returns",
    "service",
    "english",
];
const PAUSE_REASONS: [&str; 5] = ["lunch", "break", "training", "paperwork", ""];
const UNKNOWN_VERBS: [&str; 4] = ["CALLERONHOLD", "CALLEROFFHOLD", "MIXMONITOR", "INFO"];

/// Static pools shared by the generators.
pub struct Pools {
    pub queues: Vec<String>,
    /// (interface as written in queue_log, extension number)
    pub agents: Vec<(String, u32)>,
}

impl Pools {
    pub fn new() -> Self {
        let mut queues = Vec::with_capacity(50);
        for (i, word) in QUEUE_WORDS.iter().enumerate() {
            queues.push(format!("{}", 1500 + i * 3));
            queues.push(word.to_string());
        }
        let mut agents = Vec::with_capacity(300);
        for i in 0..300u32 {
            let ext = 200 + i;
            let iface = match i % 10 {
                0..=3 => format!("PJSIP/{ext}"),
                4..=6 => format!("Local/{ext}@from-queue/n"),
                7 => format!("SIP/{ext}"),
                _ => format!(
                    "{} {}",
                    FIRST[(i as usize * 7) % FIRST.len()],
                    LAST[(i as usize * 11) % LAST.len()]
                ),
            };
            agents.push((iface, ext));
        }
        Pools { queues, agents }
    }
}

impl Default for Pools {
    fn default() -> Self {
        Self::new()
    }
}

/// Size of the external caller pool: a 1 M-line file has ~210k caller
/// fields, which draw ~100k distinct callers from it.
pub const CALLERS: u64 = 160_000;

/// A caller number as a trunk writes it: the format is a property of the
/// caller (one trunk per caller), so there are ~100k distinct strings.
pub fn caller(rng: &mut Rng) -> String {
    // Skewed towards low ids: repeat callers are common.
    let r = rng.below(CALLERS);
    let k = if rng.pct(30) { r / 8 } else { r };
    let national = 9_000_000_000 + k * 9_973 % 999_999_999;
    match k % 6 {
        0..=2 => format!("8{national}"),
        3 | 4 => format!("+7{national}"),
        _ => format!("7{national}"),
    }
}

/// The caller-ID field of ENTERQUEUE: mostly a number, some anonymous and
/// some internal extensions.
fn caller_field(rng: &mut Rng) -> String {
    match rng.below(100) {
        0..=1 => "anonymous".to_string(),
        2..=4 => format!("{}", 200 + rng.below(300)),
        _ => caller(rng),
    }
}

fn caller_name(rng: &mut Rng) -> String {
    format!(
        "{} {}",
        FIRST[rng.below(FIRST.len() as u64) as usize],
        LAST[rng.below(LAST.len() as u64) as usize]
    )
}

/// Writes `lines` queue_log lines.
pub fn queue_log<W: Write>(out: &mut W, lines: u64, seed: u64) -> io::Result<()> {
    let pools = Pools::new();
    let mut rng = Rng::new(seed);
    let mut w = Lines {
        out,
        left: lines,
        buf: String::with_capacity(256),
    };
    let mut clock: u64 = 1_717_000_000;
    let mut seq: u64 = 100_000;
    while w.left > 0 {
        clock += rng.below(4);
        // Agent state changes between calls, with sentinel call ids.
        if rng.pct(6) {
            let (agent, _) = &pools.agents[rng.below(300) as usize];
            let queue = &pools.queues[rng.below(50) as usize];
            let line = match rng.below(10) {
                0..=3 => format!(
                    "{clock}|NONE|{queue}|{agent}|PAUSE|{}",
                    PAUSE_REASONS[rng.below(5) as usize]
                ),
                4..=7 => format!("{clock}|NONE|{queue}|{agent}|UNPAUSE|"),
                8 => format!("{clock}|MANAGER|{queue}|{agent}|ADDMEMBER|"),
                _ => format!("{clock}|MANAGER|{queue}|{agent}|REMOVEMEMBER|"),
            };
            w.line(&line)?;
        }
        let start = clock;
        seq += 1;
        let callid = format!("{start}.{seq}");
        let queue = &pools.queues[(rng.below(50) * rng.below(50) / 49) as usize];
        let mut t = start;
        if rng.pct(40) {
            w.line(&format!(
                "{t}|{callid}|{queue}|NONE|DID|{}",
                4_950_000_000 + rng.below(10_000)
            ))?;
        }
        let cid = caller_field(&mut rng);
        let pos = 1 + rng.below(5);
        if rng.pct(30) {
            let name = caller_name(&mut rng);
            w.line(&format!(
                "{t}|{callid}|{queue}|NONE|ENTERQUEUE||{cid}|{pos}|{name}"
            ))?;
        } else {
            w.line(&format!(
                "{t}|{callid}|{queue}|NONE|ENTERQUEUE||{cid}|{pos}"
            ))?;
        }
        for _ in 0..rng.below(4) {
            let (agent, _) = &pools.agents[rng.below(300) as usize];
            let ring = rng.range(1, 20);
            t += ring;
            w.line(&format!(
                "{t}|{callid}|{queue}|{agent}|RINGNOANSWER|{}",
                ring * 1000
            ))?;
        }
        if rng.pct(1) {
            let verb = UNKNOWN_VERBS[rng.below(4) as usize];
            w.line(&format!(
                "{t}|{callid}|{queue}|NONE|{verb}|x|{}",
                rng.below(100)
            ))?;
        }
        let hold = t - start + rng.below(30);
        match rng.below(100) {
            // Answered.
            0..=71 => {
                let (agent, ext) = &pools.agents[rng.below(300) as usize];
                let ring = rng.range(1, 15);
                t = start + hold + ring;
                seq += 1;
                w.line(&format!(
                    "{t}|{callid}|{queue}|{agent}|CONNECT|{hold}|{}.{seq}|{ring}",
                    t - ring
                ))?;
                let talk = rng.range(5, 900);
                t += talk;
                let line = match rng.below(100) {
                    0..=49 => format!(
                        "{t}|{callid}|{queue}|{agent}|COMPLETECALLER|{hold}|{talk}|{pos}"
                    ),
                    50..=89 => format!(
                        "{t}|{callid}|{queue}|{agent}|COMPLETEAGENT|{hold}|{talk}|{pos}"
                    ),
                    90..=95 => format!(
                        "{t}|{callid}|{queue}|{agent}|TRANSFER|{}|from-internal|{hold}|{talk}|{pos}",
                        200 + rng.below(300)
                    ),
                    96..=97 => format!(
                        "{t}|{callid}|{queue}|{agent}|ATTENDEDTRANSFER|BRIDGE|{}.{}|{hold}|{talk}|{pos}",
                        t - 5,
                        seq + 1
                    ),
                    _ => format!(
                        "{t}|{callid}|{queue}|PJSIP/{ext}|ATTENDEDTRANSFER|APP|Queue|{hold}|{talk}|{pos}"
                    ),
                };
                w.line(&line)?;
            }
            72..=91 => {
                t = start + hold;
                w.line(&format!(
                    "{t}|{callid}|{queue}|NONE|ABANDON|{}|{pos}|{hold}",
                    1 + rng.below(pos)
                ))?;
            }
            92..=97 => {
                t = start + hold.max(300);
                w.line(&format!(
                    "{t}|{callid}|{queue}|NONE|EXITWITHTIMEOUT|{}|{pos}|{}",
                    1 + rng.below(pos),
                    t - start
                ))?;
            }
            _ => {
                t = start + hold;
                w.line(&format!(
                    "{t}|{callid}|{queue}|NONE|EXITWITHKEY|{}|1|{pos}|{hold}",
                    rng.below(10)
                ))?;
            }
        }
    }
    Ok(())
}

/// Writes lines until its budget is spent (the last call may be cut short).
struct Lines<'w, W: Write> {
    out: &'w mut W,
    left: u64,
    buf: String,
}

impl<W: Write> Lines<'_, W> {
    fn line(&mut self, s: &str) -> io::Result<()> {
        if self.left == 0 {
            return Ok(());
        }
        self.left -= 1;
        self.buf.clear();
        self.buf.push_str(s);
        self.buf.push('\n');
        self.out.write_all(self.buf.as_bytes())
    }
}

/// `YYYY-MM-DD HH:MM:SS` of epoch seconds (UTC), without chrono's
/// formatting machinery.
pub fn datetime(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Writes `lines` cdr_csv records (18 columns: uniqueid and userfield).
pub fn cdr_csv<W: Write>(out: &mut W, lines: u64, seed: u64) -> io::Result<()> {
    let pools = Pools::new();
    let mut rng = Rng::new(seed);
    let mut clock: u64 = 1_717_000_000;
    let mut seq: u64 = 100_000;
    let mut chan: u64 = 0x1000;
    for _ in 0..lines {
        clock += rng.below(6);
        seq += 1;
        chan += 2;
        let start = clock;
        let (_, ext) = &pools.agents[rng.below(300) as usize];
        let answered = rng.pct(75);
        let ring = rng.range(1, 30);
        let talk = if answered { rng.range(3, 1200) } else { 0 };
        let duration = ring + talk;
        let answer = if answered {
            format!("\"{}\"", datetime(start + ring))
        } else {
            String::new()
        };
        let end = datetime(start + duration);
        let disposition = if answered {
            "ANSWERED"
        } else if rng.pct(70) {
            "NO ANSWER"
        } else {
            "BUSY"
        };
        let line = match rng.below(10) {
            // Inbound through a queue.
            0..=5 => {
                let src = caller(&mut rng);
                let queue = &pools.queues[rng.below(50) as usize];
                let name = caller_name(&mut rng);
                format!(
                    "\"\",\"{src}\",\"{queue}\",\"from-pstn\",\"\"\"{name}\"\" <{src}>\",\
                     \"PJSIP/trunk-{chan:08x}\",\"PJSIP/{ext}-{:08x}\",\"Queue\",\
                     \"{queue},t,,,300\",\"{}\",{answer},\"{end}\",{duration},{talk},\
                     \"{disposition}\",\"DOCUMENTATION\",\"{start}.{seq}\",\"\"",
                    chan + 1,
                    datetime(start)
                )
            }
            // Outbound.
            6..=8 => {
                let dst = caller(&mut rng);
                format!(
                    "\"\",\"{ext}\",\"{dst}\",\"from-internal\",\"\"\"{ext}\"\" <{ext}>\",\
                     \"PJSIP/{ext}-{chan:08x}\",\"PJSIP/trunk-{:08x}\",\"Dial\",\
                     \"PJSIP/{dst}@trunk,60,Tt\",\"{}\",{answer},\"{end}\",{duration},{talk},\
                     \"{disposition}\",\"DOCUMENTATION\",\"{start}.{seq}\",\"Outbound\"",
                    chan + 1,
                    datetime(start)
                )
            }
            // Internal.
            _ => {
                let other = 200 + rng.below(300);
                format!(
                    "\"\",\"{ext}\",\"{other}\",\"from-internal\",\"\"\"{ext}\"\" <{ext}>\",\
                     \"PJSIP/{ext}-{chan:08x}\",\"PJSIP/{other}-{:08x}\",\"Dial\",\
                     \"PJSIP/{other},20\",\"{}\",{answer},\"{end}\",{duration},{talk},\
                     \"{disposition}\",\"DOCUMENTATION\",\"{start}.{seq}\",\"\"",
                    chan + 1,
                    datetime(start)
                )
            }
        };
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
