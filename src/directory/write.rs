//! Add, delete, modify and modify-DN applied inside a write transaction.
//! Every check happens before anything is written; the caller aborts the
//! (nested) transaction on error, so a failed operation changes nothing.

use super::writer::Origin;
use super::{index, time, Core, DirError, DirResult, Identity, META_LAST_CSN};
use crate::auth::password;
use crate::model::{Attribute, Change, ChangeRecord, Csn, Dn, Entry, Rdn, Value};
pub use crate::model::{ModOp, Modification};
use crate::schema::{AttributeType, ViolationKind};
use crate::store::{StoreRead, WriteTxn};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Add {
        dn: Dn,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    Delete {
        dn: Dn,
    },
    Modify {
        dn: Dn,
        mods: Vec<Modification>,
    },
    ModDn {
        dn: Dn,
        new_rdn: Rdn,
        delete_old_rdn: bool,
        new_superior: Option<Dn>,
    },
}

impl WriteOp {
    pub fn dn(&self) -> &Dn {
        match self {
            WriteOp::Add { dn, .. }
            | WriteOp::Delete { dn }
            | WriteOp::Modify { dn, .. }
            | WriteOp::ModDn { dn, .. } => dn,
        }
    }
}

const INTEGER_SYNTAX: &str = "1.3.6.1.4.1.1466.115.121.1.27";

fn schema_err(kind: ViolationKind, message: String) -> DirError {
    DirError::Schema(crate::schema::SchemaViolation { kind, message })
}

impl Core {
    pub(crate) fn apply(
        &self,
        txn: &mut WriteTxn<'_>,
        who: &Identity,
        op: &WriteOp,
        csn: Csn,
        origin: Origin,
    ) -> DirResult<()> {
        self.check_write_access(txn, who, op, origin)?;
        if origin == Origin::Client && !who.root {
            self.check_password_length(op)?;
            self.refuse_pre_hashed(who, op)?;
        }
        let modifier = match &who.dn {
            Some(dn) => dn.to_string(),
            None => String::new(),
        };
        let stamp = Stamp {
            csn,
            time: time::generalized_time(u64::from(csn.time)),
            modifier,
            origin,
        };
        let (uuid, change) = match op {
            WriteOp::Add { dn, attrs } => self.add(txn, dn, attrs, &stamp)?,
            WriteOp::Delete { dn } => self.delete(txn, dn, &stamp)?,
            WriteOp::Modify { dn, mods } => self.modify(txn, dn, mods, &stamp)?,
            WriteOp::ModDn {
                dn,
                new_rdn,
                delete_old_rdn,
                new_superior,
            } => self.moddn(
                txn,
                dn,
                new_rdn,
                *delete_old_rdn,
                new_superior.as_ref(),
                &stamp,
            )?,
        };
        let key = self.dn_key(op.dn());
        if self.suffix_of(&key) == Some(self.config_key().as_slice()) {
            let target = match op {
                WriteOp::ModDn {
                    new_rdn,
                    new_superior,
                    dn,
                    ..
                } => new_superior
                    .clone()
                    .unwrap_or_else(|| dn.parent().unwrap_or_default())
                    .child(new_rdn.clone()),
                other => other.dn().clone(),
            };
            self.seal_credentials(txn, &target)?;
            self.validate_config_entry(txn, &target)?;
        }
        // An offline import initialises a replica; consumers get it by total init.
        let replicated = origin != Origin::Import;
        if let Some(suffix) = self.replicated_suffix_of(&key).filter(|_| replicated) {
            let record = ChangeRecord {
                csn,
                uuid,
                dn: op.dn().clone(),
                modifier: stamp.modifier.clone(),
                change,
            };
            self.record_change(txn, &suffix, &record)?;
        }
        txn.put_meta(META_LAST_CSN, &csn.to_bytes())?;
        Ok(())
    }

