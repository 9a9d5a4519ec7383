//! A [`Report`] as JSON, as CSV (header row, UTF-8, an attachment; a
//! cell from the PBX starting with `= + - @`, tab or CR is prefixed with
//! `'` so a spreadsheet never runs it as a formula), or as an HTML page
//! (minijinja with HTML autoescape: every PBX value is escaped; no inline
//! script, the chart's data is fetched by `reports.js`).

use super::labels::{label, status};
use super::params::{Format, Params, FORMULAS};
use super::table::{Kind, Report, Table};
pub use crate::serve::secure::{secured, CSP};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

const PAGE: &str = include_str!("assets/report.html");
const INDEX: &str = include_str!("assets/index.html");

/// The reports, in the order the index lists them.
pub const NAMES: [&str; 8] = [
    "calls_by_queue",
    "calls_by_agent",
    "calls_by_hour",
    "agent_activity",
    "missed",
    "new_callers",
    "outbound",
    "service_level",
];

/// The report as the JSON answer.
pub fn json_value(r: &Report, p: &Params, tz: &str) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("report".into(), json!(r.name));
    o.insert("from".into(), json!(p.from.to_string()));
    o.insert("to".into(), json!(p.to.to_string()));
    o.insert("queue".into(), json!(p.queue));
    o.insert("agent".into(), json!(p.agent));
    o.insert("timezone".into(), json!(tz));
    for (k, v) in &r.extra {
        o.insert((*k).into(), v.clone());
    }
    o.insert(
        "summary".into(),
        Value::Object(
            r.summary
                .iter()
                .map(|(k, _, v)| ((*k).to_string(), v.clone()))
                .collect(),
        ),
    );
    if let Some(main) = r.tables.first() {
        o.insert(
            "columns".into(),
            json!(main.cols.iter().map(|c| c.key).collect::<Vec<_>>()),
        );
        o.insert("rows".into(), Value::Array(main.json_rows()));
    }
    for t in r.tables.iter().skip(1) {
        o.insert(
            t.name.into(),
            json!({
                "columns": t.cols.iter().map(|c| c.key).collect::<Vec<_>>(),
                "rows": t.json_rows(),
            }),
        );
    }
    Value::Object(o)
}

