//! Referential integrity (docs/groups.md): when a client deletes or
//! renames an entry, the values of the configured DN attributes that name
//! it (or, for a rename, anything below it) are removed or rewritten. Each
//! referencing entry gets one modify, made by the server where the delete
//! or rename happened, in the same transaction, recorded in the changelog
//! with its own CSN and replicated like a client's modify; other replicas
//! apply those modifies and never run refint for a replicated change, so
//! each reference is fixed exactly once. Optionally, client writes naming
//! missing entries are refused.

use super::tombstone::is_tombstone;
use super::{index, Core, DirError, DirResult};
use crate::model::{Dn, ModOp, Modification, WriteOp};
use crate::schema::AttributeType;
use crate::store::{DnKey, StoreRead};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The `[refint]` settings as the directory uses them.
#[derive(Debug, Clone)]
pub struct RefintSettings {
    pub enabled: bool,
    pub attributes: Vec<String>,
    pub allow_dangling: bool,
}

impl RefintSettings {
    pub fn from_config(c: &crate::config::RefintConfig) -> RefintSettings {
        RefintSettings {
            enabled: c.enabled,
            attributes: c.attributes.clone(),
            allow_dangling: c.allow_dangling,
        }
    }
}

impl Default for RefintSettings {
    fn default() -> Self {
        RefintSettings::from_config(&crate::config::RefintConfig::default())
    }
}

/// What became of one entry: its old DN and the new one (None: deleted).
pub(crate) struct Moved {
    pub(crate) old: Dn,
    pub(crate) new: Option<Dn>,
}

/// The modifications that make one attribute's values follow `moved`
/// (normalised old DN -> new DN): the values naming a moved entry are
/// deleted, and for a rename the new DN is added unless already there.
pub(crate) fn follow(
    attr: &str,
    values: &[&[u8]],
    normalise: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    moved: &HashMap<Vec<u8>, Option<String>>,
) -> Vec<Modification> {
    let mut deleted: Vec<Vec<u8>> = Vec::new();
    let mut added: Vec<Vec<u8>> = Vec::new();
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for v in values {
        let Some(n) = normalise(v) else { continue };
        match moved.get(&n) {
            Some(new) => {
                deleted.push(v.to_vec());
                if let Some(new) = new {
                    added.push(new.clone().into_bytes());
                }
            }
            None => kept.push(n),
        }
    }
    let mut seen: Vec<Vec<u8>> = kept;
    added.retain(|a| match normalise(a) {
        Some(n) if !seen.contains(&n) => {
            seen.push(n);
            true
        }
        _ => false,
    });
    let mut mods = Vec::new();
    if !deleted.is_empty() {
        mods.push(Modification {
            op: ModOp::Delete,
            attr: attr.to_string(),
            values: deleted,
        });
    }
    if !added.is_empty() {
        mods.push(Modification {
            op: ModOp::Add,
            attr: attr.to_string(),
            values: added,
        });
    }
    mods
}

impl Core {
    fn refint_attrs(&self) -> Vec<Arc<AttributeType>> {
        let schema = self.schema();
        self.cfg
            .refint
            .attributes
            .iter()
            .filter_map(|a| schema.attribute(a))
            .collect()
    }

    /// Entry ids (other than cn=config's) whose refint attributes name one
    /// of `moved`, with the modifications that make them follow, in id order.
    pub(crate) fn references(
        &self,
        txn: &dyn StoreRead,
        moved: &[Moved],
    ) -> DirResult<Vec<(u64, Vec<Modification>)>> {
        if !self.cfg.refint.enabled || moved.is_empty() {
            return Ok(Vec::new());
        }
        let schema = self.schema();
        let attrs = self.refint_attrs();
        let config = self.config_key();
        let mut candidates: std::collections::BTreeSet<u64> = Default::default();
        let mut unindexed = false;
        for at in &attrs {
            if !self.cfg.indexes.kinds(at).eq {
                unindexed = true;
                continue;
            }
            for m in moved {
                if let Ok(n) = schema.eq_normalize(at, m.old.to_string().as_bytes()) {
                    candidates.extend(txn.index_ids(&index::eq_key(at, &n))?);
                }
            }
        }
        if unindexed {
            // No equality index to ask: look at every entry (docs/groups.md
            // recommends indexing the refint attributes).
            for suffix in self.suffix_keys.iter().filter(|k| **k != config) {
                candidates.extend(txn.subtree_ids(suffix)?);
            }
        }
        // Normalised old DN -> new DN, per attribute (each has its own
        // equality rule), built once for all candidates.
        let maps: Vec<HashMap<Vec<u8>, Option<String>>> = attrs
            .iter()
            .map(|at| {
                moved
                    .iter()
                    .filter_map(|m| {
                        Some((
                            schema.eq_normalize(at, m.old.to_string().as_bytes()).ok()?,
                            m.new.as_ref().map(Dn::to_string),
                        ))
                    })
                    .collect()
            })
            .collect();
        let mut out = Vec::new();
        for id in candidates {
            let Some(entry) = txn.entry(id)? else {
                continue;
            };
            if is_tombstone(&entry) || self.dn_key(&entry.dn).starts_with(&config) {
                continue;
            }
            let mut mods = Vec::new();
            for (at, map) in attrs.iter().zip(&maps) {
                let values = entry.values(at.name());
                if values.is_empty() {
                    continue;
                }
                let normalise = |v: &[u8]| schema.eq_normalize(at, v).ok();
                mods.extend(follow(at.name(), &values, &normalise, map));
            }
            if !mods.is_empty() {
                out.push((id, mods));
            }
        }
        Ok(out)
    }

