//! Retiring a replica ID on this server (the rules are in
//! repl::core::retire): the retirements of each suffix in the metadata,
//! merged from peers at session starts, the check that drops changes of a
//! retired ID, and the step that finishes a retirement once nothing can be
//! lost and then removes the ID's changelog records a slice at a time.

use super::*;
use crate::directory::tombstone::suffix_text;
use crate::directory::trim::TRIM_STEP;
use crate::repl::core::retire::{Admission, ConsumerView, Readiness, Retired, Retirement};
use std::sync::{Arc, Mutex};

fn retired_key(suffix_key: &DnKey) -> String {
    format!("retired:{}", suffix_text(suffix_key))
}

/// Work the writer runs for retirements.
#[derive(Debug)]
pub(crate) enum RetireWork {
    /// `ferrodir repl retire-id`: retire `rid` as of this replica's RUV.
    Start {
        suffix_key: DnKey,
        rid: u16,
        report: Arc<Mutex<Option<Retirement>>>,
    },
    /// A peer's retirements, from a session start or answer.
    Merge {
        suffix_key: DnKey,
        peer: Vec<(u16, Csn)>,
    },
    /// Finish what can be finished; remove one slice of changelog records.
    Step {
        suffix_key: DnKey,
        consumers: Vec<ConsumerView>,
        consumer_names: Vec<String>,
        report: Arc<Mutex<RetireStep>>,
    },
}

/// What a step did and what still waits, per replica ID.
#[derive(Debug, Clone, Default)]
pub struct RetireStep {
    pub finished: Vec<u16>,
    pub records_removed: usize,
    /// A retirement still waits, or records remain: run again later.
    pub pending: bool,
    /// Why each unfinished retirement waits.
    pub waiting: Vec<(u16, String)>,
}

impl Core {
    pub(crate) fn load_retired(
        &self,
        txn: &dyn StoreRead,
        suffix_key: &DnKey,
    ) -> DirResult<Retired> {
        match txn.meta(&retired_key(suffix_key))? {
            Some(b) => Retired::decode(&b).map_err(|e| DirError::Busy(e.to_string())),
            None => Ok(Retired::default()),
        }
    }

