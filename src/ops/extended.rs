//! Extended operations: Who am I? (RFC 4532) and Password Modify (RFC 3062).
//! StartTLS is handled by the server layer, which owns the stream.

use super::{parse_dn, result, Shared};
use crate::auth::password;
use crate::directory::{policy, DirError, Identity, ModOp, Modification, WriteOp};
use crate::model::oid;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapExtendedRequest, LdapExtendedResponse, LdapOp, LdapPasswordModifyRequest, LdapResult,
    LdapResultCode, OID_PASSWORD_MODIFY, OID_WHOAMI,
};

pub use crate::model::oid::STARTTLS as OID_STARTTLS;

fn reply(res: LdapResult, value: Option<Vec<u8>>) -> LdapExtendedResponse {
    LdapExtendedResponse {
        res,
        name: None,
        value,
    }
}

/// An extended operation with the response controls it earns: a refused
/// password change carries the ppolicy error when the request asked for it
/// (`wants_policy`: the password policy request control was sent).
pub async fn run_with_controls(
    shared: &Shared,
    who: &Identity,
    req: LdapExtendedRequest,
    manage_dsa_it: bool,
    wants_policy: bool,
    bound_secret: Option<&Vec<u8>>,
) -> (LdapExtendedResponse, Vec<LdapControl>) {
    let (resp, refused) = if req.name == OID_PASSWORD_MODIFY {
        password_modify(shared, who, &req, manage_dsa_it, bound_secret).await
    } else {
        (run(shared, who, req, manage_dsa_it).await, None)
    };
    let error = refused.filter(|_| wants_policy);
    let controls = match error {
        Some(e) => vec![LdapControl::Unknown {
            oid: oid::PASSWORD_POLICY_REQUEST.to_string(),
            criticality: false,
            value: Some(
                policy::PolicyResponse {
                    warning: None,
                    error: Some(e),
                }
                .encode(),
            ),
        }],
        None => Vec::new(),
    };
    (resp, controls)
}

pub async fn run(
    shared: &Shared,
    who: &Identity,
    req: LdapExtendedRequest,
    manage_dsa_it: bool,
) -> LdapExtendedResponse {
    match req.name.as_str() {
        OID_WHOAMI => {
            let authz = match &who.dn {
                Some(dn) => format!("dn:{dn}"),
                None => String::new(),
            };
            reply(result::success(), Some(authz.into_bytes()))
        }
        OID_PASSWORD_MODIFY => {
            password_modify(shared, who, &req, manage_dsa_it, None)
                .await
                .0
        }
        oid if super::replication::handles(oid) => super::replication::run(shared, who, req).await,
        oid::MASTER_CREATE_KEY => super::master::create_key(shared, who, &req).await,
        oid::MASTER_JOIN => super::master::join(shared, &req).await,
        other => reply(
            result::result(
                LdapResultCode::ProtocolError,
                format!("unsupported extended operation {other}"),
            ),
            None,
        ),
    }
}

/// BER `SEQUENCE { [0] genPasswd }` of the Password Modify response.
fn gen_passwd_value(pw: &str) -> Vec<u8> {
    let inner_len = pw.len();
    let mut v = Vec::with_capacity(inner_len + 4);
    v.push(0x30);
    v.push((inner_len + 2) as u8);
    v.push(0x80);
    v.push(inner_len as u8);
    v.extend_from_slice(pw.as_bytes());
    v
}

