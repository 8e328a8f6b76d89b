//! Password policy: a minimum length for passwords users set, and lockout
//! after repeated failed binds with a timed unlock. Lockout state is kept in
//! memory (a restart clears it), holds only entries that exist, never drops
//! a lock to make room, and never applies to the root DN so an attacker
//! cannot lock the administrator out.

use super::{Core, DirError, DirResult, Identity, ModOp, WriteOp};
use crate::auth::password;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Shortest clear-text password a non-root user may set (0 = no minimum).
    pub min_length: usize,
    /// Failed binds within `failure_window` that lock the account (0 = never).
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    pub failure_window: Duration,
}

impl PasswordPolicy {
    /// The policy the `[security]` section of the configuration asks for.
    pub fn from_security(s: &crate::config::Security) -> PasswordPolicy {
        PasswordPolicy {
            min_length: s.min_password_length,
            lockout_threshold: s.lockout_threshold,
            lockout_duration: Duration::from_secs(s.lockout_duration),
            failure_window: Duration::from_secs(s.lockout_window),
        }
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(600),
            failure_window: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

/// Tracks failed binds per normalised DN.
#[derive(Debug, Default)]
pub(crate) struct Lockouts {
    map: Mutex<HashMap<String, Failures>>,
}

/// Records kept before the table is pruned. The directory only records
/// failures for entries that exist, so the table is bounded by the
/// directory's size anyway; this keeps it small on large directories.
const MAX_TRACKED: usize = 100_000;

/// Makes room for a new record once the table is full: expired records go
/// first, then the oldest unlocked ones. Locked records are never dropped,
/// so the table's capacity never decides whether an account stays locked.
fn prune(map: &mut HashMap<String, Failures>, policy: &PasswordPolicy, now: Instant) {
    map.retain(|_, f| f.locked(now) || now.duration_since(f.first) < policy.failure_window);
    if map.len() < MAX_TRACKED {
        return;
    }
    let mut unlocked: Vec<(Instant, String)> = map
        .iter()
        .filter(|(_, f)| !f.locked(now))
        .map(|(k, f)| (f.first, k.clone()))
        .collect();
    unlocked.sort_unstable();
    // A tenth at a time, so a full table is not rescanned on every failure.
    for (_, key) in unlocked.into_iter().take(MAX_TRACKED / 10) {
        map.remove(&key);
    }
}

impl Failures {
    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|u| u > now)
    }
}

impl Lockouts {
    /// Seconds until the account unlocks, when it is locked now.
    pub(crate) fn locked_for(&self, norm: &str, now: Instant) -> Option<u64> {
        let map = self.map.lock().ok()?;
        let until = map.get(norm)?.locked_until?;
        (until > now).then(|| (until - now).as_secs().max(1))
    }

    /// Records a failed bind against an existing entry; returns true when
    /// this failure locked the account.
    pub(crate) fn failure(&self, policy: &PasswordPolicy, norm: &str, now: Instant) -> bool {
        if policy.lockout_threshold == 0 {
            return false;
        }
        let Ok(mut map) = self.map.lock() else {
            return false;
        };
        if map.len() >= MAX_TRACKED && !map.contains_key(norm) {
            prune(&mut map, policy, now);
        }
        let f = map.entry(norm.to_string()).or_insert(Failures {
            count: 0,
            first: now,
            locked_until: None,
        });
        if f.locked_until.is_some_and(|u| u <= now)
            || now.duration_since(f.first) >= policy.failure_window
        {
            *f = Failures {
                count: 0,
                first: now,
                locked_until: None,
            };
        }
        f.count += 1;
        if f.count >= policy.lockout_threshold && f.locked_until.is_none() {
            f.locked_until = Some(now + policy.lockout_duration);
            return true;
        }
        false
    }

    pub(crate) fn success(&self, norm: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(norm);
        }
    }
}

/// Whether an attribute description (name or OID, options ignored) is userPassword.
fn is_user_password(description: &str) -> bool {
    let base = description.split(';').next().unwrap_or(description);
    base.eq_ignore_ascii_case("userPassword") || base == "2.5.4.35"
}

/// The userPassword values a write sets (deleted values excepted).
fn new_passwords(op: &WriteOp) -> Vec<&[u8]> {
    match op {
        WriteOp::Add { attrs, .. } => attrs
            .iter()
            .filter(|(n, _)| is_user_password(n))
            .flat_map(|(_, v)| v.iter().map(Vec::as_slice))
            .collect(),
        WriteOp::Modify { mods, .. } => mods
            .iter()
            .filter(|m| m.op != ModOp::Delete && is_user_password(&m.attr))
            .flat_map(|m| m.values.iter().map(Vec::as_slice))
            .collect(),
        _ => Vec::new(),
    }
}