    pub(crate) fn store_retired(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        retired: &Retired,
    ) -> DirResult<()> {
        txn.put_meta(&retired_key(suffix_key), &retired.encode())?;
        self.retire_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// This server's writable replica ID for the suffix, if it has one.
    fn own_writable_rid(&self, suffix_key: &DnKey) -> Option<u16> {
        let state = self.repl.read().ok()?;
        state
            .replicas
            .iter()
            .find(|r| self.dn_key(&r.suffix) == *suffix_key && !r.read_only)
            .map(|r| r.rid)
    }

    /// Whether a replicated change may be applied. Changes of a retired
    /// replica ID are dropped, with one warning per ID and process.
    pub(crate) fn admit_replicated(&self, retired: &Retired, rec: &ChangeRecord) -> bool {
        match retired.admit(rec.csn) {
            Admission::Apply => true,
            Admission::AlreadyRetired => false,
            Admission::AfterRetirement { upto } => {
                let first = self
                    .retire_warned
                    .lock()
                    .map(|mut w| w.insert(rec.csn.rid))
                    .unwrap_or(false);
                if first {
                    tracing::warn!(
                        csn = %rec.csn,
                        dn = %rec.dn,
                        "a change of replica ID {} made after its retirement (up to {upto}) was refused; a retired server must not take writes (see docs/replication.md, Retiring a replica ID)",
                        rec.csn.rid
                    );
                }
                false
            }
        }
    }

    pub(crate) fn run_retire_work(
        &self,
        txn: &mut WriteTxn<'_>,
        work: &RetireWork,
    ) -> DirResult<()> {
        match work {
            RetireWork::Start {
                suffix_key,
                rid,
                report,
            } => {
                let r = self.start_retirement(txn, suffix_key, *rid)?;
                if let Ok(mut slot) = report.lock() {
                    *slot = Some(r);
                }
                Ok(())
            }
            RetireWork::Merge { suffix_key, peer } => {
                let mut retired = self.load_retired(txn, suffix_key)?;
                let own = self.own_writable_rid(suffix_key);
                let before = retired.clone();
                let (added, refused) = retired.merge(peer, own);
                if let Some(rid) = refused {
                    tracing::error!(
                        "a replication peer retired replica ID {rid}, which is this server's own: ignored here, but the peers that retired it refuse this server's changes; give this server a new nsDS5ReplicaId"
                    );
                }
                for rid in added {
                    tracing::info!(suffix = %suffix_text(suffix_key), "replica ID {rid} retired by a peer; finishing here once every change of it has arrived");
                }
                if retired != before {
                    self.store_retired(txn, suffix_key, &retired)?;
                }
                Ok(())
            }
            RetireWork::Step {
                suffix_key,
                consumers,
                consumer_names,
                report,
            } => {
                let step = self.retire_step(txn, suffix_key, consumers, consumer_names)?;
                if let Ok(mut slot) = report.lock() {
                    *slot = step;
                }
                Ok(())
            }
        }
    }

    fn start_retirement(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        rid: u16,
    ) -> DirResult<Retirement> {
        if rid == 0 || rid == READ_ONLY_RID {
            return Err(DirError::UnwillingToPerform(format!(
                "replica ID {rid} is not one a writable replica uses (1 to 65534)"
            )));
        }
        if self.own_writable_rid(suffix_key) == Some(rid) {
            return Err(DirError::UnwillingToPerform(format!(
                "replica ID {rid} is this server's own; retire it from another replica once this server is gone"
            )));
        }
        let mut retired = self.load_retired(txn, suffix_key)?;
        if let Some(r) = retired.get(rid) {
            return Ok(*r);
        }
        let ruv = self.load_ruv(txn, suffix_key)?;
        let Some(upto) = ruv.max_for(rid) else {
            let known: Vec<String> = ruv.replicas.keys().map(u16::to_string).collect();
            return Err(DirError::UnwillingToPerform(format!(
                "replica ID {rid} is not in the RUV of '{}' (it holds: {})",
                suffix_text(suffix_key),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        retired.retire(rid, upto);
        self.store_retired(txn, suffix_key, &retired)?;
        // Wake the agreements: the retirement travels with the next start.
        self.changes_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(suffix = %suffix_text(suffix_key), "replica ID {rid} retired (its changes up to {upto}); finishing once every consumer holds them");
        retired
            .get(rid)
            .copied()
            .ok_or_else(|| DirError::Busy("retirement not recorded".into()))
    }

    fn retire_step(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        consumers: &[ConsumerView],
        names: &[String],
    ) -> DirResult<RetireStep> {
        let mut retired = self.load_retired(txn, suffix_key)?;
        let mut step = RetireStep::default();
        if retired.is_empty() {
            return Ok(step);
        }
        let mut ruv = self.load_ruv(txn, suffix_key)?;
        let rids: Vec<u16> = retired.by_rid.keys().copied().collect();
        let mut changed = false;
        for rid in rids {
            match retired.readiness(rid, &ruv, consumers) {
                Readiness::Finished => {}
                Readiness::Ready => {
                    retired.finish(rid, &mut ruv);
                    step.finished.push(rid);
                    changed = true;
                }
                Readiness::LocalBehind { have, upto } => {
                    step.pending = true;
                    let have = have.map_or("none".to_string(), |c| c.to_string());
                    step.waiting.push((
                        rid,
                        format!("this server holds its changes up to {have}, needs {upto}"),
                    ));
                }
                Readiness::ConsumerBehind { consumer, have } => {
                    step.pending = true;
                    let name = names.get(consumer).map_or("?", String::as_str);
                    let have = have.map_or("unknown".to_string(), |c| c.to_string());
                    step.waiting.push((
                        rid,
                        format!("the consumer of agreement {name} holds its changes up to {have} (an enabled agreement's consumer must hold them all, or the agreement be disabled)"),
                    ));
                }
            }
        }
        if changed {
            self.store_ruv(txn, suffix_key, &ruv)?;
            let mut trimmed = self.trimmed_ruv(txn, suffix_key)?;
            for rid in &step.finished {
                trimmed.replicas.remove(rid);
                tracing::info!(suffix = %suffix_text(suffix_key), "replica ID {rid} retired here: out of the RUV; its changelog records go next");
            }
            self.store_trimmed_ruv(txn, suffix_key, &trimmed)?;
        }
        let cleaning = retired.to_clean();
        if !cleaning.is_empty() {
            let removed = self.remove_changelog_where(
                txn,
                suffix_key,
                |csn| csn.is_some_and(|c| cleaning.contains(&c.rid)),
                TRIM_STEP,
            )?;
            step.records_removed = removed;
            if removed >= TRIM_STEP {
                step.pending = true;
            } else {
                for rid in cleaning {
                    if let Some(r) = retired.by_rid.get_mut(&rid) {
                        r.changelog_clean = true;
                    }
                }
            }
            changed = true;
        }
        if changed {
            self.store_retired(txn, suffix_key, &retired)?;
        }
        Ok(step)
    }

    /// What `ferrodirRetiredReplicaId` shows on a replica entry.
    pub(crate) fn retired_lines(&self, txn: &dyn StoreRead, suffix: &Dn) -> Vec<String> {
        let key = self.dn_key(suffix);
        let Ok(retired) = self.load_retired(txn, &key) else {
            return Vec::new();
        };
        let waiting = self
            .retire_waiting
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
            .unwrap_or_default();
        retired
            .by_rid
            .values()
            .map(|r| {
                let state = if r.done && r.changelog_clean {
                    "retired".to_string()
                } else if r.done {
                    "retired; removing its changelog records".to_string()
                } else {
                    match waiting.iter().find(|(rid, _)| *rid == r.rid) {
                        Some((_, why)) => format!("retiring: waiting: {why}"),
                        None => "retiring".to_string(),
                    }
                };
                format!("{} upto {} {state}", r.rid, r.upto)
            })
            .collect()
    }
}

/// `cn=cleanallruv,cn=tasks,cn=config`: where 389-ds runbooks add a task
/// entry to retire a replica ID.
fn cleanallruv_dn() -> Dn {
    Dn::from_pairs(&[("cn", "cleanallruv"), ("cn", "tasks"), ("cn", "config")])
}

/// A 389-ds CLEANALLRUV task entry: its replica-base-dn and replica-id.
/// None when the add is not one.
pub(crate) fn cleanallruv_task(
    dn: &Dn,
    attrs: &[(String, Vec<Vec<u8>>)],
    norm: impl Fn(&Dn) -> String,
) -> Option<DirResult<(Dn, u16)>> {
    if norm(&dn.parent()?) != norm(&cleanallruv_dn()) {
        return None;
    }
    let text = |name: &str| {
        attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
    };
    let parsed = (|| {
        let base = text("replica-base-dn").ok_or_else(|| {
            DirError::UnwillingToPerform("a cleanallruv task needs replica-base-dn".into())
        })?;
        let base = Dn::parse(&base)
            .map_err(|e| DirError::UnwillingToPerform(format!("replica-base-dn '{base}': {e}")))?;
        let rid = text("replica-id").ok_or_else(|| {
            DirError::UnwillingToPerform("a cleanallruv task needs replica-id".into())
        })?;
        let rid = rid.parse::<u16>().map_err(|_| {
            DirError::UnwillingToPerform(format!(
                "replica-id '{rid}' is not a replica ID (1 to 65534)"
            ))
        })?;
        if let Some(force) = text("replica-force-cleaning") {
            if force.eq_ignore_ascii_case("yes") {
                tracing::info!("cleanallruv: replica-force-cleaning is not needed by ferrodir (a retirement waits for reachable consumers only and never blocks); ignored");
            }
        }
        Ok((base, rid))
    })();
    Some(parsed)
}

impl Directory {
    /// `ferrodir repl retire-id`: retires `rid` in `suffix` (root DN only).
    /// Idempotent: retiring an ID again reports the retirement under way.
    pub async fn retire_replica_id(
        &self,
        who: &Identity,
        suffix: &Dn,
        rid: u16,
    ) -> DirResult<Retirement> {
        if !who.root {
            return Err(DirError::InsufficientAccess(
                "only the root DN may retire a replica ID".into(),
            ));
        }
        let suffix_key = self.suffix_key_checked(suffix)?;
        if self.core.replica_for(suffix).is_none() {
            return Err(DirError::UnwillingToPerform(format!(
                "'{suffix}' is not configured as a replica here (add cn=replica,{})",
                mapping_node(suffix)
            )));
        }
        let report = Arc::new(Mutex::new(None));
        self.writer
            .submit_work(crate::directory::writer::Work::Retire(RetireWork::Start {
                suffix_key,
                rid,
                report: report.clone(),
            }))
            .await?;
        let r = report.lock().ok().and_then(|r| *r);
        r.ok_or_else(|| DirError::Busy("retirement not recorded".into()))
    }

    /// This server's retirements of `suffix`, as sent to peers.
    pub fn retired(&self, suffix: &Dn) -> DirResult<Retired> {
        let key = self.suffix_key_checked(suffix)?;
        self.core.load_retired(&self.core.store.read()?, &key)
    }

    /// Merges a peer's retirements (nothing is written when none is new).
    pub async fn merge_retired(&self, suffix: &Dn, peer: &[(u16, Csn)]) -> DirResult<()> {
        if peer.is_empty() {
            return Ok(());
        }
        let key = self.suffix_key_checked(suffix)?;
        let current = self.core.load_retired(&self.core.store.read()?, &key)?;
        let new = peer
            .iter()
            .any(|(rid, upto)| current.get(*rid).is_none_or(|r| r.upto < *upto));
        if !new {
            return Ok(());
        }
        self.writer
            .submit_work(crate::directory::writer::Work::Retire(RetireWork::Merge {
                suffix_key: key,
                peer: peer.to_vec(),
            }))
            .await
    }

    /// Runs the retirement steps of every suffix while one is unfinished
    /// (called every second by the housekeeping task).
    pub async fn step_retirements(&self) -> DirResult<()> {
        if !self
            .core
            .retire_pending
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(());
        }
        let mut again = false;
        for suffix in self.core.cfg.suffixes.clone() {
            let key = self.core.dn_key(&suffix);
            if self.core.replicated_suffix_of(&key).is_none() {
                continue;
            }
            let norm_suffix = self.core.norm_dn(&suffix);
            let mut consumers = Vec::new();
            let mut names = Vec::new();
            {
                let txn = self.core.store.read()?;
                if self.core.load_retired(&txn, &key)?.is_empty() {
                    continue;
                }
                for a in self.agreements() {
                    if !a.enabled || self.core.norm_dn(&a.suffix) != norm_suffix {
                        continue;
                    }
                    let status = self.agreement_status(&a.dn);
                    let ruv = match status.consumer_ruv {
                        Some(r) => Some(r),
                        None => txn
                            .meta(&crate::directory::trim::consumer_ruv_key(
                                &self.core.norm_dn(&a.dn),
                            ))?
                            .and_then(|b| Ruv::decode(&b).ok()),
                    };
                    consumers.push(ConsumerView {
                        ruv,
                        finished: status.consumer_finished,
                    });
                    names.push(a.dn.to_string());
                }
            }
            let report = Arc::new(Mutex::new(RetireStep::default()));
            self.writer
                .submit_work(crate::directory::writer::Work::Retire(RetireWork::Step {
                    suffix_key: key.clone(),
                    consumers,
                    consumer_names: names,
                    report: report.clone(),
                }))
                .await?;
            let step = report.lock().map(|r| r.clone()).unwrap_or_default();
            again |= step.pending;
            if let Ok(mut m) = self.core.retire_waiting.lock() {
                m.insert(key, step.waiting);
            }
        }
        if again {
            self.core
                .retire_pending
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}
