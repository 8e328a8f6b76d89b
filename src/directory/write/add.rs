//! Add: schema and naming checks, operational attributes, the entry, its
//! DN, parent and index keys, and the changelog record.

use super::*;
use crate::store::EncodedEntry;

/// An entry to add, checked against the schema, with its operational
/// attributes, encoded: most of what an add does without the store, so
/// an import prepares the next entries on one thread while another stores.
pub(crate) struct PreparedAdd {
    key: DnKey,
    entry: Entry,
    uuid: [u8; 16],
    encoded: EncodedEntry,
    value_keys: ValueKeys,
}

impl PreparedAdd {
    pub(crate) fn key(&self) -> &DnKey {
        &self.key
    }

    pub(crate) fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The equality keys the duplicate check found (an import's only: the
    /// replication state is keyed by them).
    pub(crate) fn take_value_keys(&mut self) -> ValueKeys {
        std::mem::take(&mut self.value_keys)
    }
}

/// The equality keys of an added entry's values, for the attributes the
/// request named: per attribute (the schema's spelling), one per value in
/// the attribute's order (None: no equality rule, the bytes are their own
/// key). Values appended later (superclasses) have none.
#[derive(Debug, Default)]
pub(crate) struct ValueKeys(Vec<(String, Vec<Option<Vec<u8>>>)>);

impl ValueKeys {
    /// The keys of the attribute `name`, taken out.
    pub(crate) fn take(&mut self, name: &str) -> Vec<Option<Vec<u8>>> {
        self.0
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, keys)| std::mem::take(keys))
            .unwrap_or_default()
    }
}

impl Core {
    pub(super) fn add(
        &self,
        txn: &mut WriteTxn<'_>,
        dn: &Dn,
        attrs: &[(String, Vec<Vec<u8>>)],
        stamp: &Stamp,
    ) -> DirResult<([u8; 16], Change)> {
        let key = self.dn_key(dn);
        // The entry's place is checked before its content, so an existing
        // name answers entryAlreadyExists whatever the request carries.
        let parent = self.add_place(txn, dn, &key)?;
        let mut prepared = self.prepare_add(dn, key, attrs, stamp)?;
        self.store_add(txn, &mut prepared, parent)
    }

    /// [`Core::add`] of an entry prepared beforehand. The entry moves into
    /// the change; what is left of `prepared` is the caller's to drop (an
    /// import hands it back to the thread that allocated it).
    pub(super) fn add_prepared(
        &self,
        txn: &mut WriteTxn<'_>,
        prepared: &mut PreparedAdd,
    ) -> DirResult<([u8; 16], Change)> {
        let parent = self.add_place(txn, &prepared.entry.dn, &prepared.key)?;
        self.store_add(txn, prepared, parent)
    }

    /// The parent's id (0 for a suffix) of an entry that may be added at `key`.
    fn add_place(&self, txn: &WriteTxn<'_>, dn: &Dn, key: &DnKey) -> DirResult<u64> {
        if txn.id_by_dn(key)?.is_some() {
            return Err(DirError::AlreadyExists(dn.to_string()));
        }
        self.parent_id(txn, dn, key)
    }

