//! Rendering an [`Originate`] action: every field checked (rejected, never
//! cleaned), every line built from constants plus the checked fields.

use super::frame::ActionText;
use super::*;
use crate::channel::is_resource_byte;

impl Originate {
    /// Checks every field; see the [module documentation](super) for the
    /// rules. [`render`](Self::render) calls it.
    pub fn validate(&self) -> Result<(), AmiError> {
        check_action_id(&self.action_id)?;
        check_channel(&self.channel)?;
        check_dialplan_name(Field::Context, &self.context)?;
        check_dialplan_name(Field::Exten, &self.exten)?;
        check_range(Field::Priority, self.priority.into(), 1, i32::MAX as u64)?;
        check_range(
            Field::Timeout,
            self.timeout_ms,
            MIN_TIMEOUT_MS,
            MAX_TIMEOUT_MS,
        )?;
        if let Some(cid) = &self.caller_id {
            check_callerid_name(&cid.name)?;
            check_number(Field::CallerIdNum, &cid.number)?;
        }
        check_variables(&self.variables)?;
        if let Some(account) = &self.account {
            check_account(account)?;
        }
        Ok(())
    }

    /// The action's bytes (UTF-8), every line ended by `\r\n` and the action
    /// by an empty line:
    ///
    /// ```text
    /// Action: Originate
    /// ActionID: cb-42.1
    /// Channel: Local/201@from-internal/n
    /// Context: calltrail-callback
    /// Exten: s
    /// Priority: 1
    /// Timeout: 30000
    /// CallerID: "Callback" <+79161234567>
    /// Variable: CT_NUMBER=+79161234567
    /// Account: callback
    /// Async: true
    /// ```
    pub fn render(&self) -> Result<String, AmiError> {
        self.validate()?;
        let mut out = ActionText::new("Originate");
        let mut push = |field: Field, key: &'static str, parts: &[&str]| {
            out.header(key, parts)
                .map_err(|reason| invalid(field, reason))
        };
        push(Field::ActionId, "ActionID", &[&self.action_id])?;
        push(Field::Channel, "Channel", &[&self.channel])?;
        push(Field::Context, "Context", &[&self.context])?;
        push(Field::Exten, "Exten", &[&self.exten])?;
        push(Field::Priority, "Priority", &[&self.priority.to_string()])?;
        push(Field::Timeout, "Timeout", &[&self.timeout_ms.to_string()])?;
        if let Some(cid) = &self.caller_id {
            if cid.name.is_empty() {
                push(Field::CallerIdNum, "CallerID", &["<", &cid.number, ">"])?;
            } else {
                push(
                    Field::CallerIdName,
                    "CallerID",
                    &["\"", &cid.name, "\" <", &cid.number, ">"],
                )?;
            }
        }
        for (name, value) in &self.variables {
            push(
                Field::VarValue(name.clone()),
                "Variable",
                &[name, "=", value],
            )?;
        }
        if let Some(account) = &self.account {
            push(Field::Account, "Account", &[account])?;
        }
        push(Field::Variables, "Async", &["true"])?;
        Ok(out.finish())
    }
}

/// No control character (CR, LF, NUL, TAB, DEL, C1, line/paragraph
/// separators): the rule every field starts with.
fn check_controls(field: &Field, value: &str) -> Result<(), AmiError> {
    if let Some(c) = value
        .chars()
        .find(|&c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(invalid(field.clone(), Reason::ControlChar(c)));
    }
    Ok(())
}

fn check_len(field: &Field, value: &str, max: usize) -> Result<(), AmiError> {
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

fn check_nonempty(field: &Field, value: &str) -> Result<(), AmiError> {
    if value.is_empty() {
        return Err(invalid(field.clone(), Reason::Empty));
    }
    Ok(())
}

fn check_blanks(field: &Field, value: &str) -> Result<(), AmiError> {
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(invalid(field.clone(), Reason::Blank));
    }
    Ok(())
}

/// Every character satisfies `allowed` (ASCII only).
fn check_alphabet(field: &Field, value: &str, allowed: fn(u8) -> bool) -> Result<(), AmiError> {
    if let Some(c) = value.chars().find(|&c| !(c.is_ascii() && allowed(c as u8))) {
        return Err(invalid(field.clone(), Reason::ForbiddenChar(c)));
    }
    Ok(())
}

fn check_range(field: Field, value: u64, min: u64, max: u64) -> Result<(), AmiError> {
    if !(min..=max).contains(&value) {
        return Err(invalid(field, Reason::OutOfRange { value, min, max }));
    }
    Ok(())
}

