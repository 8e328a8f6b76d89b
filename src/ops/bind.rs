//! Bind (RFC 4511 §4.2, RFC 4513 §5): anonymous and simple; SASL
//! mechanisms are refused with authMethodNotSupported.

use super::{parse_dn, result, Shared};
use crate::directory::{DirError, Identity};
use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapResult, LdapResultCode};

/// Returns the new identity (None: the bind failed and the connection is
/// anonymous again) and the result to send.
pub async fn run(shared: &Shared, req: LdapBindRequest) -> (Option<Identity>, LdapResult) {
    if req.version != 3 {
        return (
            None,
            result::result(
                LdapResultCode::ProtocolError,
                format!(
                    "LDAP version {} is not supported; use version 3",
                    req.version
                ),
            ),
        );
    }
    let password = match req.cred {
        LdapBindCred::Simple(pw) => pw,
        LdapBindCred::SASL(sasl) => {
            return (
                None,
                result::result(
                    LdapResultCode::AuthMethodNotSupported,
                    format!("SASL mechanism {:?} is not supported", sasl.mechanism),
                ),
            )
        }
        _ => {
            return (
                None,
                result::result(
                    LdapResultCode::AuthMethodNotSupported,
                    "unsupported authentication method",
                ),
            )
        }
    };
    if req.dn.is_empty() {
        if password.is_empty() {
            return (Some(Identity::anonymous()), result::success());
        }
        return (
            None,
            result::result(
                LdapResultCode::UnwillingToPerform,
                "a password was given without a bind DN",
            ),
        );
    }
    let dn = match parse_dn(&req.dn) {
        Ok(dn) => dn,
        Err(r) => return (None, r),
    };
    if password.is_empty() {
        return (
            None,
            result::result(
                LdapResultCode::UnwillingToPerform,
                "unauthenticated bind (DN with no password) is not allowed",
            ),
        );
    }
    let dir = shared.dir.clone();
    let outcome = tokio::task::spawn_blocking(move || dir.bind(&dn, password.as_bytes())).await;
    match outcome {
        Ok(Ok(identity)) => (Some(identity), result::success()),
        Ok(Err(DirError::InvalidCredentials)) => {
            tracing::info!(dn = %req.dn, "bind failed: invalid credentials");
            (
                None,
                result::result(LdapResultCode::InvalidCredentials, "invalid credentials"),
            )
        }
        Ok(Err(e)) => (None, result::from_error(&e)),
        Err(e) => (
            None,
            result::result(LdapResultCode::Other, format!("bind task failed: {e}")),
        ),
    }
}