    /// Password policy: users may not set clear-text passwords shorter than the minimum.
    fn check_password_length(&self, op: &WriteOp) -> DirResult<()> {
        let min = self.cfg.password_policy.min_length;
        let values: Vec<&Vec<u8>> = match op {
            WriteOp::Add { attrs, .. } => attrs
                .iter()
                .filter(|(n, _)| {
                    super::filter::base_attr_name(n).eq_ignore_ascii_case("userPassword")
                })
                .flat_map(|(_, v)| v.iter())
                .collect(),
            WriteOp::Modify { mods, .. } => mods
                .iter()
                .filter(|m| m.op != ModOp::Delete)
                .filter(|m| {
                    super::filter::base_attr_name(&m.attr).eq_ignore_ascii_case("userPassword")
                })
                .flat_map(|m| m.values.iter())
                .collect(),
            _ => Vec::new(),
        };
        for v in values {
            if !password::is_hashed(v) && String::from_utf8_lossy(v).chars().count() < min {
                return Err(DirError::ConstraintViolation(format!(
                    "the password is too short: the password policy requires at least {min} characters"
                )));
            }
        }
        Ok(())
    }

    /// Agreement credentials never stay in clear text in the store.
    fn seal_credentials(&self, txn: &mut WriteTxn<'_>, dn: &Dn) -> DirResult<()> {
        let Some(id) = txn.id_by_dn(&self.dn_key(dn))? else {
            return Ok(());
        };
        let Some(mut entry) = txn.entry(id)? else {
            return Ok(());
        };
        let Some(attr) = entry.get_mut("nsDS5ReplicaCredentials") else {
            return Ok(());
        };
        let mut changed = false;
        for v in &mut attr.values {
            if !super::secrets::Secrets::is_sealed(&v.bytes) {
                v.bytes = self.secrets.seal(&v.bytes)?;
                changed = true;
            }
        }
        if changed {
            txn.put_entry(id, &entry)?;
        }
        Ok(())
    }

    /// Access control (src/acl): `aci` values must parse (also on import),
    /// then the ACIs decide client writes. The root DN, offline imports and
    /// replication sessions are not subject to ACIs.
    fn check_write_access(
        &self,
        txn: &WriteTxn<'_>,
        who: &Identity,
        op: &WriteOp,
        origin: Origin,
    ) -> DirResult<()> {
        let dn_key = |d: &Dn| self.dn_key(d);
        let res = crate::acl::Resolver {
            schema: &self.schema,
            dn_key: &dn_key,
        };
        if origin != Origin::Replication {
            crate::acl::validate_write(&res, op)?;
        }
        if who.root || origin != Origin::Client {
            return Ok(());
        }
        let checker = crate::acl::Checker::new(res, txn, who, self.is_replication_identity(who));
        crate::acl::authorize_write(&checker, who, op)
    }

    fn resolve_attr(&self, name: &str) -> DirResult<Arc<AttributeType>> {
        let base = super::filter::base_attr_name(name);
        if base.len() != name.len() && !name[base.len()..].eq_ignore_ascii_case(";binary") {
            return Err(DirError::UndefinedAttributeType(format!(
                "attribute options are not supported: '{name}'"
            )));
        }
        self.schema.attribute(base).ok_or_else(|| {
            DirError::UndefinedAttributeType(format!("unknown attribute type '{name}'"))
        })
    }

    fn is_password(at: &AttributeType) -> bool {
        at.name().eq_ignore_ascii_case("userPassword")
    }

    /// Hashes clear-text userPassword values coming from clients or imports.
    fn prepare_values(
        &self,
        at: &AttributeType,
        values: &[Vec<u8>],
        origin: Origin,
    ) -> Vec<Vec<u8>> {
        if Self::is_password(at) && origin != Origin::Replication {
            values
                .iter()
                .map(|v| {
                    if password::is_hashed(v) {
                        v.clone()
                    } else {
                        password::hash(self.cfg.password_scheme, v).into_bytes()
                    }
                })
                .collect()
        } else {
            values.to_vec()
        }
    }

