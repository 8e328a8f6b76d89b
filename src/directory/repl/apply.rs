//! Applying a change received from a supplier, with its original CSN and
//! entryUUID, by last-writer-wins per value.

use super::*;

impl Core {
    /// Applies one change received from a supplier. Already-held changes are
    /// skipped, so a resent batch after a crash duplicates nothing.
    pub(crate) fn apply_replicated(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        rec: &ChangeRecord,
    ) -> DirResult<bool> {
        let ruv = self.load_ruv(txn, suffix_key)?;
        if ruv.covers(rec.csn) {
            return Ok(false);
        }
        let stamp_time = time::generalized_time(u64::from(rec.csn.time));
        match &rec.change {
            Change::Add { entry } => {
                if txn.id_by_uuid(&rec.uuid)?.is_none() {
                    self.insert_raw(txn, entry)?;
                }
            }
            Change::Delete => {
                if let Some(id) = txn.id_by_uuid(&rec.uuid)? {
                    if txn.has_children(id)? {
                        tracing::warn!(dn = %rec.dn, csn = %rec.csn, "replicated delete of an entry with children skipped");
                    } else if let Some(entry) = txn.entry(id)?.filter(|e| !is_tombstone(e)) {
                        self.bury(txn, id, &entry, rec.csn)?;
                    }
                }
            }
            Change::Modify { mods } => {
                if let Some(id) = txn.id_by_uuid(&rec.uuid)? {
                    // A tombstone absorbs changes to the entry it was (delete wins).
                    if let Some(old) = txn.entry(id)?.filter(|e| !is_tombstone(e)) {
                        let mut new = old.clone();
                        for m in mods {
                            apply_mod_with_state(&mut new, m, rec.csn);
                        }
                        txn.put_entry(id, &new)?;
                        self.index_update(txn, id, Some(&old), Some(&new))?;
                    }
                }
            }
            Change::ModDn {
                new_rdn,
                delete_old_rdn,
                new_superior,
            } => {
                if let Some(id) = txn.id_by_uuid(&rec.uuid)? {
                    if let Some(entry) = txn.entry(id)?.filter(|e| !is_tombstone(e)) {
                        let superior = match new_superior {
                            Some(u) => match txn.id_by_uuid(u)? {
                                Some(pid) => txn.entry(pid)?.map(|p| p.dn),
                                None => None,
                            },
                            None => None,
                        };
                        let stamp = crate::directory::write::Stamp {
                            csn: rec.csn,
                            time: stamp_time,
                            modifier: rec.modifier.clone(),
                            origin: crate::directory::Origin::Replication,
                        };
                        self.moddn(
                            txn,
                            &entry.dn,
                            new_rdn,
                            *delete_old_rdn,
                            superior.as_ref(),
                            &stamp,
                        )?;
                    }
                }
            }
        }
        txn.put_changelog(&rec.csn.to_bytes(), &encode_change(rec))?;
        let mut ruv = ruv;
        ruv.update(rec.csn);
        self.store_ruv(txn, suffix_key, &ruv)?;
        self.changes_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }
}

/// Applies one replicated modification with last-writer-wins per value:
/// nothing older than what the entry already holds overrides it.
fn apply_mod_with_state(entry: &mut Entry, m: &crate::model::Modification, csn: Csn) {
    let name = m.attr.as_str();
    match m.op {
        ModOp::Add => {
            for v in &m.values {
                match entry.get_mut(name) {
                    Some(a) => {
                        if !a.values.iter().any(|x| x.bytes == *v) {
                            a.values.push(Value {
                                bytes: v.clone(),
                                csn,
                            });
                        }
                    }
                    None => entry.attrs.push(Attribute::new(name, vec![v.clone()], csn)),
                }
            }
        }
        ModOp::Delete => {
            if m.values.is_empty() {
                let newer = entry
                    .get(name)
                    .is_some_and(|a| a.values.iter().any(|x| x.csn > csn));
                if !newer {
                    entry.remove(name);
                }
            } else if let Some(a) = entry.get_mut(name) {
                a.values
                    .retain(|x| !(m.values.contains(&x.bytes) && x.csn <= csn));
                if a.values.is_empty() {
                    entry.remove(name);
                }
            }
        }
        ModOp::Replace => {
            let newer = entry
                .get(name)
                .is_some_and(|a| a.values.iter().any(|x| x.csn > csn));
            if !newer {
                entry.set(name, m.values.clone(), csn);
            }
        }
        ModOp::Increment => {
            let delta: i128 =
                std::str::from_utf8(m.values.first().map(Vec::as_slice).unwrap_or(b"0"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
            if let Some(a) = entry.get_mut(name) {
                for v in &mut a.values {
                    if let Some(n) = std::str::from_utf8(&v.bytes)
                        .ok()
                        .and_then(|s| s.parse::<i128>().ok())
                    {
                        v.bytes = (n.saturating_add(delta)).to_string().into_bytes();
                        v.csn = csn;
                    }
                }
            }
        }
    }
}