/// Password Modify (RFC 3062). With the response, the password policy's
/// error when the policy refused the new password (for the ppolicy
/// response control).
async fn password_modify(
    shared: &Shared,
    who: &Identity,
    req: &LdapExtendedRequest,
    manage_dsa_it: bool,
    bound_secret: Option<&Vec<u8>>,
) -> (LdapExtendedResponse, Option<policy::PolicyError>) {
    let fail = |code, msg: &str| (reply(result::result(code, msg), None), None);
    let parsed = match &req.value {
        None => LdapPasswordModifyRequest {
            user_identity: None,
            old_password: None,
            new_password: None,
        },
        Some(_) => match LdapPasswordModifyRequest::try_from(req) {
            Ok(p) => p,
            Err(_) => {
                return fail(
                    LdapResultCode::ProtocolError,
                    "malformed password modify request",
                )
            }
        },
    };
    let target = match parsed.user_identity.as_deref() {
        Some(id) => match parse_dn(id.strip_prefix("dn:").unwrap_or(id)) {
            Ok(dn) => dn,
            Err(r) => return (reply(r, None), None),
        },
        None => match &who.dn {
            Some(dn) => dn.clone(),
            None => {
                return fail(
                    LdapResultCode::UnwillingToPerform,
                    "anonymous clients must bind or name the user whose password changes",
                )
            }
        },
    };
    // A read-only replica refers this write like any other (RFC 4511
    // §4.1.10): changing the password here alone would be lost or diverge.
    // On a slave, the user's own change is made on the master with the
    // user's own credentials (the old password given, or the one this
    // connection bound with).
    if let Some(r) = super::read_only_refusal(shared, &target.to_string(), manage_dsa_it) {
        let credential = match (&parsed.old_password, bound_secret) {
            (Some(old), _) => Some(old.as_bytes()),
            (None, Some(secret)) if who.dn.as_ref() == Some(&target) => Some(secret.as_slice()),
            _ => None,
        };
        let chained = match credential.filter(|_| !manage_dsa_it) {
            Some(pw) => {
                let request = LdapOp::ExtendedRequest(req.clone());
                super::chain(shared, &target, &target, pw, request).await
            }
            None => None,
        };
        return match chained {
            Some(Ok(LdapOp::ExtendedResponse(answer))) => (answer, None),
            Some(Ok(_)) => fail(
                LdapResultCode::Other,
                "the master answered the chained password change with another operation",
            ),
            Some(Err(e)) => (reply(super::chain_failure(&e), None), None),
            None => (reply(r, None), None),
        };
    }
    let dir = &shared.dir;
    // Whether this identity may change the target's userPassword is the write
    // path's access-control decision (self, or an ACI granting write); only the
    // root DN's own password is outside the tree and reserved to the root DN.
    if dir.is_root_dn(&target) && !who.root {
        return fail(
            LdapResultCode::InsufficentAccessRights,
            "only the root DN may change the root DN's password",
        );
    }
    if let Some(old) = &parsed.old_password {
        let (d, t, o) = (dir.clone(), target.clone(), old.clone());
        let ok = tokio::task::spawn_blocking(move || d.bind(&t, o.as_bytes()).is_ok())
            .await
            .unwrap_or(false);
        if !ok {
            return fail(
                LdapResultCode::InvalidCredentials,
                "the old password is not correct",
            );
        }
    }
    let (new_password, generated) = match parsed.new_password {
        Some(p) if p.is_empty() => {
            return fail(
                LdapResultCode::ConstraintViolation,
                "the new password is empty",
            )
        }
        Some(p) => (p, false),
        None => (password::generate(), true),
    };
    let outcome = if dir.is_root_dn(&target) {
        let (d, p) = (dir.clone(), new_password.clone());
        tokio::task::spawn_blocking(move || d.set_root_password(p.as_bytes()))
            .await
            .unwrap_or_else(|e| Err(DirError::Busy(e.to_string())))
    } else {
        let op = WriteOp::Modify {
            dn: target,
            mods: vec![Modification {
                op: ModOp::Replace,
                attr: "userPassword".into(),
                values: vec![new_password.clone().into_bytes()],
            }],
        };
        dir.write(who, op).await
    };
    match outcome {
        Ok(()) => (
            reply(
                result::success(),
                generated.then(|| gen_passwd_value(&new_password)),
            ),
            None,
        ),
        Err(e) => {
            let refused = match &e {
                DirError::PasswordPolicy { error, .. } => Some(*error),
                _ => None,
            };
            (reply(result::from_error(&e), None), refused)
        }
    }
}