/// `^[A-Za-z0-9._:-]{1,64}$`.
fn check_action_id(id: &str) -> Result<(), AmiError> {
    let field = Field::ActionId;
    check_nonempty(&field, id)?;
    check_controls(&field, id)?;
    check_len(&field, id, MAX_ACTION_ID_BYTES)?;
    check_alphabet(&field, id, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
    })
}

/// The channel-resource alphabet: no Dial/app separators (`&`, `,`, `|`),
/// no blank, no `$`, no `/` (segments are checked one by one).
fn check_channel(channel: &str) -> Result<(), AmiError> {
    let field = Field::Channel;
    check_nonempty(&field, channel)?;
    check_controls(&field, channel)?;
    check_len(&field, channel, MAX_CHANNEL_BYTES)?;
    check_alphabet(&field, channel, |b| {
        is_resource_byte(b) || b == b'@' || b == b'/'
    })?;
    crate::channel::shape(channel).map_err(|p| invalid(field, Reason::Pattern(p)))
}

/// `^[A-Za-z0-9_+.-]{1,79}$`.
fn check_dialplan_name(field: Field, value: &str) -> Result<(), AmiError> {
    check_nonempty(&field, value)?;
    check_controls(&field, value)?;
    check_len(&field, value, MAX_DIALPLAN_NAME_BYTES)?;
    check_alphabet(&field, value, is_resource_byte)
}

/// `^\+?[0-9]{3,20}$`.
fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn check_number(field: Field, value: &str) -> Result<(), AmiError> {
    check_nonempty(&field, value)?;
    check_controls(&field, value)?;
    check_len(&field, value, 21)?;
    if !is_number(value) {
        return Err(invalid(field, Reason::Pattern(r"^\+?[0-9]{3,20}$")));
    }
    Ok(())
}

/// Printable text without the caller-id syntax (`"`, `<`, `>`), escapes
/// (`\`) or substitutions (`$`); may be empty.
fn check_callerid_name(name: &str) -> Result<(), AmiError> {
    let field = Field::CallerIdName;
    check_controls(&field, name)?;
    check_len(&field, name, MAX_CALLERID_NAME_BYTES)?;
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '"' | '<' | '>' | '\\' | '$'))
    {
        return Err(invalid(field, Reason::ForbiddenChar(c)));
    }
    check_blanks(&field, name)
}

/// `^[A-Za-z0-9_.:-]{1,80}$`.
fn check_account(account: &str) -> Result<(), AmiError> {
    let field = Field::Account;
    check_nonempty(&field, account)?;
    check_controls(&field, account)?;
    check_len(&field, account, MAX_ACCOUNT_BYTES)?;
    check_alphabet(&field, account, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')
    })
}

/// `^[A-Z][A-Z0-9_]{0,63}$`; a name ending in `)` is named as what it would
/// be, a function write.
fn check_var_name(index: usize, name: &str) -> Result<(), AmiError> {
    let field = Field::VarName(index);
    check_nonempty(&field, name)?;
    check_controls(&field, name)?;
    check_len(&field, name, MAX_VAR_NAME_BYTES)?;
    if name.ends_with(')') {
        return Err(invalid(field, Reason::FunctionWrite));
    }
    check_alphabet(&field, name, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
    })?;
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return Err(invalid(field, Reason::Pattern("^[A-Z][A-Z0-9_]{0,63}$")));
    }
    Ok(())
}

/// Characters a `Variable:` value must not contain: Asterisk splits the
/// header on `,` (honouring `"`, `\`, `()`, `[]`), `$` starts a
/// substitution, `;`, `|`, `&` separate dialplan arguments and targets.
const VAR_VALUE_FORBIDDEN: [char; 12] =
    [',', '"', '\\', '$', '[', ']', '(', ')', ';', '|', '&', '\0'];

fn check_var_value(name: &str, value: &str) -> Result<(), AmiError> {
    let field = Field::VarValue(name.to_owned());
    check_controls(&field, value)?;
    check_len(&field, value, MAX_VAR_VALUE_BYTES)?;
    if let Some(c) = value.chars().find(|c| VAR_VALUE_FORBIDDEN.contains(c)) {
        return Err(invalid(field, Reason::ForbiddenChar(c)));
    }
    check_blanks(&field, value)
}

fn check_variables(vars: &[(String, String)]) -> Result<(), AmiError> {
    if vars.len() > MAX_VARS {
        return Err(invalid(
            Field::Variables,
            Reason::TooMany {
                count: vars.len(),
                max: MAX_VARS,
            },
        ));
    }
    for (i, (name, value)) in vars.iter().enumerate() {
        check_var_name(i, name)?;
        if vars[..i].iter().any(|(earlier, _)| earlier == name) {
            return Err(invalid(Field::VarName(i), Reason::Duplicate));
        }
        check_var_value(name, value)?;
    }
    Ok(())
}
