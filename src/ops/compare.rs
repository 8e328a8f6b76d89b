//! Compare (RFC 4511 §4.10).

use super::{parse_dn, result, Shared};
use crate::directory::Identity;
use ldap3_proto::proto::{LdapCompareRequest, LdapResult, LdapResultCode};

pub async fn run(shared: &Shared, who: &Identity, req: LdapCompareRequest) -> LdapResult {
    let dn = match parse_dn(&req.dn) {
        Ok(dn) => dn,
        Err(r) => return r,
    };
    let dir = shared.dir.clone();
    let who = who.clone();
    let outcome =
        tokio::task::spawn_blocking(move || dir.compare(&who, &dn, &req.atype, &req.val)).await;
    match outcome {
        Ok(Ok(true)) => result::result(LdapResultCode::CompareTrue, ""),
        Ok(Ok(false)) => result::result(LdapResultCode::CompareFalse, ""),
        Ok(Err(e)) => result::from_error(&e),
        Err(e) => result::result(LdapResultCode::Other, format!("compare task failed: {e}")),
    }
}