    /// The checks and derivations of an add that need no store.
    pub(crate) fn prepare_add(
        &self,
        dn: &Dn,
        key: DnKey,
        attrs: &[(String, Vec<Vec<u8>>)],
        stamp: &Stamp,
    ) -> DirResult<PreparedAdd> {
        let schema = self.schema();
        let mut entry = Entry::new(dn.clone());
        // Normalised values per attribute of `entry` (same order as
        // `entry.attrs`), so a duplicate check normalises each value once
        // instead of re-normalising every earlier value (quadratic for large
        // groups). Values whose normalisation failed are not in the set, as
        // they never matched before either.
        let mut seen: Vec<rustc_hash::FxHashSet<Vec<u8>>> = Vec::new();
        // The same keys in value order, kept for an import's state.
        let keep_keys = stamp.origin == Origin::Import;
        let mut keys: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
        for (name, values) in attrs {
            let at = self.resolve_attr(name)?;
            // memberOf is computed from the groups (memberof.rs): a stored
            // copy from an import (389-ds stores it) would go stale.
            if stamp.origin != Origin::Client && self.is_memberof_attr(&at) {
                continue;
            }
            if values.is_empty() {
                return Err(DirError::Protocol(format!(
                    "attribute '{name}' has no values"
                )));
            }
            if at.no_user_modification && stamp.origin == Origin::Client {
                return Err(DirError::ConstraintViolation(format!(
                    "attribute '{}' is not user-modifiable",
                    at.name()
                )));
            }
            self.check_syntax_all(&at, values)?;
            let values = self.prepare_values(&at, values, stamp.origin);
            let attr_name = at.name().to_string();
            let slot = match entry
                .attrs
                .iter()
                .position(|a| a.name.eq_ignore_ascii_case(&attr_name))
            {
                Some(i) => i,
                None => {
                    entry.attrs.push(Attribute {
                        name: attr_name.clone(),
                        values: Vec::new(),
                    });
                    entry.attrs.len() - 1
                }
            };
            if seen.len() <= slot {
                seen.resize_with(slot + 1, Default::default);
                keys.resize_with(slot + 1, Default::default);
            }
            let (Some(a), Some(norms), Some(kept)) = (
                entry.attrs.get_mut(slot),
                seen.get_mut(slot),
                keys.get_mut(slot),
            ) else {
                continue;
            };
            for v in values {
                let duplicate = match schema.eq_normalize(&at, &v) {
                    Ok(norm) => {
                        if keep_keys {
                            kept.push(Some(norm.clone()));
                        }
                        !norms.insert(norm)
                    }
                    // No equality rule: only identical bytes are the same value.
                    Err(e) if e.kind == ViolationKind::InappropriateMatching => {
                        if keep_keys {
                            kept.push(None);
                        }
                        a.values.iter().any(|x| x.bytes == v)
                    }
                    Err(e) => return Err(DirError::Schema(e)),
                };
                if duplicate {
                    return Err(DirError::AttributeOrValueExists(format!(
                        "duplicate value in attribute '{attr_name}'"
                    )));
                }
                a.values.push(Value {
                    bytes: v,
                    csn: stamp.csn,
                });
            }
        }
        let value_keys = match keep_keys {
            true => ValueKeys(
                entry
                    .attrs
                    .iter()
                    .map(|a| a.name.clone())
                    .zip(keys)
                    .collect(),
            ),
            false => ValueKeys::default(),
        };
        let csn = stamp.csn;
        // Imports keep the operational state they carry, so export -> import -> export is identical.
        let keep = |e: &Entry, name: &str| stamp.origin != Origin::Client && e.has(name);
        if !keep(&entry, "entryUUID") {
            // An import's entryUUIDs increase (time-ordered, RFC 9562 v7), so
            // everything keyed by them is appended in order rather than
            // scattered over half-filled pages.
            let uuid = match stamp.origin {
                Origin::Import => uuid::Uuid::now_v7(),
                _ => uuid::Uuid::new_v4(),
            };
            self.set_operational(&mut entry, "entryUUID", uuid.to_string(), csn);
        }
        for (name, value) in [
            ("creatorsName", stamp.modifier.clone()),
            ("createTimestamp", stamp.time.clone()),
            ("modifiersName", stamp.modifier.clone()),
            ("modifyTimestamp", stamp.time.clone()),
            ("entryCSN", csn.to_string()),
        ] {
            if !keep(&entry, name) {
                self.set_operational(&mut entry, name, value, csn);
            }
        }
        self.expand_object_classes(&mut entry, csn);
        // Each value's syntax and uniqueness were checked above.
        let structural = schema.check_new_entry(&entry)?;
        if !keep(&entry, "structuralObjectClass") {
            self.set_operational(&mut entry, "structuralObjectClass", structural, csn);
        }
        let uuid = entry_uuid(&entry)?;
        Ok(PreparedAdd {
            key,
            encoded: EncodedEntry::of(&entry),
            entry,
            uuid,
            value_keys,
        })
    }

