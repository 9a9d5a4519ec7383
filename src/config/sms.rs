//! The `[sms]` section: which gateway `sms` rules send through (a folder of
//! files by default, so the samples run with no gateway; Kannel, SMS.ru,
//! SMSC.ru or a templated HTTP request), its settings and secrets (from
//! the environment or a file, never the config's own text), and its checks.
//! docs/rules.md is the manual.

use super::Problem;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The gateways `[sms] gateway` may name.
pub const GATEWAYS: [&str; 5] = ["folder", "kannel", "smsru", "smsc", "http"];

/// `[sms]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSection {
    /// One of [`GATEWAYS`]; default `folder`.
    #[serde(default = "default_gateway")]
    pub gateway: String,
    /// The folder gateway's directory (one file per message); default `sms`
    /// beside the config.
    #[serde(default = "default_folder")]
    pub folder: PathBuf,
    /// The sender name or number (`from`), when the gateway takes one.
    pub sender: Option<String>,
    /// Only numbers libphonenumber classes as mobile (or as fixed-or-mobile,
    /// where the numbering plan does not tell); a rule may override it.
    #[serde(default = "yes")]
    pub mobile_only: bool,
    /// Refuse texts longer than this many SMS parts (70 Cyrillic / 160 Latin
    /// characters in one; 67 / 153 per part when split).
    #[serde(default = "default_max_parts")]
    pub max_parts: u32,
    /// Seconds to wait for the gateway's answer.
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    pub kannel: Option<KannelSection>,
    pub smsru: Option<SmsRuSection>,
    pub smsc: Option<SmscSection>,
    pub http: Option<calltrail_sinks::sms::HttpConfig>,
    /// `[sms.secret]` env = "…" or file = "…": what `{secret}` stands for
    /// in `[sms.http]`'s URL, headers or body (an API key).
    pub secret: Option<SecretRef>,
}

impl Default for SmsSection {
    fn default() -> Self {
        SmsSection {
            gateway: default_gateway(),
            folder: default_folder(),
            sender: None,
            mobile_only: true,
            max_parts: default_max_parts(),
            timeout_s: default_timeout(),
            kannel: None,
            smsru: None,
            smsc: None,
            http: None,
            secret: None,
        }
    }
}

/// A secret: from an environment variable or a file (its first line).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// The secret's value; `what` names it in errors (never the value).
    pub fn read(&self, what: &str) -> anyhow::Result<String> {
        use anyhow::Context;
        match (&self.env, &self.file) {
            (Some(var), _) => std::env::var(var)
                .with_context(|| format!("{what}: the environment variable {var} is not set")),
            (None, Some(f)) => {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("{what}: cannot read {}", f.display()))?;
                let line = text.lines().next().unwrap_or("").trim().to_string();
                anyhow::ensure!(!line.is_empty(), "{what}: {} is empty", f.display());
                Ok(line)
            }
            (None, None) => anyhow::bail!("{what}: give env = \"VAR\" or file = \"path\""),
        }
    }

    pub(super) fn is_set(&self) -> bool {
        self.env.is_some() || self.file.is_some()
    }

    pub(super) fn resolve(&mut self, base: &Path) {
        if let Some(f) = &mut self.file {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
    }
}

/// `[sms.kannel]`: Kannel's smsbox `sendsms` interface.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KannelSection {
    #[serde(default = "default_kannel_url")]
    pub url: String,
    pub username: String,
    /// `[sms.kannel.password]` env = "…" or file = "…".
    pub password: SecretRef,
    /// Route through this SMSC (`smsc-id`).
    pub smsc: Option<String>,
}

/// `[sms.smsru]`: SMS.ru's `sms/send`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsRuSection {
    #[serde(default = "default_smsru_url")]
    pub url: String,
    /// `[sms.smsru.api_id]` env = "…" or file = "…".
    pub api_id: SecretRef,
}

/// `[sms.smsc]`: SMSC.ru's `send.php` (and `status.php` to reconcile).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmscSection {
    #[serde(default = "default_smsc_url")]
    pub url: String,
    #[serde(default = "default_smsc_status_url")]
    pub status_url: String,
    pub login: String,
    /// `[sms.smsc.password]` env = "…" or file = "…".
    pub password: SecretRef,
}

fn default_gateway() -> String {
    "folder".into()
}
fn default_folder() -> PathBuf {
    PathBuf::from("sms")
}
fn yes() -> bool {
    true
}
fn default_max_parts() -> u32 {
    6
}
fn default_timeout() -> u64 {
    15
}
fn default_kannel_url() -> String {
    "http://127.0.0.1:13013/cgi-bin/sendsms".into()
}
fn default_smsru_url() -> String {
    "https://sms.ru/sms/send".into()
}
fn default_smsc_url() -> String {
    "https://smsc.ru/sys/send.php".into()
}
fn default_smsc_status_url() -> String {
    "https://smsc.ru/sys/status.php".into()
}

fn http_url(u: &str) -> bool {
    (u.starts_with("http://") || u.starts_with("https://"))
        && !u.contains(char::is_whitespace)
        && u.parse::<axum::http::Uri>().is_ok()
}

