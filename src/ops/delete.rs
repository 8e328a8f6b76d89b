//! Delete (RFC 4511 §4.8): leaves only.

use super::{parse_dn, result, Shared};
use crate::directory::{Identity, WriteOp};
use ldap3_proto::proto::LdapResult;

pub async fn run(shared: &Shared, who: &Identity, dn: &str) -> LdapResult {
    let dn = match parse_dn(dn) {
        Ok(dn) => dn,
        Err(r) => return r,
    };
    match shared.dir.write(who, WriteOp::Delete { dn }).await {
        Ok(()) => result::success(),
        Err(e) => result::from_error(&e),
    }
}