    /// With `allow_dangling = false`: a client's add or modify may not give
    /// a refint attribute a value naming a missing entry of a suffix served
    /// here (DNs outside every suffix cannot be checked and are accepted).
    /// Runs after the operation, so an entry may name itself.
    pub(crate) fn check_references(&self, txn: &dyn StoreRead, op: &WriteOp) -> DirResult<()> {
        if !self.cfg.refint.enabled || self.cfg.refint.allow_dangling {
            return Ok(());
        }
        let schema = self.schema();
        let attrs = self.refint_attrs();
        let is_refint = |name: &str| {
            schema
                .attribute(crate::query::filter::base_attr_name(name))
                .is_some_and(|at| attrs.iter().any(|r| r.oid == at.oid))
        };
        let values: Vec<(&str, &Vec<u8>)> = match op {
            WriteOp::Add { attrs, .. } => attrs
                .iter()
                .filter(|(n, _)| is_refint(n))
                .flat_map(|(n, vs)| vs.iter().map(move |v| (n.as_str(), v)))
                .collect(),
            WriteOp::Modify { mods, .. } => mods
                .iter()
                .filter(|m| matches!(m.op, ModOp::Add | ModOp::Replace) && is_refint(&m.attr))
                .flat_map(|m| m.values.iter().map(move |v| (m.attr.as_str(), v)))
                .collect(),
            _ => Vec::new(),
        };
        let config = self.config_key();
        for (attr, v) in values {
            let Some(dn) = super::memberof::member_dn(v) else {
                continue;
            };
            let key: DnKey = self.dn_key(&dn);
            match self.suffix_of(&key) {
                Some(s) if *s != config => {}
                _ => continue,
            }
            let exists = match txn.id_by_dn(&key)? {
                Some(id) => txn.entry(id)?.is_some_and(|e| !is_tombstone(&e)),
                None => false,
            };
            if !exists {
                return Err(DirError::ConstraintViolation(format!(
                    "{attr}: no entry '{dn}' exists ([refint] allow_dangling = false refuses references to missing entries)"
                )));
            }
        }
        Ok(())
    }

    /// The entries a client's delete or rename of `dn` removes or renames,
    /// read before the operation: the entry and, for a rename, everything
    /// below it (old DNs; the new ones are filled in afterwards).
    pub(crate) fn moved_before(&self, txn: &dyn StoreRead, op: &WriteOp) -> DirResult<Vec<Dn>> {
        if !self.cfg.refint.enabled {
            return Ok(Vec::new());
        }
        let key = self.dn_key(op.dn());
        if self.replicated_suffix_of(&key).is_none() {
            return Ok(Vec::new());
        }
        Ok(match op {
            WriteOp::Delete { dn } => vec![dn.clone()],
            WriteOp::ModDn { .. } => {
                let mut by_key: BTreeMap<DnKey, Dn> = BTreeMap::new();
                for (k, id) in txn.subtree_keys(&key)? {
                    if let Some(e) = txn.entry(id)? {
                        by_key.insert(k, e.dn);
                    }
                }
                by_key.into_values().collect()
            }
            _ => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: &[u8]) -> Option<Vec<u8>> {
        Some(String::from_utf8_lossy(v).to_ascii_lowercase().into_bytes())
    }

    #[test]
    fn deleted_references_go_and_renamed_ones_follow_once() {
        let moved: HashMap<Vec<u8>, Option<String>> = [
            (b"cn=gone".to_vec(), None),
            (b"cn=old".to_vec(), Some("cn=New".to_string())),
        ]
        .into_iter()
        .collect();
        let values: Vec<&[u8]> = vec![b"CN=Gone", b"cn=old", b"cn=kept"];
        let mods = follow("member", &values, &norm, &moved);
        assert_eq!(mods.len(), 2);
        assert_eq!(mods[0].op, ModOp::Delete);
        assert_eq!(
            mods[0].values,
            vec![b"CN=Gone".to_vec(), b"cn=old".to_vec()]
        );
        assert_eq!(mods[1].op, ModOp::Add);
        assert_eq!(mods[1].values, vec![b"cn=New".to_vec()]);
        // The new DN is already a value: only the old one goes.
        let values: Vec<&[u8]> = vec![b"cn=old", b"cn=new"];
        let mods = follow("member", &values, &norm, &moved);
        assert_eq!(mods.len(), 1);
        assert_eq!(mods[0].values, vec![b"cn=old".to_vec()]);
        // Nothing names a moved entry: no modification at all.
        let values: Vec<&[u8]> = vec![b"cn=kept"];
        assert!(follow("member", &values, &norm, &moved).is_empty());
    }
}
