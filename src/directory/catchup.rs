//! Catch-up from entry state, both ends (see repl::catchup): the supplier
//! takes one snapshot of what the consumer lacks; the consumer merges
//! entries, buries what died, drops what is gone for good, and adopts the
//! snapshot's RUV.

use super::tombstone::{is_tombstone, tombstone_csn};
use super::write::{entry_uuid, Stamp};
use super::writer::{Origin, Work};
use super::{Core, DirResult, Directory, Identity};
use crate::model::{Dn, Entry};
use crate::repl::core::catchup::{has_state_beyond, merge_entry_state};
use crate::repl::core::ruv::Ruv;
use crate::store::DnKey;
use crate::store::{scan, StoreRead, WriteTxn};

/// What the consumer lacks, read from one snapshot of the supplier.
#[derive(Debug, Clone)]
pub struct CatchUpSnapshot {
    pub supplier_ruv: Ruv,
    /// Live entries with state the consumer lacks, parents first.
    pub entries: Vec<Entry>,
    /// Tombstones of deletions the consumer lacks.
    pub tombstones: Vec<Entry>,
    /// entryUUIDs of every live entry of the suffix, sorted.
    pub present: Vec<[u8; 16]>,
}

fn next_uuid(u: [u8; 16]) -> Option<[u8; 16]> {
    u128::from_be_bytes(u).checked_add(1).map(u128::to_be_bytes)
}

impl Core {
    fn single_valued(&self, name: &str) -> bool {
        self.schema()
            .attribute(name)
            .is_some_and(|at| at.single_value)
    }

    /// Merges one entry (or tombstone) of a catch-up into this replica.
    fn catch_up_entry(
        &self,
        txn: &mut WriteTxn<'_>,
        incoming: &Entry,
        supplier: &Ruv,
    ) -> DirResult<()> {
        let uuid = entry_uuid(incoming)?;
        let Some(id) = txn.id_by_uuid(&uuid)? else {
            if is_tombstone(incoming) {
                return self.insert_tombstone(txn, incoming);
            }
            return self.insert_raw(txn, incoming);
        };
        let Some(local) = txn.entry(id)? else {
            return Ok(());
        };
        if is_tombstone(&local) {
            // Deleted here: a delete wins over whatever the supplier changed.
            return Ok(());
        }
        if is_tombstone(incoming) {
            if txn.has_children(id)? {
                tracing::warn!(dn = %local.dn, "catch-up: entry deleted on the supplier still has children here; kept");
                return Ok(());
            }
            let csn = tombstone_csn(incoming).unwrap_or_else(|| incoming.max_csn());
            return self.bury(txn, id, &local, csn);
        }
        let current = local;
        if self.norm_dn(&current.dn) != self.norm_dn(&incoming.dn) {
            let (Some(rdn), Some(superior)) = (incoming.dn.rdns.first(), incoming.dn.parent())
            else {
                return Ok(());
            };
            let stamp = Stamp {
                csn: incoming.max_csn(),
                time: super::time::generalized_time(u64::from(incoming.max_csn().time)),
                modifier: String::new(),
                origin: Origin::Replication,
            };
            self.moddn(txn, &current.dn, rdn, false, Some(&superior), &stamp)?;
            let Some(moved) = txn.entry(id)? else {
                return Ok(());
            };
            // The rename only moves the entry; its values come from the
            // merge below, not from the stamp the rename put on it here.
            let merged = merge_entry_state(&current, incoming, supplier, |n| self.single_valued(n));
            if merged != moved {
                txn.put_entry(id, &merged)?;
                self.index_update(txn, id, Some(&moved), Some(&merged))?;
            }
            return Ok(());
        }
        let merged = merge_entry_state(&current, incoming, supplier, |n| self.single_valued(n));
        if merged != current {
            txn.put_entry(id, &merged)?;
            self.index_update(txn, id, Some(&current), Some(&merged))?;
        }
        Ok(())
    }

