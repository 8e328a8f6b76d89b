//! Request controls: which are understood, and the criticality rule
//! (RFC 4511 §4.1.11): an unsupported critical control fails the operation
//! with unavailableCriticalExtension, a non-critical one is ignored.

use ldap3_proto::control::LdapControl;

use crate::model::oid;
pub use crate::model::oid::MANAGE_DSA_IT as OID_MANAGE_DSA_IT;
pub use crate::model::oid::PAGED_RESULTS as OID_PAGED_RESULTS;

#[derive(Debug, Default, Clone)]
pub struct RequestControls {
    pub paged: Option<(i64, Vec<u8>)>,
    pub manage_dsa_it: bool,
}

/// Parses the controls; Err names the first unsupported critical control.
pub fn parse(ctrls: &[LdapControl]) -> Result<RequestControls, String> {
    let mut out = RequestControls::default();
    for c in ctrls {
        match c {
            LdapControl::SimplePagedResults { size, cookie } => {
                out.paged = Some((*size, cookie.clone()));
            }
            LdapControl::ManageDsaIT { .. } => out.manage_dsa_it = true,
            LdapControl::Unknown {
                oid,
                criticality: true,
                ..
            } => return Err(oid.clone()),
            LdapControl::SyncRequest {
                criticality: true, ..
            } => return Err(oid::SYNC_REQUEST.into()),
            LdapControl::PasswordPolicyRequest { criticality: true } => {
                return Err(oid::PASSWORD_POLICY_REQUEST.into())
            }
            LdapControl::SearchOptions {
                criticality: true, ..
            } => return Err(oid::AD_SEARCH_OPTIONS.into()),
            LdapControl::ShowDeleted { criticality: true } => {
                return Err(oid::AD_SHOW_DELETED.into())
            }
            LdapControl::SdFlags {
                criticality: true, ..
            } => return Err(oid::AD_SD_FLAGS.into()),
            LdapControl::ExtendedDn {
                criticality: true, ..
            } => return Err(oid::AD_EXTENDED_DN.into()),
            _ => {}
        }
    }
    Ok(out)
}
