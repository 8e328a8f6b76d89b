//! Housekeeping of a replicated suffix, run by the writer in small steps:
//! tombstones older than the purge delay go, and changelog records older
//! than the purge delay go too, except those an enabled agreement's
//! consumer has not acknowledged yet; deleted values older than the purge
//! delay leave the entries' replication states, a slice per run. The highest CSN removed per replica
//! ID is kept as the suffix's "trimmed RUV": a consumer below it can no
//! longer be served from the changelog and is caught up from entry state.

use super::tombstone::suffix_text;
use super::{Core, DirError, DirResult};
use crate::model::Csn;
use crate::repl::core::ruv::Ruv;
use crate::store::changelog::ChangelogCursor;
use crate::store::DnKey;
use crate::store::{StoreRead, WriteTxn};

/// Changelog records removed per step, so one step never holds the writer long.
pub(crate) const TRIM_STEP: usize = 5_000;

/// Replication states looked at per housekeeping run for deleted values
/// to forget.
const PURGE_STATES_STEP: usize = 2_000;

/// What one housekeeping step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Housekeeping {
    pub tombstones_purged: usize,
    pub changes_trimmed: usize,
    /// Entries whose deleted values older than the purge delay were forgotten.
    pub states_purged: usize,
    /// A step limit was reached: run again.
    pub more: bool,
}

fn trimmed_key(suffix_key: &DnKey) -> String {
    format!("trimmed:{}", suffix_text(suffix_key))
}

pub(crate) fn consumer_ruv_key(agreement_norm: &str) -> String {
    format!("consumer-ruv:{agreement_norm}")
}

impl Core {
    /// Highest CSN per replica ID removed from this suffix's changelog.
    pub(crate) fn trimmed_ruv(&self, txn: &dyn StoreRead, suffix_key: &DnKey) -> DirResult<Ruv> {
        match txn.meta(&trimmed_key(suffix_key))? {
            Some(b) => Ruv::decode(&b).map_err(|e| DirError::Busy(e.to_string())),
            None => Ok(Ruv::new(String::new())),
        }
    }

    pub(crate) fn store_trimmed_ruv(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        ruv: &Ruv,
    ) -> DirResult<()> {
        txn.put_meta(&trimmed_key(suffix_key), &ruv.encode())?;
        Ok(())
    }