    pub(crate) fn catch_up_entries(
        &self,
        txn: &mut WriteTxn<'_>,
        entries: &[Entry],
        supplier: &Ruv,
    ) -> DirResult<()> {
        // Merged entry by entry, outside the conflict core: the states are
        // rebuilt from the result.
        self.invalidate_repl_states(txn)?;
        for e in entries {
            // One entry that cannot be placed (a naming conflict, a parent
            // missing here) must not stop the rest.
            let mut child = txn.nested()?;
            match self.catch_up_entry(&mut child, e, supplier) {
                Ok(()) => child.commit()?,
                Err(err) => {
                    child.abort();
                    tracing::warn!(dn = %e.dn, "catch-up: entry not applied: {err}");
                }
            }
        }
        self.changes_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Removes the live entries of the suffix with an entryUUID in
    /// `[low, high]` that the supplier no longer has, when the supplier has
    /// seen their creation (so their absence there is a deletion).
    pub(crate) fn catch_up_present(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        low: [u8; 16],
        high: [u8; 16],
        present: &[[u8; 16]],
        supplier: &Ruv,
    ) -> DirResult<usize> {
        self.invalidate_repl_states(txn)?;
        let mut gone = Vec::new();
        let mut from = Some(low);
        'walk: while let Some(start) = from {
            let page = scan::uuids_from(txn, &start, 1024)?;
            let Some(last) = page.last().map(|(u, _)| *u) else {
                break;
            };
            for (uuid, id) in page {
                if uuid > high {
                    break 'walk;
                }
                if present.binary_search(&uuid).is_ok() {
                    continue;
                }
                let Some(e) = txn.entry(id)? else { continue };
                let key = self.dn_key(&e.dn);
                if is_tombstone(&e) || !key.starts_with(suffix_key) {
                    continue;
                }
                let created = e
                    .get("entryUUID")
                    .and_then(|a| a.values.first())
                    .map(|v| v.csn);
                if created.is_some_and(|c| supplier.covers(c)) {
                    gone.push((key, id, e));
                }
            }
            from = next_uuid(last);
        }
        // Children before parents.
        gone.sort_by_key(|g| std::cmp::Reverse(g.0.len()));
        let mut removed = 0;
        for (_, id, e) in gone {
            if txn.has_children(id)? {
                tracing::warn!(dn = %e.dn, "catch-up: entry gone on the supplier still has children here; kept");
                continue;
            }
            self.remove_raw(txn, id, &e)?;
            removed += 1;
        }
        if removed > 0 {
            self.changes_pending
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(removed)
    }

    /// Adopts the snapshot's RUV. The changes obtained this way are not in
    /// this server's changelog, so its own consumers lacking them must be
    /// caught up from entry state too: the trimmed RUV says so.
    pub(crate) fn catch_up_end(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        supplier: &Ruv,
    ) -> DirResult<()> {
        let mut ruv = self.load_ruv(txn, suffix_key)?;
        let mut trimmed = self.trimmed_ruv(txn, suffix_key)?;
        for (rid, e) in &supplier.replicas {
            if ruv.max_for(*rid).is_none_or(|m| m < e.max) {
                ruv.update(e.max);
                trimmed.update(e.max);
            }
        }
        self.store_ruv(txn, suffix_key, &ruv)?;
        self.store_trimmed_ruv(txn, suffix_key, &trimmed)?;
        self.changes_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn catch_up_snapshot(&self, suffix_key: &DnKey, consumer: &Ruv) -> DirResult<CatchUpSnapshot> {
        let txn = self.store.read()?;
        let supplier_ruv = self.load_ruv(&txn, suffix_key)?;
        let mut entries = Vec::new();
        let mut present = Vec::new();
        // DN keys sort parents before children.
        for (_, id) in txn.subtree_keys(suffix_key)? {
            let Some(e) = txn.entry(id)? else { continue };
            if let Ok(uuid) = entry_uuid(&e) {
                present.push(uuid);
            }
            if has_state_beyond(&e, consumer) {
                entries.push(e);
            }
        }
        present.sort_unstable();
        present.dedup();
        let tombstones = self
            .tombstones(&txn, suffix_key)?
            .into_iter()
            .filter(|t| tombstone_csn(t).is_some_and(|c| !consumer.covers(c)))
            .collect();
        Ok(CatchUpSnapshot {
            supplier_ruv,
            entries,
            tombstones,
            present,
        })
    }
}

impl Directory {
    /// Supplier side: everything a consumer described by `consumer` lacks,
    /// from one read snapshot.
    pub fn catch_up_snapshot(&self, suffix: &Dn, consumer: &Ruv) -> DirResult<CatchUpSnapshot> {
        let key = self.suffix_key_checked(suffix)?;
        self.core.catch_up_snapshot(&key, consumer)
    }

    pub async fn repl_catch_up_entries(
        &self,
        who: &Identity,
        suffix: &Dn,
        entries: Vec<Entry>,
        supplier_ruv: Ruv,
    ) -> DirResult<()> {
        self.replica_checked(who, suffix)?;
        self.writer
            .submit_work(Work::CatchUpEntries {
                entries,
                supplier_ruv,
            })
            .await
    }

    pub async fn repl_catch_up_present(
        &self,
        who: &Identity,
        suffix: &Dn,
        range: ([u8; 16], [u8; 16]),
        uuids: Vec<[u8; 16]>,
        supplier_ruv: Ruv,
    ) -> DirResult<()> {
        let (_, key) = self.replica_checked(who, suffix)?;
        self.writer
            .submit_work(Work::CatchUpPresent {
                suffix_key: key,
                range,
                uuids,
                supplier_ruv,
            })
            .await
    }

    pub async fn repl_catch_up_end(
        &self,
        who: &Identity,
        suffix: &Dn,
        supplier_ruv: Ruv,
    ) -> DirResult<Ruv> {
        let (_, key) = self.replica_checked(who, suffix)?;
        self.writer
            .submit_work(Work::CatchUpEnd {
                suffix_key: key.clone(),
                supplier_ruv,
            })
            .await?;
        self.core.load_ruv(&self.core.store.read()?, &key)
    }
}
