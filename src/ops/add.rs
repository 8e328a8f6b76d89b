//! Add (RFC 4511 §4.7).

use super::{parse_dn, result, Shared};
use crate::directory::{Identity, WriteOp};
use ldap3_proto::proto::{LdapAddRequest, LdapResult};

pub async fn run(shared: &Shared, who: &Identity, req: LdapAddRequest) -> LdapResult {
    let dn = match parse_dn(&req.dn) {
        Ok(dn) => dn,
        Err(r) => return r,
    };
    let attrs = req
        .attributes
        .into_iter()
        .map(|a| (a.atype, a.vals))
        .collect();
    match shared.dir.write(who, WriteOp::Add { dn, attrs }).await {
        Ok(()) => result::success(),
        Err(e) => result::from_error(&e),
    }
}
