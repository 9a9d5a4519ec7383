//! Rendering a [`CallFile`] to bytes: every field checked (rejected, never
//! cleaned), every line built from constants plus the checked fields.

use super::*;
use crate::channel::is_resource_byte;

impl CallFile {
    /// The file's bytes (UTF-8), every line built from constants plus
    /// validated fields; see the [module documentation](self) for the rules.
    ///
    /// ```text
    /// Channel: Local/201@from-internal/n
    /// CallerID: "Callback" <+79161234567>
    /// Context: calltrail-callback
    /// Extension: s
    /// Priority: 1
    /// MaxRetries: 2
    /// RetryTime: 300
    /// WaitTime: 45
    /// Account: callback
    /// Archive: yes
    /// Set: CT_EPISODE=ep42
    /// ```
    pub fn render(&self) -> Result<String, CallFileError> {
        check_channel(&self.channel)?;
        check_callerid_name(&self.callerid_name)?;
        check_number(Field::CallerIdNum, &self.callerid_num)?;
        check_dialplan_name(Field::Context, &self.context)?;
        check_dialplan_name(Field::Extension, &self.extension)?;
        check_range(Field::Priority, self.priority, 1, i32::MAX as u32)?;
        check_range(Field::MaxRetries, self.max_retries, 0, MAX_RETRIES)?;
        check_range(Field::RetryTime, self.retry_time_s, 1, MAX_RETRY_TIME_S)?;
        check_range(Field::WaitTime, self.wait_time_s, 1, MAX_WAIT_TIME_S)?;
        if let Some(account) = &self.account {
            check_account(account)?;
        }
        check_vars(&self.vars)?;

        let mut out = Lines::default();
        out.push(Field::Channel, &["Channel: ", &self.channel])?;
        out.push(
            Field::CallerIdName,
            &[
                "CallerID: \"",
                &self.callerid_name,
                "\" <",
                &self.callerid_num,
                ">",
            ],
        )?;
        out.push(Field::Context, &["Context: ", &self.context])?;
        out.push(Field::Extension, &["Extension: ", &self.extension])?;
        out.push(Field::Priority, &["Priority: ", &self.priority.to_string()])?;
        out.push(
            Field::MaxRetries,
            &["MaxRetries: ", &self.max_retries.to_string()],
        )?;
        out.push(
            Field::RetryTime,
            &["RetryTime: ", &self.retry_time_s.to_string()],
        )?;
        out.push(
            Field::WaitTime,
            &["WaitTime: ", &self.wait_time_s.to_string()],
        )?;
        if let Some(account) = &self.account {
            out.push(Field::Account, &["Account: ", account])?;
        }
        out.constant(if self.archive {
            "Archive: yes"
        } else {
            "Archive: no"
        });
        for var in &self.vars {
            out.push(
                Field::VarValue(var.name.clone()),
                &["Set: ", &var.name, "=", &var.value],
            )?;
        }
        Ok(out.0)
    }
}

/// Accumulates lines, refusing any longer than [`MAX_LINE_BYTES`].
#[derive(Default)]
struct Lines(String);

impl Lines {
    fn push(&mut self, field: Field, parts: &[&str]) -> Result<(), CallFileError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_LINE_BYTES {
            return Err(invalid(field, Reason::LineTooLong { len }));
        }
        for p in parts {
            self.0.push_str(p);
        }
        self.0.push('\n');
        Ok(())
    }

    /// A line made of constants only (short by construction).
    fn constant(&mut self, line: &'static str) {
        debug_assert!(line.len() <= MAX_LINE_BYTES);
        self.0.push_str(line);
        self.0.push('\n');
    }
}

/// Rules shared by every free-text field: no control character, no `;`, no
/// substitution, no surrounding blank, no comment start.
fn check_text(field: &Field, value: &str) -> Result<(), CallFileError> {
    if let Some(c) = value
        .chars()
        .find(|&c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(invalid(field.clone(), Reason::ControlChar(c)));
    }
    if value.contains(';') {
        return Err(invalid(field.clone(), Reason::Semicolon));
    }
    if value.contains("${") || value.contains("$[") {
        return Err(invalid(field.clone(), Reason::Substitution));
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(invalid(field.clone(), Reason::Blank));
    }
    if value.starts_with('#') || value.contains(" #") {
        return Err(invalid(field.clone(), Reason::Comment));
    }
    Ok(())
}

fn check_len(field: &Field, value: &str, max: usize) -> Result<(), CallFileError> {
    if value.len() > max {
        return Err(invalid(
            field.clone(),
            Reason::TooLong {
                len: value.len(),
                max,
            },
        ));
    }
    Ok(())
}

fn check_nonempty(field: &Field, value: &str) -> Result<(), CallFileError> {
    if value.is_empty() {
        return Err(invalid(field.clone(), Reason::Empty));
    }
    Ok(())
}

/// `^\+?[0-9]{3,20}$`.
fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn check_number(field: Field, value: &str) -> Result<(), CallFileError> {
    check_nonempty(&field, value)?;
    check_text(&field, value)?;
    check_len(&field, value, 21)?;
    if !is_number(value) {
        return Err(invalid(field, Reason::Pattern(r"^\+?[0-9]{3,20}$")));
    }
    Ok(())
}

