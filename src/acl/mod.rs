//! Access control: rules stored in the directory as `aci` values (a subset
//! of the 389-ds syntax, see docs/access-control.md), replicated with the
//! data like any attribute, and evaluated for every read and write.
//!
//! - An ACI applies to the entry that holds it and its whole subtree,
//!   narrowed by `target`, `targetattr` and `targetfilter`.
//! - Default deny; a `deny` that applies wins over any `allow`.
//! - The root DN bypasses everything. The replication identities (configured
//!   through [`AccessControl::set_replication_identities`]) read and search
//!   everything.
//! - Fixed rules no ACI changes: secret attributes ([`is_secret`]) are
//!   readable, searchable and comparable only by the root DN and the
//!   replication identities; `aci` values are visible only to those who may
//!   write them; a user may write their own userPassword unless an explicit
//!   `deny` says otherwise.

mod eval;
mod filter;
mod parse;
#[cfg(test)]
mod tests;

pub use eval::{Checker, EntryAccess};
pub use filter::parse_filter;
pub use parse::{
    parse_aci, Aci, AciError, BindRule, Permission, Resolver, Rights, TargetAttr, TargetDn,
    TargetFilter, UserRef,
};

use crate::model::{Identity, ModOp, WriteOp};
use crate::query::filter::base_attr_name;
use crate::store::StoreError;

