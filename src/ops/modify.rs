//! Modify (RFC 4511 §4.6, increment RFC 4525): all changes or none.

use super::{parse_dn, result, Shared};
use crate::directory::{Identity, ModOp, Modification, WriteOp};
use ldap3_proto::proto::{LdapModifyRequest, LdapModifyType, LdapResult};

pub async fn run(shared: &Shared, who: &Identity, req: LdapModifyRequest) -> LdapResult {
    let dn = match parse_dn(&req.dn) {
        Ok(dn) => dn,
        Err(r) => return r,
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
    match shared.dir.write(who, WriteOp::Modify { dn, mods }).await {
        Ok(()) => result::success(),
        Err(e) => result::from_error(&e),
    }
}
