//! Delete: leaf entries only; in a replicated suffix the entry becomes a
//! tombstone.

use super::*;

impl Core {
    pub(super) fn delete(
        &self,
        txn: &mut WriteTxn<'_>,
        dn: &Dn,
        stamp: &Stamp,
    ) -> DirResult<([u8; 16], Change)> {
        let (id, key, entry) = self.load(txn, dn)?;
        if txn.has_children(id)? {
            return Err(DirError::NotAllowedOnNonLeaf(dn.to_string()));
        }
        let uuid = entry_uuid(&entry)?;
        // Replicated data keeps a tombstone so peers can tell "deleted" from
        // "never seen"; cn=config and offline work have no peers to tell.
        if stamp.origin != Origin::Import && self.replicated_suffix_of(&key).is_some() {
            self.bury(txn, id, &entry, stamp.csn)?;
            return Ok((uuid, Change::Delete));
        }
        let parent = self.parent_id(txn, dn, &key)?;
        txn.delete_entry(id)?;
        txn.delete_dn(&key)?;
        if parent != 0 {
            txn.unlink_child(parent, id)?;
        }
        txn.delete_uuid(&uuid)?;
        self.index_update(txn, id, Some(&entry), None)?;
        Ok((uuid, Change::Delete))
    }
}
