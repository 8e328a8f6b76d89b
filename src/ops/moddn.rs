//! Modify DN (RFC 4511 §4.9): rename, move (newSuperior), whole subtrees.

use super::{parse_dn, result, Shared};
use crate::directory::{EntryControls, Identity, WriteOp};
use crate::model::Rdn;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapModifyDNRequest, LdapResult, LdapResultCode};

pub async fn run(
    shared: &Shared,
    who: &Identity,
    req: LdapModifyDNRequest,
    controls: EntryControls,
) -> (LdapResult, Vec<LdapControl>) {
    match renamed(shared, who, req, controls).await {
        Ok(done) => done,
        Err(r) => (r, Vec::new()),
    }
}

async fn renamed(
    shared: &Shared,
    who: &Identity,
    req: LdapModifyDNRequest,
    controls: EntryControls,
) -> Result<(LdapResult, Vec<LdapControl>), LdapResult> {
    let dn = parse_dn(&req.dn)?;
    let new_rdn = Rdn::parse(&req.newrdn)
        .map_err(|e| result::result(LdapResultCode::InvalidDNSyntax, format!("new RDN: {e}")))?;
    let new_superior = match req.new_superior.as_deref() {
        None => None,
        Some(s) => match parse_dn(s) {
            Ok(d) if d.is_root() => {
                return Err(result::result(
                    LdapResultCode::UnwillingToPerform,
                    "entries cannot be moved to the root",
                ))
            }
            Ok(d) => Some(d),
            Err(r) => return Err(r),
        },
    };
    let op = WriteOp::ModDn {
        dn,
        new_rdn,
        delete_old_rdn: req.deleteoldrdn,
        new_superior,
    };
    Ok(super::write_result(
        shared.dir.write_with_controls(who, op, controls).await,
    ))
}
