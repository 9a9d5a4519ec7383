//! Logins for the pages on a running daemon: `calltrail passwd` makes the
//! hash and the token the config holds; with them configured, `/wall`
//! sends a browser to `/login` and `/api/wall` answers 401 — from loopback
//! too; a token (`?token=`, `Bearer`) opens them; the login form needs its
//! anti-forgery token and this site's origin, a wrong password is refused
//! after a pause, a good one gives a signed session cookie that opens the
//! pages and that cannot be forged; an admin token from `[[http.tokens]]`
//! opens the admin API and a viewer's does not; the dialplan lookup stays
//! open to loopback (Asterisk); a listener beyond loopback starts with
//! logins and is refused without any; check-config explains bad entries.

use crate::daemon::{bin, calltrail, Daemon};
use crate::rules::daemon_config;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn passwd(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(bin())
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("calltrail passwd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("passwd output");
    assert!(
        out.status.success(),
        "passwd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The token printed in `passwd --token`'s comment.
pub(crate) fn token_of(snippet: &str) -> String {
    snippet
        .lines()
        .find_map(|l| l.strip_prefix("#   "))
        .expect("the token line")
        .trim()
        .to_string()
}

fn agent() -> ureq::Agent {
    crate::support::http_agent(Duration::from_secs(10))
}

struct Got {
    status: u16,
    location: String,
    cookies: Vec<String>,
    body: String,
}

fn got(mut r: ureq::http::Response<ureq::Body>) -> Got {
    let h = r.headers();
    let location = h
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let cookies = h
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .collect();
    Got {
        status: r.status().as_u16(),
        location,
        cookies,
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn get(url: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    got(req.call().expect("GET"))
}

fn post(url: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Got {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req = agent()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    got(req.send(body).expect("POST"))
}

fn cookie<'a>(g: &'a Got, name: &str) -> &'a str {
    g.cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", g.cookies))
}

/// The value of the hidden input `name` (minijinja escapes it as HTML).
fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} field in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').expect("end of value")]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

#[test]
fn pages_need_a_login_or_a_token_and_the_login_is_safe() {
    let user = passwd(&["--name", "anna"], "correct horse battery\n");
    assert!(user.contains("password_hash = \"$argon2id$v=19$"), "{user}");
    assert!(
        !user.contains("correct horse"),
        "the password is never printed"
    );
    let tv = passwd(&["--token", "--name", "tv-hall"], "");
    let tv_token = token_of(&tv);
    let admin = passwd(&["--token", "--name", "ops", "--role", "admin"], "");
    let admin_token = token_of(&admin);

    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::tools::free_port();
    let cfg = daemon_config(
        dir.path(),
        &format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n{user}{tv}{admin}"),
    );
    let check = calltrail(&cfg, &["check-config"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let d = Daemon::start(&cfg, &dir.path().join("d.log"));
    d.wait_http();
    let base = format!("http://127.0.0.1:{port}");

    // Nothing brought: a browser goes to the login page, an API client
    // gets 401 — from loopback too.
    let g = get(&format!("{base}/wall?queues=support&token=wrong"), &[]);
    assert_eq!(g.status, 303);
    assert_eq!(g.location, "/login?next=%2Fwall%3Fqueues%3Dsupport");
    assert_eq!(get(&format!("{base}/api/wall"), &[]).status, 401);
    assert_eq!(get(&format!("{base}/api/wall/stream"), &[]).status, 401);
    let r = get(
        &format!("{base}/reports/missed?from=2026-11-20&to=2026-11-20"),
        &[],
    );
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location,
        "/login?next=%2Freports%2Fmissed%3Ffrom%3D2026-11-20%26to%3D2026-11-20"
    );
    assert_eq!(
        get(
            &format!("{base}/reports/missed?from=2026-11-20&to=2026-11-20&format=csv"),
            &[]
        )
        .status,
        303
    );
    // The login page's own assets and the health check are open.
    assert_eq!(get(&format!("{base}/login/login.css"), &[]).status, 200);
    assert_eq!(get(&format!("{base}/healthz"), &[]).status, 200);
    // The dialplan lookup stays open to the PBX on this host (503 while
    // its index loads).
    assert!(crate::support::wait_until(Duration::from_secs(10), || get(
        &format!("{base}/dialplan/lookup?number=79161234567"),
        &[]
    )
    .status
        == 200));

    // A token opens the pages, in the address or as a bearer.
    assert_eq!(
        get(&format!("{base}/api/wall?token={tv_token}"), &[]).status,
        200
    );
    let bearer = format!("Bearer {tv_token}");
    assert_eq!(
        get(&format!("{base}/api/wall"), &[("authorization", &bearer)]).status,
        200
    );
    let page = get(&format!("{base}/wall?token={tv_token}"), &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("wall.js"));

    // The admin API: an admin token from [[http.tokens]] opens it, a
    // viewer's does not.
    let admin_bearer = format!("Bearer {admin_token}");
    assert_eq!(
        get(
            &format!("{base}/api/numbers"),
            &[("authorization", &admin_bearer)]
        )
        .status,
        200
    );
    assert_eq!(
        get(
            &format!("{base}/api/numbers"),
            &[("authorization", &bearer)]
        )
        .status,
        401
    );

    // The login form.
    let form = get(
        &format!("{base}/login?next=%2Fwall%3Fqueues%3Dsupport"),
        &[],
    );
    assert_eq!(form.status, 200);
    assert!(form.body.contains("id=\"login\""), "{}", form.body);
    let nonce_cookie = cookie(&form, "calltrail_login").to_string();
    let csrf = hidden(&form.body, "csrf");
    assert_eq!(hidden(&form.body, "next"), "/wall?queues=support");
    let login = format!("{base}/login");
    let good = [
        ("user", "anna"),
        ("password", "correct horse battery"),
        ("csrf", csrf.as_str()),
        ("next", "/wall?queues=support"),
    ];
    // Without the form's cookie, or with another site's origin: refused.
    assert_eq!(post(&login, &[], &good).status, 403);
    assert_eq!(
        post(
            &login,
            &[("cookie", &nonce_cookie), ("origin", "http://evil.example")],
            &good
        )
        .status,
        403
    );
    // A wrong password: refused, after a pause.
    let t = Instant::now();
    let bad = post(
        &login,
        &[("cookie", &nonce_cookie)],
        &[
            ("user", "anna"),
            ("password", "correct horse"),
            ("csrf", csrf.as_str()),
            ("next", "/wall"),
        ],
    );
    assert_eq!(bad.status, 401);
    assert!(t.elapsed() >= Duration::from_millis(950));
    assert!(bad.body.contains("login-error"));
    assert!(bad
        .cookies
        .iter()
        .all(|c| !c.starts_with("calltrail_session=")));
    // An unknown user: the same answer.
    let unknown = post(
        &login,
        &[("cookie", &nonce_cookie)],
        &[
            ("user", "<img src=x onerror=alert(1)>"),
            ("password", "x"),
            ("csrf", csrf.as_str()),
        ],
    );
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!unknown.body.contains("<img src=x"));
    // The right one: a session, back where the visitor was going (a
    // foreign `next` would go to /wall instead).
    let ok = post(
        &login,
        &[("cookie", &nonce_cookie), ("origin", &base)],
        &good,
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location, "/wall?queues=support");
    let session = cookie(&ok, "calltrail_session").to_string();
    assert!(!session.contains("anna"), "signed, and the name hex-coded");
    assert_eq!(
        get(&format!("{base}/wall"), &[("cookie", &session)]).status,
        200
    );
    assert_eq!(
        get(&format!("{base}/api/wall"), &[("cookie", &session)]).status,
        200
    );
    let index = get(&format!("{base}/reports"), &[("cookie", &session)]);
    assert_eq!(index.status, 200);
    assert!(index.body.contains("id=\"logout\""), "{}", index.body);
    let logout_csrf = hidden(&index.body, "csrf");
    assert_eq!(
        get(
            &format!("{base}/reports/calls_by_queue?from=2026-11-20&to=2026-11-20&format=csv"),
            &[("cookie", &session)]
        )
        .status,
        200
    );
    // A session is no admin token.
    assert_eq!(
        get(&format!("{base}/api/numbers"), &[("cookie", &session)]).status,
        401
    );
    // A forged session: one character changed in the value.
    let (name, value) = session.split_once('=').expect("pair");
    let mut forged: Vec<char> = value.chars().collect();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == '0' { '1' } else { '0' };
    let forged = format!("{name}={}", forged.into_iter().collect::<String>());
    assert_eq!(
        get(&format!("{base}/wall"), &[("cookie", &forged)]).status,
        303
    );
    assert_eq!(
        get(&format!("{base}/api/wall"), &[("cookie", &forged)]).status,
        401
    );
    let bad_next = post(
        &login,
        &[("cookie", &nonce_cookie)],
        &[
            ("user", "anna"),
            ("password", "correct horse battery"),
            ("csrf", csrf.as_str()),
            ("next", "//evil.example/"),
        ],
    );
    assert_eq!(bad_next.location, "/wall");

    // Logging out: the form's token is needed, the cookie is cleared.
    let logout = format!("{base}/logout");
    assert_eq!(
        post(&logout, &[("cookie", &session)], &[("csrf", "0000")]).status,
        403
    );
    let out = post(&logout, &[("cookie", &session)], &[("csrf", &logout_csrf)]);
    assert_eq!(out.status, 303);
    assert_eq!(out.location, "/login");
    assert!(
        out.cookies.iter().any(|c| c == "calltrail_session="),
        "{:?}",
        out.cookies
    );

    let log = d.log();
    assert!(!log.contains("correct horse"), "passwords never logged");
    assert!(!log.contains(&tv_token), "tokens never logged");
    assert!(log.contains("login failed"));
}

#[test]
fn beyond_loopback_logins_are_enough_and_nothing_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::tools::free_port();
    let open = daemon_config(
        dir.path(),
        &format!("\n[http]\nlisten = \"0.0.0.0:{port}\"\n"),
    );
    let check = calltrail(&open, &["check-config"]);
    assert!(!check.status.success());
    let said = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(said.contains("[[http.users]]"), "{said}");
    let mut run = Command::new(bin())
        .arg("--config")
        .arg(&open)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("calltrail run");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = run.try_wait().expect("wait") {
            break s;
        }
        if t.elapsed() > Duration::from_secs(20) {
            let _ = run.kill();
            panic!("an open listener must not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());

    let tv = passwd(&["--token"], "");
    let dir2 = tempfile::tempdir().expect("tempdir");
    let cfg = daemon_config(
        dir2.path(),
        &format!("\n[http]\nlisten = \"0.0.0.0:{port}\"\n{tv}"),
    );
    let d = Daemon::start(&cfg, &dir2.path().join("d.log"));
    d.wait_http();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(get(&format!("{base}/wall"), &[]).status, 303);
    assert_eq!(
        get(&format!("{base}/api/wall?token={}", token_of(&tv)), &[]).status,
        200
    );
}

#[test]
fn check_config_explains_bad_logins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = daemon_config(
        dir.path(),
        r#"
[[http.users]]
name = "anna"
role = "viewer"
password_hash = "hunter2"

[[http.users]]
name = "anna"
role = "admin"
password_hash = "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$J1uKq5FGWZBRpiQ4Rmx5w4ieQw2WyJ9H5l5UEb2rLZc"

[[http.tokens]]
name = "tv"
role = "viewer"
token_sha256 = "abc"
"#,
    );
    let out = calltrail(&cfg, &["check-config"]);
    assert!(!out.status.success());
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for want in [
        "http.users[0].password_hash",
        "http.users[1].name",
        "http.users[1].password_hash",
        "not argon2",
        "http.tokens[0].token_sha256",
        "calltrail passwd",
    ] {
        assert!(said.contains(want), "{want:?} not in {said}");
    }
    assert!(
        !said.contains("hunter2"),
        "a configured secret is not echoed"
    );
}