/// Why a write was refused by access control or an ACI value was bad; the
/// directory maps it to its own error (and so to an LDAP result code).
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("{0}")]
    InsufficientAccess(String),
    #[error("{0}")]
    InvalidSyntax(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type AclResult<T> = Result<T, AclError>;
use crate::model::{Attribute, Csn, Dn, Entry};
use std::sync::RwLock;

/// Attributes holding secrets (besides every `shadow*` attribute).
const SECRET_ATTRIBUTES: &[&str] = &[
    "userpassword",
    "sambantpassword",
    "sambalmpassword",
    "sambapasswordhistory",
    "sambacleartextpassword",
    "sambapreviouscleartextpassword",
    "sambatrustauthincoming",
    "sambatrustauthoutgoing",
];

/// Whether `attr` (a primary attribute name, any case) holds a secret that
/// only the root DN and the replication identities may read, search or compare.
pub fn is_secret(attr: &str) -> bool {
    let lower = attr.to_ascii_lowercase();
    SECRET_ATTRIBUTES.contains(&lower.as_str()) || lower.starts_with("shadow")
}

/// Attributes the default ACIs make readable: what nslcd, SSSD and mail or
/// address-book clients look up, and the operational attributes they use.
pub const PUBLIC_ATTRIBUTES: &[&str] = &[
    "objectClass",
    "cn",
    "sn",
    "givenName",
    "initials",
    "displayName",
    "mail",
    "uid",
    "uidNumber",
    "gidNumber",
    "homeDirectory",
    "loginShell",
    "gecos",
    "member",
    "memberUid",
    "uniqueMember",
    "nisNetgroupTriple",
    "ou",
    "o",
    "dc",
    "c",
    "l",
    "st",
    "description",
    "title",
    "telephoneNumber",
    "mobile",
    "entryUUID",
    "entryDN",
    "createTimestamp",
    "modifyTimestamp",
    "hasSubordinates",
    "numSubordinates",
    "subschemaSubentry",
    "structuralObjectClass",
];

/// Options for the ACIs a new suffix gets.
#[derive(Debug, Clone)]
pub struct DefaultAclOptions {
    /// Whether anonymous clients may read the public attributes (otherwise
    /// only authenticated identities may).
    pub anonymous_read: bool,
    pub public_attributes: Vec<String>,
}

impl Default for DefaultAclOptions {
    fn default() -> Self {
        DefaultAclOptions {
            anonymous_read: true,
            public_attributes: PUBLIC_ATTRIBUTES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The `aci` values for the base entry of a new suffix, with the default
/// options: everybody may read, search and compare the public attributes,
/// and users may change their own password. Nothing else is granted.
pub fn default_acis(suffix: &Dn) -> Vec<String> {
    default_acis_with(suffix, &DefaultAclOptions::default())
}

pub fn default_acis_with(suffix: &Dn, opts: &DefaultAclOptions) -> Vec<String> {
    let who = if opts.anonymous_read {
        "ldap:///anyone"
    } else {
        "ldap:///all"
    };
    let target = suffix.to_string().replace('"', "\\\"");
    vec![
        format!(
            "(target=\"ldap:///{target}\")(targetattr=\"{}\")(version 3.0; acl \"default: public attributes are readable\"; allow (read,search,compare) userdn=\"{who}\";)",
            opts.public_attributes.join(" || ")
        ),
        format!(
            "(target=\"ldap:///{target}\")(targetattr=\"userPassword\")(version 3.0; acl \"default: users change their own password\"; allow (write) userdn=\"ldap:///self\";)"
        ),
    ]
}

/// Server-side access-control settings that are not stored in the data.
#[derive(Debug, Default)]
pub struct AccessControl {
    replication: RwLock<Vec<Dn>>,
}

impl AccessControl {
    /// The DNs replication peers bind as (e.g. each replica's
    /// nsDS5ReplicaBindDN). They read everything, secrets included, and
    /// match `userdn="ldap:///replication"`.
    pub fn set_replication_identities(&self, dns: Vec<Dn>) {
        match self.replication.write() {
            Ok(mut g) => *g = dns,
            Err(poisoned) => *poisoned.into_inner() = dns,
        }
    }

    pub fn replication_identities(&self) -> Vec<Dn> {
        match self.replication.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Whether an attribute description names `aci`.
fn is_aci(res: &Resolver<'_>, desc: &str) -> bool {
    res.schema
        .attribute(base_attr_name(desc))
        .is_some_and(|at| at.name().eq_ignore_ascii_case("aci"))
}

/// Refuses a write that would store an `aci` value that does not parse,
/// with invalidAttributeSyntax and what is wrong.
pub fn validate_write(res: &Resolver<'_>, op: &WriteOp) -> AclResult<()> {
    let check = |values: &[Vec<u8>]| -> AclResult<()> {
        for v in values {
            let text = std::str::from_utf8(v)
                .map_err(|_| AclError::InvalidSyntax("invalid aci value: not UTF-8".into()))?;
            parse_aci(text, res)
                .map_err(|e| AclError::InvalidSyntax(format!("invalid aci value: {e}: {text}")))?;
        }
        Ok(())
    };
    match op {
        WriteOp::Add { attrs, .. } => {
            for (name, values) in attrs {
                if is_aci(res, name) {
                    check(values)?;
                }
            }
        }
        WriteOp::Modify { mods, .. } => {
            for m in mods {
                if matches!(m.op, ModOp::Add | ModOp::Replace) && is_aci(res, &m.attr) {
                    check(&m.values)?;
                }
            }
        }
        WriteOp::Delete { .. } | WriteOp::ModDn { .. } => {}
    }
    Ok(())
}

fn denied(who: &Identity, what: String) -> AclError {
    match &who.dn {
        Some(dn) => AclError::InsufficientAccess(format!("'{dn}' {what}")),
        None => AclError::InsufficientAccess(format!("anonymous clients {what}; bind first")),
    }
}

/// The primary name of an attribute description, if the schema knows it.
fn primary_name(res: &Resolver<'_>, desc: &str) -> Option<String> {
    res.schema
        .attribute(base_attr_name(desc))
        .map(|at| at.name().to_string())
}

/// Decides a client write. Missing targets are let through: the write
/// itself then fails with noSuchObject.
pub fn authorize_write(checker: &Checker<'_>, who: &Identity, op: &WriteOp) -> AclResult<()> {
    if checker.is_root() {
        return Ok(());
    }
    let res = *checker.resolver();
    match op {
        WriteOp::Add { dn, attrs } => {
            let mut entry = Entry::new(dn.clone());
            for (name, values) in attrs {
                let name = primary_name(&res, name).unwrap_or_else(|| name.clone());
                entry
                    .attrs
                    .push(Attribute::new(name, values.clone(), Csn::ZERO));
            }
            let access = checker.access_at(&entry, false)?;
            if !access.allows_entry(Rights::ADD) {
                return Err(denied(who, format!("may not add '{dn}'")));
            }
            if entry.has("aci") && !access.allows(Rights::WRITE, "aci") {
                return Err(denied(who, format!("may not set aci values on '{dn}'")));
            }
        }
        WriteOp::Delete { dn } => {
            let Some(entry) = checker.load(dn)? else {
                return Ok(());
            };
            if !checker.access(&entry)?.allows_entry(Rights::DELETE) {
                return Err(denied(who, format!("may not delete '{dn}'")));
            }
        }
        WriteOp::Modify { dn, mods } => {
            let Some(entry) = checker.load(dn)? else {
                return Ok(());
            };
            let mut access = checker.access(&entry)?;
            access.own = checker.is_self(&entry);
            for m in mods {
                let Some(name) = primary_name(&res, &m.attr) else {
                    // Unknown attribute: the modify fails with undefinedAttributeType.
                    continue;
                };
                if access.allows(Rights::WRITE, &name) {
                    continue;
                }
                let own_dn_only = matches!(m.op, ModOp::Add | ModOp::Delete)
                    && !m.values.is_empty()
                    && m.values.iter().all(|v| {
                        std::str::from_utf8(v)
                            .ok()
                            .and_then(|s| Dn::parse(s).ok())
                            .is_some_and(|d| Some((res.dn_key)(&d).as_slice()) == checker.who_key())
                    });
                if own_dn_only && access.allows_selfwrite(&name) {
                    continue;
                }
                return Err(denied(
                    who,
                    format!("has no write access to attribute '{name}' of '{dn}'"),
                ));
            }
        }
        WriteOp::ModDn {
            dn,
            new_rdn,
            new_superior,
            ..
        } => {
            let Some(entry) = checker.load(dn)? else {
                return Ok(());
            };
            let mut access = checker.access(&entry)?;
            access.own = checker.is_self(&entry);
            let old_rdn = dn.rdn().map(|r| r.avas.as_slice()).unwrap_or_default();
            for ava in old_rdn.iter().chain(new_rdn.avas.iter()) {
                let name = primary_name(&res, &ava.attr).unwrap_or_else(|| ava.attr.clone());
                if !access.allows(Rights::WRITE, &name) {
                    return Err(denied(
                        who,
                        format!("may not rename '{dn}': no write access to its '{name}'"),
                    ));
                }
            }
            let old_parent = dn.parent().unwrap_or_default();
            let new_parent = new_superior.clone().unwrap_or_else(|| old_parent.clone());
            if (res.dn_key)(&new_parent) != (res.dn_key)(&old_parent) {
                if !access.allows_entry(Rights::DELETE) {
                    return Err(denied(
                        who,
                        format!("may not move '{dn}': no delete right at its old place"),
                    ));
                }
                let mut moved = entry.clone();
                moved.dn = new_parent.child(new_rdn.clone());
                if !checker.access_at(&moved, false)?.allows_entry(Rights::ADD) {
                    return Err(denied(
                        who,
                        format!("may not move '{dn}' below '{new_parent}': no add right there"),
                    ));
                }
            }
        }
    }
    Ok(())
}
