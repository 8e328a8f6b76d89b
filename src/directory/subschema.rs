//! The stored side of cn=schema: definitions added over LDAP, the `aci`
//! values that say who may change the schema, and the schema CSN. All live
//! in the store's metadata, written in the same transaction as the modify
//! that changes them (`write/schema.rs`), and are read back when the
//! directory opens.
//!
//! Each definition is its own record, `schema:def:<oid>`, holding its kind,
//! the CSN of the change that added it and its text, so schema replication
//! can compare definitions one by one.

use super::{time, Core, DirResult, Directory, Identity};
use crate::model::codec::{put_bytes, put_varint, Cursor};
use crate::model::{Attribute, Csn, Dn, Entry};
use crate::schema::{DefinitionKind, UserDefinition};
use crate::store::{scan, StoreRead};

const DEF_PREFIX: &str = "schema:def:";
/// CSN of the last change of cn=schema (shown as nsSchemaCSN).
const META_CSN: &str = "schema:csn";
/// The `aci` values of cn=schema.
const META_ACI: &str = "schema:aci";
/// Format of a definition record.
const DEF_VERSION: u8 = 1;
/// More user definitions than this is not a schema anyone maintains by hand;
/// the bound keeps the read at open finite.
const MAX_DEFINITIONS: usize = 100_000;

/// Whether `dn` names the subschema subentry (`cn=schema`).
pub fn is_subschema_dn(dn: &Dn) -> bool {
    match dn.rdns.as_slice() {
        [rdn] => matches!(rdn.avas.as_slice(), [ava]
            if ava.attr.eq_ignore_ascii_case("cn") && ava.value.eq_ignore_ascii_case(b"schema")),
        _ => false,
    }
}

pub(crate) fn subschema_dn() -> Dn {
    Dn::from_pairs(&[("cn", "schema")])
}

pub(crate) fn def_key(oid: &str) -> String {
    format!("{DEF_PREFIX}{oid}")
}

pub(crate) fn encode_def(d: &UserDefinition) -> Vec<u8> {
    let kind = match d.kind {
        DefinitionKind::AttributeType => 1u8,
        DefinitionKind::ObjectClass => 2u8,
    };
    let mut out = vec![DEF_VERSION, kind];
    out.extend_from_slice(&d.csn.to_bytes());
    put_bytes(&mut out, d.text.as_bytes());
    out
}

fn decode_def(oid: &str, buf: &[u8]) -> Option<UserDefinition> {
    let mut c = Cursor::new(buf);
    if c.byte().ok()? != DEF_VERSION {
        return None;
    }
    let kind = match c.byte().ok()? {
        1 => DefinitionKind::AttributeType,
        2 => DefinitionKind::ObjectClass,
        _ => return None,
    };
    let csn = c.csn().ok()?;
    let text = c.text().ok()?.to_string();
    Some(UserDefinition {
        kind,
        oid: oid.to_string(),
        text,
        csn,
    })
}

/// The stored user definitions, oldest first (by CSN, then OID).
pub(crate) fn stored_definitions(txn: &dyn StoreRead) -> DirResult<Vec<UserDefinition>> {
    let mut defs = Vec::new();
    for (key, value) in scan::meta_with_prefix(txn, DEF_PREFIX, MAX_DEFINITIONS)? {
        let oid = key.strip_prefix(DEF_PREFIX).unwrap_or(&key);
        match decode_def(oid, &value) {
            Some(d) => defs.push(d),
            None => tracing::error!(
                oid,
                "a stored schema definition cannot be read (written by a newer release?); it is not in force"
            ),
        }
    }
    defs.sort_by(|a, b| a.csn.cmp(&b.csn).then_with(|| a.oid.cmp(&b.oid)));
    Ok(defs)
}

/// The CSNs of the definitions a replication peer sends in `op` (a modify
/// of cn=schema adding `ferrodirSchemaDefinition` values): the clock moves
/// past them so definitions made here later sort after them.
pub(crate) fn replicated_csns(op: &super::WriteOp) -> Vec<Csn> {
    let super::WriteOp::Modify { dn, mods } = op else {
        return Vec::new();
    };
    if !is_subschema_dn(dn) {
        return Vec::new();
    }
    mods.iter()
        .filter(|m| {
            m.attr
                .eq_ignore_ascii_case(crate::schema::REPLICATED_DEFINITION_ATTR)
        })
        .flat_map(|m| m.values.iter())
        .filter_map(|v| UserDefinition::from_replicated_value(v).ok())
        .map(|d| d.csn)
        .collect()
}

pub(crate) fn schema_csn(txn: &dyn StoreRead) -> DirResult<Option<Csn>> {
    Ok(txn.meta(META_CSN)?.and_then(|b| Csn::from_bytes(&b)))
}

pub(crate) fn put_schema_csn(txn: &mut crate::store::WriteTxn<'_>, csn: Csn) -> DirResult<()> {
    txn.put_meta(META_CSN, &csn.to_bytes())?;
    Ok(())
}

