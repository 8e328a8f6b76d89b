//! Compare (RFC 4511 §4.10).

use super::{parse_dn, result, Shared};
use crate::directory::Identity;
use ldap3_proto::proto::{LdapCompareRequest, LdapFilter, LdapResult, LdapResultCode};

/// `assertion`: the assertion control's filter (RFC 4528), tested on the
/// target before comparing.
pub async fn run(
    shared: &Shared,
    who: &Identity,
    req: LdapCompareRequest,
    assertion: Option<&LdapFilter>,
) -> LdapResult {
    let dn = match parse_dn(&req.dn) {
        Ok(dn) => dn,
        Err(r) => return r,
    };
    let dir = shared.dir.clone();
    let who = who.clone();
    let assertion = assertion.cloned();
    let outcome = tokio::task::spawn_blocking(move || {
        if let Some(f) = &assertion {
            dir.check_assertion(&who, &dn, f)?;
        }
        dir.compare(&who, &dn, &req.atype, &req.val)
    })
    .await;
    match outcome {
        Ok(Ok(true)) => result::result(LdapResultCode::CompareTrue, ""),
        Ok(Ok(false)) => result::result(LdapResultCode::CompareFalse, ""),
        Ok(Err(e)) => result::from_error(&e),
        Err(e) => result::result(LdapResultCode::Other, format!("compare task failed: {e}")),
    }
}