    /// Position of a value equal to `v` under the equality rule (bytes when there is none).
    fn find_value(
        &self,
        at: &AttributeType,
        values: &[Value],
        v: &[u8],
    ) -> DirResult<Option<usize>> {
        match self.schema.eq_normalize(at, v) {
            Ok(norm) => Ok(values.iter().position(|x| {
                self.schema
                    .eq_normalize(at, &x.bytes)
                    .is_ok_and(|n| n == norm)
            })),
            Err(e) if e.kind == ViolationKind::InappropriateMatching => {
                Ok(values.iter().position(|x| x.bytes == v))
            }
            Err(e) => Err(DirError::Schema(e)),
        }
    }

    fn check_syntax_all(&self, at: &AttributeType, values: &[Vec<u8>]) -> DirResult<()> {
        for v in values {
            self.schema.check_syntax(at, v)?;
        }
        Ok(())
    }

    fn set_operational(&self, entry: &mut Entry, name: &str, value: String, csn: Csn) {
        entry.set(name, vec![value.into_bytes()], csn);
    }

    pub(crate) fn index_update(
        &self,
        txn: &mut WriteTxn<'_>,
        id: u64,
        old: Option<&Entry>,
        new: Option<&Entry>,
    ) -> DirResult<()> {
        let cfg = &self.cfg.indexes;
        let old_keys = old
            .map(|e| index::entry_keys(&self.schema, cfg, e))
            .unwrap_or_default();
        let new_keys = new
            .map(|e| index::entry_keys(&self.schema, cfg, e))
            .unwrap_or_default();
        for k in old_keys.difference(&new_keys) {
            txn.index_del(k, id)?;
        }
        for k in new_keys.difference(&old_keys) {
            txn.index_add(k, id)?;
        }
        Ok(())
    }

    fn parent_id(&self, txn: &WriteTxn<'_>, dn: &Dn, key: &[u8]) -> DirResult<u64> {
        let suffix = self.suffix_of(key).ok_or_else(|| {
            DirError::UnwillingToPerform(format!("no naming context holds '{dn}'"))
        })?;
        if key == suffix {
            return Ok(0);
        }
        match txn.id_by_dn(&self.parent_key(dn, key))? {
            Some(id) => Ok(id),
            None => Err(self.no_such_object(txn, &dn.parent().unwrap_or_default())),
        }
    }

