//! Modify DN (RFC 4511 §4.9): rename, move (newSuperior), whole subtrees.

use super::{parse_dn, result, Shared};
use crate::directory::{Identity, WriteOp};
use crate::model::Rdn;
use ldap3_proto::proto::{LdapModifyDNRequest, LdapResult, LdapResultCode};

pub async fn run(shared: &Shared, who: &Identity, req: LdapModifyDNRequest) -> LdapResult {
    let dn = match parse_dn(&req.dn) {
        Ok(dn) => dn,
        Err(r) => return r,
    };
    let new_rdn = match Rdn::parse(&req.newrdn) {
        Ok(r) => r,
        Err(e) => return result::result(LdapResultCode::InvalidDNSyntax, format!("new RDN: {e}")),
    };
    let new_superior = match req.new_superior.as_deref() {
        None => None,
        Some(s) => match parse_dn(s) {
            Ok(d) if d.is_root() => {
                return result::result(
                    LdapResultCode::UnwillingToPerform,
                    "entries cannot be moved to the root",
                )
            }
            Ok(d) => Some(d),
            Err(r) => return r,
        },
    };
    let op = WriteOp::ModDn {
        dn,
        new_rdn,
        delete_old_rdn: req.deleteoldrdn,
        new_superior,
    };
    match shared.dir.write(who, op).await {
        Ok(()) => result::success(),
        Err(e) => result::from_error(&e),
    }
}
