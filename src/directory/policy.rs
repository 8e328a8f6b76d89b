//! Password policy: a minimum length for passwords users set, and lockout
//! after repeated failed binds with a timed unlock. Lockout state is kept in
//! memory (a restart clears it), bounded in size, and never applies to the
//! root DN so an attacker cannot lock the administrator out.

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

/// Most DNs tracked at once; beyond it expired records are dropped first.
const MAX_TRACKED: usize = 100_000;

impl Lockouts {
    /// Seconds until the account unlocks, when it is locked now.
    pub(crate) fn locked_for(&self, norm: &str, now: Instant) -> Option<u64> {
        let map = self.map.lock().ok()?;
        let until = map.get(norm)?.locked_until?;
        (until > now).then(|| (until - now).as_secs().max(1))
    }

    /// Records a failed bind; returns true when this failure locked the account.
    pub(crate) fn failure(&self, policy: &PasswordPolicy, norm: &str, now: Instant) -> bool {
        if policy.lockout_threshold == 0 {
            return false;
        }
        let Ok(mut map) = self.map.lock() else {
            return false;
        };
        if map.len() >= MAX_TRACKED {
            map.retain(|_, f| {
                f.locked_until.is_some_and(|u| u > now)
                    || now.duration_since(f.first) < policy.failure_window
            });
            if map.len() >= MAX_TRACKED {
                return false;
            }
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
}
