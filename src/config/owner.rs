//! `[callbacks] owner`: the user (and group) call files are given before
//! they are renamed into Asterisk's `outgoing/`, so that Asterisk, running
//! as that user, can set their mtime between retries. Resolved from the
//! system's user database (`getpwnam`/`getgrnam`, through `nix`), checked
//! by check-config, and refused at start when calltrail may not `chown`.

use anyhow::{anyhow, bail, Context};
use nix::unistd::{Gid, Group, Uid, User};

/// `user`, `user:group`, `uid` or `uid:gid` → `(uid, gid)`; a user without
/// a group takes the user's primary group.
pub fn resolve(spec: &str) -> anyhow::Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u.trim(), Some(g.trim())),
        None => (spec.trim(), None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        bail!("{spec:?} is not user, user:group, uid or uid:gid");
    }
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (
            n,
            User::from_uid(Uid::from_raw(n))
                .ok()
                .flatten()
                .map(|u| u.gid.as_raw()),
        ),
        Err(_) => {
            let u = User::from_name(user)
                .with_context(|| format!("reading the user database for {user:?}"))?
                .ok_or_else(|| anyhow!("no user {user:?} on this host"))?;
            (u.uid.as_raw(), Some(u.gid.as_raw()))
        }
    };
    let gid = match group {
        None => primary.ok_or_else(|| anyhow!("uid {uid} has no entry here: give uid:gid"))?,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => Group::from_name(g)
                .with_context(|| format!("reading the group database for {g:?}"))?
                .ok_or_else(|| anyhow!("no group {g:?} on this host"))?
                .gid
                .as_raw(),
        },
    };
    Ok((uid, gid))
}

/// Whether this process may give its files to `(uid, gid)`: it is root,
/// holds `CAP_CHOWN`, or they are already its own user and one of its
/// groups.
pub fn may_chown(uid: u32, gid: u32) -> bool {
    let me = nix::unistd::geteuid();
    if me.is_root() || cap_chown() {
        return true;
    }
    let own_group = Gid::from_raw(gid) == nix::unistd::getegid()
        || nix::unistd::getgroups()
            .map(|g| g.contains(&Gid::from_raw(gid)))
            .unwrap_or(false);
    me.as_raw() == uid && own_group
}

/// `CAP_CHOWN` (bit 0) in the effective set (`/proc/self/status`).
fn cap_chown() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(resolve("0").unwrap(), (0, 0));
        assert_eq!(resolve("root").unwrap(), (0, 0));
        assert_eq!(resolve("root:0").unwrap(), (0, 0));
        assert_eq!(resolve("1234:5678").unwrap(), (1234, 5678));
        assert!(resolve("no-such-user-here").is_err());
        assert!(resolve("root:no-such-group-here").is_err());
        assert!(resolve(":1").is_err());
        assert!(resolve("root:").is_err());
    }
}
