//! Password policy (draft-behera-ldap-password-policy, as OpenLDAP's
//! ppolicy overlay and 389-ds answer it): lockout after failed binds,
//! expiry with grace binds and a warning, must-change after an
//! administrator's reset, password history, and a minimum length.
//!
//! Which policy applies: the entry's `pwdPolicySubentry`, else the nearest
//! ancestor's `pwdPolicySubentry` (one value on `ou=people` covers its
//! subtree), else the built-in policy from `[security]`. A policy is an
//! entry with objectClass `pwdPolicy`.
//!
//! The state lives in the user's entry as the draft's operational
//! attributes (`pwdFailureTime`, `pwdAccountLockedTime`, `pwdChangedTime`,
//! `pwdReset`, `pwdHistory`, `pwdGraceUseTime`), written through the
//! writer thread like any modify (changelog, conflict core), so it
//! survives a restart and replicates: a lock set on one supplier holds on
//! all. Only the root DN and the server change these attributes; the
//! lockout decision is taken inside the write transaction, so concurrent
//! failed binds are all counted. The root DN (not an entry) is never locked.

use super::{Core, DirError, DirResult, Identity, ModOp, WriteOp};
use crate::auth::password;
use crate::model::{Dn, Entry, Modification};
use crate::store::{ReadTxn, StoreRead};
use std::time::Duration;

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

/// The draft's per-user state attributes: only the root DN and the server
/// change them (OpenLDAP allows the same with its Relax control).
const STATE_ATTRS: [&str; 7] = [
    "pwdChangedTime",
    "pwdAccountLockedTime",
    "pwdFailureTime",
    "pwdHistory",
    "pwdGraceUseTime",
    "pwdReset",
    "pwdPolicySubentry",
];

/// OctetString, the syntax OpenLDAP names in pwdHistory values.
const HISTORY_SYNTAX: &str = "1.3.6.1.4.1.1466.115.121.1.40";

/// Failure times kept at most when a policy has no pwdMaxFailure.
const MAX_FAILURES_KEPT: usize = 64;

/// Policies inherited from ancestors (`Core::policy_rules_at`): by the
/// normalised parent DN, `None` when no ancestor names one, for one store
/// snapshot.
#[derive(Debug, Default)]
pub(crate) struct InheritedPolicies {
    snapshot: usize,
    by_parent: std::collections::HashMap<String, Option<Rules>>,
}

impl InheritedPolicies {
    /// Parents remembered at most (then forgotten all at once): bounds the
    /// memory when binds come from many different containers.
    const MAX: usize = 4096;
}

/// The rules of one policy (a pwdPolicy entry or the `[security]` default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rules {
    pub(crate) max_failure: u32,
    pub(crate) lockout: bool,
    /// Seconds; 0 keeps the account locked until an administrator unlocks it.
    pub(crate) lockout_duration: u64,
    /// Seconds after which a failure is forgotten; 0 = never.
    pub(crate) failure_interval: u64,
    /// Seconds a password stays valid; 0 = forever.
    pub(crate) max_age: u64,
    pub(crate) expire_warning: u64,
    pub(crate) grace_limit: u32,
    pub(crate) must_change: bool,
    pub(crate) in_history: u32,
    pub(crate) min_length: usize,
    /// Seconds before a user may change his password again.
    pub(crate) min_age: u64,
    pub(crate) allow_user_change: bool,
}

impl Rules {
    fn from_config(p: &PasswordPolicy) -> Rules {
        Rules {
            max_failure: p.lockout_threshold,
            lockout: p.lockout_threshold > 0,
            lockout_duration: p.lockout_duration.as_secs(),
            failure_interval: p.failure_window.as_secs(),
            max_age: 0,
            expire_warning: 0,
            grace_limit: 0,
            must_change: false,
            in_history: 0,
            min_length: p.min_length,
            min_age: 0,
            allow_user_change: true,
        }
    }

