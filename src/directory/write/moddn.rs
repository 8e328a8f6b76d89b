//! Modify DN: rename and move, with the entry's descendants rekeyed.

use super::*;

impl Core {
    pub(crate) fn moddn(
        &self,
        txn: &mut WriteTxn<'_>,
        dn: &Dn,
        new_rdn: &Rdn,
        delete_old_rdn: bool,
        new_superior: Option<&Dn>,
        stamp: &Stamp,
    ) -> DirResult<([u8; 16], Change)> {
        let (id, old_key, old) = self.load(txn, dn)?;
        let old_suffix = self.suffix_of(&old_key).cloned();
        if old_suffix.as_ref() == Some(&old_key) {
            return Err(DirError::UnwillingToPerform(format!(
                "'{dn}' is the root entry of a naming context and cannot be renamed"
            )));
        }
        let old_parent = dn.parent().unwrap_or_default();
        let new_parent = new_superior.cloned().unwrap_or_else(|| old_parent.clone());
        let new_parent_key = self.dn_key(&new_parent);
        let new_parent_id = match txn.id_by_dn(&new_parent_key)? {
            Some(pid) => pid,
            None => return Err(self.no_such_object(txn, &new_parent)),
        };
        let new_dn = new_parent.child(new_rdn.clone());
        let new_key = self.dn_key(&new_dn);
        if self.suffix_of(&new_key).cloned() != old_suffix {
            return Err(DirError::AffectsMultipleDsas(format!(
                "cannot move '{dn}' to another naming context"
            )));
        }
        if new_key != old_key && new_key.starts_with(&old_key) {
            return Err(DirError::UnwillingToPerform(format!(
                "cannot move '{dn}' below itself"
            )));
        }
        if new_key != old_key && txn.id_by_dn(&new_key)?.is_some() {
            return Err(DirError::AlreadyExists(new_dn.to_string()));
        }
        let old_parent_id = txn.id_by_dn(&self.dn_key(&old_parent))?.unwrap_or(0);

        let mut new = old.clone();
        let csn = stamp.csn;
        for ava in &new_rdn.avas {
            let at = self.resolve_attr(&ava.attr)?;
            self.schema().check_syntax(&at, &ava.value)?;
            let values = new
                .get(at.name())
                .map(|a| a.values.as_slice())
                .unwrap_or(&[]);
            if self.find_value(&at, values, &ava.value)?.is_none() {
                let v = Value {
                    bytes: ava.value.clone(),
                    csn,
                };
                match new.get_mut(at.name()) {
                    Some(a) => a.values.push(v),
                    None => new.attrs.push(Attribute {
                        name: at.name().to_string(),
                        values: vec![v],
                    }),
                }
            }
        }
        if delete_old_rdn {
            if let Some(old_rdn) = dn.rdn() {
                for ava in &old_rdn.avas {
                    let at = self.resolve_attr(&ava.attr)?;
                    let in_new_rdn = new_rdn.avas.iter().any(|n| {
                        self.schema()
                            .attribute(&n.attr)
                            .is_some_and(|nat| nat.oid == at.oid)
                            && self.schema().eq_normalize(&at, &n.value).ok()
                                == self.schema().eq_normalize(&at, &ava.value).ok()
                    });
                    if in_new_rdn {
                        continue;
                    }
                    let values = new
                        .get(at.name())
                        .map(|a| a.values.as_slice())
                        .unwrap_or(&[]);
                    if let Some(pos) = self.find_value(&at, values, &ava.value)? {
                        if let Some(a) = new.get_mut(at.name()) {
                            a.values.remove(pos);
                        }
                        if !new.has(at.name()) {
                            new.remove(at.name());
                        }
                    }
                }
            }
        }
        new.dn = new_dn.clone();
        self.stamp_modified(&mut new, stamp);
        self.schema().check_entry(&new)?;

        let descendants: Vec<(DnKey, u64)> = txn
            .subtree_keys(&old_key)?
            .into_iter()
            .filter(|(_, cid)| *cid != id)
            .collect();
        txn.put_entry(id, &new)?;
        txn.delete_dn(&old_key)?;
        txn.put_dn(&new_key, id)?;
        if old_parent_id != new_parent_id {
            if old_parent_id != 0 {
                txn.unlink_child(old_parent_id, id)?;
            }
            txn.link_child(new_parent_id, id)?;
        }
        self.index_update(txn, id, Some(&old), Some(&new))?;
        let depth = dn.rdns.len();
        for (k, cid) in descendants {
            let Some(mut child) = txn.entry(cid)? else {
                continue;
            };
            child.dn = child.dn.rebase(depth, &new_dn);
            let child_key = k.rebased(&old_key, &new_key);
            txn.put_entry(cid, &child)?;
            txn.delete_dn(&k)?;
            txn.put_dn(&child_key, cid)?;
        }
        let new_superior = match new_superior {
            Some(_) => match txn.entry(new_parent_id)? {
                Some(parent) => Some(entry_uuid(&parent)?),
                None => None,
            },
            None => None,
        };
        Ok((
            entry_uuid(&old)?,
            Change::ModDn {
                new_rdn: new_rdn.clone(),
                delete_old_rdn,
                new_superior,
            },
        ))
    }
}
