//! A modify of cn=schema: `attributeTypes` and `objectClasses` values added
//! or deleted (checked by `schema::SchemaEdit`), and the `aci` values that
//! say who may do it. Every check, including that no entry uses what the
//! change retires, happens before anything is written; the new schema is put
//! in force at the end, so the next operation (in the same commit or after)
//! sees it, and the writer puts the old one back if the commit fails.

use super::*;
use crate::directory::subschema;
use crate::schema::{DefinitionKind, Retired, Schema, SchemaChangeError};

/// Entries read at most to check that none uses a definition when no index
/// answers the question (an unindexed attribute type).
pub(crate) const SCAN_LIMIT: usize = 100_000;

fn change_error(e: SchemaChangeError) -> DirError {
    match e {
        SchemaChangeError::Invalid(m) => DirError::InvalidSyntax(m),
        SchemaChangeError::Conflict(m) => DirError::ConstraintViolation(m),
        SchemaChangeError::Refused(m) => DirError::UnwillingToPerform(m),
        SchemaChangeError::Exists(m) => DirError::AttributeOrValueExists(m),
        SchemaChangeError::Missing(m) => DirError::NoSuchAttribute(m),
    }
}

impl Core {
    /// Any write whose target is cn=schema.
    pub(super) fn write_subschema(
        &self,
        txn: &mut WriteTxn<'_>,
        who: &Identity,
        op: &WriteOp,
        stamp: &Stamp,
    ) -> DirResult<()> {
        let mods = match op {
            WriteOp::Modify { mods, .. } => mods,
            WriteOp::Add { .. } => {
                return Err(DirError::AlreadyExists(
                    "cn=schema (the subschema subentry always exists; change it with a modify)"
                        .into(),
                ))
            }
            WriteOp::Delete { .. } | WriteOp::ModDn { .. } => {
                return Err(DirError::UnwillingToPerform(
                    "cn=schema cannot be deleted or renamed; change its attributeTypes and objectClasses with a modify".into(),
                ))
            }
        };
        if mods.iter().any(|m| {
            m.attr
                .eq_ignore_ascii_case(crate::schema::REPLICATED_DEFINITION_ATTR)
        }) {
            return self.merge_replicated_schema(txn, who, mods);
        }
        let acis = subschema::stored_acis(txn)?;
        if stamp.origin == Origin::Client && !who.root {
            self.authorize_subschema(txn, who, &acis, mods)?;
        }
        let current = self.schema();
        let mut edit = current.edit();
        let mut new_acis = acis.clone();
        for m in mods {
            if let Some(kind) = DefinitionKind::from_attribute(&m.attr) {
                let attr = kind.attribute();
                match m.op {
                    ModOp::Add => {
                        for v in &m.values {
                            edit.add(kind, v, stamp.csn).map_err(change_error)?;
                        }
                    }
                    ModOp::Delete if m.values.is_empty() => {
                        return Err(DirError::UnwillingToPerform(format!(
                            "cn=schema: deleting every {attr} value at once is refused; delete definitions one by one by value"
                        )))
                    }
                    ModOp::Delete => {
                        for v in &m.values {
                            edit.delete(kind, v).map_err(change_error)?;
                        }
                    }
                    ModOp::Replace => {
                        return Err(DirError::UnwillingToPerform(format!(
                            "cn=schema: replace of {attr} is refused (it would delete every definition not listed); add and delete values instead"
                        )))
                    }
                    ModOp::Increment => {
                        return Err(DirError::UnwillingToPerform(format!(
                            "cn=schema: {attr} cannot be incremented"
                        )))
                    }
                }
                continue;
            }
            let at = self.resolve_attr(&m.attr)?;
            if !at.name().eq_ignore_ascii_case("aci") {
                return Err(DirError::UnwillingToPerform(format!(
                    "cn=schema: only attributeTypes, objectClasses and aci can be changed, not '{}'",
                    at.name()
                )));
            }
            self.modify_acis(&at, &mut new_acis, m)?;
        }
        let change = edit.finish().map_err(change_error)?;
        for r in &change.retired {
            self.check_unused(txn, &current, r)?;
        }
        for (_, oid) in &change.removed {
            txn.delete_meta(&subschema::def_key(oid))?;
        }
        for d in &change.stored {
            txn.put_meta(&subschema::def_key(&d.oid), &subschema::encode_def(d))?;
        }
        if new_acis != acis {
            subschema::put_acis(txn, &new_acis)?;
        }
        subschema::put_schema_csn(txn, stamp.csn)?;
        if !change.stored.is_empty() || !change.removed.is_empty() {
            self.set_schema(Arc::new(change.schema));
        }
        Ok(())
    }

