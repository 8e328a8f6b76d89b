//! Total init on the consumer: empty the suffix, insert entries with their
//! full state, adopt the supplier's RUV and generation at the end.

use super::*;

impl Core {
    /// Stores an entry exactly as given (state included): replication and total init.
    pub(crate) fn insert_raw(&self, txn: &mut WriteTxn<'_>, entry: &Entry) -> DirResult<()> {
        let key = self.dn_key(&entry.dn);
        let uuid = crate::directory::write::entry_uuid(entry)?;
        if let Some(existing) = txn.id_by_dn(&key)? {
            // Same DN, different entry: a naming conflict. Until URP lands the
            // incoming entry replaces nothing and is reported.
            if txn.id_by_uuid(&uuid)? != Some(existing) {
                tracing::warn!(dn = %entry.dn, "replicated add collides with an existing entry; skipped");
            }
            return Ok(());
        }
        let suffix = self.suffix_of(&key).cloned();
        let parent = if suffix.as_ref() == Some(&key) {
            0
        } else {
            match txn.id_by_dn(&self.parent_key(&entry.dn, &key))? {
                Some(pid) => pid,
                None => {
                    let p = entry.dn.parent().unwrap_or_default();
                    return Err(self.no_such_object(txn, &p));
                }
            }
        };
        // The id is the largest in the store: appends, and index keys that a
        // total init's bulk buffer may collect (store::bulk).
        let id = txn.next_id()?;
        txn.put_new_entry(id, entry)?;
        txn.put_dn(&key, id)?;
        if parent != 0 {
            txn.link_child(parent, id)?;
        }
        txn.put_uuid(&uuid, id)?;
        for k in index::entry_keys_sorted(&self.schema(), &self.cfg.indexes, entry) {
            txn.index_add_new(&k, id)?;
        }
        Ok(())
    }

    pub(crate) fn remove_raw(
        &self,
        txn: &mut WriteTxn<'_>,
        id: u64,
        entry: &Entry,
    ) -> DirResult<()> {
        let key = self.dn_key(&entry.dn);
        txn.delete_entry(id)?;
        txn.delete_dn(&key)?;
        if let Some(p) = entry.dn.parent() {
            if let Some(pid) = txn.id_by_dn(&self.dn_key(&p))? {
                txn.unlink_child(pid, id)?;
            }
        }
        if let Ok(uuid) = crate::directory::write::entry_uuid(entry) {
            txn.delete_uuid(&uuid)?;
        }
        self.index_update(txn, id, Some(entry), None)
    }

    /// Total init, first step: empties the suffix and adopts the supplier's generation.
    pub(crate) fn total_begin(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        generation: &str,
        with_states: bool,
    ) -> DirResult<()> {
        if with_states {
            // The states of other suffixes stay valid; this suffix's are
            // replaced by the supplier's as its entries arrive.
            self.ensure_repl_states(txn)?;
        } else {
            self.invalidate_repl_states(txn)?;
        }
        let mut all = txn.subtree_keys(suffix_key)?;
        // Children first so every removal is of a leaf.
        all.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(b.0.cmp(&a.0)));
        for (_, id) in all {
            if let Some(entry) = txn.entry(id)? {
                if with_states {
                    self.forget_repl_state(txn, &entry)?;
                }
                self.remove_raw(txn, id, &entry)?;
            }
        }
        // Changes recorded before the init belong to the old data set: a
        // later session must not send them anywhere.
        self.remove_changelog_where(txn, suffix_key, |_| true, usize::MAX)?;
        let everything = Csn::new(u32::MAX, u16::MAX, u16::MAX, u16::MAX);
        while self.purge_tombstones(txn, suffix_key, everything)? > 0 {}
        // Index keys of the entries that follow may wait for TotalEnd
        // (store::bulk), which also records the supplier's generation. Until
        // then the generation matches no supplier's: a consumer stopped in
        // the middle is told it needs a total init, rather than accepting
        // incremental changes on top of a partial, partly unindexed copy.
        self.store_ruv(
            txn,
            suffix_key,
            &Ruv::new(format!("{generation} (total init unfinished)")),
        )?;
        Ok(())
    }

    /// Total init, last step: the consumer now holds what the supplier's RUV says.
    pub(crate) fn total_end(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        supplier: &Ruv,
        retired: Option<&crate::repl::core::retire::Retired>,
    ) -> DirResult<()> {
        self.store_ruv(txn, suffix_key, supplier)?;
        // The data is the supplier's as of its snapshot: so is how far its
        // retirements went.
        if let Some(r) = retired {
            let mut adopted = r.clone();
            // Retirements only this replica knew still hold (unfinished:
            // the data here is new).
            for (rid, mine) in self.load_retired(txn, suffix_key)?.by_rid {
                if adopted.get(rid).is_none() {
                    adopted.retire(rid, mine.upto);
                }
            }
            self.store_retired(txn, suffix_key, &adopted)?;
        }
        // This replica's changelog starts at the init: peers lacking earlier
        // changes are caught up from entry state.
        self.store_trimmed_ruv(txn, suffix_key, supplier)?;
        self.changes_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}