    /// One housekeeping step for a suffix. `cutoff`: state older than this
    /// goes; `needed`: the last acknowledged RUVs of the enabled agreements'
    /// consumers (a change one of them lacks stays).
    pub(crate) fn housekeep(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        cutoff: Csn,
        needed: &[Ruv],
    ) -> DirResult<Housekeeping> {
        let tombstones_purged = self.purge_tombstones(txn, suffix_key, cutoff)?;
        let states_purged = self.purge_deleted_values(txn, suffix_key, cutoff)?;
        let mut report = Housekeeping {
            tombstones_purged,
            states_purged,
            more: tombstones_purged >= super::tombstone::PURGE_STEP,
            ..Housekeeping::default()
        };
        let mut trimmed = self.trimmed_ruv(txn, suffix_key)?;
        let mut cursor = ChangelogCursor::at(Csn::ZERO);
        'scan: loop {
            let page = cursor.next_page(&*txn)?;
            if page.is_empty() {
                break;
            }
            for stored in page {
                let Some(csn) = stored.csn else {
                    continue;
                };
                if csn >= cutoff {
                    break 'scan;
                }
                let Ok(rec) = stored.record else {
                    continue;
                };
                if !self.dn_key(&rec.dn).starts_with(suffix_key) {
                    continue;
                }
                if !needed.iter().all(|ruv| ruv.covers(csn)) {
                    continue;
                }
                txn.delete_changelog(&stored.key)?;
                trimmed.update(csn);
                report.changes_trimmed += 1;
                if report.changes_trimmed >= TRIM_STEP {
                    report.more = true;
                    break 'scan;
                }
            }
        }
        if report.changes_trimmed > 0 {
            self.store_trimmed_ruv(txn, suffix_key, &trimmed)?;
        }
        Ok(report)
    }

    /// Forgets, in one slice of the replication states (the next slice at
    /// the next run, round and round), the deleted values older than
    /// `cutoff` of entries of this suffix. Returns how many entries' states
    /// changed.
    fn purge_deleted_values(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        cutoff: Csn,
    ) -> DirResult<usize> {
        use crate::repl::core::EntryState;
        use crate::store::replstate::ReplStateRead;
        let cursor_key = format!("purge-values:{}", suffix_text(suffix_key));
        let after = txn
            .meta(&cursor_key)?
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok());
        let slice = txn.repl_states_after(after.as_ref(), PURGE_STATES_STEP)?;
        let mut purged = 0;
        for (uuid, bytes) in &slice {
            let Ok(mut state) = EntryState::decode(bytes) else {
                continue;
            };
            if !state.purge_deleted(cutoff) {
                continue;
            }
            // States of every suffix share one table: only this suffix's
            // follow its purge delay.
            let in_suffix = match txn.id_by_uuid(uuid)? {
                Some(id) => txn
                    .entry(id)?
                    .is_some_and(|e| self.dn_key(&e.dn).starts_with(suffix_key)),
                None => false,
            };
            if in_suffix {
                txn.put_repl_state(uuid, &state.encode())?;
                purged += 1;
            }
        }
        match slice.last() {
            Some((last, _)) if slice.len() >= PURGE_STATES_STEP => {
                txn.put_meta(&cursor_key, last)?
            }
            _ => {
                if after.is_some() {
                    txn.delete_meta(&cursor_key)?;
                }
            }
        }
        Ok(purged)
    }

    /// An offline import writes no changelog, yet the replica now holds its
    /// changes: the RUV covers them (a fresh data set gets its generation)
    /// and so does the trimmed RUV, so consumers that already hold the
    /// suffix are caught up from entry state instead of missing the import.
    pub(crate) fn note_offline_changes(&self, txn: &mut WriteTxn<'_>, last: Csn) -> DirResult<()> {
        for suffix in &self.cfg.suffixes {
            let Some(key) = self.replicated_suffix_of(&self.dn_key(suffix)) else {
                continue;
            };
            let mut ruv = self.load_ruv(txn, &key)?;
            if ruv.generation.is_empty() {
                ruv.generation = uuid::Uuid::new_v4().to_string();
            }
            ruv.update(last);
            self.store_ruv(txn, &key, &ruv)?;
            let mut trimmed = self.trimmed_ruv(txn, &key)?;
            trimmed.update(last);
            self.store_trimmed_ruv(txn, &key, &trimmed)?;
        }
        Ok(())
    }

    /// Whether the changelog still holds every change `consumer` lacks.
    pub(crate) fn changelog_reaches(
        &self,
        txn: &dyn StoreRead,
        suffix_key: &DnKey,
        consumer: &Ruv,
    ) -> DirResult<bool> {
        let trimmed = self.trimmed_ruv(txn, suffix_key)?;
        Ok(trimmed
            .replicas
            .iter()
            .all(|(rid, e)| consumer.max_for(*rid).is_some_and(|m| m >= e.max)))
    }
}

impl super::Directory {
    /// Seconds between housekeeping runs: a quarter of the shortest purge
    /// delay, between 1 s and 60 s.
    pub fn housekeeping_interval(&self) -> std::time::Duration {
        // nsds5ReplicaTombstonePurgeInterval when given, else a quarter
        // of the purge delay, at most a minute.
        let default = |delay: u64| (delay / 4).clamp(1, 60);
        let shortest = self
            .replicas()
            .iter()
            .map(|r| r.purge_interval.unwrap_or_else(|| default(r.purge_delay)))
            .min()
            .unwrap_or_else(|| default(super::repl::DEFAULT_PURGE_DELAY));
        std::time::Duration::from_secs(shortest.max(1))
    }