/// A CSV cell from attacker-controlled text: never a formula.
pub fn guard(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

/// A pause-reason list as one line: `reason=pauses/seconds; …`.
fn list_text(v: &Value) -> String {
    v.as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    format!(
                        "{}={}/{}",
                        i["reason"].as_str().unwrap_or(""),
                        i["pauses"],
                        i["paused_s"]
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn csv_cell(kind: Kind, v: &Value) -> String {
    match (kind, v) {
        (_, Value::Null) => String::new(),
        (Kind::Pbx, Value::String(s)) => guard(s),
        (Kind::List, v) => guard(&list_text(v)),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// The main table as CSV text.
pub fn csv_text(t: &Table) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(t.cols.iter().map(|c| c.key))?;
    for r in &t.rows {
        w.write_record(t.cols.iter().zip(r).map(|(c, v)| csv_cell(c.kind, v)))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The CSV attachment.
pub fn csv_response(r: &Report, p: &Params) -> Response {
    let Some(t) = r.tables.first() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no table\n").into_response();
    };
    match csv_text(t) {
        Ok(text) => {
            let mut resp = secured(text.into_response(), "text/csv; charset=utf-8", "no-store");
            // The name is built from the report's name and two dates only.
            let file = format!("calltrail-{}-{}-{}.csv", r.name, p.from, p.to);
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot write a report's CSV");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot write the CSV\n").into_response()
        }
    }
}

fn secs(v: i64) -> String {
    let (h, m, s) = (v / 3600, (v % 3600) / 60, v % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A value as the page shows it.
pub fn shown(kind: Kind, key: &str, v: &Value, ru: bool) -> String {
    match (kind, v) {
        (_, Value::Null) => "—".into(),
        (Kind::Secs, v) => v.as_i64().map(secs).unwrap_or_default(),
        (Kind::AvgSecs, v) => v
            .as_f64()
            .map(|f| {
                if f < 60.0 {
                    format!("{f:.1} s")
                } else {
                    secs(f.round() as i64)
                }
            })
            .unwrap_or_default(),
        (Kind::Ratio, v) => v
            .as_f64()
            .map(|f| format!("{:.1} %", f * 100.0))
            .unwrap_or_default(),
        (Kind::Time, Value::String(s)) => s.get(..19).unwrap_or(s).replace('T', " "),
        (Kind::Bool, Value::Bool(b)) => label(if *b { "yes" } else { "no" }, ru),
        (Kind::Text, Value::String(s)) if key == "status" => status(s, ru),
        (Kind::List, v) => v
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| {
                        let reason = i["reason"].as_str().unwrap_or("—");
                        format!(
                            "{reason}: {} × {}",
                            i["pauses"],
                            secs(i["paused_s"].as_i64().unwrap_or(0))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default(),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

fn numeric(kind: Kind) -> bool {
    matches!(kind, Kind::Int | Kind::Secs | Kind::AvgSecs | Kind::Ratio)
}

fn table_ctx(t: &Table, ru: bool) -> Value {
    json!({
        "name": t.name,
        "title": if t.name == "rows" { String::new() } else { label(t.name, ru) },
        "heads": t.cols.iter().map(|c| json!({
            "label": label(if c.key == "service_level" { "service_level_value" } else { c.key }, ru),
            "num": numeric(c.kind),
        })).collect::<Vec<_>>(),
        "rows": t.rows.iter().map(|r| t.cols.iter().zip(r).map(|(c, v)| json!({
            "text": shown(c.kind, c.key, v, ru),
            "cls": if numeric(c.kind) { "num" } else if c.kind == Kind::Time { "t" } else { "" },
        })).collect::<Vec<_>>()).collect::<Vec<_>>(),
    })
}

fn env() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env
}

fn html(result: Result<String, minijinja::Error>, status: StatusCode) -> Response {
    match result {
        Ok(h) => {
            let mut r = secured(h.into_response(), "text/html; charset=utf-8", "no-store");
            *r.status_mut() = status;
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot render a report page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot render the page\n",
            )
                .into_response()
        }
    }
}

/// The form's fields, shared by the index and every report page.
fn form_ctx(p: &Params, ru: bool, with_sl: bool, configured: &str) -> Value {
    json!({
        "from": p.from.to_string(),
        "to": p.to.to_string(),
        "queue": p.queue,
        "agent": p.agent,
        "token": p.token,
        "with_sl": with_sl,
        "interval": p.interval.name(),
        "formula": p.formula.map_or(configured, |f| f.name()),
        "formulas": FORMULAS.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "labels": words(ru),
    })
}

fn words(ru: bool) -> Value {
    let keys = [
        "reports", "from", "to", "queue", "agent", "show", "all", "csv", "json", "summary",
        "no_rows", "back", "formula", "interval", "hour", "day", "times_in",
    ];
    Value::Object(
        keys.iter()
            .map(|k| ((*k).to_string(), Value::String(label(k, ru))))
            .collect(),
    )
}

/// The report page.
pub fn page(r: &Report, p: &Params, ru: bool, tz: &str, configured: &str) -> Response {
    let chart = matches!(
        r.name,
        "calls_by_hour" | "calls_by_queue" | "agent_activity" | "service_level"
    );
    let note = match r.name {
        "agent_activity" => label("occupancy_formula", ru),
        _ => String::new(),
    };
    let ctx = json!({
        "lang": if ru { "ru" } else { "en" },
        "name": r.name,
        "title": label(r.name, ru),
        "about": label(&format!("{}_about", r.name), ru),
        "note": note,
        "tz": tz,
        "form": form_ctx(p, ru, r.name == "service_level", configured),
        "summary": r.summary.iter().map(|(k, kind, v)| json!({
            "label": label(if *k == "service_level" { "service_level_value" } else { k }, ru),
            "text": shown(*kind, k, v, ru),
        })).collect::<Vec<_>>(),
        "tables": r.tables.iter().map(|t| table_ctx(t, ru)).collect::<Vec<_>>(),
        "chart": chart,
        "json_url": format!("/reports/{}?{}", r.name, p.query(Some("json"))),
        "csv_url": format!("/reports/{}?{}", r.name, p.query(Some("csv"))),
        "index_url": match &p.token {
            Some(t) => format!("/reports?{}", form_urlencoded::Serializer::new(String::new()).append_pair("token", t).finish()),
            None => "/reports".to_string(),
        },
        "chart_labels": Value::Object(
            ["answered", "unanswered", "logged_in_s", "paused_s", "talk_s", "service_level_value"]
                .iter().map(|k| ((*k).to_string(), Value::String(label(k, ru)))).collect()).to_string(),
    });
    html(
        env().template_from_str(PAGE).and_then(|t| t.render(&ctx)),
        StatusCode::OK,
    )
}

/// The index: every report and the form.
/// `session`: the logged-in user's name and the logout form's token.
pub fn index(
    p: &Params,
    ru: bool,
    configured: &str,
    session: Option<(String, String)>,
) -> Response {
    let ctx = json!({
        "lang": if ru { "ru" } else { "en" },
        "session": session.map(|(name, csrf)| json!({
            "name": name,
            "csrf": csrf,
            "logged_in": if ru { "Вы вошли как" } else { "Logged in as" },
            "logout": if ru { "Выйти" } else { "Log out" },
        })),
        "form": form_ctx(p, ru, true, configured),
        "reports": NAMES.iter().map(|n| json!({
            "name": n,
            "title": label(n, ru),
            "about": label(&format!("{n}_about"), ru),
        })).collect::<Vec<_>>(),
    });
    html(
        env().template_from_str(INDEX).and_then(|t| t.render(&ctx)),
        StatusCode::OK,
    )
}

/// A refusal, in the request's format.
pub fn error(status: StatusCode, kind: &str, message: &str, format: Format, ru: bool) -> Response {
    match format {
        Format::Json => (
            status,
            axum::Json(json!({ "error": message, "kind": kind })),
        )
            .into_response(),
        Format::Csv => {
            let mut r = secured(
                format!("{message}\n").into_response(),
                "text/plain; charset=utf-8",
                "no-store",
            );
            *r.status_mut() = status;
            r
        }
        Format::Html => {
            const ERR: &str =
                "<!doctype html><html lang=\"{{ lang }}\"><head><meta charset=\"utf-8\">\
<title>{{ title }}</title><link rel=\"stylesheet\" href=\"/reports/assets/reports.css\"></head>\
<body><main><h1>{{ title }}</h1><p class=\"error\">{{ message }}</p>\
<p><a href=\"/reports\">{{ back }}</a></p></main></body></html>";
            html(
                env().template_from_str(ERR).and_then(|t| {
                    t.render(json!({
                        "lang": if ru { "ru" } else { "en" },
                        "title": label("error", ru),
                        "message": message,
                        "back": label("back", ru),
                    }))
                }),
                status,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::reports::table::col;

    #[test]
    fn csv_cells_from_the_pbx_are_never_formulas() {
        let mut t = Table::new(
            "rows",
            &[
                col("caller", Kind::Pbx),
                col("n", Kind::Int),
                col("status", Kind::Text),
            ],
        );
        for s in [
            "=HYPERLINK(\"x\")",
            "+79161234567",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "ok",
        ] {
            t.rows.push(vec![json!(s), json!(-3), json!("open")]);
        }
        let text = csv_text(&t).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let cells: Vec<String> = r.records().map(|x| x.unwrap()[0].to_string()).collect();
        assert_eq!(
            cells,
            [
                "'=HYPERLINK(\"x\")",
                "'+79161234567",
                "'-1",
                "'@SUM(A1)",
                "'\tx",
                "'\rx",
                "ok"
            ]
        );
        assert!(text.contains(",-3,open"), "numbers are numbers: {text}");
    }
}