impl SmsSection {
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        if self.folder.is_relative() {
            self.folder = base.join(&self.folder);
        }
        if let Some(k) = &mut self.kannel {
            k.password.resolve(base);
        }
        if let Some(s) = &mut self.smsru {
            s.api_id.resolve(base);
        }
        if let Some(s) = &mut self.smsc {
            s.password.resolve(base);
        }
        if let Some(s) = &mut self.secret {
            s.resolve(base);
        }
    }

    /// The gateway `sms` actions go through, with its secrets read (the
    /// folder gateway's directory is created).
    pub fn gateway(&self) -> anyhow::Result<calltrail_sinks::sms::Gateway> {
        use anyhow::Context;
        use calltrail_sinks::sms::{FolderConfig, Gateway, KannelConfig, SmsRuConfig, SmscConfig};
        let timeout = std::time::Duration::from_secs(self.timeout_s);
        let missing = || {
            anyhow::anyhow!(
                "[sms] gateway = {:?} needs its [sms.{}] section",
                self.gateway,
                self.gateway
            )
        };
        let gw = match self.gateway.as_str() {
            "kannel" => {
                let k = self.kannel.as_ref().ok_or_else(missing)?;
                let mut c = KannelConfig::new(&k.username, k.password.read("sms.kannel.password")?);
                c.url = k.url.clone();
                c.from = self.sender.clone();
                c.smsc = k.smsc.clone();
                c.max_parts = self.max_parts;
                c.timeout = timeout;
                Gateway::Kannel(c)
            }
            "smsru" => {
                let k = self.smsru.as_ref().ok_or_else(missing)?;
                let mut c = SmsRuConfig::new(k.api_id.read("sms.smsru.api_id")?);
                c.url = k.url.clone();
                c.from = self.sender.clone();
                c.max_parts = self.max_parts;
                c.timeout = timeout;
                Gateway::SmsRu(c)
            }
            "smsc" => {
                let k = self.smsc.as_ref().ok_or_else(missing)?;
                let mut c = SmscConfig::new(&k.login, k.password.read("sms.smsc.password")?);
                c.url = k.url.clone();
                c.status_url = k.status_url.clone();
                c.sender = self.sender.clone();
                c.max_parts = self.max_parts;
                c.timeout = timeout;
                Gateway::Smsc(c)
            }
            "http" => {
                let mut c = self.http.clone().ok_or_else(missing)?;
                c.sender = self.sender.clone();
                c.secret = match &self.secret {
                    Some(s) => Some(s.read("sms.secret")?),
                    None => None,
                };
                c.max_parts = self.max_parts;
                c.timeout = timeout;
                Gateway::Http(c)
            }
            _ => {
                std::fs::create_dir_all(&self.folder).with_context(|| {
                    format!("cannot create the SMS folder {}", self.folder.display())
                })?;
                let mut c = FolderConfig::new(&self.folder);
                c.max_parts = self.max_parts;
                Gateway::Folder(c)
            }
        };
        gw.check().map_err(|e| anyhow::anyhow!("[sms]: {e}"))?;
        Ok(gw)
    }

    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, expected: &str, found: String| {
            out.push(Problem {
                location: format!("sms.{key}"),
                expected: expected.into(),
                found,
            })
        };
        if !GATEWAYS.contains(&self.gateway.as_str()) {
            bad(
                "gateway",
                "folder, kannel, smsru, smsc or http",
                format!("{:?}", self.gateway),
            );
        }
        let section_missing = match self.gateway.as_str() {
            "kannel" => self.kannel.is_none(),
            "smsru" => self.smsru.is_none(),
            "smsc" => self.smsc.is_none(),
            "http" => self.http.is_none(),
            _ => false,
        };
        if section_missing {
            bad(
                &self.gateway,
                &format!("a [sms.{}] section with its settings", self.gateway),
                "none".into(),
            );
        }
        if !(1..=20).contains(&self.max_parts) {
            bad("max_parts", "1 to 20", self.max_parts.to_string());
        }
        if self.timeout_s == 0 || self.timeout_s > 300 {
            bad("timeout_s", "1 to 300 seconds", self.timeout_s.to_string());
        }
        if let Some(s) = &self.sender {
            if calltrail_sinks::sms::check_sender(s).is_err() {
                bad(
                    "sender",
                    "up to 11 letters, digits, spaces, . _ - (an alphanumeric sender), or a number",
                    format!("{s:?}"),
                );
            }
        }
        if let Some(k) = &self.kannel {
            if !http_url(&k.url) {
                bad(
                    "kannel.url",
                    "an http:// or https:// URL",
                    format!("{:?}", k.url),
                );
            }
            if !k.password.is_set() {
                bad(
                    "kannel.password",
                    "env = \"VAR\" or file = \"path\"",
                    "neither".into(),
                );
            }
        }
        if let Some(s) = &self.smsru {
            if !http_url(&s.url) {
                bad(
                    "smsru.url",
                    "an http:// or https:// URL",
                    format!("{:?}", s.url),
                );
            }
            if !s.api_id.is_set() {
                bad(
                    "smsru.api_id",
                    "env = \"VAR\" or file = \"path\"",
                    "neither".into(),
                );
            }
        }
        if let Some(s) = &self.smsc {
            for (key, u) in [("smsc.url", &s.url), ("smsc.status_url", &s.status_url)] {
                if !http_url(u) {
                    bad(key, "an http:// or https:// URL", format!("{u:?}"));
                }
            }
            if !s.password.is_set() {
                bad(
                    "smsc.password",
                    "env = \"VAR\" or file = \"path\"",
                    "neither".into(),
                );
            }
        }
        if let Some(h) = &self.http {
            if let Err(e) = h.check() {
                bad("http", "a valid request template", e);
            }
        }
        out
    }
}
