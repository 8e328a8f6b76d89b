//! Delete (RFC 4511 §4.8): leaves only.

use super::{parse_dn, Shared};
use crate::directory::{EntryControls, Identity, WriteOp};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::LdapResult;

pub async fn run(
    shared: &Shared,
    who: &Identity,
    dn: &str,
    controls: EntryControls,
) -> (LdapResult, Vec<LdapControl>) {
    let dn = match parse_dn(dn) {
        Ok(dn) => dn,
        Err(r) => return (r, Vec::new()),
    };
    let op = WriteOp::Delete { dn };
    super::write_result(shared.dir.write_with_controls(who, op, controls).await)
}
