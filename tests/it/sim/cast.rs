//! Who takes part in the simulated day: the agents (queue_log member names
//! in every style Asterisk writes) and the callers (numbers in every format
//! Russian trunks deliver, a few Ukrainian ones, an anonymous caller).

use super::rng::Rng;

pub const QUEUES: [&str; 3] = ["sales", "support", "billing"];

/// Extension a transfer dials to reach each queue.
pub fn queue_exten(queue: &str) -> &'static str {
    match queue {
        "sales" => "5001",
        "support" => "5002",
        _ => "5003",
    }
}

/// The DID each queue's calls come in on, as the trunk writes it, and the
/// E.164 form the model expects.
pub fn queue_did(queue: &str) -> (&'static str, &'static str) {
    match queue {
        "sales" => ("74951110001", "+74951110001"),
        "support" => ("74951110002", "+74951110002"),
        _ => ("74951110003", "+74951110003"),
    }
}

/// The DID of direct lines to an extension.
pub const DIRECT_DID: (&str, &str) = ("74951110009", "+74951110009");

/// Aliases the test config maps free-text member names with.
pub const ALIASES: [(&str, &str); 2] = [("Anna Smirnova", "205"), ("Ivan Petrov", "210")];

/// One agent.
#[derive(Debug, Clone)]
pub struct AgentDef {
    /// The agent id calltrail must resolve every form to.
    pub id: &'static str,
    /// Member name on call events (CONNECT, COMPLETE*, PAUSE, …).
    pub member: &'static str,
    /// Interface on ADDMEMBER/REMOVEMEMBER.
    pub iface: &'static str,
    /// Channel prefix in CDR rows (`<chan>-0000abcd`).
    pub cdr_chan: &'static str,
    pub queues: &'static [&'static str],
    /// Minutes after 08:00 the agent joins its queues.
    pub login_min: i64,
    /// Minutes after 08:00 the agent leaves them (None: still in at 20:00).
    pub logout_min: Option<i64>,
    /// Has a phone extension of its own (dials callbacks, takes direct calls).
    pub dials: bool,
    /// chan_agent style AGENTLOGIN/AGENTLOGOFF around the membership.
    pub agent_login: bool,
    pub name: &'static str,
}

pub fn agents() -> Vec<AgentDef> {
    let a = |id, member, iface, cdr_chan, queues, login_min, logout_min, dials, name| AgentDef {
        id,
        member,
        iface,
        cdr_chan,
        queues,
        login_min,
        logout_min,
        dials,
        agent_login: false,
        name,
    };
    let mut v = vec![
        a(
            "201",
            "PJSIP/201",
            "PJSIP/201",
            "PJSIP/201",
            &["sales", "support"][..],
            0,
            Some(480),
            true,
            "Olga Ivanova",
        ),
        a(
            "202",
            "SIP/202",
            "SIP/202",
            "SIP/202",
            &["sales"][..],
            0,
            None,
            true,
            "Petr Sidorov",
        ),
        a(
            "203",
            "Local/203@from-queue/n",
            "Local/203@from-queue/n",
            "PJSIP/203",
            &["sales", "billing"][..],
            0,
            Some(480),
            true,
            "Irina Kozlova",
        ),
        a(
            "1001",
            "Agent/1001",
            "Agent/1001",
            "Agent/1001",
            &["support"][..],
            0,
            None,
            false,
            "Agent 1001",
        ),
        a(
            "204",
            "204",
            "PJSIP/204",
            "PJSIP/204",
            &["support", "billing"][..],
            240,
            None,
            true,
            "Sergey Popov",
        ),
        a(
            "205",
            "Anna Smirnova",
            "PJSIP/205",
            "PJSIP/205",
            &["billing", "sales"][..],
            0,
            Some(480),
            true,
            "Anna Smirnova",
        ),
        a(
            "206",
            "PJSIP/206",
            "PJSIP/206",
            "PJSIP/206",
            &["support"][..],
            240,
            None,
            true,
            "Dmitry Volkov",
        ),
        a(
            "207",
            "SIP/207",
            "SIP/207",
            "SIP/207",
            &["sales"][..],
            240,
            None,
            true,
            "Elena Morozova",
        ),
        a(
            "208",
            "Local/208@from-queue/n",
            "Local/208@from-queue/n",
            "PJSIP/208",
            &["billing"][..],
            0,
            None,
            true,
            "Nikolay Lebedev",
        ),
        a(
            "1002",
            "Agent/1002",
            "Agent/1002",
            "Agent/1002",
            &["sales"][..],
            240,
            Some(715),
            false,
            "Agent 1002",
        ),
        a(
            "209",
            "PJSIP/209",
            "PJSIP/209",
            "PJSIP/209",
            &["support", "billing"][..],
            0,
            Some(600),
            true,
            "Tatiana Novikova",
        ),
        a(
            "210",
            "Ivan Petrov",
            "SIP/210",
            "SIP/210",
            &["support"][..],
            240,
            None,
            true,
            "Ivan Petrov",
        ),
    ];
    v[9].agent_login = true;
    v
}

/// A caller: the E.164 the model expects and the ways the number is written.
#[derive(Debug, Clone)]
pub struct Person {
    pub e164: Option<String>,
    /// Raw forms; each call picks one.
    pub raws: Vec<String>,
    pub name: Option<&'static str>,
}

/// The five ways a Russian mobile number reaches queue_log and the CDR.
pub fn ru_forms(d10: &str) -> Vec<String> {
    vec![
        format!("8{d10}"),
        format!("+7{d10}"),
        format!("7{d10}"),
        format!(
            "+7 ({}) {}-{}-{}",
            &d10[..3],
            &d10[3..6],
            &d10[6..8],
            &d10[8..]
        ),
        format!(
            "8-{}-{}-{}-{}",
            &d10[..3],
            &d10[3..6],
            &d10[6..8],
            &d10[8..]
        ),
    ]
}

/// A random Russian mobile number (10 national digits).
pub fn ru_mobile(rng: &mut Rng) -> String {
    const PREFIXES: [&str; 6] = ["916", "926", "903", "985", "999", "915"];
    format!(
        "{}{:07}",
        PREFIXES[rng.index(PREFIXES.len())],
        rng.range(0, 9_999_999)
    )
}

const NAMES: [&str; 6] = [
    "Иван Петров",
    "Мария Соколова",
    "ООО Ромашка",
    "Alexey",
    "Светлана К.",
    "CALLER",
];

/// `n` Russian callers (distinct numbers), two Ukrainian ones and the
/// anonymous caller (last).
pub fn callers(rng: &mut Rng, n: usize) -> Vec<Person> {
    let mut seen = std::collections::BTreeSet::new();
    let mut v = Vec::new();
    while v.len() < n {
        let d = ru_mobile(rng);
        if !seen.insert(d.clone()) {
            continue;
        }
        let name = rng.chance(0.3).then(|| NAMES[rng.index(NAMES.len())]);
        v.push(Person {
            e164: Some(format!("+7{d}")),
            raws: ru_forms(&d),
            name,
        });
    }
    v.push(Person {
        e164: Some("+380501234567".into()),
        raws: vec!["+380501234567".into(), "+380 50 123 45 67".into()],
        name: Some("Taras"),
    });
    v.push(Person {
        e164: Some("+380671112233".into()),
        raws: vec!["+380671112233".into()],
        name: None,
    });
    v.push(Person {
        e164: None,
        raws: vec!["anonymous".into()],
        name: None,
    });
    v
}