    /// Schema replication, consumer side: a supplier's user definitions
    /// (`ferrodirSchemaDefinition` values, each with the CSN it was made
    /// with) merged by `Schema::merge_replicated`. What does not fit is a
    /// conflict: logged and kept for `repl status`, never an error, so the
    /// rest of the session goes on. Each definition keeps the supplier's CSN.
    fn merge_replicated_schema(
        &self,
        txn: &mut WriteTxn<'_>,
        who: &Identity,
        mods: &[Modification],
    ) -> DirResult<()> {
        let attr = crate::schema::REPLICATED_DEFINITION_ATTR;
        if !self.may_send_schema(txn, who)? {
            return Err(DirError::InsufficientAccess(format!(
                "cn=schema: only replication identities (a replica's nsDS5ReplicaBindDN or a member of its nsDS5ReplicaBindDNGroup) may add {attr} values; \
                 others change attributeTypes and objectClasses"
            )));
        }
        let mut incoming = Vec::new();
        for m in mods {
            if !m.attr.eq_ignore_ascii_case(attr) || m.op != ModOp::Add {
                return Err(DirError::UnwillingToPerform(format!(
                    "cn=schema: a modify carrying {attr} may only add {attr} values"
                )));
            }
            for v in &m.values {
                incoming.push(
                    crate::schema::UserDefinition::from_replicated_value(v)
                        .map_err(DirError::InvalidSyntax)?,
                );
            }
        }
        let current = self.schema();
        let merge = current.merge_replicated(&incoming);
        self.note_schema_conflicts("a supplier", &incoming, &merge.conflicts);
        let Some(schema) = merge.schema else {
            return Ok(());
        };
        for d in &merge.stored {
            txn.put_meta(&subschema::def_key(&d.oid), &subschema::encode_def(d))?;
        }
        let newest = merge.stored.iter().map(|d| d.csn).max();
        if let Some(newest) = newest {
            if subschema::schema_csn(txn)?.is_none_or(|c| c < newest) {
                subschema::put_schema_csn(txn, newest)?;
            }
        }
        self.set_schema(Arc::new(schema));
        Ok(())
    }

