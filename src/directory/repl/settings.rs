//! The 389-ds replication settings beyond the basic ones: each is either
//! read here (and used by the session layer) or refused with
//! unwillingToPerform naming it, never silently ignored, so a 389-ds
//! runbook either works or says which line ferrodir does not do.

use super::*;
use crate::repl::core::fractional::{self, Fractional};
use crate::repl::core::schedule::Schedule;

/// Replica-entry settings ferrodir refuses, and why.
pub(super) const REPLICA_REFUSED: &[(&str, &str)] = &[
    ("nsDS5ReplicaAutoReferral", "ferrodir has no referral-following backends; a read-only replica refers writes with nsDS5ReplicaReferral or to its supplier"),
    ("nsDS5Task", "replica tasks are ferrodir commands: ferrodir export, ferrodir repl status"),
    ("nsds5ReplicaLegacyConsumer", "legacy (4.x) consumers are obsolete in 389-ds too"),
    ("nsState", "the CSN generator state is kept by the server in its data directory"),
    ("nsds5ReplicaCleanRUV", "a retired replica ID leaves the RUV when its changes are purged (nsds5ReplicaPurgeDelay)"),
    ("nsds5ReplicaAbortCleanRUV", "there is no clean RUV task to abort"),
    ("nsds5ReplicaProtocolTimeout", "sessions stop at once on shutdown or when an agreement changes; a consumer resumes from its RUV"),
    ("nsds5ReplicaReleaseTimeout", "a ferrodir consumer accepts several suppliers at once, there is no replica to release"),
    ("nsds5ReplicaKeepAliveUpdateInterval", "fractional updates move the consumer's RUV without keep-alive entries"),
    ("nsds5ReplicaPreciseTombstonePurging", "tombstones are purged by CSN already"),
    ("nsds5debugreplicatimeout", "there is no replication debug mode; use RUST_LOG=ferrodir=debug"),
];

/// Agreement-entry settings ferrodir refuses, and why.
pub(super) const AGREEMENT_REFUSED: &[(&str, &str)] = &[
    ("nsds50ruv", "the consumer's RUV is maintained by the server (see ferrodir repl status)"),
    ("nsruvReplicaLastModified", "maintained by the server"),
    ("nsds5ReplicaFlowControlWindow", "a session has one request in flight and waits for its answer, so there is no window to set"),
    ("nsds5ReplicaFlowControlPause", "a session has one request in flight and waits for its answer, so there is nothing to pause"),
    ("nsDS5ReplicaWaitForAsyncResults", "results are synchronous"),
    ("nsds5ReplicaIgnoreMissingChange", "a consumer missing changes the changelog no longer holds is caught up from entry state"),
    ("nsDS5ReplicaBootstrapBindDN", "there is no fallback bind; give nsDS5ReplicaBindDN and nsDS5ReplicaCredentials"),
    ("nsDS5ReplicaBootstrapCredentials", "there is no fallback bind; give nsDS5ReplicaBindDN and nsDS5ReplicaCredentials"),
    ("nsDS5ReplicaBootstrapBindMethod", "there is no fallback bind; give nsDS5ReplicaBindMethod"),
    ("nsDS5ReplicaBootstrapTransportInfo", "there is no fallback bind; give nsDS5ReplicaTransportInfo"),
    ("nsds5ReplicaCleanRUVNotified", "there is no clean RUV task"),
    ("nsds5ReplicaProtocolTimeout", "sessions stop at once on shutdown or when an agreement changes; a consumer resumes from its RUV"),
    ("nsds5debugreplicatimeout", "there is no replication debug mode; use RUST_LOG=ferrodir=debug"),
];

/// unwillingToPerform naming the first refused setting the entry carries.
pub(super) fn refuse_unsupported(e: &Entry, table: &[(&str, &str)]) -> DirResult<()> {
    match table.iter().find(|(name, _)| e.has(name)) {
        Some((name, why)) => Err(invalid(format!("{name} is not supported: {why}"))),
        None => Ok(()),
    }
}

/// A whole number of seconds at least `min`, when the attribute is there.
pub(super) fn seconds(e: &Entry, name: &str, min: u64) -> DirResult<Option<u64>> {
    let Some(text) = first_text(e, name) else {
        return Ok(None);
    };
    match text.parse::<u64>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(invalid(format!(
            "{name} '{text}' must be a number of seconds, at least {min}"
        ))),
    }
}

/// nsDS5Flags: 1 on a supplier (keep a changelog), 0 on a consumer.
/// ferrodir keeps a changelog on every replica (a consumer's changes flow
/// on and it can be promoted), so both values describe what it does.
pub(super) fn check_flags(e: &Entry) -> DirResult<()> {
    match first_text(e, "nsDS5Flags").as_deref() {
        None | Some("0" | "1") => Ok(()),
        Some(other) => Err(invalid(format!(
            "nsDS5Flags '{other}' is not supported: use 1 (keep a changelog) or 0"
        ))),
    }
}

