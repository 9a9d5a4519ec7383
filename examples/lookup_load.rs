//! Open-loop load generator for the dialplan lookup (driven by
//! `bench/lookup.sh`): sends lookups to a running `calltrail run` over HTTP
//! (`GET /dialplan/lookup`, a fresh TCP connection per request as
//! Asterisk's `CURL()` makes, or kept-alive connections) or over FastAGI
//! (`agi://…/lookup` with `agi_arg_1`, the environment block as Asterisk
//! sends it, `200 result=1` to every `SET VARIABLE` until the server
//! closes), at a fixed offered rate, and prints the latency percentiles.
//!
//! ```text
//! cargo run --example lookup_load -- --target http|http-keepalive|agi \
//!     --addr 127.0.0.1:8479 --rate 10000 --seconds 10 --numbers FILE \
//!     [--seed N] [--timeout-ms 1000]
//! cargo run --example lookup_load -- --target fresh --addr 127.0.0.1:8479 \
//!     --queue-log FILE --count 100 [--gap-ms 200-500] [--poll-ms 5]
//! ```
//!
//! Open loop: request `i` is due at `start + i / rate`, whatever happened
//! to the earlier ones (the main thread sleeps until each due time, with a
//! 1 µs timer slack, and hands the request to a one-thread tokio runtime
//! on another thread), and its latency is measured from that
//! due time to the complete answer (the server's close for HTTP with
//! `Connection: close` and for FastAGI), so a stall of the server or of the
//! generator counts for every request it delays (no coordinated omission).
//! The service time (from the task's start) and the generator's own lag
//! (due time to the task's start) are printed too, and the generator's CPU
//! time: on a small machine the generator and the daemon share the cores.
//! The numbers are drawn at
//! random (seeded) from `--numbers`, one per line, as the dialplan would
//! send them (`+79161234567`, `89161234567`).
//!
//! `--target fresh` measures freshness instead: it appends an ENTERQUEUE
//! and a CONNECT of a new caller to the daemon's tailed `--queue-log` in
//! one write, polls `GET /api/lookup` every `--poll-ms` until the answer
//! names the CONNECT's agent, then appends the call's end; `--count` times,
//! `--gap-ms` apart. Latency: write → first answer with the agent.
//!
//! Output: readable lines, then one `JSON {...}` line for the script.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const USAGE: &str = "usage: lookup_load --target http|http-keepalive|agi --addr IP:PORT --rate N \
--seconds S --numbers FILE [--seed N] [--timeout-ms MS]
       lookup_load --target fresh --addr IP:PORT --queue-log FILE --count N [--gap-ms LO-HI] \
[--poll-ms MS] [--timeout-ms MS]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lookup_load: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Http,
    HttpKeepAlive,
    Agi,
    Fresh,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Http => "http",
            Target::HttpKeepAlive => "http-keepalive",
            Target::Agi => "agi",
            Target::Fresh => "fresh",
        }
    }
}

struct Args {
    target: Target,
    addr: SocketAddr,
    rate: f64,
    seconds: f64,
    numbers: Option<String>,
    seed: u64,
    timeout: Duration,
    queue_log: Option<String>,
    count: usize,
    gap_ms: (u64, u64),
    poll: Duration,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        target: Target::Http,
        addr: "127.0.0.1:8479".parse().expect("an address"),
        rate: 1000.0,
        seconds: 10.0,
        numbers: None,
        seed: 0x10_0C_0A_D5,
        timeout: Duration::from_millis(1000),
        queue_log: None,
        count: 100,
        gap_ms: (200, 500),
        poll: Duration::from_millis(5),
    };
    let mut timeout_set = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--target" => {
                a.target = match value()?.as_str() {
                    "http" => Target::Http,
                    "http-keepalive" => Target::HttpKeepAlive,
                    "agi" => Target::Agi,
                    "fresh" => Target::Fresh,
                    other => return Err(format!("unknown --target {other:?}")),
                }
            }
            "--addr" => a.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--rate" => a.rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--seconds" => a.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--numbers" => a.numbers = Some(value()?),
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--timeout-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--timeout-ms: {e}"))?;
                a.timeout = Duration::from_millis(ms);
                timeout_set = true;
            }
            "--queue-log" => a.queue_log = Some(value()?),
            "--count" => a.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--gap-ms" => {
                let v = value()?;
                let (lo, hi) = v.split_once('-').unwrap_or((&v, &v));
                let lo: u64 = lo.parse().map_err(|e| format!("--gap-ms: {e}"))?;
                let hi: u64 = hi.parse().map_err(|e| format!("--gap-ms: {e}"))?;
                a.gap_ms = (lo.min(hi), lo.max(hi));
            }
            "--poll-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--poll-ms: {e}"))?;
                a.poll = Duration::from_millis(ms.max(1));
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.target == Target::Fresh {
        if a.queue_log.is_none() {
            return Err("--target fresh needs --queue-log".into());
        }
        if !timeout_set {
            a.timeout = Duration::from_secs(10);
        }
    } else {
        if a.numbers.is_none() {
            return Err("--numbers is required".into());
        }
        if !(a.rate > 0.0 && a.rate.is_finite() && a.seconds > 0.0 && a.seconds.is_finite()) {
            return Err("--rate and --seconds must be positive".into());
        }
    }
    Ok(a)
}