    /// The identities that may send replicated changes to some replica
    /// here may send schema too (cn=schema serves every suffix).
    fn may_send_schema(&self, txn: &WriteTxn<'_>, who: &Identity) -> DirResult<bool> {
        if self.is_replication_identity(who) {
            return Ok(true);
        }
        if who.is_anonymous() {
            return Ok(false);
        }
        let groups: Vec<Dn> = self
            .repl
            .read()
            .map(|r| {
                r.replicas
                    .iter()
                    .filter_map(|x| x.bind_dn_group.clone())
                    .collect()
            })
            .unwrap_or_default();
        for group in &groups {
            if self.in_bind_dn_group_with(txn, group, who)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// cn=schema's own `aci` values decide (it has no stored ancestors);
    /// with none, only the root DN may change it.
    fn authorize_subschema(
        &self,
        txn: &WriteTxn<'_>,
        who: &Identity,
        acis: &[Vec<u8>],
        mods: &[Modification],
    ) -> DirResult<()> {
        self.with_acl_resolver(|res| {
            let checker =
                crate::acl::Checker::new(res, txn, who, self.is_replication_identity(who));
            let access = checker.access(&subschema::subschema_entry(acis))?;
            for m in mods {
                let name = res
                    .schema
                    .attribute(crate::query::filter::base_attr_name(&m.attr))
                    .map(|at| at.name().to_string())
                    .unwrap_or_else(|| m.attr.clone());
                if !access.allows(crate::acl::Rights::WRITE, &name) {
                    return Err(DirError::InsufficientAccess(match &who.dn {
                        Some(dn) => format!("'{dn}' has no write access to '{name}' of cn=schema"),
                        None => format!(
                            "anonymous clients may not change cn=schema ('{name}'); bind first"
                        ),
                    }));
                }
            }
            Ok(())
        })
    }

    /// Runs `f` with an ACL resolver over the schema in force: cn=schema's
    /// `aci` values are parsed and evaluated against the same schema and DN
    /// keys as any entry's.
    fn with_acl_resolver<T>(
        &self,
        f: impl FnOnce(crate::acl::Resolver<'_>) -> DirResult<T>,
    ) -> DirResult<T> {
        let dn_key = |d: &Dn| self.dn_key(d).into_bytes();
        let schema = self.schema();
        f(crate::acl::Resolver {
            schema: &schema,
            dn_key: &dn_key,
            computed: None,
        })
    }

    /// Applies one modification to cn=schema's `aci` values (each value is
    /// checked by the ACL parser first, as on any entry).
    fn modify_acis(
        &self,
        at: &AttributeType,
        acis: &mut Vec<Vec<u8>>,
        m: &Modification,
    ) -> DirResult<()> {
        let check = WriteOp::Modify {
            dn: subschema::subschema_dn(),
            mods: vec![m.clone()],
        };
        self.with_acl_resolver(|res| Ok(crate::acl::validate_write(&res, &check)?))?;
        self.check_syntax_all(at, &m.values)?;
        let values: Vec<Value> = acis
            .iter()
            .map(|b| Value {
                bytes: b.clone(),
                csn: Csn::ZERO,
            })
            .collect();
        match m.op {
            ModOp::Add => {
                let mut values = values;
                for v in &m.values {
                    if self.find_value(at, &values, v)?.is_some() {
                        return Err(DirError::AttributeOrValueExists(
                            "cn=schema already has this aci value".into(),
                        ));
                    }
                    values.push(Value {
                        bytes: v.clone(),
                        csn: Csn::ZERO,
                    });
                }
                *acis = values.into_iter().map(|v| v.bytes).collect();
            }
            ModOp::Delete if m.values.is_empty() => {
                if acis.is_empty() {
                    return Err(DirError::NoSuchAttribute(
                        "cn=schema has no aci values".into(),
                    ));
                }
                acis.clear();
            }
            ModOp::Delete => {
                let mut values = values;
                for v in &m.values {
                    match self.find_value(at, &values, v)? {
                        Some(i) => {
                            values.remove(i);
                        }
                        None => {
                            return Err(DirError::NoSuchAttribute(
                                "cn=schema has no such aci value".into(),
                            ))
                        }
                    }
                }
                *acis = values.into_iter().map(|v| v.bytes).collect();
            }
            ModOp::Replace => *acis = m.values.clone(),
            ModOp::Increment => {
                return Err(DirError::UnwillingToPerform(
                    "cn=schema: aci cannot be incremented".into(),
                ))
            }
        }
        Ok(())
    }

    /// Refuses a change that retires a definition some live entry uses.
    /// An object class is found through the objectClass equality index, an
    /// attribute type through its presence index; without one, every entry
    /// is read, up to [`SCAN_LIMIT`].
    fn check_unused(&self, txn: &WriteTxn<'_>, schema: &Schema, r: &Retired) -> DirResult<()> {
        let attr = r.kind.attribute();
        let user = match r.kind {
            DefinitionKind::ObjectClass => {
                let Some(oc_at) = schema.attribute("objectClass") else {
                    return Ok(());
                };
                if self.cfg.indexes.kinds(&oc_at).eq {
                    first_indexed(txn, &index::eq_key(&oc_at, r.oid.as_bytes()))?
                } else {
                    self.first_scanned(txn, r, |e| {
                        e.values("objectClass").iter().any(|v| {
                            schema
                                .eq_normalize(&oc_at, v)
                                .is_ok_and(|n| n == r.oid.as_bytes())
                        })
                    })?
                }
            }
            DefinitionKind::AttributeType => {
                let Some(at) = schema.attribute(&r.oid) else {
                    return Ok(());
                };
                if self.cfg.indexes.kinds(&at).pres {
                    first_indexed(txn, &index::pres_key(&at))?
                } else {
                    self.first_scanned(txn, r, |e| {
                        e.attrs.iter().any(|a| {
                            !a.values.is_empty()
                                && (a.name.eq_ignore_ascii_case(&r.oid)
                                    || at.names.iter().any(|n| n.eq_ignore_ascii_case(&a.name)))
                        })
                    })?
                }
            }
        };
        let Some(id) = user else {
            return Ok(());
        };
        let example = txn
            .entry(id)?
            .map(|e| format!(" (e.g. '{}')", e.dn))
            .unwrap_or_default();
        let noun = match r.kind {
            DefinitionKind::AttributeType => "attribute type",
            DefinitionKind::ObjectClass => "object class",
        };
        Err(DirError::ConstraintViolation(match &r.changed {
            None => format!(
                "{attr}: cannot delete {noun} '{}': entries use it{example}",
                r.name
            ),
            Some(why) => format!(
                "{attr}: cannot change {noun} '{}' this way: {why}, and entries use it{example}; \
                 while entries use a definition only changes that keep them valid are allowed",
                r.name
            ),
        }))
    }

    /// The first live entry `uses` accepts, reading every entry; refused
    /// when there are more than [`SCAN_LIMIT`].
    fn first_scanned(
        &self,
        txn: &WriteTxn<'_>,
        r: &Retired,
        uses: impl Fn(&Entry) -> bool,
    ) -> DirResult<Option<u64>> {
        let mut ids = Vec::new();
        for suffix in &self.suffix_keys {
            ids.extend(txn.subtree_ids(suffix)?);
        }
        if ids.len() > SCAN_LIMIT {
            return Err(DirError::UnwillingToPerform(format!(
                "{}: cannot check that no entry uses '{}': it is not indexed and the directory holds {} entries \
                 (the check reads at most {SCAN_LIMIT}); give it a presence index ([indexes] in the configuration) and retry",
                r.kind.attribute(),
                r.name,
                ids.len()
            )));
        }
        for id in ids {
            if txn.entry(id)?.is_some_and(|e| uses(&e)) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

fn first_indexed(txn: &WriteTxn<'_>, key: &crate::store::IndexKey) -> DirResult<Option<u64>> {
    let mut first = None;
    txn.index_ids_while(key, &mut |id| {
        first = Some(id);
        false
    })?;
    Ok(first)
}

#[cfg(test)]
mod tests {
    use crate::directory::test_support::temp_directory;
    use crate::directory::{subschema, DirError, Directory, IndexConfig, IndexKinds};
    use crate::model::{Dn, Identity, ModOp, Modification, WriteOp};

    const SUFFIX: &str = "dc=example,dc=com";
    const AT: &str = "( 2.25.77.1.1 NAME 'exampleBadge' EQUALITY caseIgnoreMatch \
        SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )";
    const OC: &str = "( 2.25.77.2.1 NAME 'exampleStaff' SUP top AUXILIARY MAY exampleBadge )";
    const ENTRY: &str = "cn=x,dc=example,dc=com";

    fn dn(s: &str) -> Dn {
        Dn::parse(s).unwrap()
    }

    fn schema_mod(op: ModOp, attr: &str, values: &[&str]) -> WriteOp {
        WriteOp::Modify {
            dn: dn("cn=schema"),
            mods: vec![Modification {
                op,
                attr: attr.into(),
                values: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            }],
        }
    }

    fn setup(indexes: IndexConfig) -> (tempfile::TempDir, Directory) {
        let (tmp, dir) = temp_directory(SUFFIX, indexes);
        let root = dir.root_identity();
        let base = WriteOp::Add {
            dn: dn(SUFFIX),
            attrs: vec![
                ("objectClass".into(), vec![b"domain".to_vec()]),
                ("dc".into(), vec![b"example".to_vec()]),
            ],
        };
        dir.write_blocking(&root, base).unwrap();
        dir.write_blocking(&root, schema_mod(ModOp::Add, "attributeTypes", &[AT]))
            .unwrap();
        dir.write_blocking(&root, schema_mod(ModOp::Add, "objectClasses", &[OC]))
            .unwrap();
        let entry = WriteOp::Add {
            dn: dn(ENTRY),
            attrs: vec![
                (
                    "objectClass".into(),
                    vec![b"person".to_vec(), b"exampleStaff".to_vec()],
                ),
                ("cn".into(), vec![b"x".to_vec()]),
                ("sn".into(), vec![b"x".to_vec()]),
                ("exampleBadge".into(), vec![b"B-1".to_vec()]),
            ],
        };
        dir.write_blocking(&root, entry).unwrap();
        (tmp, dir)
    }

    fn stored(dir: &Directory) -> usize {
        subschema::stored_definitions(&dir.store().read().unwrap())
            .unwrap()
            .len()
    }

    fn drop_badge(dir: &Directory) {
        let op = WriteOp::Modify {
            dn: dn(ENTRY),
            mods: vec![
                Modification {
                    op: ModOp::Delete,
                    attr: "exampleBadge".into(),
                    values: Vec::new(),
                },
                Modification {
                    op: ModOp::Delete,
                    attr: "objectClass".into(),
                    values: vec![b"exampleStaff".to_vec()],
                },
            ],
        };
        dir.write_blocking(&dir.root_identity(), op).unwrap();
    }

    /// Deleting what an entry uses is refused, naming the entry, whether
    /// the check reads every entry or an index answers it.
    fn definitions_in_use_stay(indexes: IndexConfig) {
        let (_tmp, dir) = setup(indexes);
        let root = dir.root_identity();
        match dir.write_blocking(&root, schema_mod(ModOp::Delete, "objectClasses", &[OC])) {
            Err(DirError::ConstraintViolation(m)) => assert!(
                m.contains("object class 'exampleStaff'") && m.contains(ENTRY),
                "{m}"
            ),
            other => panic!("expected constraintViolation, got {other:?}"),
        }
        let both = WriteOp::Modify {
            dn: dn("cn=schema"),
            mods: vec![
                Modification {
                    op: ModOp::Delete,
                    attr: "objectClasses".into(),
                    values: vec![OC.as_bytes().to_vec()],
                },
                Modification {
                    op: ModOp::Delete,
                    attr: "attributeTypes".into(),
                    values: vec![b"( 2.25.77.1.1 )".to_vec()],
                },
            ],
        };
        match dir.write_blocking(&root, both.clone()) {
            Err(DirError::ConstraintViolation(m)) => {
                assert!(m.contains("entries use it") && m.contains(ENTRY), "{m}")
            }
            other => panic!("expected constraintViolation, got {other:?}"),
        }
        assert!(dir.schema().object_class("exampleStaff").is_some());
        assert_eq!(stored(&dir), 2);
        drop_badge(&dir);
        dir.write_blocking(&root, both).unwrap();
        assert!(dir.schema().attribute("exampleBadge").is_none());
        assert!(dir.schema().object_class("exampleStaff").is_none());
        assert_eq!(stored(&dir), 0);
    }

    #[test]
    fn definitions_in_use_stay_unindexed() {
        definitions_in_use_stay(IndexConfig {
            attrs: Default::default(),
        });
    }

    #[test]
    fn definitions_in_use_stay_indexed() {
        // objectClass has its equality index by default.
        let mut indexes = IndexConfig::default();
        indexes.attrs.insert(
            "examplebadge".into(),
            IndexKinds {
                pres: true,
                ..IndexKinds::default()
            },
        );
        definitions_in_use_stay(indexes);
    }

    #[test]
    fn a_refused_modify_changes_nothing() {
        let (_tmp, dir) = setup(IndexConfig::default());
        let root = dir.root_identity();
        let csn_before = dir.subschema_state(&root).unwrap().csn;
        let op = WriteOp::Modify {
            dn: dn("cn=schema"),
            mods: vec![
                Modification {
                    op: ModOp::Add,
                    attr: "attributeTypes".into(),
                    values: vec![
                        b"( 2.25.77.1.2 NAME 'exampleFloor' SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )"
                            .to_vec(),
                    ],
                },
                Modification {
                    op: ModOp::Add,
                    attr: "objectClasses".into(),
                    values: vec![b"( 2.25.77.2.2 NAME 'exampleRoom' SUP nothing )".to_vec()],
                },
            ],
        };
        assert!(matches!(
            dir.write_blocking(&root, op),
            Err(DirError::ConstraintViolation(m)) if m.contains("nothing")
        ));
        assert!(dir.schema().attribute("exampleFloor").is_none());
        assert_eq!(stored(&dir), 2);
        assert_eq!(dir.subschema_state(&root).unwrap().csn, csn_before);
        assert!(matches!(
            dir.write_blocking(&root, schema_mod(ModOp::Replace, "attributeTypes", &[AT])),
            Err(DirError::UnwillingToPerform(m)) if m.contains("replace")
        ));
        assert!(matches!(
            dir.write_blocking(&root, schema_mod(ModOp::Delete, "objectClasses", &[])),
            Err(DirError::UnwillingToPerform(_))
        ));
        assert!(matches!(
            dir.write_blocking(&root, schema_mod(ModOp::Add, "ldapSyntaxes", &["( 1.2.3.4 )"])),
            Err(DirError::UnwillingToPerform(m)) if m.contains("ldapSyntaxes")
        ));
        assert_eq!(stored(&dir), 2);
    }

    #[test]
    fn the_schema_csn_moves_with_each_change() {
        let (_tmp, dir) = setup(IndexConfig::default());
        let root = dir.root_identity();
        let first = dir.subschema_state(&root).unwrap();
        assert!(first.csn.is_some() && first.modify_timestamp.is_some());
        dir.write_blocking(
            &root,
            schema_mod(
                ModOp::Add,
                "attributeTypes",
                &["( 2.25.77.1.3 NAME 'exampleDesk' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )"],
            ),
        )
        .unwrap();
        let second = dir.subschema_state(&root).unwrap();
        assert!(second.csn > first.csn);
        let defs = subschema::stored_definitions(&dir.store().read().unwrap()).unwrap();
        let desk = defs.iter().find(|d| d.oid == "2.25.77.1.3").unwrap();
        assert_eq!(Some(desk.csn), second.csn);
    }

    #[test]
    fn access_rules_on_cn_schema_decide() {
        let (_tmp, dir) = setup(IndexConfig::default());
        let root = dir.root_identity();
        let admin_dn = "uid=schemaadmin,dc=example,dc=com";
        let admin = Identity {
            dn: Some(dn(admin_dn)),
            norm: dir.normalize_dn(&dn(admin_dn)),
            root: false,
        };
        let add = |who: &Identity, oid: &str, name: &str| {
            let v = format!("( {oid} NAME '{name}' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )");
            dir.write_blocking(who, schema_mod(ModOp::Add, "attributeTypes", &[&v]))
        };
        assert!(matches!(
            add(&Identity::anonymous(), "2.25.77.1.4", "exA"),
            Err(DirError::InsufficientAccess(m)) if m.contains("anonymous")
        ));
        assert!(matches!(
            add(&admin, "2.25.77.1.4", "exA"),
            Err(DirError::InsufficientAccess(_))
        ));
        let aci = format!(
            "(targetattr=\"attributeTypes || objectClasses\")(version 3.0; acl \"schema admins\"; allow (write) userdn=\"ldap:///{admin_dn}\";)"
        );
        dir.write_blocking(&root, schema_mod(ModOp::Add, "aci", &[&aci]))
            .unwrap();
        add(&admin, "2.25.77.1.4", "exA").unwrap();
        assert!(dir.schema().attribute("exA").is_some());
        // The rule covers the definitions, not the rule itself.
        assert!(matches!(
            dir.write_blocking(&admin, schema_mod(ModOp::Delete, "aci", &[&aci])),
            Err(DirError::InsufficientAccess(_))
        ));
        // The aci values show only to those who may write them.
        assert_eq!(dir.subschema_state(&root).unwrap().acis.len(), 1);
        assert!(dir.subschema_state(&admin).unwrap().acis.is_empty());
        assert!(matches!(
            dir.write_blocking(&root, schema_mod(ModOp::Add, "aci", &["not an aci"])),
            Err(DirError::InvalidSyntax(_))
        ));
    }

    #[test]
    fn replicated_definitions_keep_their_csn_and_conflicts_are_kept_not_refused() {
        let (_tmp, dir) = setup(IndexConfig::default());
        let repl_dn = "cn=replication manager,cn=config";
        dir.access_control()
            .set_replication_identities(vec![dn(repl_dn)]);
        let repl = Identity {
            dn: Some(dn(repl_dn)),
            norm: dir.normalize_dn(&dn(repl_dn)),
            root: false,
        };
        // An hour ahead of this clock: what is made here later must still
        // sort after it.
        let ahead = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32
            + 3600;
        let csn = crate::model::Csn::new(ahead, 1, 7, 0);
        let value = |text: &str| format!("attributeTypes {csn} {text}");
        let new_at = "( 2.25.77.1.8 NAME 'exampleLocker' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )";
        // Same OID as the held exampleBadge, another syntax.
        let clash = "( 2.25.77.1.1 NAME 'exampleBadge' SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )";
        let op = schema_mod(
            ModOp::Add,
            crate::schema::REPLICATED_DEFINITION_ATTR,
            &[&value(new_at), &value(clash)],
        );
        // Only replication identities may send them.
        assert!(matches!(
            dir.write_blocking(&dir.root_identity(), op.clone()),
            Err(DirError::InsufficientAccess(m)) if m.contains("replication")
        ));
        dir.write_blocking(&repl, op).unwrap();
        let defs = subschema::stored_definitions(&dir.store().read().unwrap()).unwrap();
        let locker = defs.iter().find(|d| d.oid == "2.25.77.1.8").unwrap();
        assert_eq!(locker.csn, csn, "the supplier's CSN is kept");
        let badge = defs.iter().find(|d| d.oid == "2.25.77.1.1").unwrap();
        assert_eq!(badge.text, AT, "the held definition stays");
        assert!(dir.schema().attribute("exampleLocker").is_some());
        let conflicts = dir.core.schema_conflicts();
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert!(conflicts[0].contains("2.25.77.1.1"), "{conflicts:?}");
        // A later local change gets a newer CSN than the one received.
        let local = "( 2.25.77.1.9 NAME 'exampleShelf' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )";
        dir.write_blocking(
            &dir.root_identity(),
            schema_mod(ModOp::Add, "attributeTypes", &[local]),
        )
        .unwrap();
        let defs = subschema::stored_definitions(&dir.store().read().unwrap()).unwrap();
        let shelf = defs.iter().find(|d| d.oid == "2.25.77.1.9").unwrap();
        assert!(shelf.csn > csn, "{} after {csn}", shelf.csn);
        assert!(matches!(
            dir.write_blocking(
                &repl,
                schema_mod(
                    ModOp::Add,
                    crate::schema::REPLICATED_DEFINITION_ATTR,
                    &["attributeTypes nocsn ( 1.2 )"]
                ),
            ),
            Err(DirError::InvalidSyntax(_))
        ));
    }
}