impl Core {
    /// The replica entry's retry, purge and group settings.
    pub(super) fn replica_settings(&self, e: &Entry) -> DirResult<ReplicaSettings> {
        refuse_unsupported(e, REPLICA_REFUSED)?;
        check_flags(e)?;
        let backoff_min = seconds(e, "nsds5ReplicaBackoffMin", 1)?;
        let backoff_max = seconds(e, "nsds5ReplicaBackoffMax", 1)?;
        if let (Some(lo), Some(hi)) = (backoff_min, backoff_max) {
            if lo > hi {
                return Err(invalid(format!(
                    "nsds5ReplicaBackoffMin ({lo}) is larger than nsds5ReplicaBackoffMax ({hi})"
                )));
            }
        }
        let bind_dn_group = match first_text(e, "nsDS5ReplicaBindDNGroup") {
            None => None,
            Some(text) => Some(
                Dn::parse(&text)
                    .map_err(|err| invalid(format!("nsDS5ReplicaBindDNGroup: {err}")))?,
            ),
        };
        // The group is read at every session start, so any interval is met.
        if let Some(text) = first_text(e, "nsDS5ReplicaBindDnGroupCheckInterval") {
            if text.parse::<i64>().map_or(true, |n| n < -1) {
                return Err(invalid(format!(
                    "nsDS5ReplicaBindDnGroupCheckInterval '{text}' must be -1 or a number of seconds"
                )));
            }
        }
        Ok(ReplicaSettings {
            purge_interval: seconds(e, "nsds5ReplicaTombstonePurgeInterval", 1)?,
            backoff_min,
            backoff_max,
            bind_dn_group,
        })
    }

    /// The agreement entry's fractional, schedule and timing settings.
    pub(super) fn agreement_settings(&self, e: &Entry) -> DirResult<AgreementSettings> {
        refuse_unsupported(e, AGREEMENT_REFUSED)?;
        let strip = match first_text(e, "nsds5ReplicaStripAttrs") {
            None => Vec::new(),
            Some(text) => self.attribute_names(
                "nsds5ReplicaStripAttrs",
                fractional::parse_strip_list(&text)
                    .map_err(|err| invalid(format!("nsds5ReplicaStripAttrs: {err}")))?,
            )?,
        };
        let incremental = self.fractional(e, "nsDS5ReplicatedAttributeList", &strip)?;
        let total = if e.has("nsDS5ReplicatedAttributeListTotal") {
            self.fractional(e, "nsDS5ReplicatedAttributeListTotal", &strip)?
        } else {
            incremental.clone()
        };
        let schedule_values: Vec<String> = e
            .values("nsDS5ReplicaUpdateSchedule")
            .iter()
            .map(|v| String::from_utf8_lossy(v).to_string())
            .collect();
        let schedule = Schedule::parse(schedule_values.iter().map(String::as_str))
            .map_err(|err| invalid(err.to_string()))?;
        Ok(AgreementSettings {
            fractional: incremental,
            fractional_total: total,
            schedule,
            timeout: seconds(e, "nsds5ReplicaTimeout", 1)?,
            busy_wait: seconds(e, "nsds5ReplicaBusyWaitTime", 0)?,
            session_pause: seconds(e, "nsds5ReplicaSessionPauseTime", 0)?,
        })
    }

    fn fractional(&self, e: &Entry, attr: &str, strip: &[String]) -> DirResult<Fractional> {
        let mut excluded = Vec::new();
        for v in e.values(attr) {
            let text = String::from_utf8_lossy(v);
            let names = fractional::parse_exclude_list(&text)
                .map_err(|err| invalid(format!("{attr}: {err}")))?;
            let resolved = self.attribute_names(attr, names)?;
            if let Some(needed) = fractional::NEVER_EXCLUDED
                .iter()
                .find(|n| resolved.iter().any(|r| r.eq_ignore_ascii_case(n)))
            {
                return Err(invalid(format!(
                    "{attr}: {needed} cannot be excluded: replication needs it on every replica"
                )));
            }
            excluded.extend(resolved);
        }
        Ok(Fractional::new(excluded, strip.iter().cloned()))
    }

    /// Every name and the OID of each named attribute type, so any
    /// spelling of it matches; an unknown name is refused (a typo would
    /// otherwise send what was meant to stay local).
    fn attribute_names(&self, setting: &str, names: Vec<String>) -> DirResult<Vec<String>> {
        let mut out = Vec::new();
        for name in names {
            let at = self.schema().attribute(&name).ok_or_else(|| {
                invalid(format!(
                    "{setting}: '{name}' is not an attribute type of this server's schema"
                ))
            })?;
            out.extend(at.names.iter().cloned());
            out.push(at.oid.clone());
        }
        Ok(out)
    }
}

pub(super) struct ReplicaSettings {
    pub purge_interval: Option<u64>,
    pub backoff_min: Option<u64>,
    pub backoff_max: Option<u64>,
    pub bind_dn_group: Option<Dn>,
}

pub(super) struct AgreementSettings {
    pub fractional: Fractional,
    pub fractional_total: Fractional,
    pub schedule: Schedule,
    pub timeout: Option<u64>,
    pub busy_wait: Option<u64>,
    pub session_pause: Option<u64>,
}

impl Core {
    /// Whether `who` is a member (member, uniqueMember) of the replica's
    /// nsDS5ReplicaBindDNGroup, read now.
    pub(crate) fn in_bind_dn_group(
        &self,
        replica: &ReplicaConfig,
        who: &Identity,
    ) -> DirResult<bool> {
        let Some(group) = replica
            .bind_dn_group
            .as_ref()
            .filter(|_| !who.is_anonymous())
        else {
            return Ok(false);
        };
        self.in_bind_dn_group_with(&self.store.read()?, group, who)
    }

    /// [`Core::in_bind_dn_group`] read through `txn` (e.g. the writer's own
    /// transaction).
    pub(crate) fn in_bind_dn_group_with(
        &self,
        txn: &dyn StoreRead,
        group: &Dn,
        who: &Identity,
    ) -> DirResult<bool> {
        let Some(id) = txn.id_by_dn(&self.dn_key(group))? else {
            return Ok(false);
        };
        let Some(entry) = txn.entry(id)?.filter(|e| !is_tombstone(e)) else {
            return Ok(false);
        };
        Ok(["member", "uniqueMember"]
            .iter()
            .flat_map(|a| entry.values(a))
            .filter_map(|v| Dn::parse(&String::from_utf8_lossy(v)).ok())
            .any(|dn| self.norm_dn(&dn) == who.norm))
    }
}