/// The channel-resource alphabet: no Dial/app separators (`&`, `,`, `|`),
/// no blank, no `$`, no `/` (the caller's segments are checked one by one).
fn check_channel(channel: &str) -> Result<(), CallFileError> {
    let field = Field::Channel;
    check_nonempty(&field, channel)?;
    check_text(&field, channel)?;
    check_len(&field, channel, MAX_CHANNEL_BYTES)?;
    if let Some(c) = channel
        .chars()
        .find(|&c| !(c.is_ascii() && (is_resource_byte(c as u8) || c == '@' || c == '/')))
    {
        return Err(invalid(field, Reason::ForbiddenChar(c)));
    }
    crate::channel::shape(channel).map_err(|p| invalid(field, Reason::Pattern(p)))
}

fn check_callerid_name(name: &str) -> Result<(), CallFileError> {
    let field = Field::CallerIdName;
    check_text(&field, name)?;
    if let Some(c) = name.chars().find(|c| matches!(c, '"' | '<' | '>' | '\\')) {
        return Err(invalid(field, Reason::ForbiddenChar(c)));
    }
    check_len(&field, name, MAX_CALLERID_NAME_BYTES)
}

/// `^[A-Za-z0-9_.+-]{1,79}$`.
fn check_dialplan_name(field: Field, value: &str) -> Result<(), CallFileError> {
    check_nonempty(&field, value)?;
    check_text(&field, value)?;
    check_len(&field, value, MAX_DIALPLAN_NAME_BYTES)?;
    if let Some(c) = value
        .chars()
        .find(|&c| !(c.is_ascii() && is_resource_byte(c as u8)))
    {
        return Err(invalid(field, Reason::ForbiddenChar(c)));
    }
    Ok(())
}

fn check_account(account: &str) -> Result<(), CallFileError> {
    let field = Field::Account;
    check_nonempty(&field, account)?;
    check_text(&field, account)?;
    check_len(&field, account, MAX_ACCOUNT_BYTES)?;
    if let Some(c) = account
        .chars()
        .find(|&c| !(c.is_ascii() && is_resource_byte(c as u8)))
    {
        return Err(invalid(field, Reason::ForbiddenChar(c)));
    }
    Ok(())
}

fn check_range(field: Field, value: u32, min: u32, max: u32) -> Result<(), CallFileError> {
    if !(min..=max).contains(&value) {
        return Err(invalid(
            field,
            Reason::OutOfRange {
                value: value.into(),
                min: min.into(),
                max: max.into(),
            },
        ));
    }
    Ok(())
}

/// The variable a name sets: Asterisk strips one or two leading `_`
/// (inheritance) and compares names case-insensitively in places.
fn var_identity(name: &str) -> String {
    let bare = name
        .strip_prefix("__")
        .or_else(|| name.strip_prefix('_'))
        .unwrap_or(name);
    bare.to_ascii_uppercase()
}

fn check_var_name(index: usize, name: &str) -> Result<(), CallFileError> {
    let field = Field::VarName(index);
    check_nonempty(&field, name)?;
    check_text(&field, name)?;
    check_len(&field, name, MAX_VAR_NAME_BYTES)?;
    if name.ends_with(')') {
        return Err(invalid(field, Reason::FunctionWrite));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(invalid(field, Reason::ForbiddenChar(c)));
    }
    let bare = name
        .strip_prefix("__")
        .or_else(|| name.strip_prefix('_'))
        .unwrap_or(name);
    if !bare.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(invalid(
            field,
            Reason::Pattern("^_{0,2}[A-Za-z][A-Za-z0-9_]*$"),
        ));
    }
    Ok(())
}

fn check_var_value(var: &Var) -> Result<(), CallFileError> {
    let field = Field::VarValue(var.name.clone());
    match var.kind {
        VarKind::Number => check_number(field, &var.value),
        VarKind::Text => {
            check_text(&field, &var.value)?;
            if let Some(c) = var.value.chars().find(|c| !c.is_ascii()) {
                return Err(invalid(field, Reason::ForbiddenChar(c)));
            }
            Ok(())
        }
    }
}

fn check_vars(vars: &[Var]) -> Result<(), CallFileError> {
    if vars.len() > MAX_VARS {
        return Err(invalid(
            Field::Vars,
            Reason::TooMany {
                count: vars.len(),
                max: MAX_VARS,
            },
        ));
    }
    let mut seen: Vec<String> = Vec::with_capacity(vars.len());
    for (i, var) in vars.iter().enumerate() {
        check_var_name(i, &var.name)?;
        let id = var_identity(&var.name);
        if seen.contains(&id) {
            return Err(invalid(Field::VarName(i), Reason::Duplicate));
        }
        seen.push(id);
        check_var_value(var)?;
    }
    Ok(())
}

/// `^[A-Za-z0-9_.-]{1,100}\.call$`, not starting with a dot.
pub(super) fn check_file_name(name: &str) -> Result<(), CallFileError> {
    let field = Field::FileName;
    check_nonempty(&field, name)?;
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(invalid(field, Reason::ControlChar(c)));
    }
    let Some(stem) = name.strip_suffix(".call") else {
        return Err(invalid(field, Reason::Pattern("<name>.call")));
    };
    check_nonempty(&field, stem)?;
    check_len(&field, stem, MAX_FILE_STEM_BYTES)?;
    if let Some(c) = stem
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(invalid(field, Reason::ForbiddenChar(c)));
    }
    if stem.starts_with('.') {
        return Err(invalid(
            field,
            Reason::Pattern("a name not starting with `.`"),
        ));
    }
    Ok(())
}