fn run() -> Result<(), String> {
    let a = args()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    if a.target == Target::Fresh {
        return rt.block_on(fresh(&a));
    }
    let path = a.numbers.as_deref().unwrap_or_default();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let numbers: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if numbers.is_empty() {
        return Err(format!("{path}: no numbers"));
    }
    load(&a, rt, Arc::new(numbers))
}

/// xorshift64* (the same as the queue_log generator's).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// A complete answer with the `ok` sentinel, naming an agent or not.
    Ok {
        agent: bool,
    },
    Connect,
    Io,
    Timeout,
    /// HTTP status other than 200.
    Status,
    /// No `ok=1` (HTTP) or `CALLTRAIL_OK` 1 (FastAGI).
    NoOk,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok { .. } => "ok",
            Outcome::Connect => "connect",
            Outcome::Io => "io",
            Outcome::Timeout => "timeout",
            Outcome::Status => "status",
            Outcome::NoOk => "no_ok",
        }
    }
}

/// One request's figures (µs).
struct Sample {
    /// Due time → complete answer.
    latency: u64,
    /// Task start → complete answer.
    service: u64,
    /// Due time → task start.
    lag: u64,
    outcome: Outcome,
}

type Pool = Arc<Mutex<Vec<TcpStream>>>;

fn load(a: &Args, rt: tokio::runtime::Runtime, numbers: Arc<Vec<String>>) -> Result<(), String> {
    let total = (a.rate * a.seconds).round().max(1.0) as usize;
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let pool: Pool = Arc::default();
    let handle = rt.handle().clone();
    let (target, addr, timeout) = (a.target, a.addr, a.timeout);
    let cpu0 = cpu_seconds();
    // The runtime runs the requests on its own thread, collecting them.
    let collector = std::thread::spawn(move || {
        rt.block_on(async {
            let mut v = Vec::with_capacity(total);
            while v.len() < total {
                match rx.recv().await {
                    Some(s) => v.push(s),
                    None => break,
                }
            }
            (v, Instant::now())
        })
    });
    // The dispatcher, on the main thread (whose timer slack can be set:
    // the default 50 µs would make every request late by that much):
    // sleeps until each due time, then hands the request to the runtime; a
    // late wake-up sends everything due at once.
    let _ = std::fs::write("/proc/self/timerslack_ns", "1000");
    let started = Instant::now() + Duration::from_millis(20);
    let mut rng = Rng::new(a.seed);
    for i in 0..total {
        let due = started + period.mul_f64(i as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let number = numbers[rng.below(numbers.len() as u64) as usize].clone();
        let (tx, pool) = (tx.clone(), pool.clone());
        handle.spawn(async move {
            let start = Instant::now();
            let outcome =
                match tokio::time::timeout(timeout, one(target, addr, &number, i, &pool)).await {
                    Ok(o) => o,
                    Err(_) => Outcome::Timeout,
                };
            let end = Instant::now();
            let _ = tx.send(Sample {
                latency: micros(end.saturating_duration_since(due)),
                service: micros(end - start),
                lag: micros(start.saturating_duration_since(due)),
                outcome,
            });
        });
    }
    drop(tx);
    let (samples, ended) = collector
        .join()
        .map_err(|_| "the runtime thread panicked".to_string())?;
    let wall = ended.saturating_duration_since(started);
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    report(a, &samples, wall, cpu);
    Ok(())
}

/// This process's CPU time so far (user + system, all threads), from
/// `/proc/self/stat` (clock ticks of 1/100 s, as on every Linux here).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is 3rd.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// One lookup by `target`.
async fn one(target: Target, addr: SocketAddr, number: &str, i: usize, pool: &Pool) -> Outcome {
    match target {
        Target::Http => http_close(addr, number).await,
        Target::HttpKeepAlive => http_keepalive(addr, number, pool).await,
        Target::Agi => agi(addr, number, i).await,
        Target::Fresh => Outcome::Io,
    }
}

/// `%XX` for everything but digits and letters (the dialplan's URIENCODE).
fn encode(number: &str) -> String {
    let mut s = String::with_capacity(number.len() + 4);
    for b in number.bytes() {
        if b.is_ascii_alphanumeric() {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, Outcome> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|_| Outcome::Connect)?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// The answer line of `/dialplan/lookup`: `ok=1` last, `agent=` set or not.
fn judge_body(status_ok: bool, body: &[u8]) -> Outcome {
    if !status_ok {
        return Outcome::Status;
    }
    let body = String::from_utf8_lossy(body);
    let body = body.trim_end();
    if !body.ends_with("ok=1") {
        return Outcome::NoOk;
    }
    Outcome::Ok {
        agent: !body.contains("&agent=&") && !body.starts_with("agent=&"),
    }
}

/// `GET /dialplan/lookup` on a new connection, `Connection: close`, read
/// to the server's close.
async fn http_close(addr: SocketAddr, number: &str) -> Outcome {
    let mut s = match connect(addr).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let req = format!(
        "GET /dialplan/lookup?number={} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: asterisk-libcurl-agent/1.0\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        encode(number)
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return Outcome::Io;
    }
    let mut buf = Vec::with_capacity(512);
    if s.read_to_end(&mut buf).await.is_err() {
        return Outcome::Io;
    }
    let Some(head_end) = find(&buf, b"\r\n\r\n") else {
        return Outcome::Io;
    };
    let status_ok = buf.starts_with(b"HTTP/1.1 200");
    judge_body(status_ok, &buf[head_end + 4..])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One response on a kept-alive connection: the status line and a body of
/// `content-length` bytes.
async fn read_response(s: &mut TcpStream) -> Result<(bool, Vec<u8>), Outcome> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut chunk).await.map_err(|_| Outcome::Io)?;
        if n == 0 {
            return Err(Outcome::Io);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(Outcome::Io)?;
    let body_start = head_end + 4;
    while buf.len() < body_start + len {
        let n = s.read(&mut chunk).await.map_err(|_| Outcome::Io)?;
        if n == 0 {
            return Err(Outcome::Io);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let status_ok = buf.starts_with(b"HTTP/1.1 200");
    Ok((status_ok, buf[body_start..body_start + len].to_vec()))
}

/// `GET path` on a pooled kept-alive connection (a new one when none is
/// free); the connection goes back to the pool after a good answer.
async fn get_keepalive(
    addr: SocketAddr,
    path: &str,
    pool: &Pool,
) -> Result<(bool, Vec<u8>), Outcome> {
    let pooled = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let mut s = match pooled {
        Some(s) => s,
        None => connect(addr).await?,
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|_| Outcome::Io)?;
    let r = read_response(&mut s).await?;
    pool.lock().unwrap_or_else(|p| p.into_inner()).push(s);
    Ok(r)
}

async fn http_keepalive(addr: SocketAddr, number: &str, pool: &Pool) -> Outcome {
    let path = format!("/dialplan/lookup?number={}", encode(number));
    match get_keepalive(addr, &path, pool).await {
        Ok((status_ok, body)) => judge_body(status_ok, &body),
        Err(o) => o,
    }
}

/// The environment block Asterisk sends on a FastAGI connection for
/// `AGI(agi://ADDR/lookup,NUMBER)` (the lines of a real Asterisk's
/// session: shared/reference/asterisk-probes/report.txt, "FastAGI").
fn agi_env(addr: SocketAddr, number: &str, i: usize) -> String {
    format!(
        "agi_network: yes\n\
         agi_network_script: lookup\n\
         agi_request: agi://{addr}/lookup\n\
         agi_channel: PJSIP/trunk-{i:08x}\n\
         agi_language: en\n\
         agi_type: PJSIP\n\
         agi_uniqueid: 1796321093.{i}\n\
         agi_version: 20.5.0\n\
         agi_callerid: {number}\n\
         agi_calleridname: unknown\n\
         agi_callingpres: 0\n\
         agi_callingani2: 0\n\
         agi_callington: 0\n\
         agi_callingtns: 0\n\
         agi_dnid: 4950000000\n\
         agi_rdnis: unknown\n\
         agi_context: calltrail-lookup-agi\n\
         agi_extension: s\n\
         agi_priority: 5\n\
         agi_enhanced: 0.0\n\
         agi_accountcode: \n\
         agi_threadid: 140354025232064\n\
         agi_arg_1: {number}\n\
         \n"
    )
}

/// A FastAGI session: the environment, then `200 result=1` to each
/// command until the server closes.
async fn agi(addr: SocketAddr, number: &str, i: usize) -> Outcome {
    let s = match connect(addr).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let (r, mut w) = s.into_split();
    if w.write_all(agi_env(addr, number, i).as_bytes())
        .await
        .is_err()
    {
        return Outcome::Io;
    }
    let mut r = BufReader::new(r);
    let mut line = String::new();
    let (mut ok, mut agent) = (false, false);
    loop {
        line.clear();
        match r.read_line(&mut line).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => return Outcome::Io,
        }
        let l = line.trim_end();
        if let Some(rest) = l.strip_prefix("SET VARIABLE ") {
            if let Some(v) = rest.strip_prefix("CALLTRAIL_OK ") {
                ok = v.trim_matches('"') == "1";
            } else if let Some(v) = rest.strip_prefix("CALLTRAIL_AGENT ") {
                agent = !v.trim_matches('"').is_empty();
            }
        }
        if w.write_all(b"200 result=1\n").await.is_err() {
            // The server may close right after its last command.
            break;
        }
    }
    if ok {
        Outcome::Ok { agent }
    } else {
        Outcome::NoOk
    }
}

/// p in 0..=1 of sorted values.
fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

struct Stats {
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

fn stats(mut v: Vec<u64>) -> Stats {
    v.sort_unstable();
    Stats {
        p50: pct(&v, 0.50),
        p90: pct(&v, 0.90),
        p99: pct(&v, 0.99),
        p999: pct(&v, 0.999),
        max: v.last().copied().unwrap_or(0),
    }
}

fn stats_json(s: &Stats) -> String {
    format!(
        "{{\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"max\":{}}}",
        s.p50, s.p90, s.p99, s.p999, s.max
    )
}

fn report(a: &Args, samples: &[Sample], wall: Duration, cpu: Option<f64>) {
    let n = samples.len();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut with_agent = 0usize;
    for s in samples {
        *outcomes.entry(s.outcome.name()).or_default() += 1;
        if s.outcome == (Outcome::Ok { agent: true }) {
            with_agent += 1;
        }
    }
    let ok = outcomes.get("ok").copied().unwrap_or(0);
    let errors = n - ok;
    let lat = stats(samples.iter().map(|s| s.latency).collect());
    let svc = stats(samples.iter().map(|s| s.service).collect());
    let lag = stats(samples.iter().map(|s| s.lag).collect());
    let achieved = n as f64 / wall.as_secs_f64().max(1e-9);
    let how = match a.target {
        Target::Http => "HTTP, a new TCP connection per request",
        Target::HttpKeepAlive => "HTTP, kept-alive connections",
        Target::Agi => "FastAGI, a new connection per lookup",
        Target::Fresh => "",
    };
    println!(
        "lookup_load: {how}: offered {:.0}/s for {:.1} s, {n} sent, completed at {achieved:.0}/s, \
         errors {errors}, answers naming an agent {with_agent}",
        a.rate, a.seconds
    );
    let line = |label: &str, s: &Stats| {
        println!(
            "  {label:<34} p50 {:>6}  p90 {:>6}  p99 {:>6}  p99.9 {:>6}  max {:>7}",
            s.p50, s.p90, s.p99, s.p999, s.max
        )
    };
    line("latency from the due time, µs", &lat);
    line("service time (task start), µs", &svc);
    line("generator lag (due -> start), µs", &lag);
    let cpu_pct = cpu.map(|c| 100.0 * c / wall.as_secs_f64().max(1e-9));
    if let Some(p) = cpu_pct {
        println!("  generator CPU: {p:.0} % of one core");
    }
    if errors > 0 {
        let detail: Vec<String> = outcomes
            .iter()
            .filter(|(k, _)| **k != "ok")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("  errors: {}", detail.join(" "));
    }
    let outcomes_json: Vec<String> = outcomes
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    println!(
        "JSON {{\"target\":\"{}\",\"rate\":{},\"seconds\":{},\"sent\":{n},\"achieved\":{achieved:.1},\
         \"errors\":{errors},\"with_agent\":{with_agent},\"outcomes\":{{{}}},\"latency_us\":{},\
         \"service_us\":{},\"lag_us\":{},\"generator_cpu_pct\":{:.1}}}",
        a.target.name(),
        a.rate,
        a.seconds,
        outcomes_json.join(","),
        stats_json(&lat),
        stats_json(&svc),
        stats_json(&lag),
        cpu_pct.unwrap_or(-1.0)
    );
}

/// `--target fresh`: see the module doc.
async fn fresh(a: &Args) -> Result<(), String> {
    let path = a.queue_log.as_deref().unwrap_or_default();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))?;
    let epoch = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    // Numbers no history has: Moscow landlines (+7495…), distinct per run.
    let base = (epoch() % 9_000) * 1_000;
    let pool: Pool = Arc::default();
    let mut rng = Rng::new(a.seed ^ epoch());
    let mut times = Vec::with_capacity(a.count);
    let mut timeouts = 0usize;
    for i in 0..a.count {
        let number = format!("+7495{:07}", base + i as u64);
        let ext = 700 + (i % 100);
        let ts = epoch();
        let callid = format!("{ts}.{}", 900_000 + 2 * i);
        let lines = format!(
            "{ts}|{callid}|support|NONE|ENTERQUEUE||{number}|1\n\
             {ts}|{callid}|support|PJSIP/{ext}|CONNECT|1|{ts}.{}|1\n",
            900_001 + 2 * i
        );
        let path_q = format!("/api/lookup?number={}", encode(&number));
        let want = ext.to_string();
        let t0 = Instant::now();
        file.write_all(lines.as_bytes())
            .map_err(|e| format!("{path}: {e}"))?;
        let mut seen = None;
        let mut k = 0u32;
        while t0.elapsed() < a.timeout {
            if let Ok((true, body)) = get_keepalive(a.addr, &path_q, &pool).await {
                let agent = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("agent").and_then(|x| x.as_str()).map(String::from));
                if agent.as_deref() == Some(want.as_str()) {
                    seen = Some(t0.elapsed());
                    break;
                }
            }
            k += 1;
            let next = t0 + a.poll * k;
            tokio::time::sleep_until(next.into()).await;
        }
        match seen {
            Some(d) => times.push(micros(d)),
            None => timeouts += 1,
        }
        let talk = 1 + rng.below(5);
        let end = format!(
            "{}|{callid}|support|PJSIP/{ext}|COMPLETECALLER|1|{talk}|1\n",
            ts + talk
        );
        file.write_all(end.as_bytes())
            .map_err(|e| format!("{path}: {e}"))?;
        let gap = a.gap_ms.0 + rng.below(a.gap_ms.1 - a.gap_ms.0 + 1);
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    let n = times.len();
    let s = stats(times);
    println!(
        "lookup_load: freshness, {} calls appended to {path}: answered {n}, not within {:.1} s: \
         {timeouts}; polled every {} ms",
        a.count,
        a.timeout.as_secs_f64(),
        a.poll.as_millis()
    );
    println!(
        "  line written -> lookup names the agent, ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        s.p50 as f64 / 1e3,
        s.p90 as f64 / 1e3,
        s.p99 as f64 / 1e3,
        s.max as f64 / 1e3
    );
    println!(
        "JSON {{\"target\":\"fresh\",\"count\":{},\"answered\":{n},\"timeouts\":{timeouts},\
         \"poll_ms\":{},\"latency_us\":{}}}",
        a.count,
        a.poll.as_millis(),
        stats_json(&s)
    );
    Ok(())
}
