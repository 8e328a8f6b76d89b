//! Add, delete, modify and modify-DN applied inside a write transaction,
//! one file per operation (as ops/ and OpenLDAP's back-mdb); this file has
//! the dispatch and what the operations share. Every check happens before
//! anything is written; the caller aborts the (nested) transaction on
//! error, so a failed operation changes nothing.

mod add;
mod delete;
mod moddn;
mod modify;
mod schema;

pub(crate) use add::{PreparedAdd, ValueKeys};

use super::writer::Origin;
use super::{index, time, Core, DirError, DirResult, Identity, META_LAST_CSN};
use crate::auth::password;
use crate::model::{Attribute, Change, ChangeRecord, Csn, Dn, Entry, Rdn, Value};
use crate::model::{ModOp, Modification, WriteOp};
use crate::schema::{AttributeType, ViolationKind};
use crate::store::{DnKey, StoreRead, WriteTxn};
use std::sync::Arc;

const INTEGER_SYNTAX: &str = "1.3.6.1.4.1.1466.115.121.1.27";

/// The sub-CSN step of the first refint modify after a delete or rename.
const REFINT_FIRST_STEP: usize = 16;

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
        let stamp = self.stamp(who, csn, origin);
        self.apply_stamped(txn, who, op, None, stamp).map(|_| ())
    }

    /// What a write by `who` at `csn` stamps on the entries it writes.
    pub(crate) fn stamp(&self, who: &Identity, csn: Csn, origin: Origin) -> Stamp {
        Stamp {
            csn,
            time: time::generalized_time(u64::from(csn.time)),
            modifier: match &who.dn {
                Some(dn) => dn.to_string(),
                None => String::new(),
            },
            origin,
        }
    }

    /// [`Core::apply`] with its stamp made beforehand ([`Core::stamp`]),
    /// and the add prepared beforehand ([`Core::prepare_add`] with the same
    /// stamp) when it was, as an offline import does. Hands back the change
    /// when no changelog took it (an import's: the import writes its
    /// replication states itself).
    pub(crate) fn apply_stamped(
        &self,
        txn: &mut WriteTxn<'_>,
        who: &Identity,
        op: &WriteOp,
        mut prepared: Option<&mut PreparedAdd>,
        stamp: Stamp,
    ) -> DirResult<Option<Change>> {
        let (csn, origin) = (stamp.csn, stamp.origin);
        if super::subschema::is_subschema_dn(op.dn()) {
            // cn=schema is not a stored entry: its own access check and storage.
            self.write_subschema(txn, who, op, &stamp)?;
            txn.put_meta(META_LAST_CSN, &csn.to_bytes())?;
            return Ok(None);
        }
        self.check_write_access(txn, who, op, origin)?;
        if origin == Origin::Client && !who.root {
            self.check_password_length(op)?;
            self.refuse_pre_hashed(who, op)?;
        }
        if !matches!(origin, Origin::Replication | Origin::Syncrepl) {
            self.refuse_unverifiable(op)?;
        }
        // Refint acts for clients only: a replicated delete or rename comes
        // with the modifies its origin server made for it.
        let moved = if origin == Origin::Client {
            self.moved_before(txn, op)?
        } else {
            Vec::new()
        };
        let with_policy = match origin {
            Origin::Client => self.password_policy_write(&*txn, who, op)?,
            _ => None,
        };
        let op = with_policy.as_ref().unwrap_or(op);
        let (uuid, change) = match op {
            WriteOp::Add { dn, attrs } => match prepared.as_deref_mut() {
                Some(p) => self.add_prepared(txn, p)?,
                None => self.add(txn, dn, attrs, &stamp)?,
            },
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
        let key = match &prepared {
            Some(p) => p.key().clone(),
            None => self.dn_key(op.dn()),
        };
        if self.suffix_of(&key) == Some(&self.config_key()) {
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
        if origin == Origin::Client {
            self.check_references(txn, op)?;
        }
        // An offline import initialises a replica; consumers get it by total init.
        let replicated = origin != Origin::Import;
        if !replicated && self.replicated_suffix_of(&key).is_some() {
            self.invalidate_repl_states(txn)?;
        }
        let unrecorded = match self.replicated_suffix_of(&key).filter(|_| replicated) {
            Some(suffix) => {
                let record = ChangeRecord {
                    csn,
                    uuid,
                    dn: op.dn().clone(),
                    modifier: stamp.modifier.clone(),
                    change,
                };
                self.record_change(txn, &suffix, &record)?;
                None
            }
            None => Some(change),
        };
        if !moved.is_empty() {
            self.follow_references(txn, op, moved, &stamp)?;
        }
        txn.put_meta(META_LAST_CSN, &csn.to_bytes())?;
        Ok(unrecorded)
    }

    /// Refint after a client's delete or rename (`moved`: the old DNs the
    /// operation removed or renamed): each entry naming one of them gets
    /// one modify, recorded and replicated as its own change. Its CSN is a
    /// sub-CSN of the operation's, after the steps the operation's own
    /// record takes, so it sorts after the delete or rename everywhere and
    /// before the next change. A modify the schema refuses (the last value
    /// of a required `member`) is left out, as 389-ds does, and logged.
    fn follow_references(
        &self,
        txn: &mut WriteTxn<'_>,
        op: &WriteOp,
        moved: Vec<Dn>,
        stamp: &Stamp,
    ) -> DirResult<()> {
        let moved: Vec<super::refint::Moved> = match op {
            WriteOp::ModDn {
                dn,
                new_rdn,
                new_superior,
                ..
            } => {
                let top = new_superior
                    .clone()
                    .unwrap_or_else(|| dn.parent().unwrap_or_default())
                    .child(new_rdn.clone());
                let depth = dn.rdns.len();
                moved
                    .into_iter()
                    .map(|old| super::refint::Moved {
                        new: Some(old.rebase(depth, &top)),
                        old,
                    })
                    .collect()
            }
            _ => moved
                .into_iter()
                .map(|old| super::refint::Moved { old, new: None })
                .collect(),
        };
        let references = self.references(txn, &moved)?;
        // A rename's own record takes sub-CSNs up to 4 (urp::rename_stamps).
        let mut next = crate::repl::core::step_csn(stamp.csn, REFINT_FIRST_STEP);
        for (id, mods) in references {
            let Some(entry) = txn.entry(id)? else {
                continue;
            };
            // Each modification of a change takes one sub-CSN; a refint
            // modify has its own plus the stamps (and objectClass) at most.
            let most = mods.len() + 4;
            if usize::from(next.subseq) + most >= usize::from(u16::MAX) {
                return Err(DirError::UnwillingToPerform(format!(
                    "'{}': too many entries refer to what this operation changes for one operation to update them (referential integrity); remove some references first",
                    op.dn()
                )));
            }
            let sub = Stamp {
                csn: next,
                time: stamp.time.clone(),
                modifier: stamp.modifier.clone(),
                origin: stamp.origin,
            };
            let mut child = txn.nested()?;
            let done = (|| -> DirResult<()> {
                let (uuid, change) = self.modify(&mut child, &entry.dn, &mods, &sub)?;
                if let Some(suffix) = self.replicated_suffix_of(&self.dn_key(&entry.dn)) {
                    let record = ChangeRecord {
                        csn: sub.csn,
                        uuid,
                        dn: entry.dn.clone(),
                        modifier: sub.modifier.clone(),
                        change,
                    };
                    self.record_change(&mut child, &suffix, &record)?;
                }
                Ok(())
            })();
            match done {
                Ok(()) => child.commit()?,
                Err(e) => {
                    child.abort();
                    if matches!(e, DirError::Store(_) | DirError::Busy(_)) {
                        return Err(e);
                    }
                    tracing::warn!(entry = %entry.dn, operation = %op.dn(), "referential integrity left this entry's references unchanged: {e}");
                }
            }
            next = crate::repl::core::step_csn(next, most);
        }
        Ok(())
    }

    /// Password policy: users may not set clear-text passwords shorter than the minimum.
    fn check_password_length(&self, op: &WriteOp) -> DirResult<()> {
        let min = self.cfg.password_policy.min_length;
        let values: Vec<&Vec<u8>> = match op {
            WriteOp::Add { attrs, .. } => attrs
                .iter()
                .filter(|(n, _)| {
                    crate::query::filter::base_attr_name(n).eq_ignore_ascii_case("userPassword")
                })
                .flat_map(|(_, v)| v.iter())
                .collect(),
            WriteOp::Modify { mods, .. } => mods
                .iter()
                .filter(|m| m.op != ModOp::Delete)
                .filter(|m| {
                    crate::query::filter::base_attr_name(&m.attr)
                        .eq_ignore_ascii_case("userPassword")
                })
                .flat_map(|m| m.values.iter())
                .collect(),
            _ => Vec::new(),
        };
        for v in values {
            if !password::is_hashed(v) && String::from_utf8_lossy(v).chars().count() < min {
                return Err(DirError::PasswordPolicy {
                    error: super::policy::PolicyError::PasswordTooShort,
                    message: format!(
                        "the password is too short: the password policy requires at least {min} characters"
                    ),
                });
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
        if let Some(values) = self.seal_syncrepl(&entry)? {
            entry.set(
                super::repl::syncrepl::SYNCREPL_ATTR,
                values,
                crate::model::Csn::ZERO,
            );
            txn.put_entry(id, &entry)?;
        }
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
        let dn_key = |d: &Dn| self.dn_key(d).into_bytes();
        let memberof = self.memberof_view(txn);
        let computed = |name: &str, e: &Entry| memberof.as_ref().and_then(|m| m.computed(name, e));
        let res = crate::acl::Resolver {
            schema: &self.schema(),
            dn_key: &dn_key,
            computed: Some(&computed),
        };
        if origin != Origin::Replication {
            crate::acl::validate_write(&res, op)?;
        }
        if who.root || origin != Origin::Client {
            return Ok(());
        }
        let checker = crate::acl::Checker::new(res, txn, who, self.is_replication_identity(who));
        Ok(crate::acl::authorize_write(&checker, who, op)?)
    }

    fn resolve_attr(&self, name: &str) -> DirResult<Arc<AttributeType>> {
        let base = crate::query::filter::base_attr_name(name);
        if base.len() != name.len() && !name[base.len()..].eq_ignore_ascii_case(";binary") {
            return Err(DirError::UndefinedAttributeType(format!(
                "attribute options are not supported: '{name}'"
            )));
        }
        self.schema().attribute(base).ok_or_else(|| {
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
        if Self::is_password(at) && !matches!(origin, Origin::Replication | Origin::Syncrepl) {
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
        let schema = self.schema();
        match schema.eq_normalize(at, v) {
            Ok(norm) => Ok(values
                .iter()
                .position(|x| schema.eq_normalize(at, &x.bytes).is_ok_and(|n| n == norm))),
            Err(e) if e.kind == ViolationKind::InappropriateMatching => {
                Ok(values.iter().position(|x| x.bytes == v))
            }
            Err(e) => Err(DirError::Schema(e)),
        }
    }

    fn check_syntax_all(&self, at: &AttributeType, values: &[Vec<u8>]) -> DirResult<()> {
        let schema = self.schema();
        for v in values {
            schema.check_syntax(at, v)?;
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
        let delta = index::key_delta(&self.schema(), &self.cfg.indexes, old, new);
        for k in &delta.removed {
            txn.index_del(k, id)?;
        }
        for k in &delta.added {
            txn.index_add(k, id)?;
        }
        Ok(())
    }

    fn parent_id(&self, txn: &WriteTxn<'_>, dn: &Dn, key: &DnKey) -> DirResult<u64> {
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

    fn load(&self, txn: &WriteTxn<'_>, dn: &Dn) -> DirResult<(u64, DnKey, Entry)> {
        let key = self.dn_key(dn);
        let Some(id) = txn.id_by_dn(&key)? else {
            return Err(self.no_such_object(txn, dn));
        };
        let Some(entry) = txn.entry(id)? else {
            return Err(self.no_such_object(txn, dn));
        };
        Ok((id, key, entry))
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
        for class in self.schema().with_superclasses(&refs) {
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
        // A syncrepl consumer keeps the provider's modifier and time (the
        // same change sets them from the provider's entry).
        if stamp.origin != Origin::Syncrepl {
            self.set_operational(entry, "modifiersName", stamp.modifier.clone(), csn);
            self.set_operational(entry, "modifyTimestamp", stamp.time.clone(), csn);
        }
        self.set_operational(entry, "entryCSN", csn.to_string(), csn);
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
