//! Request controls: which are understood, and the criticality rule
//! (RFC 4511 §4.1.11): an unsupported critical control fails the operation
//! with unavailableCriticalExtension, a non-critical one is ignored.

use ldap3_proto::control::LdapControl;

pub const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
pub const OID_MANAGE_DSA_IT: &str = "2.16.840.1.113730.3.4.2";

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
            } => return Err("1.3.6.1.4.1.4203.1.9.1.1".into()),
            LdapControl::PasswordPolicyRequest { criticality: true } => {
                return Err("1.3.6.1.4.1.42.2.27.8.5.1".into())
            }
            LdapControl::SearchOptions {
                criticality: true, ..
            } => return Err("1.2.840.113556.1.4.1340".into()),
            LdapControl::ShowDeleted { criticality: true } => {
                return Err("1.2.840.113556.1.4.417".into())
            }
            LdapControl::SdFlags {
                criticality: true, ..
            } => return Err("1.2.840.113556.1.4.801".into()),
            LdapControl::ExtendedDn {
                criticality: true, ..
            } => return Err("1.2.840.113556.1.4.529".into()),
            _ => {}
        }
    }
    Ok(out)
}
