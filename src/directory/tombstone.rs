//! Tombstones: a deleted entry of a replicated suffix keeps its record (state
//! included) and its entryUUID mapping until the purge delay has passed, but
//! leaves the DN, parent and attribute indexes, so it is invisible to
//! clients and its DN can be reused at once. Replicated changes that reach a
//! tombstone are absorbed by it (delete wins), and a catch-up from entry
//! state tells consumers which entries died.
//!
//! Each tombstone is listed in the metadata under
//! `tomb:<suffix>:<deletion CSN>:<id>` so the purge walks them oldest first.

use super::write::entry_uuid;
use super::{Core, DirResult};
use crate::model::{Csn, Entry};
use crate::store::{scan, DnKey, StoreRead, WriteTxn};

/// Deletion CSN of a tombstone (389-ds name).
pub(crate) const TOMBSTONE_CSN: &str = "nsTombstoneCSN";
/// entryUUID of the parent the entry had when it was deleted (389-ds name).
pub(crate) const PARENT_UUID: &str = "nsParentUniqueId";

/// Tombstones removed per purge step, so one step never holds the writer long.
pub(crate) const PURGE_STEP: usize = 5_000;

pub(crate) fn is_tombstone(entry: &Entry) -> bool {
    entry.has(TOMBSTONE_CSN)
}

pub(crate) fn tombstone_csn(entry: &Entry) -> Option<Csn> {
    entry
        .first_str(TOMBSTONE_CSN)
        .and_then(|s| Csn::parse(s).ok())
}

pub(crate) fn suffix_text(suffix_key: &DnKey) -> String {
    suffix_key
        .iter()
        .map(|&b| if b == 0 { ',' } else { b as char })
        .collect()
}

fn list_prefix(suffix_key: &DnKey) -> String {
    format!("tomb:{}:", suffix_text(suffix_key))
}

fn list_key(suffix_key: &DnKey, csn: Csn, id: u64) -> String {
    format!("{}{csn}:{id:016x}", list_prefix(suffix_key))
}

fn parse_list_key(key: &str) -> Option<(Csn, u64)> {
    let mut parts = key.rsplitn(3, ':');
    let id = u64::from_str_radix(parts.next()?, 16).ok()?;
    let csn = Csn::parse(parts.next()?).ok()?;
    Some((csn, id))
}

impl Core {
    /// Turns the live entry `id` into a tombstone deleted at `csn`.
    pub(crate) fn bury(
        &self,
        txn: &mut WriteTxn<'_>,
        id: u64,
        entry: &Entry,
        csn: Csn,
    ) -> DirResult<()> {
        let key = self.dn_key(&entry.dn);
        let mut tomb = entry.clone();
        txn.delete_dn(&key)?;
        if let Some(parent_dn) = entry.dn.parent() {
            if let Some(pid) = txn.id_by_dn(&self.dn_key(&parent_dn))? {
                txn.unlink_child(pid, id)?;
                if let Some(uuid) = txn.entry(pid)?.and_then(|p| entry_uuid(&p).ok()) {
                    let text = uuid::Uuid::from_bytes(uuid).hyphenated().to_string();
                    tomb.set(PARENT_UUID, vec![text.into_bytes()], csn);
                }
            }
        }
        self.index_update(txn, id, Some(entry), None)?;
        tomb.set(TOMBSTONE_CSN, vec![csn.to_string().into_bytes()], csn);
        txn.put_entry(id, &tomb)?;
        if let Some(suffix) = self.suffix_of(&key) {
            let listed = list_key(suffix, csn, id);
            txn.put_meta(&listed, &[])?;
        }
        Ok(())
    }

    /// Lists tombstone `id` for the purge and for catch-up.
    pub(crate) fn list_tombstone(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        csn: Csn,
        id: u64,
    ) -> DirResult<()> {
        txn.put_meta(&list_key(suffix_key, csn, id), &[])?;
        Ok(())
    }

    /// Stores a tombstone received from a peer for an entry this server
    /// does not hold (so a late change to it is absorbed here too).
    pub(crate) fn insert_tombstone(&self, txn: &mut WriteTxn<'_>, tomb: &Entry) -> DirResult<()> {
        let (Ok(uuid), Some(csn)) = (entry_uuid(tomb), tombstone_csn(tomb)) else {
            return Ok(());
        };
        if txn.id_by_uuid(&uuid)?.is_some() {
            return Ok(());
        }
        let Some(suffix) = self.suffix_of(&self.dn_key(&tomb.dn)).cloned() else {
            return Ok(());
        };
        let id = txn.next_id()?;
        txn.put_entry(id, tomb)?;
        txn.put_uuid(&uuid, id)?;
        txn.put_meta(&list_key(&suffix, csn, id), &[])?;
        Ok(())
    }

    /// Removes up to [`PURGE_STEP`] tombstones of a suffix deleted before
    /// `before`; returns how many went.
    pub(crate) fn purge_tombstones(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        before: Csn,
    ) -> DirResult<usize> {
        let listed = scan::meta_with_prefix(txn, &list_prefix(suffix_key), PURGE_STEP)?;
        let mut purged = 0;
        for (key, _) in listed {
            let Some((csn, id)) = parse_list_key(&key) else {
                txn.delete_meta(&key)?;
                continue;
            };
            if csn >= before {
                break;
            }
            if let Some(tomb) = txn.entry(id)?.filter(is_tombstone) {
                if let Ok(uuid) = entry_uuid(&tomb) {
                    if txn.id_by_uuid(&uuid)? == Some(id) {
                        txn.delete_uuid(&uuid)?;
                        // A tombstone is out of the tree: its state has no
                        // name-index keys to remove.
                        txn.delete_repl_state(&uuid)?;
                    }
                }
                txn.delete_entry(id)?;
                purged += 1;
            }
            txn.delete_meta(&key)?;
        }
        Ok(purged)
    }

    /// Tombstones of a suffix (for catch-up and status), oldest first.
    pub(crate) fn tombstones(
        &self,
        txn: &dyn StoreRead,
        suffix_key: &DnKey,
    ) -> DirResult<Vec<Entry>> {
        let mut out = Vec::new();
        for (key, _) in scan::meta_with_prefix(txn, &list_prefix(suffix_key), usize::MAX)? {
            if let Some((_, id)) = parse_list_key(&key) {
                if let Some(t) = txn.entry(id)?.filter(is_tombstone) {
                    out.push(t);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keys_sort_by_deletion_csn_and_parse_back() {
        let suffix = &DnKey::from_bytes(b"dc=com\0dc=example\0".to_vec());
        let a = list_key(suffix, Csn::new(100, 1, 1, 0), 7);
        let b = list_key(suffix, Csn::new(100, 2, 1, 0), 3);
        let c = list_key(suffix, Csn::new(101, 0, 1, 0), 1);
        assert!(a < b && b < c);
        assert!(a.starts_with(&list_prefix(suffix)));
        assert_eq!(parse_list_key(&b), Some((Csn::new(100, 2, 1, 0), 3)));
        assert_eq!(parse_list_key("tomb:x:garbage"), None);
    }
}