impl Core {
    /// A userPassword value that names a storage scheme this server cannot
    /// verify (unknown, a crypt(3) algorithm not implemented, malformed,
    /// beyond the cost bounds) would be stored and then never verify, so
    /// it is refused whoever writes it; replication is exempt because a
    /// consumer must hold what its supplier holds (the start-up scan and
    /// the first failing bind report such values).
    pub(super) fn refuse_unverifiable(&self, op: &WriteOp) -> DirResult<()> {
        for v in new_passwords(op) {
            if let Err(e) = password::check_stored(v) {
                return Err(DirError::UnwillingToPerform(format!(
                    "userPassword with storage scheme {} cannot be verified by ferrodir: {}; \
                     store a scheme ferrodir verifies ({{PBKDF2-SHA512}}, {{ARGON2}}, {{SSHA512}}, \
                     {{CRYPT}} with $1$, $5$, $6$, $2b$ or $y$, ...) or send the clear-text password",
                    e.scheme, e.reason
                )));
            }
        }
        Ok(())
    }

    /// Users set clear-text passwords only, as in 389-ds with
    /// nsslapd-allow-hashed-passwords off: a value with a storage scheme
    /// would skip the password policy (its length cannot be checked) and
    /// could carry cost parameters that make every bind expensive. The root
    /// DN, replication and offline import may load hashes.
    pub(super) fn refuse_pre_hashed(&self, who: &Identity, op: &WriteOp) -> DirResult<()> {
        if who.root || self.is_replication_identity(who) {
            return Ok(());
        }
        if new_passwords(op).iter().any(|v| password::is_hashed(v)) {
            return Err(DirError::ConstraintViolation(
                "invalid password syntax: passwords with a storage scheme ({SCHEME}...) \
                 may only be set by the root DN or replication; send the clear-text password"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_threshold_and_unlocks_after_duration() {
        let policy = PasswordPolicy {
            lockout_threshold: 3,
            lockout_duration: Duration::from_secs(60),
            failure_window: Duration::from_secs(60),
            ..PasswordPolicy::default()
        };
        let l = Lockouts::default();
        let t0 = Instant::now();
        assert!(!l.failure(&policy, "uid=a", t0));
        assert!(!l.failure(&policy, "uid=a", t0));
        assert!(l.locked_for("uid=a", t0).is_none());
        assert!(l.failure(&policy, "uid=a", t0));
        assert!(l.locked_for("uid=a", t0 + Duration::from_secs(1)).is_some());
        assert!(l.locked_for("uid=b", t0).is_none());
        assert!(l
            .locked_for("uid=a", t0 + Duration::from_secs(61))
            .is_none());
        // After the lock expires the count starts again.
        assert!(!l.failure(&policy, "uid=a", t0 + Duration::from_secs(62)));
        l.success("uid=a");
        let off = PasswordPolicy {
            lockout_threshold: 0,
            ..policy
        };
        for _ in 0..10 {
            assert!(!l.failure(&off, "uid=c", t0));
        }
        assert!(l.locked_for("uid=c", t0).is_none());
    }

    /// A full table (of unlocked records, or of locked ones) still tracks
    /// and locks a new account, and never drops a lock to make room.
    #[test]
    fn full_table_still_locks_new_accounts_and_keeps_locks() {
        let policy = PasswordPolicy {
            lockout_threshold: 2,
            ..PasswordPolicy::default()
        };
        let l = Lockouts::default();
        let t0 = Instant::now();
        assert!(!l.failure(&policy, "uid=early", t0));
        assert!(l.failure(&policy, "uid=early", t0));
        for i in 0..MAX_TRACKED {
            l.failure(&policy, &format!("uid=filler{i}"), t0);
        }
        let t1 = t0 + Duration::from_secs(1);
        assert!(!l.failure(&policy, "uid=target", t1));
        assert!(l.failure(&policy, "uid=target", t1));
        assert!(l.locked_for("uid=target", t1).is_some());
        assert!(l.locked_for("uid=early", t1).is_some());

        // Every record locked: the new account is tracked all the same.
        let locked = Lockouts::default();
        for i in 0..MAX_TRACKED {
            let dn = format!("uid=locked{i}");
            locked.failure(&policy, &dn, t0);
            locked.failure(&policy, &dn, t0);
        }
        assert!(!locked.failure(&policy, "uid=late", t1));
        assert!(locked.failure(&policy, "uid=late", t1));
        assert!(locked.locked_for("uid=locked0", t1).is_some());
    }
}
