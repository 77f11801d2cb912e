//! Root is not kept for serving: `humbex up` started as root hands over to an unprivileged user
//! once the set-up that needs root is done, and `ingest` / `executor` refuse root unless told.

use anyhow::{Context, bail};
use nix::unistd::{Uid, User, geteuid, setgroups, setresgid, setresuid};

pub fn is_root() -> bool {
    geteuid().is_root()
}

/// Become `name` for good: supplementary groups, then group, then user (real, effective and
/// saved), so no thread of this process can regain root. glibc applies each change to every thread.
pub fn become_user(name: &str) -> anyhow::Result<()> {
    let user = User::from_name(name)
        .with_context(|| format!("looking up user {name}"))?
        .with_context(|| format!("there is no user {name} to run as"))?;
    setgroups(&[user.gid]).context("dropping supplementary groups")?;
    setresgid(user.gid, user.gid, user.gid).context("changing group")?;
    setresuid(user.uid, user.uid, user.uid).context("changing user")?;
    if setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_ok() {
        bail!("root could be regained after switching to {name}");
    }
    Ok(())
}

/// `role` (an internet-facing or key-holding service) does not run as root unless the operator
/// said so with ALLOW_RUN_AS_ROOT=true.
pub fn refuse_root(role: &str, allowed: bool) -> anyhow::Result<()> {
    if is_root() && !allowed {
        bail!(
            "refusing to run `humbex {role}` as root: run it as an unprivileged user (the Docker \
             image does), or set ALLOW_RUN_AS_ROOT=true to accept the risk"
        );
    }
    if is_root() {
        tracing::warn!(role, "running as root (ALLOW_RUN_AS_ROOT=true)");
    }
    Ok(())
}