pub(crate) fn stored_acis(txn: &dyn StoreRead) -> DirResult<Vec<Vec<u8>>> {
    let Some(buf) = txn.meta(META_ACI)? else {
        return Ok(Vec::new());
    };
    let mut c = Cursor::new(&buf);
    let mut out = Vec::new();
    let n = c.varint().unwrap_or(0);
    for _ in 0..n {
        match c.bytes() {
            Ok(v) => out.push(v.to_vec()),
            Err(_) => {
                tracing::error!(
                    "the stored aci values of cn=schema are damaged; ignoring the rest"
                );
                break;
            }
        }
    }
    Ok(out)
}

pub(crate) fn put_acis(txn: &mut crate::store::WriteTxn<'_>, acis: &[Vec<u8>]) -> DirResult<()> {
    if acis.is_empty() {
        txn.delete_meta(META_ACI)?;
        return Ok(());
    }
    let mut out = Vec::new();
    put_varint(&mut out, acis.len() as u64);
    for v in acis {
        put_bytes(&mut out, v);
    }
    txn.put_meta(META_ACI, &out)?;
    Ok(())
}

/// cn=schema as an entry, for access control: its `aci` values are what
/// the ACL engine reads (cn=schema has no stored ancestors).
pub(crate) fn subschema_entry(acis: &[Vec<u8>]) -> Entry {
    let mut entry = Entry::new(subschema_dn());
    entry.attrs.push(Attribute::new(
        "objectClass",
        vec![
            b"top".to_vec(),
            b"subschema".to_vec(),
            b"ldapSubentry".to_vec(),
        ],
        Csn::ZERO,
    ));
    entry
        .attrs
        .push(Attribute::new("cn", vec![b"schema".to_vec()], Csn::ZERO));
    if !acis.is_empty() {
        entry
            .attrs
            .push(Attribute::new("aci", acis.to_vec(), Csn::ZERO));
    }
    entry
}

/// What cn=schema shows besides the definitions.
#[derive(Debug, Clone, Default)]
pub struct SubschemaState {
    /// CSN of the last change (nsSchemaCSN); None if never changed over LDAP.
    pub csn: Option<Csn>,
    /// modifyTimestamp, from that CSN.
    pub modify_timestamp: Option<String>,
    /// `aci` values, when the requester may see them (those who may write them).
    pub acis: Vec<Vec<u8>>,
}

impl Core {
    /// Puts the stored user definitions in force (at open). A definition
    /// that no longer fits is logged and left out rather than stopping the
    /// server; it stays stored, so a fixed release takes it back.
    pub(crate) fn load_user_schema(&self) -> DirResult<()> {
        let defs = stored_definitions(&self.store.read()?)?;
        if defs.is_empty() {
            return Ok(());
        }
        let (schema, skipped) = self.schema().with_stored_definitions(defs);
        for (d, e) in skipped {
            tracing::error!(
                oid = %d.oid,
                "a schema definition added over LDAP is not in force: {e}; its text: {}",
                d.text
            );
        }
        self.set_schema(std::sync::Arc::new(schema));
        Ok(())
    }
}

impl Directory {
    /// The schema CSN, modifyTimestamp and (if `who` may see them) the
    /// `aci` values of cn=schema.
    pub fn subschema_state(&self, who: &Identity) -> DirResult<SubschemaState> {
        let core = &self.core;
        let txn = core.store.read()?;
        let csn = schema_csn(&txn)?;
        let mut acis = stored_acis(&txn)?;
        if !acis.is_empty() && !who.root {
            let dn_key = |d: &Dn| core.dn_key(d).into_bytes();
            let schema = core.schema();
            let res = crate::acl::Resolver {
                schema: &schema,
                dn_key: &dn_key,
                computed: None,
            };
            let checker =
                crate::acl::Checker::new(res, &txn, who, core.is_replication_identity(who));
            let access = checker.access(&subschema_entry(&acis))?;
            if !access.allows(crate::acl::Rights::READ, "aci") {
                acis.clear();
            }
        }
        Ok(SubschemaState {
            csn,
            modify_timestamp: csn.map(|c| time::generalized_time(u64::from(c.time))),
            acis,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_records_round_trip() {
        let d = UserDefinition {
            kind: DefinitionKind::ObjectClass,
            oid: "2.25.1.2".into(),
            text: "( 2.25.1.2 NAME 'x' AUXILIARY )".into(),
            csn: Csn::new(1_700_000_000, 3, 2, 1),
        };
        assert_eq!(decode_def("2.25.1.2", &encode_def(&d)), Some(d));
        assert_eq!(decode_def("2.25.1.2", &[9, 1]), None);
        assert_eq!(decode_def("2.25.1.2", &[DEF_VERSION, 7]), None);
    }

    #[test]
    fn subschema_dn_forms() {
        for ok in ["cn=schema", "CN=Schema", "cn = schema"] {
            let dn = Dn::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(is_subschema_dn(&dn), "{ok}");
        }
        for no in ["cn=schema,dc=example,dc=com", "cn=schemas", "ou=schema"] {
            let dn = Dn::parse(no).unwrap_or_else(|e| panic!("{no}: {e}"));
            assert!(!is_subschema_dn(&dn), "{no}");
        }
    }
}
