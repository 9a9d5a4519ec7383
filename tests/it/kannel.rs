//! The Kannel test rig itself (`support::kannel`): a real bearerbox + smsbox
//! with a fake SMSC, driven over plain HTTP (ureq) the way an SMS action
//! would, checking the replies of `INTEGRATIONS.md` §4.1 and that what the
//! fake SMSC records is exactly what was sent — including UCS-2 Cyrillic,
//! concatenated parts, and the gateway going down and coming back.

use std::io::ErrorKind;
use std::thread;
use std::time::Duration;

use crate::support::kannel::{Kannel, ReceivedSms, SmsCoding};

const ACCEPTED: &str = "0: Accepted for delivery";
const QUEUED: &str = "3: Queued for later delivery";
const CYRILLIC: &str = "Здравствуйте, вы звонили нам";
const DELIVERY: Duration = Duration::from_secs(15);
/// How long to keep looking for messages that should not arrive.
const LINGER: Duration = Duration::from_millis(700);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// `application/x-www-form-urlencoded` (`+` → `%2B`, space → `+`).
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET sendsms?username=…&password=…&{query}` (`query` already encoded):
/// the status and the body.
fn sendsms_as(kannel: &Kannel, password: &str, query: &str) -> Result<(u16, String), ureq::Error> {
    let url = format!(
        "{}?username={}&password={}&{query}",
        kannel.sendsms_url(),
        enc(kannel.username()),
        enc(password)
    );
    let mut reply = agent().get(&url).call()?;
    let status = reply.status().as_u16();
    let body = reply.body_mut().read_to_string()?;
    Ok((status, body))
}

/// Sends with the rig's credentials and asserts `202 0: Accepted for delivery`.
fn send_accepted(kannel: &Kannel, query: &str) {
    let reply = sendsms_as(kannel, kannel.password(), query)
        .unwrap_or_else(|e| panic!("sendsms {query}: {e}\n{}", kannel.diagnostics()));
    assert_eq!(
        reply,
        (202, ACCEPTED.to_owned()),
        "sendsms {query}\n{}",
        kannel.diagnostics()
    );
}

fn sms(from: &str, to: &str, text: &str, coding: SmsCoding, parts: usize) -> ReceivedSms {
    ReceivedSms {
        from: from.to_owned(),
        to: to.to_owned(),
        text: text.to_owned(),
        coding,
        parts,
        total_parts: parts,
    }
}

/// Waits for `expected.len()` messages, lingers, and asserts that exactly
/// those arrived.
fn assert_received(kannel: &Kannel, expected: &[ReceivedSms]) {
    kannel.wait_received(expected.len(), DELIVERY);
    thread::sleep(LINGER);
    assert_eq!(kannel.received(), expected, "\n{}", kannel.diagnostics());
}

#[test]
fn kannel_delivers_ascii_and_cyrillic_exactly() {
    let kannel = Kannel::start();
    let ascii = "Missed call from +7 495 123-45-67 (queue support), 100% answered?";
    send_accepted(&kannel, &format!("to=79161234567&text={}", enc(ascii)));
    let cyrillic_query = format!(
        "to=%2B79161234567&coding=2&charset=UTF-8&text={}",
        enc(CYRILLIC)
    );
    send_accepted(&kannel, &cyrillic_query);
    let sender = kannel.global_sender();
    assert_received(
        &kannel,
        &[
            sms(sender, "79161234567", ascii, SmsCoding::Text, 1),
            sms(sender, "+79161234567", CYRILLIC, SmsCoding::Ucs2, 1),
        ],
    );
}

#[test]
fn kannel_joins_concatenated_parts() {
    let kannel = Kannel::start();
    // 3 × 28 = 84 UCS-2 characters > 70: two parts of at most 67.
    let cyrillic = [CYRILLIC; 3].join(" ");
    // 7-bit: 240 characters > 160: two parts of at most 153.
    let ascii: String = (0..24).map(|i| format!("part {i:02} + ")).collect();
    assert_eq!(ascii.len(), 240);
    send_accepted(
        &kannel,
        &format!(
            "to=%2B79161234567&from=74950001122&coding=2&charset=UTF-8&text={}",
            enc(&cyrillic)
        ),
    );
    send_accepted(&kannel, &format!("to=555&text={}", enc(&ascii)));
    // Short UCS-2 text of Latin letters: still told apart from 7-bit.
    send_accepted(&kannel, "to=556&coding=2&charset=UTF-8&text=Hi+there");
    assert_received(
        &kannel,
        &[
            sms("74950001122", "+79161234567", &cyrillic, SmsCoding::Ucs2, 2),
            sms(kannel.global_sender(), "555", &ascii, SmsCoding::Text, 2),
            sms(
                kannel.global_sender(),
                "556",
                "Hi there",
                SmsCoding::Ucs2,
                1,
            ),
        ],
    );
}

#[test]
fn kannel_rejects_a_bad_password() {
    let kannel = Kannel::start();
    let reply = sendsms_as(&kannel, "not-the-password", "to=79161234567&text=hello")
        .unwrap_or_else(|e| panic!("sendsms: {e}\n{}", kannel.diagnostics()));
    assert_eq!(reply, (403, "Authorization failed for sendsms".to_owned()));
    thread::sleep(LINGER);
    assert_eq!(kannel.received(), [], "\n{}", kannel.diagnostics());
}

#[test]
fn kannel_smsbox_goes_down_and_comes_back() {
    let kannel = Kannel::start();
    let sender = kannel.global_sender().to_owned();
    send_accepted(&kannel, "to=100&text=before");
    kannel.wait_received(1, DELIVERY);

    kannel.stop_smsbox();
    match sendsms_as(&kannel, kannel.password(), "to=100&text=while+down") {
        Err(ureq::Error::Io(e)) if e.kind() == ErrorKind::ConnectionRefused => {}
        other => panic!("expected connection refused with smsbox down, got {other:?}"),
    }

    kannel.start_smsbox();
    send_accepted(&kannel, "to=100&text=after");
    assert_received(
        &kannel,
        &[
            sms(&sender, "100", "before", SmsCoding::Text, 1),
            sms(&sender, "100", "after", SmsCoding::Text, 1),
        ],
    );
}

#[test]
fn kannel_queues_while_the_smsc_is_down_and_keeps_the_record_over_restarts() {
    let kannel = Kannel::start();
    let sender = kannel.global_sender().to_owned();
    send_accepted(&kannel, "to=200&text=first");
    kannel.wait_received(1, DELIVERY);

    // SMSC link down: bearerbox queues, and delivers once it is back.
    kannel.stop_fakesmsc();
    let reply = sendsms_as(&kannel, kannel.password(), "to=200&text=queued")
        .unwrap_or_else(|e| panic!("sendsms: {e}\n{}", kannel.diagnostics()));
    assert_eq!(
        reply,
        (202, QUEUED.to_owned()),
        "\n{}",
        kannel.diagnostics()
    );
    thread::sleep(LINGER);
    assert_eq!(kannel.received().len(), 1, "\n{}", kannel.diagnostics());
    kannel.start_fakesmsc();
    kannel.wait_received(2, DELIVERY);

    // Everything down and up again on the same ports.
    kannel.stop_all();
    assert!(
        sendsms_as(&kannel, kannel.password(), "to=200&text=nobody").is_err(),
        "sendsms answered with Kannel stopped"
    );
    kannel.restart();
    send_accepted(&kannel, "to=200&text=after+restart");
    assert_received(
        &kannel,
        &[
            sms(&sender, "200", "first", SmsCoding::Text, 1),
            sms(&sender, "200", "queued", SmsCoding::Text, 1),
            sms(&sender, "200", "after restart", SmsCoding::Text, 1),
        ],
    );
}