    /// Writes a prepared entry under `parent` (its id, 0 for a suffix).
    fn store_add(
        &self,
        txn: &mut WriteTxn<'_>,
        prepared: &mut PreparedAdd,
        parent: u64,
    ) -> DirResult<([u8; 16], Change)> {
        let uuid = prepared.uuid;
        if txn.id_by_uuid(&uuid)?.is_some() {
            return Err(DirError::ConstraintViolation(format!(
                "entryUUID of '{}' is already used by another entry",
                prepared.entry.dn
            )));
        }
        let id = txn.next_id()?;
        txn.put_new_encoded(id, &prepared.encoded)?;
        txn.put_dn(&prepared.key, id)?;
        if parent != 0 {
            txn.link_child(parent, id)?;
        }
        txn.put_uuid(&uuid, id)?;
        // Derived here rather than in the preparation: an import's writing
        // thread has time to spare, its preparing thread has none.
        let schema = self.schema();
        for k in index::entry_keys_sorted(&schema, &self.cfg.indexes, &prepared.entry) {
            txn.index_add_new(&k, id)?;
        }
        let entry = std::mem::take(&mut prepared.entry);
        let parent = match parent {
            0 => None,
            pid => txn.entry(pid)?.map(|p| entry_uuid(&p)).transpose()?,
        };
        Ok((uuid, Change::Add { entry, parent }))
    }
}

#[cfg(test)]
mod tests {
    use crate::directory::test_support::{add_as_root, add_example_suffix, temp_directory};
    use crate::directory::DirError;
    use crate::schema::ViolationKind;

    const SUFFIX: &str = "dc=example,dc=com";

    fn refusal(attrs: &[(&str, &str)]) -> DirError {
        let (_tmp, dir) = temp_directory(SUFFIX, Default::default());
        add_example_suffix(&dir);
        let mut all = vec![
            ("objectClass", "inetOrgPerson"),
            ("objectClass", "posixAccount"),
            ("uid", "x"),
            ("cn", "x"),
            ("sn", "y"),
            ("gidNumber", "1"),
            ("homeDirectory", "/home/x"),
        ];
        all.extend_from_slice(attrs);
        add_as_root(&dir, "uid=x,dc=example,dc=com", &all).expect_err("a refused add")
    }

    fn schema_kind(e: &DirError) -> Option<ViolationKind> {
        match e {
            DirError::Schema(v) => Some(v.kind),
            _ => None,
        }
    }

    /// The value checks the add makes as it reads each value, which the
    /// entry's structural check then leaves out.
    #[test]
    fn an_add_checks_each_values_syntax_its_duplicates_and_single_valued_types() {
        let e = refusal(&[("uidNumber", "12a")]);
        assert_eq!(
            schema_kind(&e),
            Some(ViolationKind::InvalidAttributeSyntax),
            "{e}"
        );
        let e = refusal(&[("uidNumber", "1"), ("uidNumber", "2")]);
        assert_eq!(
            schema_kind(&e),
            Some(ViolationKind::ConstraintViolation),
            "{e}"
        );
        assert!(e.to_string().contains("single-valued"), "{e}");
        let e = refusal(&[
            ("uidNumber", "1"),
            ("description", "A"),
            ("description", "a"),
        ]);
        assert!(matches!(e, DirError::AttributeOrValueExists(_)), "{e}");
        let e = refusal(&[("uidNumber", "1"), ("dc", "nope")]);
        assert_eq!(
            schema_kind(&e),
            Some(ViolationKind::ObjectClassViolation),
            "{e}"
        );
    }
}