    /// The draft's defaults for attributes a pwdPolicy entry leaves out.
    fn from_entry(e: &Entry) -> Rules {
        let num = |n: &str| {
            e.first_str(n)
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let small = |n: &str| u32::try_from(num(n)).unwrap_or(u32::MAX);
        let flag = |n: &str| {
            e.first_str(n)
                .is_some_and(|s| s.eq_ignore_ascii_case("TRUE"))
        };
        Rules {
            max_failure: small("pwdMaxFailure"),
            lockout: flag("pwdLockout"),
            lockout_duration: num("pwdLockoutDuration"),
            failure_interval: num("pwdFailureCountInterval"),
            max_age: num("pwdMaxAge"),
            expire_warning: num("pwdExpireWarning"),
            grace_limit: small("pwdGraceAuthNLimit"),
            must_change: flag("pwdMustChange"),
            in_history: small("pwdInHistory"),
            min_length: usize::try_from(num("pwdMinLength")).unwrap_or(usize::MAX),
            min_age: num("pwdMinAge"),
            allow_user_change: !e
                .first_str("pwdAllowUserChange")
                .is_some_and(|s| s.eq_ignore_ascii_case("FALSE")),
        }
    }

    fn locks(&self) -> bool {
        self.lockout && self.max_failure > 0
    }
}

/// What a user entry says about its password (times in ms since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// `Some(None)`: a lock time that is not a time (OpenLDAP's
    /// `000001010000Z`), a lock only an administrator lifts.
    locked_at: Option<Option<i64>>,
    failures: Vec<i64>,
    changed: Option<i64>,
    reset: bool,
    grace_used: u32,
}

impl State {
    fn of(e: &Entry) -> State {
        let times = |n: &str| -> Vec<i64> {
            e.values(n)
                .into_iter()
                .filter_map(parse_time)
                .collect::<Vec<_>>()
        };
        State {
            locked_at: e
                .values("pwdAccountLockedTime")
                .first()
                .map(|v| parse_time(v)),
            failures: times("pwdFailureTime"),
            changed: e
                .values("pwdChangedTime")
                .first()
                .and_then(|v| parse_time(v)),
            reset: e
                .first_str("pwdReset")
                .is_some_and(|s| s.eq_ignore_ascii_case("TRUE")),
            grace_used: u32::try_from(e.values("pwdGraceUseTime").len()).unwrap_or(u32::MAX),
        }
    }

    fn locked(&self, rules: &Rules, now: i64) -> bool {
        match self.locked_at {
            None => false,
            Some(None) => true,
            Some(Some(t)) => {
                rules.lockout_duration == 0 || now < t + secs_ms(rules.lockout_duration)
            }
        }
    }
}

fn secs_ms(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000)
}

/// The ppolicy error (draft-behera §6.2 `error` ENUMERATED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyError {
    PasswordExpired = 0,
    AccountLocked = 1,
    ChangeAfterReset = 2,
    PasswordModNotAllowed = 3,
    MustSupplyOldPassword = 4,
    InsufficientPasswordQuality = 5,
    PasswordTooShort = 6,
    PasswordTooYoung = 7,
    PasswordInHistory = 8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyWarning {
    TimeBeforeExpiration(u64),
    GraceAuthNsRemaining(u32),
}

/// The password policy response control's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyResponse {
    pub warning: Option<PolicyWarning>,
    pub error: Option<PolicyError>,
}

/// BER INTEGER/ENUMERATED content of a non-negative value (shortest form).
fn ber_uint(tag: u8, value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut content: Vec<u8> = bytes.iter().skip(skip).copied().collect();
    if content.first().is_some_and(|b| b & 0x80 != 0) {
        content.insert(0, 0);
    }
    let mut out = vec![tag, content.len() as u8];
    out.extend(content);
    out
}

impl PolicyResponse {
    pub fn is_empty(&self) -> bool {
        self.warning.is_none() && self.error.is_none()
    }

    /// `SEQUENCE { warning [0] CHOICE { timeBeforeExpiration [0] INTEGER,
    /// graceAuthNsRemaining [1] INTEGER } OPTIONAL, error [1] ENUMERATED
    /// OPTIONAL }` with implicit tags, as OpenLDAP's ppolicy encodes it.
    /// Every part is shorter than 128 bytes, so lengths take one byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        if let Some(w) = self.warning {
            let inner = match w {
                PolicyWarning::TimeBeforeExpiration(s) => ber_uint(0x80, s),
                PolicyWarning::GraceAuthNsRemaining(n) => ber_uint(0x81, u64::from(n)),
            };
            body.push(0xa0);
            body.push(inner.len() as u8);
            body.extend(inner);
        }
        if let Some(e) = self.error {
            body.extend(ber_uint(0x81, e as u64));
        }
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }
}