    /// Purges tombstones and trims the changelog of every data suffix (state
    /// older than its purge delay at `now`, in seconds since the epoch).
    pub async fn housekeep(&self, now: u64) -> DirResult<Vec<(crate::model::Dn, Housekeeping)>> {
        let core = &self.core;
        let mut out = Vec::new();
        for suffix in core.cfg.suffixes.clone() {
            let key = core.dn_key(&suffix);
            if core.replicated_suffix_of(&key).is_none() {
                continue;
            }
            let delay = core
                .replica_for(&suffix)
                .map_or(super::repl::DEFAULT_PURGE_DELAY, |r| r.purge_delay);
            if delay == u64::MAX {
                continue;
            }
            let cutoff_secs = u32::try_from(now.saturating_sub(delay)).unwrap_or(u32::MAX);
            let cutoff = Csn::new(cutoff_secs, 0, 0, 0);
            let norm_suffix = core.norm_dn(&suffix);
            let mut needed = Vec::new();
            let mut consumer_ruvs = Vec::new();
            {
                let txn = core.store.read()?;
                for a in self.agreements() {
                    if !a.enabled || core.norm_dn(&a.suffix) != norm_suffix {
                        continue;
                    }
                    let norm = core.norm_dn(&a.dn);
                    if let Some(ruv) = self.agreement_status(&a.dn).consumer_ruv {
                        consumer_ruvs.push((norm, ruv.clone()));
                        needed.push(ruv);
                    } else if let Some(bytes) = txn.meta(&consumer_ruv_key(&norm))? {
                        // Saved before a restart; the consumer has not been reached since.
                        if let Ok(ruv) = Ruv::decode(&bytes) {
                            needed.push(ruv);
                        }
                    }
                }
            }
            let mut total = Housekeeping::default();
            loop {
                let report = std::sync::Arc::new(std::sync::Mutex::new(Housekeeping::default()));
                self.writer
                    .submit_work(super::writer::Work::Housekeep {
                        suffix_key: key.clone(),
                        cutoff,
                        needed: needed.clone(),
                        consumer_ruvs: std::mem::take(&mut consumer_ruvs),
                        report: report.clone(),
                    })
                    .await?;
                let step = report.lock().map(|r| *r).unwrap_or_default();
                total.tombstones_purged += step.tombstones_purged;
                total.states_purged += step.states_purged;
                total.changes_trimmed += step.changes_trimmed;
                if !step.more {
                    break;
                }
            }
            out.push((suffix, total));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::directory::{Identity, WriteOp};
    use crate::model::{Dn, ModOp, Modification};
    use crate::repl::core::EntryState;
    use crate::store::replstate::ReplStateRead;
    use crate::store::StoreRead;

    fn root() -> Identity {
        Identity {
            norm: "cn=directory manager".into(),
            dn: Some(Dn::parse("cn=Directory Manager").unwrap()),
            root: true,
        }
    }

    #[tokio::test]
    async fn housekeeping_forgets_deleted_values_after_the_purge_delay() {
        let (_tmp, dir) =
            crate::directory::test_support::temp_directory("dc=example,dc=com", Default::default());
        let add = |dn: &str, attrs: Vec<(&str, Vec<&str>)>| WriteOp::Add {
            dn: Dn::parse(dn).unwrap(),
            attrs: attrs
                .into_iter()
                .map(|(n, vs)| {
                    (
                        n.to_string(),
                        vs.iter().map(|v| v.as_bytes().to_vec()).collect(),
                    )
                })
                .collect(),
        };
        dir.write(
            &root(),
            add(
                "dc=example,dc=com",
                vec![("objectClass", vec!["domain"]), ("dc", vec!["example"])],
            ),
        )
        .await
        .unwrap();
        let person = "cn=p,dc=example,dc=com";
        dir.write(
            &root(),
            add(
                person,
                vec![
                    ("objectClass", vec!["person"]),
                    ("cn", vec!["p"]),
                    ("sn", vec!["s"]),
                ],
            ),
        )
        .await
        .unwrap();
        let mods = |op, v: &str| WriteOp::Modify {
            dn: Dn::parse(person).unwrap(),
            mods: vec![Modification {
                op,
                attr: "description".into(),
                values: vec![v.as_bytes().to_vec()],
            }],
        };
        dir.write(&root(), mods(ModOp::Add, "gone")).await.unwrap();
        dir.write(&root(), mods(ModOp::Add, "kept")).await.unwrap();
        dir.write(&root(), mods(ModOp::Delete, "gone"))
            .await
            .unwrap();
        let described = |dir: &crate::directory::Directory| -> Vec<Vec<u8>> {
            let core = &dir.core;
            let txn = core.store.read().unwrap();
            let id = txn
                .id_by_dn(&core.dn_key(&Dn::parse(person).unwrap()))
                .unwrap()
                .unwrap();
            let entry = txn.entry(id).unwrap().unwrap();
            let uuid = crate::directory::write::entry_uuid(&entry).unwrap();
            let state = EntryState::decode(&txn.repl_state(&uuid).unwrap().unwrap()).unwrap();
            let mut v: Vec<Vec<u8>> = state
                .attrs
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("description"))
                .flat_map(|(_, a)| a.values.values().map(|v| v.bytes.clone()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(described(&dir), vec![b"gone".to_vec(), b"kept".to_vec()]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // Within the purge delay the deleted value is kept.
        dir.housekeep(now).await.unwrap();
        assert_eq!(described(&dir), vec![b"gone".to_vec(), b"kept".to_vec()]);
        // A purge delay (one week by default) later it is forgotten.
        let reports = dir.housekeep(now + 8 * 24 * 3600).await.unwrap();
        assert!(
            reports.iter().any(|(_, r)| r.states_purged == 1),
            "{reports:?}"
        );
        assert_eq!(described(&dir), vec![b"kept".to_vec()]);
    }
}
