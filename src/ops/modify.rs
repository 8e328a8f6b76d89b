//! Modify (RFC 4511 §4.6, increment RFC 4525): all changes or none.

use super::{parse_dn, Shared};
use crate::directory::{EntryControls, Identity, ModOp, Modification, WriteOp};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapModifyRequest, LdapModifyType, LdapResult};

pub async fn run(
    shared: &Shared,
    who: &Identity,
    req: LdapModifyRequest,
    controls: EntryControls,
) -> (LdapResult, Vec<LdapControl>) {
    let dn = match parse_dn(&req.dn) {
        Ok(dn) => dn,
        Err(r) => return (r, Vec::new()),
    };
    let mods = req
        .changes
        .into_iter()
        .map(|c| Modification {
            op: match c.operation {
                LdapModifyType::Add => ModOp::Add,
                LdapModifyType::Delete => ModOp::Delete,
                LdapModifyType::Replace => ModOp::Replace,
                LdapModifyType::Increment => ModOp::Increment,
            },
            attr: c.modification.atype,
            values: c.modification.vals,
        })
        .collect();
    let op = WriteOp::Modify { dn, mods };
    super::write_result(shared.dir.write_with_controls(who, op, controls).await)
}
