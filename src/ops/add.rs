//! Add (RFC 4511 §4.7).

use super::{parse_dn, Shared};
use crate::directory::{EntryControls, Identity, WriteOp};
use crate::model::{Ava, Dn};
use crate::schema::Schema;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapAddRequest, LdapResult};

pub async fn run(
    shared: &Shared,
    who: &Identity,
    req: LdapAddRequest,
    controls: EntryControls,
) -> (LdapResult, Vec<LdapControl>) {
    let dn = match parse_dn(&req.dn) {
        Ok(dn) => dn,
        Err(r) => return (r, Vec::new()),
    };
    let mut attrs: Vec<(String, Vec<Vec<u8>>)> = req
        .attributes
        .into_iter()
        .map(|a| (a.atype, a.vals))
        .collect();
    with_rdn_values(&shared.dir.schema(), &dn, &mut attrs);
    let op = WriteOp::Add { dn, attrs };
    super::write_result(shared.dir.write_with_controls(who, op, controls).await)
}

/// Adds the RDN's values the request left out: RFC 4511 §4.7 says the
/// attribute list, "along with those from the RDN", makes up the entry, and
/// OpenLDAP and 389-ds accept `uid=x,...` without `uid: x`.
pub(crate) fn with_rdn_values(schema: &Schema, dn: &Dn, attrs: &mut Vec<(String, Vec<Vec<u8>>)>) {
    let Some(rdn) = dn.rdn() else {
        return;
    };
    for ava in &rdn.avas {
        match attrs
            .iter_mut()
            .find(|(name, _)| same_attribute(schema, name, &ava.attr))
        {
            Some((_, values)) => {
                if !values.iter().any(|v| same_value(schema, ava, v)) {
                    values.push(ava.value.clone());
                }
            }
            None => attrs.push((ava.attr.clone(), vec![ava.value.clone()])),
        }
    }
}

/// Whether a request's attribute description names the RDN's attribute
/// type: by any of its names or its OID, without options (a `cn;lang-en`
/// value is not a `cn` value).
fn same_attribute(schema: &Schema, description: &str, rdn_attr: &str) -> bool {
    if description.contains(';') {
        return false;
    }
    if description.eq_ignore_ascii_case(rdn_attr) {
        return true;
    }
    match (schema.attribute(description), schema.attribute(rdn_attr)) {
        (Some(a), Some(b)) => a.oid == b.oid,
        _ => false,
    }
}

/// Equality under the attribute's matching rule; bytes when the type is
/// unknown or has no usable rule (the write path then reports the problem).
fn same_value(schema: &Schema, ava: &Ava, value: &[u8]) -> bool {
    let normalized = schema.attribute(&ava.attr).and_then(|at| {
        let a = schema.eq_normalize(&at, &ava.value).ok()?;
        let b = schema.eq_normalize(&at, value).ok()?;
        Some(a == b)
    });
    normalized.unwrap_or(ava.value == value)
}