    fn add(
        &self,
        txn: &mut WriteTxn<'_>,
        dn: &Dn,
        attrs: &[(String, Vec<Vec<u8>>)],
        stamp: &Stamp,
    ) -> DirResult<([u8; 16], Change)> {
        let key = self.dn_key(dn);
        if txn.id_by_dn(&key)?.is_some() {
            return Err(DirError::AlreadyExists(dn.to_string()));
        }
        let parent = self.parent_id(txn, dn, &key)?;
        let mut entry = Entry::new(dn.clone());
        // Normalised values per attribute of `entry` (same order as
        // `entry.attrs`), so a duplicate check normalises each value once
        // instead of re-normalising every earlier value (quadratic for large
        // groups). Values whose normalisation failed are not in the set, as
        // they never matched before either.
        let mut seen: Vec<rustc_hash::FxHashSet<Vec<u8>>> = Vec::new();
        for (name, values) in attrs {
            let at = self.resolve_attr(name)?;
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
            }
            let (Some(a), Some(norms)) = (entry.attrs.get_mut(slot), seen.get_mut(slot)) else {
                continue;
            };
            for v in values {
                let duplicate = match self.schema.eq_normalize(&at, &v) {
                    Ok(norm) => !norms.insert(norm),
                    // No equality rule: only identical bytes are the same value.
                    Err(e) if e.kind == ViolationKind::InappropriateMatching => {
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
        let csn = stamp.csn;
        // Imports keep the operational state they carry, so export -> import -> export is identical.
        let keep = |e: &Entry, name: &str| stamp.origin != Origin::Client && e.has(name);
        if !keep(&entry, "entryUUID") {
            self.set_operational(
                &mut entry,
                "entryUUID",
                uuid::Uuid::new_v4().to_string(),
                csn,
            );
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
        let structural = self.schema.check_entry_structural(&entry)?;
        if !keep(&entry, "structuralObjectClass") {
            self.set_operational(&mut entry, "structuralObjectClass", structural, csn);
        }
        let uuid = entry_uuid(&entry)?;
        if txn.id_by_uuid(&uuid)?.is_some() {
            return Err(DirError::ConstraintViolation(format!(
                "entryUUID of '{dn}' is already used by another entry"
            )));
        }
        let id = txn.next_id()?;
        txn.put_new_entry(id, &entry)?;
        txn.put_dn(&key, id)?;
        if parent != 0 {
            txn.link_child(parent, id)?;
        }
        txn.put_uuid(&uuid, id)?;
        for k in index::entry_keys_sorted(&self.schema, &self.cfg.indexes, &entry) {
            txn.index_add_new(&k, id)?;
        }
        Ok((uuid, Change::Add { entry }))
    }

    fn load(&self, txn: &WriteTxn<'_>, dn: &Dn) -> DirResult<(u64, Vec<u8>, Entry)> {
        let key = self.dn_key(dn);
        let Some(id) = txn.id_by_dn(&key)? else {
            return Err(self.no_such_object(txn, dn));
        };
        let Some(entry) = txn.entry(id)? else {
            return Err(self.no_such_object(txn, dn));
        };
        Ok((id, key, entry))
    }

    fn delete(
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

    fn modify(
        &self,
        txn: &mut WriteTxn<'_>,
        dn: &Dn,
        mods: &[super::Modification],
        stamp: &Stamp,
    ) -> DirResult<([u8; 16], Change)> {
        let (id, _key, old) = self.load(txn, dn)?;
        let mut new = old.clone();
        let csn = stamp.csn;
        // The modifications as applied (hashed passwords, canonical names), for the changelog.
        let mut applied: Vec<Modification> = Vec::with_capacity(mods.len() + 3);
        for m in mods {
            let at = self.resolve_attr(&m.attr)?;
            let name = at.name().to_string();
            if at.no_user_modification && stamp.origin == Origin::Client {
                return Err(DirError::ConstraintViolation(format!(
                    "attribute '{name}' is not user-modifiable"
                )));
            }
            match m.op {
                ModOp::Add => {
                    if m.values.is_empty() {
                        return Err(DirError::Protocol(format!(
                            "modify/add of '{name}' needs at least one value"
                        )));
                    }
                    self.check_syntax_all(&at, &m.values)?;
                    let prepared = self.prepare_values(&at, &m.values, stamp.origin);
                    applied.push(Modification {
                        op: ModOp::Add,
                        attr: name.clone(),
                        values: prepared.clone(),
                    });
                    for v in prepared {
                        let existing = new.get(&name).map(|a| a.values.as_slice()).unwrap_or(&[]);
                        if self.find_value(&at, existing, &v)?.is_some() {
                            return Err(DirError::AttributeOrValueExists(format!(
                                "attribute '{name}' already has value '{}'",
                                String::from_utf8_lossy(&v)
                            )));
                        }
                        match new.get_mut(&name) {
                            Some(a) => a.values.push(Value { bytes: v, csn }),
                            None => new.attrs.push(Attribute::new(name.clone(), vec![v], csn)),
                        }
                    }
                }
                ModOp::Delete => {
                    if !new.has(&name) {
                        return Err(DirError::NoSuchAttribute(format!(
                            "entry has no attribute '{name}'"
                        )));
                    }
                    if m.values.is_empty() {
                        new.remove(&name);
                        applied.push(Modification {
                            op: ModOp::Delete,
                            attr: name.clone(),
                            values: Vec::new(),
                        });
                        continue;
                    }
                    let mut removed = Vec::new();
                    for v in &m.values {
                        let existing = new.get(&name).map(|a| a.values.as_slice()).unwrap_or(&[]);
                        let pos = if Self::is_password(&at) {
                            existing
                                .iter()
                                .position(|x| x.bytes == *v || password::verify(&x.bytes, v))
                        } else {
                            self.find_value(&at, existing, v)?
                        };
                        let Some(pos) = pos else {
                            return Err(DirError::NoSuchAttribute(format!(
                                "attribute '{name}' has no value '{}'",
                                String::from_utf8_lossy(v)
                            )));
                        };
                        if let Some(a) = new.get_mut(&name) {
                            removed.push(a.values.remove(pos).bytes);
                        }
                    }
                    if !new.has(&name) {
                        new.remove(&name);
                    }
                    applied.push(Modification {
                        op: ModOp::Delete,
                        attr: name.clone(),
                        values: removed,
                    });
                }
                ModOp::Replace => {
                    self.check_syntax_all(&at, &m.values)?;
                    let values = self.prepare_values(&at, &m.values, stamp.origin);
                    applied.push(Modification {
                        op: ModOp::Replace,
                        attr: name.clone(),
                        values: values.clone(),
                    });
                    let mut kept: Vec<Value> = Vec::new();
                    for v in values {
                        if self.find_value(&at, &kept, &v)?.is_some() {
                            return Err(DirError::AttributeOrValueExists(format!(
                                "duplicate value in replacement of '{name}'"
                            )));
                        }
                        kept.push(Value { bytes: v, csn });
                    }
                    new.remove(&name);
                    if !kept.is_empty() {
                        new.attrs.push(Attribute {
                            name: name.clone(),
                            values: kept,
                        });
                    }
                }
                ModOp::Increment => {
                    self.increment(&mut new, &at, &m.values, csn)?;
                    applied.push(Modification {
                        op: ModOp::Increment,
                        attr: name.clone(),
                        values: m.values.clone(),
                    });
                }
            }
        }
        self.expand_object_classes(&mut new, csn);
        self.check_rdn_kept(&new)?;
        let old_structural = self.schema.structural_class(&old).ok();
        let new_structural = self.schema.structural_class(&new)?;
        if old_structural.is_some_and(|o| !o.eq_ignore_ascii_case(&new_structural)) {
            return Err(schema_err(
                ViolationKind::ObjectClassModsProhibited,
                format!("the structural object class of '{dn}' cannot be changed"),
            ));
        }
        self.stamp_modified(&mut new, stamp);
        self.schema.check_entry(&new)?;
        txn.put_entry(id, &new)?;
        self.index_update(txn, id, Some(&old), Some(&new))?;
        let classes = new.values("objectClass");
        if classes != old.values("objectClass") {
            // Superclasses added on the way must reach consumers too.
            applied.push(Modification {
                op: ModOp::Replace,
                attr: "objectClass".into(),
                values: classes.into_iter().map(<[u8]>::to_vec).collect(),
            });
        }
        for name in ["modifiersName", "modifyTimestamp", "entryCSN"] {
            applied.push(Modification {
                op: ModOp::Replace,
                attr: name.to_string(),
                values: new.values(name).into_iter().map(<[u8]>::to_vec).collect(),
            });
        }
        Ok((entry_uuid(&old)?, Change::Modify { mods: applied }))
    }

    fn increment(
        &self,
        entry: &mut Entry,
        at: &AttributeType,
        values: &[Vec<u8>],
        csn: Csn,
    ) -> DirResult<()> {
        let name = at.name();
        if at.syntax.as_deref() != Some(INTEGER_SYNTAX) {
            return Err(DirError::ConstraintViolation(format!(
                "increment of '{name}': the attribute is not an integer"
            )));
        }
        let [delta] = values else {
            return Err(DirError::Protocol(format!(
                "increment of '{name}' needs exactly one value"
            )));
        };
        let delta: i128 = std::str::from_utf8(delta)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                DirError::InvalidSyntax(format!("increment of '{name}': value is not an integer"))
            })?;
        let Some(attr) = entry.get_mut(name) else {
            return Err(DirError::NoSuchAttribute(format!(
                "entry has no attribute '{name}' to increment"
            )));
        };
        for v in &mut attr.values {
            let cur: i128 = std::str::from_utf8(&v.bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    DirError::ConstraintViolation(format!("value of '{name}' is not an integer"))
                })?;
            let next = cur.checked_add(delta).ok_or_else(|| {
                DirError::ConstraintViolation(format!("increment of '{name}' overflows"))
            })?;
            v.bytes = next.to_string().into_bytes();
            v.csn = csn;
        }
        Ok(())
    }

    /// Stores every superclass of the entry's classes, as 389-ds does, so
    /// `(objectClass=person)` finds inetOrgPerson entries through the index.
    fn expand_object_classes(&self, entry: &mut Entry, csn: Csn) {
        let Some(attr) = entry.get_mut("objectClass") else {
            return;
        };
        let names: Vec<String> = attr
            .values
            .iter()
            .map(|v| String::from_utf8_lossy(&v.bytes).into_owned())
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        for class in self.schema.with_superclasses(&refs) {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&class)) {
                attr.values.push(Value {
                    bytes: class.into_bytes(),
                    csn,
                });
            }
        }
    }