/// A simple bind's result with what the password policy adds to it.
#[derive(Debug)]
pub struct BindOutcome {
    pub result: DirResult<Identity>,
    pub policy: PolicyResponse,
    /// The password was reset by an administrator and must be changed
    /// before anything else (pwdMustChange).
    pub must_change: bool,
}

impl BindOutcome {
    pub(crate) fn plain(result: DirResult<Identity>) -> BindOutcome {
        BindOutcome {
            result,
            policy: PolicyResponse::default(),
            must_change: false,
        }
    }
}

/// What a bind attempt leads to under a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Refused {
        policy: PolicyResponse,
        /// The failure counts towards lockout (a pwdFailureTime to record).
        record_failure: bool,
    },
    Accepted {
        policy: PolicyResponse,
        /// A grace bind on an expired password (a pwdGraceUseTime to record).
        use_grace: bool,
        /// Earlier failures to forget.
        clear_failures: bool,
        must_change: bool,
    },
}

/// Locked accounts are refused before the password is checked (a locked
/// account answers like a wrong password, but for the control).
pub(crate) fn decide(rules: &Rules, st: &State, password_ok: bool, now: i64) -> Decision {
    if st.locked(rules, now) {
        return Decision::Refused {
            policy: PolicyResponse {
                warning: None,
                error: Some(PolicyError::AccountLocked),
            },
            record_failure: false,
        };
    }
    if !password_ok {
        return Decision::Refused {
            policy: PolicyResponse::default(),
            record_failure: rules.locks(),
        };
    }
    let mut policy = PolicyResponse::default();
    let mut use_grace = false;
    if let (true, Some(changed)) = (rules.max_age > 0, st.changed) {
        let expires = changed.saturating_add(secs_ms(rules.max_age));
        if now >= expires {
            if st.grace_used >= rules.grace_limit {
                return Decision::Refused {
                    policy: PolicyResponse {
                        warning: None,
                        error: Some(PolicyError::PasswordExpired),
                    },
                    record_failure: false,
                };
            }
            use_grace = true;
            policy.warning = Some(PolicyWarning::GraceAuthNsRemaining(
                rules.grace_limit - st.grace_used - 1,
            ));
        } else if rules.expire_warning > 0 && expires - now <= secs_ms(rules.expire_warning) {
            let left = u64::try_from((expires - now) / 1000).unwrap_or(0);
            policy.warning = Some(PolicyWarning::TimeBeforeExpiration(left));
        }
    }
    let must_change = st.reset && rules.must_change;
    if must_change {
        policy.error = Some(PolicyError::ChangeAfterReset);
    }
    Decision::Accepted {
        policy,
        use_grace,
        clear_failures: !st.failures.is_empty() || st.locked_at.is_some(),
        must_change,
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYYMMDDHHMMSS[.mmm]Z`: milliseconds keep failure times distinct.
pub(crate) fn format_time(ms: i64) -> String {
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    let frac = ms.rem_euclid(1000);
    let base = super::time::generalized_time(secs);
    if frac == 0 {
        base
    } else {
        format!("{}.{frac:03}Z", base.trim_end_matches('Z'))
    }
}

/// `YYYYMMDDHH[MM[SS]][.fraction]Z` in UTC to ms since the epoch; None for
/// anything else (including OpenLDAP's year-0 "locked for ever" value).
pub(crate) fn parse_time(v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    let (main, frac) = match s.split_once(['.', ',']) {
        Some((m, f)) => (m, f),
        None => (s, ""),
    };
    if !matches!(main.len(), 10 | 12 | 14)
        || !main.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| main.get(r).and_then(|d| d.parse::<i64>().ok());
    let (y, mo, d, h) = (n(0..4)?, n(4..6)?, n(6..8)?, n(8..10)?);
    let mi = n(10..12).unwrap_or(0);
    let se = n(12..14).unwrap_or(0);
    if y == 0 || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let ms_frac = format!("{frac:0<3}")
        .get(0..3)
        .and_then(|f| f.parse::<i64>().ok())
        .unwrap_or(0);
    Some(
        ((crate::schema::days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000
            + se * 1000
            + if main.len() == 14 { ms_frac } else { 0 },
    )
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

fn replace(attr: &str, values: Vec<Vec<u8>>) -> Modification {
    Modification {
        op: ModOp::Replace,
        attr: attr.into(),
        values,
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

    /// The policy for an entry: its pwdPolicySubentry, the nearest
    /// ancestor's, or the `[security]` default.
    pub(crate) fn policy_rules(&self, txn: &dyn StoreRead, entry: &Entry) -> Rules {
        if let Some(r) = self.referenced_policy(txn, entry) {
            return r;
        }
        self.inherited_policy(txn, entry)
            .unwrap_or_else(|| Rules::from_config(&self.cfg.password_policy))
    }

    /// The same from a read snapshot, with the ancestors' part remembered
    /// for the snapshot: every bind under ou=people would otherwise read
    /// and decode ou=people and the suffix entry again (about a third of
    /// a bind's own work). A commit changes the snapshot id, so nothing
    /// written since is missed; writes (whose transactions have no
    /// snapshot id yet) use `policy_rules`. `parent` is the normalised DN
    /// of the entry's parent (the bind has normalised it).
    pub(crate) fn policy_rules_at(
        &self,
        txn: &ReadTxn,
        entry: &Entry,
        parent: Option<String>,
    ) -> Rules {
        if let Some(r) = self.referenced_policy(txn, entry) {
            return r;
        }
        let snapshot = txn.snapshot();
        let known = self.inherited_policies.lock().ok().and_then(|c| {
            (c.snapshot == snapshot)
                .then(|| parent.as_ref().and_then(|p| c.by_parent.get(p).cloned()))
                .flatten()
        });
        let inherited = match known {
            Some(r) => r,
            None => {
                let r = self.inherited_policy(txn, entry);
                if let (Some(p), Ok(mut c)) = (parent, self.inherited_policies.lock()) {
                    if c.snapshot != snapshot || c.by_parent.len() >= InheritedPolicies::MAX {
                        c.snapshot = snapshot;
                        c.by_parent.clear();
                    }
                    c.by_parent.insert(p, r.clone());
                }
                r
            }
        };
        inherited.unwrap_or_else(|| Rules::from_config(&self.cfg.password_policy))
    }

    /// The policy the nearest ancestor with a pwdPolicySubentry names.
    fn inherited_policy(&self, txn: &dyn StoreRead, entry: &Entry) -> Option<Rules> {
        let mut next = entry.dn.parent();
        while let Some(dn) = next.filter(|d| d.rdn().is_some()) {
            if let Ok(Some(id)) = txn.id_by_dn(&self.dn_key(&dn)) {
                if let Ok(Some(e)) = txn.entry(id) {
                    if let Some(r) = self.referenced_policy(txn, &e) {
                        return Some(r);
                    }
                }
            }
            next = dn.parent();
        }
        None
    }

    fn referenced_policy(&self, txn: &dyn StoreRead, entry: &Entry) -> Option<Rules> {
        let name = entry.first_str("pwdPolicySubentry")?;
        let found = Dn::parse(name)
            .ok()
            .and_then(|dn| txn.id_by_dn(&self.dn_key(&dn)).ok().flatten())
            .and_then(|id| txn.entry(id).ok().flatten())
            .filter(|p| {
                p.values("objectClass")
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(b"pwdPolicy"))
            });
        match found {
            Some(p) => Some(Rules::from_entry(&p)),
            None => {
                // As OpenLDAP: a dangling reference falls back to the default.
                tracing::warn!(entry = %entry.dn, policy = name, "pwdPolicySubentry names no pwdPolicy entry; the default policy applies");
                Some(Rules::from_config(&self.cfg.password_policy))
            }
        }
    }

    /// The password policy's part of a client write, checked and added
    /// inside the write transaction: users may not touch the state
    /// attributes; a password change records pwdChangedTime and history,
    /// and an administrator's change unlocks the account and sets pwdReset
    /// (pwdMustChange); a recorded bind failure locks the account when it
    /// reaches pwdMaxFailure. Returns the write to apply instead of `op`.
    pub(super) fn password_policy_write(
        &self,
        txn: &dyn StoreRead,
        who: &Identity,
        op: &WriteOp,
    ) -> DirResult<Option<WriteOp>> {
        let schema = self.schema();
        let canonical = |attr: &str| {
            schema
                .attribute(crate::query::filter::base_attr_name(attr))
                .map(|a| a.name().to_string())
        };
        let is =
            |attr: &str, name: &str| canonical(attr).is_some_and(|n| n.eq_ignore_ascii_case(name));
        let is_state = |attr: &str| STATE_ATTRS.iter().any(|s| is(attr, s));
        if !who.root && !self.is_replication_identity(who) {
            let touched = match op {
                WriteOp::Add { attrs, .. } => {
                    attrs.iter().map(|(n, _)| n.as_str()).find(|n| is_state(n))
                }
                WriteOp::Modify { mods, .. } => {
                    mods.iter().map(|m| m.attr.as_str()).find(|n| is_state(n))
                }
                _ => None,
            };
            if let Some(a) = touched {
                return Err(DirError::ConstraintViolation(format!(
                    "attribute '{a}' is password policy state: only the root DN may change it"
                )));
            }
        }
        let (dn, mods) = match op {
            WriteOp::Modify { dn, mods } => (dn, mods),
            WriteOp::Add { dn, attrs } => return Ok(self.added_with_password(txn, dn, attrs)),
            _ => return Ok(None),
        };
        let sets_password = mods
            .iter()
            .any(|m| m.op != ModOp::Delete && is_user_password(&m.attr) && !m.values.is_empty());
        let failure_mod = mods
            .iter()
            .position(|m| m.op == ModOp::Add && is(&m.attr, "pwdFailureTime"))
            .filter(|_| who.root);
        if !sets_password && failure_mod.is_none() {
            return Ok(None);
        }
        // A missing entry is the modify's own noSuchObject.
        let Some(entry) = txn
            .id_by_dn(&self.dn_key(dn))?
            .and_then(|id| txn.entry(id).transpose())
            .transpose()?
        else {
            return Ok(None);
        };
        let rules = self.policy_rules(txn, &entry);
        let now = now_ms();
        let explicit = |name: &str| mods.iter().any(|m| is(&m.attr, name));
        let mut out: Vec<Modification> = mods.clone();
        if let Some(pos) = failure_mod {
            out.remove(pos);
            self.count_failures(&entry, &rules, mods.get(pos), now, &explicit, &mut out);
        }
        if sets_password {
            self.password_changed(who, &entry, &rules, op, now, &explicit, &mut out)?;
        }
        Ok(Some(WriteOp::Modify {
            dn: dn.clone(),
            mods: out,
        }))
    }

    /// A new entry with a password: pwdChangedTime starts its age (so
    /// pwdMaxAge applies from the start), and an entry added with a
    /// password under pwdMustChange must change it first (OpenLDAP's rule).
    fn added_with_password(
        &self,
        txn: &dyn StoreRead,
        dn: &Dn,
        attrs: &[(String, Vec<Vec<u8>>)],
    ) -> Option<WriteOp> {
        let has = |name: &str| {
            attrs.iter().any(|(n, v)| {
                !v.is_empty() && crate::query::filter::base_attr_name(n).eq_ignore_ascii_case(name)
            })
        };
        if !attrs
            .iter()
            .any(|(n, v)| is_user_password(n) && !v.is_empty())
        {
            return None;
        }
        // The policy as the new entry will see it: its own reference or its ancestors'.
        let mut probe = Entry::new(dn.clone());
        if let Some((_, v)) = attrs.iter().find(|(n, _)| {
            crate::query::filter::base_attr_name(n).eq_ignore_ascii_case("pwdPolicySubentry")
        }) {
            probe.set("pwdPolicySubentry", v.clone(), crate::model::Csn::ZERO);
        }
        let rules = self.policy_rules(txn, &probe);
        let mut out = attrs.to_vec();
        if !has("pwdChangedTime") {
            out.push((
                "pwdChangedTime".into(),
                vec![format_time(now_ms()).into_bytes()],
            ));
        }
        if rules.must_change && !has("pwdReset") {
            out.push(("pwdReset".into(), vec![b"TRUE".to_vec()]));
        }
        Some(WriteOp::Add {
            dn: dn.clone(),
            attrs: out,
        })
    }

    /// A recorded bind failure: keeps the failures that still count and
    /// locks the account when they reach pwdMaxFailure. Taken here, in the
    /// writer, so failures arriving together are all counted.
    fn count_failures(
        &self,
        entry: &Entry,
        rules: &Rules,
        added: Option<&Modification>,
        now: i64,
        explicit: &dyn Fn(&str) -> bool,
        out: &mut Vec<Modification>,
    ) {
        let st = State::of(entry);
        let mut failures = st.failures.clone();
        let mut relock_clear = false;
        if let Some(Some(t)) = st.locked_at {
            if !st.locked(rules, now) {
                // The lock ran out: counting starts again after it.
                failures.retain(|f| *f > t);
                relock_clear = true;
            }
        }
        if rules.failure_interval > 0 {
            let oldest = now - secs_ms(rules.failure_interval);
            failures.retain(|f| *f > oldest);
        }
        let mut newest = now;
        for v in added.map(|m| m.values.as_slice()).unwrap_or(&[]) {
            let Some(mut t) = parse_time(v) else {
                continue;
            };
            while failures.contains(&t) {
                t += 1;
            }
            failures.push(t);
            newest = t;
        }
        failures.sort_unstable();
        let keep = match rules.max_failure {
            0 => MAX_FAILURES_KEPT,
            n => usize::try_from(n)
                .unwrap_or(MAX_FAILURES_KEPT)
                .min(MAX_FAILURES_KEPT),
        };
        let excess = failures.len().saturating_sub(keep);
        failures.drain(..excess);
        out.push(replace(
            "pwdFailureTime",
            failures
                .iter()
                .map(|t| format_time(*t).into_bytes())
                .collect(),
        ));
        if explicit("pwdAccountLockedTime") {
            return;
        }
        let count = u32::try_from(failures.len()).unwrap_or(u32::MAX);
        if rules.locks() && count >= rules.max_failure && !st.locked(rules, now) {
            // Locked as of the failure that locked it, as OpenLDAP records it.
            out.push(replace(
                "pwdAccountLockedTime",
                vec![format_time(newest).into_bytes()],
            ));
            tracing::warn!(
                dn = %entry.dn,
                "account locked after {count} failed binds ({})",
                match rules.lockout_duration {
                    0 => "until an administrator unlocks it".to_string(),
                    s => format!("for {s} s"),
                }
            );
        } else if relock_clear {
            out.push(replace("pwdAccountLockedTime", Vec::new()));
        }
    }

    /// A new password: the user's own change is checked against the
    /// policy's length and history; any change records pwdChangedTime and
    /// history, forgets failures, locks and grace binds; an administrator's
    /// change sets pwdReset when the policy says pwdMustChange.
    #[allow(clippy::too_many_arguments)]
    fn password_changed(
        &self,
        who: &Identity,
        entry: &Entry,
        rules: &Rules,
        op: &WriteOp,
        now: i64,
        explicit: &dyn Fn(&str) -> bool,
        out: &mut Vec<Modification>,
    ) -> DirResult<()> {
        let self_change = !who.root && who.norm == self.norm_dn(&entry.dn);
        let new = new_passwords(op);
        let current = entry.values("userPassword");
        let history: Vec<&[u8]> = entry.values("pwdHistory");
        if self_change {
            if !rules.allow_user_change {
                return Err(DirError::PasswordPolicy {
                    error: PolicyError::PasswordModNotAllowed,
                    message: "the password policy does not allow users to change their password \
                     (pwdAllowUserChange FALSE); ask an administrator"
                        .into(),
                });
            }
            let st = State::of(entry);
            if let (true, Some(changed)) = (rules.min_age > 0, st.changed) {
                let allowed_at = changed.saturating_add(secs_ms(rules.min_age));
                if now < allowed_at && !st.reset {
                    return Err(DirError::PasswordPolicy {
                        error: PolicyError::PasswordTooYoung,
                        message: format!(
                            "the password is too young to change: the password policy allows a change {} s after the last one (pwdMinAge)",
                            rules.min_age
                        ),
                    });
                }
            }
            for v in &new {
                if !password::is_hashed(v)
                    && String::from_utf8_lossy(v).chars().count() < rules.min_length
                {
                    return Err(DirError::PasswordPolicy {
                        error: PolicyError::PasswordTooShort,
                        message: format!(
                            "the password is too short: the password policy requires at least {} characters",
                            rules.min_length
                        ),
                    });
                }
            }
            if rules.in_history > 0 {
                let old_hashes = current
                    .iter()
                    .copied()
                    .chain(history.iter().filter_map(|h| {
                        // time#syntax#length#value: the value may itself hold '#'.
                        h.splitn(4, |b| *b == b'#').nth(3)
                    }));
                for old in old_hashes {
                    if new.iter().any(|v| password::verify(old, v)) {
                        return Err(DirError::PasswordPolicy {
                            error: PolicyError::PasswordInHistory,
                            message: format!(
                                "the password is in the history: the password policy forbids reusing the last {} passwords",
                                rules.in_history
                            ),
                        });
                    }
                }
            }
        }
        let stamp = format_time(now);
        if !explicit("pwdChangedTime") {
            out.push(replace("pwdChangedTime", vec![stamp.clone().into_bytes()]));
        }
        for name in ["pwdFailureTime", "pwdAccountLockedTime", "pwdGraceUseTime"] {
            if entry.has(name) && !explicit(name) {
                out.push(replace(name, Vec::new()));
            }
        }
        if !explicit("pwdReset") {
            if !self_change && rules.must_change {
                out.push(replace("pwdReset", vec![b"TRUE".to_vec()]));
            } else if entry.has("pwdReset") {
                out.push(replace("pwdReset", Vec::new()));
            }
        }
        if rules.in_history > 0 && !explicit("pwdHistory") {
            let mut kept: Vec<Vec<u8>> = history.iter().map(|h| h.to_vec()).collect();
            for old in current {
                let mut v = format!("{stamp}#{HISTORY_SYNTAX}#{}#", old.len()).into_bytes();
                v.extend_from_slice(old);
                kept.push(v);
            }
            let n = usize::try_from(rules.in_history).unwrap_or(usize::MAX);
            let excess = kept.len().saturating_sub(n);
            kept.drain(..excess);
            kept.dedup();
            out.push(replace("pwdHistory", kept));
        }
        Ok(())
    }

    /// A simple bind to an entry under its password policy. The state
    /// changes a bind implies (a failure, a grace bind, forgetting
    /// failures) are submitted to the writer; the decision to lock is the
    /// writer's (`count_failures`).
    pub(crate) fn bind_entry(
        &self,
        rules: &Rules,
        entry: &Entry,
        password_given: &[u8],
    ) -> (Decision, Vec<Modification>) {
        let st = State::of(entry);
        let now = now_ms();
        let verify = || {
            entry
                .values("userPassword")
                .iter()
                .any(|stored| password::verify(stored, password_given))
        };
        let ok = !st.locked(rules, now) && verify();
        let decision = decide(rules, &st, ok, now);
        let stamp = || vec![format_time(now).into_bytes()];
        let mut mods = Vec::new();
        match &decision {
            Decision::Refused {
                record_failure: true,
                ..
            } => mods.push(Modification {
                op: ModOp::Add,
                attr: "pwdFailureTime".into(),
                values: stamp(),
            }),
            Decision::Accepted {
                use_grace,
                clear_failures,
                ..
            } => {
                if *use_grace {
                    mods.push(Modification {
                        op: ModOp::Add,
                        attr: "pwdGraceUseTime".into(),
                        values: stamp(),
                    });
                }
                if *clear_failures {
                    for name in ["pwdFailureTime", "pwdAccountLockedTime"] {
                        if entry.has(name) {
                            mods.push(replace(name, Vec::new()));
                        }
                    }
                }
            }
            Decision::Refused { .. } => {}
        }
        (decision, mods)
    }
}

/// The attributes a simple bind reads from its entry: the password and
/// the password policy's (pwdPolicySubentry and the account's pwd* state).
/// The rest of the entry is not decoded for a bind.
pub(crate) fn read_by_bind(name: &str) -> bool {
    name.eq_ignore_ascii_case("userPassword")
        || name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("pwd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            max_failure: 3,
            lockout: true,
            lockout_duration: 60,
            failure_interval: 60,
            max_age: 100,
            expire_warning: 30,
            grace_limit: 2,
            must_change: true,
            in_history: 2,
            min_length: 0,
            min_age: 0,
            allow_user_change: true,
        }
    }

    #[test]
    fn times_round_trip_with_milliseconds() {
        for ms in [0_i64, 1_795_311_845_000, 1_795_311_845_123, 951_782_400_007] {
            assert_eq!(
                parse_time(format_time(ms).as_bytes()),
                Some(ms),
                "{}",
                format_time(ms)
            );
        }
        assert_eq!(format_time(1_795_311_845_000), "20261122014405Z");
        assert_eq!(parse_time(b"000001010000Z"), None);
        assert_eq!(parse_time(b"2026112201Z"), Some(1_795_309_200_000));
        assert_eq!(parse_time(b"20261122014405"), None, "no zone");
    }

    #[test]
    fn locked_accounts_are_refused_until_the_duration_passes() {
        let r = rules();
        let t = 1_000_000_000_000;
        let st = State {
            locked_at: Some(Some(t)),
            ..State::default()
        };
        let locked = decide(&r, &st, true, t + 59_000);
        assert_eq!(
            locked,
            Decision::Refused {
                policy: PolicyResponse {
                    warning: None,
                    error: Some(PolicyError::AccountLocked)
                },
                record_failure: false
            }
        );
        assert!(matches!(
            decide(&r, &st, true, t + 61_000),
            Decision::Accepted {
                clear_failures: true,
                ..
            }
        ));
        let forever = Rules {
            lockout_duration: 0,
            ..r.clone()
        };
        assert!(matches!(
            decide(&forever, &st, true, t + 10_000_000),
            Decision::Refused { .. }
        ));
        let admin_lock = State {
            locked_at: Some(None),
            ..State::default()
        };
        assert!(matches!(
            decide(&r, &admin_lock, true, t),
            Decision::Refused { .. }
        ));
        assert_eq!(
            decide(&r, &State::default(), false, t),
            Decision::Refused {
                policy: PolicyResponse::default(),
                record_failure: true
            }
        );
    }

    #[test]
    fn expiry_warns_then_allows_grace_binds_then_refuses() {
        let r = rules();
        let changed = 1_000_000_000_000;
        let st = State {
            changed: Some(changed),
            ..State::default()
        };
        let Decision::Accepted { policy, .. } = decide(&r, &st, true, changed + 80_000) else {
            panic!("not expired yet");
        };
        assert_eq!(
            policy.warning,
            Some(PolicyWarning::TimeBeforeExpiration(20))
        );
        let Decision::Accepted {
            policy, use_grace, ..
        } = decide(&r, &st, true, changed + 100_000)
        else {
            panic!("a grace bind is left");
        };
        assert!(use_grace);
        assert_eq!(policy.warning, Some(PolicyWarning::GraceAuthNsRemaining(1)));
        let used = State {
            grace_used: 2,
            ..st
        };
        assert_eq!(
            decide(&r, &used, true, changed + 100_000),
            Decision::Refused {
                policy: PolicyResponse {
                    warning: None,
                    error: Some(PolicyError::PasswordExpired)
                },
                record_failure: false
            }
        );
        let reset = State {
            reset: true,
            ..State::default()
        };
        assert!(matches!(
            decide(&r, &reset, true, changed),
            Decision::Accepted {
                must_change: true,
                policy: PolicyResponse {
                    error: Some(PolicyError::ChangeAfterReset),
                    ..
                },
                ..
            }
        ));
    }

    /// The bytes OpenLDAP's ppolicy overlay sends (ber_printf "{t{ti}N}",
    /// "{te}") for the same answers.
    #[test]
    fn response_control_is_encoded_as_the_draft_says() {
        let locked = PolicyResponse {
            warning: None,
            error: Some(PolicyError::AccountLocked),
        };
        assert_eq!(locked.encode(), vec![0x30, 0x03, 0x81, 0x01, 0x01]);
        let grace = PolicyResponse {
            warning: Some(PolicyWarning::GraceAuthNsRemaining(2)),
            error: None,
        };
        assert_eq!(
            grace.encode(),
            vec![0x30, 0x05, 0xa0, 0x03, 0x81, 0x01, 0x02]
        );
        let expiring = PolicyResponse {
            warning: Some(PolicyWarning::TimeBeforeExpiration(300)),
            error: Some(PolicyError::ChangeAfterReset),
        };
        assert_eq!(
            expiring.encode(),
            vec![0x30, 0x09, 0xa0, 0x04, 0x80, 0x02, 0x01, 0x2c, 0x81, 0x01, 0x02]
        );
        let big = PolicyResponse {
            warning: Some(PolicyWarning::TimeBeforeExpiration(128)),
            error: None,
        };
        assert_eq!(
            big.encode(),
            vec![0x30, 0x06, 0xa0, 0x04, 0x80, 0x02, 0x00, 0x80]
        );
        assert_eq!(PolicyResponse::default().encode(), vec![0x30, 0x00]);
    }
}
