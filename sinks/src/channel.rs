//! The Asterisk channels calltrail may ask a PBX to dial (call files and
//! AMI Originate alike): `Tech/resource` of a known technology, in one of
//! the shapes below, from a strict alphabet. Checked, never cleaned.

/// The channel technologies accepted.
pub const CHANNEL_TECHS: [&str; 5] = ["PJSIP", "SIP", "IAX2", "DAHDI", "Local"];

/// A byte of an extension, context, endpoint or peer name.
pub(crate) fn is_resource_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-')
}

/// A non-empty name of [`is_resource_byte`]s (and `@` when `allow_at`).
pub(crate) fn is_resource(s: &str, allow_at: bool) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| is_resource_byte(b) || (allow_at && b == b'@'))
}

/// Whether `channel` (already of [`is_resource_byte`], `@` and `/` only)
/// has an accepted shape; else the pattern it should have.
pub(crate) fn shape(channel: &str) -> Result<(), &'static str> {
    let Some((tech, resource)) = channel.split_once('/') else {
        return Err("Tech/resource");
    };
    if !CHANNEL_TECHS.contains(&tech) {
        return Err("a technology among PJSIP, SIP, IAX2, DAHDI, Local");
    }
    let segments: Vec<&str> = resource.split('/').collect();
    let ok = match (tech, segments.as_slice()) {
        ("Local", [target] | [target, "n"]) => target
            .split_once('@')
            .is_some_and(|(exten, ctx)| is_resource(exten, false) && is_resource(ctx, false)),
        ("PJSIP" | "SIP", [dest]) => is_resource(dest, true) && dest.matches('@').count() <= 1,
        ("IAX2" | "DAHDI", [dest]) => is_resource(dest, false),
        ("IAX2" | "DAHDI", [peer, dest]) => is_resource(peer, false) && is_resource(dest, false),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("Local/exten@context[/n], PJSIP|SIP/dest[@endpoint], IAX2|DAHDI/dest or IAX2|DAHDI/peer/dest")
    }
}