    fn check_rdn_kept(&self, entry: &Entry) -> DirResult<()> {
        if let Some(rdn) = entry.dn.rdn() {
            for ava in &rdn.avas {
                let at = self.resolve_attr(&ava.attr)?;
                let values = entry
                    .get(at.name())
                    .map(|a| a.values.as_slice())
                    .unwrap_or(&[]);
                if self.find_value(&at, values, &ava.value)?.is_none() {
                    return Err(DirError::NotAllowedOnRdn(format!(
                        "cannot remove the RDN value of '{}'",
                        at.name()
                    )));
                }
            }
        }
        Ok(())
    }

    fn stamp_modified(&self, entry: &mut Entry, stamp: &Stamp) {
        let csn = stamp.csn;
        self.set_operational(entry, "modifiersName", stamp.modifier.clone(), csn);
        self.set_operational(entry, "modifyTimestamp", stamp.time.clone(), csn);
        self.set_operational(entry, "entryCSN", csn.to_string(), csn);
    }

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
        let old_suffix = self.suffix_of(&old_key).map(<[u8]>::to_vec);
        if old_suffix.as_deref() == Some(old_key.as_slice()) {
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
        if self.suffix_of(&new_key).map(<[u8]>::to_vec) != old_suffix {
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
            self.schema.check_syntax(&at, &ava.value)?;
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
                        self.schema
                            .attribute(&n.attr)
                            .is_some_and(|nat| nat.oid == at.oid)
                            && self.schema.eq_normalize(&at, &n.value).ok()
                                == self.schema.eq_normalize(&at, &ava.value).ok()
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
        self.schema.check_entry(&new)?;

        let descendants: Vec<(Vec<u8>, u64)> = txn
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
            let mut child_key = new_key.clone();
            child_key.extend_from_slice(k.get(old_key.len()..).unwrap_or_default());
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

/// What a write stamps on the entries it touches.
pub(crate) struct Stamp {
    pub(crate) csn: Csn,
    pub(crate) time: String,
    pub(crate) modifier: String,
    pub(crate) origin: Origin,
}

pub(crate) fn entry_uuid(entry: &Entry) -> DirResult<[u8; 16]> {
    entry
        .first_str("entryUUID")
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .map(|u| *u.as_bytes())
        .ok_or_else(|| DirError::InvalidSyntax("entryUUID is not a valid UUID".into()))
}
