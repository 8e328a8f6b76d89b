//! Bind (RFC 4511 §4.2, RFC 4513 §5): anonymous, simple, and SASL
//! EXTERNAL over TLS with a client certificate (RFC 4513 §5.2.3); other SASL
//! mechanisms are refused with authMethodNotSupported.

use super::{parse_dn, result, Shared};
use crate::auth::PeerCert;
use crate::directory::policy::PolicyResponse;
use crate::directory::{DirError, Identity, Scope, SearchRequest};
use crate::model::{oid, Dn};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapFilter, LdapOp, LdapResult, LdapResultCode, SaslCredentials,
    OID_PASSWORD_MODIFY, OID_WHOAMI,
};

/// What the connection knows that a bind depends on.
#[derive(Debug, Clone, Default)]
pub struct BindContext {
    /// TLS is established on the connection.
    pub encrypted: bool,
    /// The client connects from a loopback address.
    pub peer_is_loopback: bool,
    /// `[security] require_secure_binds`.
    pub require_secure_binds: bool,
    /// The verified client certificate (Some only over TLS).
    pub client_cert: Option<PeerCert>,
    /// `[tls] cert_map_attribute`: fallback mapping of the certificate CN.
    pub cert_map_attribute: Option<String>,
    /// The local peer's user and group IDs on an ldapi:// connection (the
    /// kernel's SO_PEERCRED): what SASL EXTERNAL maps there.
    pub peer_cred: Option<(u32, u32)>,
}

/// The confidentiality policy (RFC 4513 §5.1.2 leaves it to the server): a
/// password must not cross a network in clear. Loopback stays allowed.
pub fn confidentiality_required(ctx: &BindContext, has_password: bool) -> bool {
    ctx.require_secure_binds && has_password && !ctx.encrypted && !ctx.peer_is_loopback
}

/// Bind without connection context: as from loopback, in clear.
pub async fn run(shared: &Shared, req: LdapBindRequest) -> (Option<Identity>, LdapResult) {
    let ctx = BindContext {
        peer_is_loopback: true,
        ..BindContext::default()
    };
    run_with(shared, req, &ctx).await
}

/// Returns the new identity (None: the bind failed and the connection is
/// anonymous again) and the result to send.
pub async fn run_with(
    shared: &Shared,
    req: LdapBindRequest,
    ctx: &BindContext,
) -> (Option<Identity>, LdapResult) {
    let reply = run_with_controls(shared, req, ctx, &[]).await;
    (reply.identity, reply.result)
}

/// Whether a request carries the password policy request control.
pub fn asks_for_policy(request_controls: &[LdapControl]) -> bool {
    request_controls.iter().any(|c| match c {
        LdapControl::PasswordPolicyRequest { .. } => true,
        LdapControl::Unknown { oid: o, .. } => o == oid::PASSWORD_POLICY_REQUEST,
        _ => false,
    })
}

/// What a bind answers: the identity (None: the bind failed and the
/// connection is anonymous again), the result, the response controls, and
/// whether the password must be changed before anything else.
#[derive(Debug)]
pub struct BindReply {
    pub identity: Option<Identity>,
    pub result: LdapResult,
    pub controls: Vec<LdapControl>,
    pub must_change: bool,
}

/// A bind with its request controls: a password policy request control
/// (draft-behera §6.1) gets the policy response control back.
pub async fn run_with_controls(
    shared: &Shared,
    req: LdapBindRequest,
    ctx: &BindContext,
    request_controls: &[LdapControl],
) -> BindReply {
    let wants_policy = asks_for_policy(request_controls);
    let (identity, result, policy) = simple_or_sasl(shared, req, ctx).await;
    let must_change = policy.as_ref().is_some_and(|p| p.must_change);
    let controls = match policy {
        Some(p) if wants_policy && !p.response.is_empty() => vec![LdapControl::Unknown {
            // The response control has the request's OID (draft-behera §6.2).
            oid: oid::PASSWORD_POLICY_REQUEST.to_string(),
            criticality: false,
            value: Some(p.response.encode()),
        }],
        _ => Vec::new(),
    };
    BindReply {
        identity,
        result,
        controls,
        must_change,
    }
}

/// The password policy's verdict on a simple bind.
struct PolicyVerdict {
    response: PolicyResponse,
    must_change: bool,
}

async fn simple_or_sasl(
    shared: &Shared,
    req: LdapBindRequest,
    ctx: &BindContext,
) -> (Option<Identity>, LdapResult, Option<PolicyVerdict>) {
    let no_policy = |(i, r): (Option<Identity>, LdapResult)| (i, r, None);
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
            None,
        );
    }
    let password = match req.cred {
        LdapBindCred::Simple(pw) => pw,
        LdapBindCred::SASL(sasl) if sasl.mechanism.eq_ignore_ascii_case("EXTERNAL") => {
            return no_policy(external(shared, &req.dn, sasl, ctx).await);
        }
        LdapBindCred::SASL(sasl) => {
            return (
                None,
                result::result(
                    LdapResultCode::AuthMethodNotSupported,
                    format!("SASL mechanism {:?} is not supported", sasl.mechanism),
                ),
                None,
            )
        }
        _ => {
            return (
                None,
                result::result(
                    LdapResultCode::AuthMethodNotSupported,
                    "unsupported authentication method",
                ),
                None,
            )
        }
    };
    if req.dn.is_empty() {
        if password.is_empty() {
            return no_policy((Some(Identity::anonymous()), result::success()));
        }
        return (
            None,
            result::result(
                LdapResultCode::UnwillingToPerform,
                "a password was given without a bind DN",
            ),
            None,
        );
    }
    let dn = match parse_dn(&req.dn) {
        Ok(dn) => dn,
        Err(r) => return (None, r, None),
    };
    if password.is_empty() {
        return (
            None,
            result::result(
                LdapResultCode::UnwillingToPerform,
                "unauthenticated bind (DN with no password) is not allowed",
            ),
            None,
        );
    }
    if confidentiality_required(ctx, true) {
        tracing::info!(dn = %req.dn, "bind refused: password over an unencrypted connection");
        return (
            None,
            result::result(
                LdapResultCode::ConfidentialityRequired,
                "a password bind needs an encrypted connection: use LDAPS or StartTLS",
            ),
            None,
        );
    }
    // A bind against an {SSHA}-style value that writes no policy state is
    // a few microseconds of reads: answered here, like small searches. The
    // rest (key stretching, policy writes) would hold up the runtime.
    let outcome = match shared.dir.try_quick_bind(&dn, password.as_bytes()) {
        Some(o) => o,
        None => {
            let dir = shared.dir.clone();
            let outcome =
                tokio::task::spawn_blocking(move || dir.bind_with_policy(&dn, password.as_bytes()))
                    .await;
            match outcome {
                Ok(o) => o,
                Err(e) => {
                    return no_policy(fail(
                        LdapResultCode::Other,
                        format!("bind task failed: {e}"),
                    ))
                }
            }
        }
    };
    let verdict = Some(PolicyVerdict {
        response: outcome.policy,
        must_change: outcome.must_change,
    });
    match outcome.result {
        Ok(identity) => {
            if outcome.must_change {
                tracing::info!(dn = %req.dn, "bind: the password was reset and must be changed first");
            }
            (Some(identity), result::success(), verdict)
        }
        Err(DirError::InvalidCredentials) => {
            tracing::info!(dn = %req.dn, "bind failed: invalid credentials");
            (
                None,
                result::result(LdapResultCode::InvalidCredentials, "invalid credentials"),
                verdict,
            )
        }
        Err(e) => (None, result::from_error(&e), verdict),
    }
}

/// What a connection bound with a reset password may do (pwdMustChange):
/// change the password, as OpenLDAP restricts it, and ask Who am I?, which
/// tells the client only who it is.
pub fn allowed_while_reset(op: &LdapOp) -> bool {
    changes_password(op) || matches!(op, LdapOp::ExtendedRequest(e) if e.name == OID_WHOAMI)
}

/// Whether a request changes a password (its success lifts the restriction).
pub fn changes_password(op: &LdapOp) -> bool {
    match op {
        LdapOp::ExtendedRequest(e) => e.name == OID_PASSWORD_MODIFY,
        LdapOp::ModifyRequest(m) => {
            !m.changes.is_empty()
                && m.changes.iter().all(|c| {
                    let a = c.modification.atype.split(';').next().unwrap_or_default();
                    a.eq_ignore_ascii_case("userPassword") || a == "2.5.4.35"
                })
        }
        _ => false,
    }
}

/// The answer to anything else before the reset password is changed.
pub fn must_change_refusal() -> LdapResult {
    result::result(
        LdapResultCode::InsufficentAccessRights,
        "the password was reset by an administrator and must be changed first \
         (password modify, or a modify of userPassword)",
    )
}

fn fail(code: LdapResultCode, message: impl Into<String>) -> (Option<Identity>, LdapResult) {
    (None, result::result(code, message))
}

/// SASL EXTERNAL: the identity is the verified client certificate's subject.
async fn external(
    shared: &Shared,
    bind_dn: &str,
    sasl: SaslCredentials,
    ctx: &BindContext,
) -> (Option<Identity>, LdapResult) {
    if !bind_dn.is_empty() {
        return fail(
            LdapResultCode::InvalidCredentials,
            "SASL EXTERNAL takes no bind DN (the certificate names the client)",
        );
    }
    if let Some((uid, gid)) = ctx.peer_cred {
        let dir = shared.dir.clone();
        let mapped = tokio::task::spawn_blocking(move || map_local_user(&dir, uid)).await;
        return match mapped {
            Ok(Ok(identity)) => {
                tracing::info!(uid, gid, dn = %identity.dn.as_ref().map(|d| d.to_string()).unwrap_or_default(), "SASL EXTERNAL over ldapi");
                (Some(identity), result::success())
            }
            Ok(Err(message)) => {
                tracing::info!(uid, gid, "SASL EXTERNAL over ldapi failed: {message}");
                fail(LdapResultCode::InvalidCredentials, message)
            }
            Err(e) => fail(LdapResultCode::Other, format!("bind task failed: {e}")),
        };
    }
    let Some(cert) = &ctx.client_cert else {
        return fail(
            LdapResultCode::InappropriateAuthentication,
            "SASL EXTERNAL needs TLS with a client certificate",
        );
    };
    let Some(subject) = cert.subject.clone() else {
        return fail(
            LdapResultCode::InappropriateAuthentication,
            "SASL EXTERNAL needs a client certificate (none was presented, or its subject is unreadable)",
        );
    };
    let dir = shared.dir.clone();
    let cn = cert.cn.clone();
    let attr = ctx.cert_map_attribute.clone();
    let subject_for_task = subject.clone();
    let mapped = tokio::task::spawn_blocking(move || {
        map_certificate(&dir, &subject_for_task, cn.as_deref(), attr.as_deref())
    })
    .await;
    let identity = match mapped {
        Ok(Ok(id)) => id,
        Ok(Err(message)) => {
            tracing::info!(subject = %subject, "SASL EXTERNAL bind failed: {message}");
            return fail(LdapResultCode::InvalidCredentials, message);
        }
        Err(e) => return fail(LdapResultCode::Other, format!("bind task failed: {e}")),
    };
    // An authorization identity is honoured only when it names the same entry.
    let authzid = String::from_utf8_lossy(&sasl.credentials)
        .trim()
        .to_string();
    if !authzid.is_empty() {
        let same = authzid
            .strip_prefix("dn:")
            .and_then(|d| Dn::parse(d).ok())
            .is_some_and(|d| shared.dir.normalize_dn(&d) == identity.norm);
        if !same {
            return fail(
                LdapResultCode::InsufficentAccessRights,
                format!("authorization identity {authzid:?} differs from the certificate's; proxy authorization is not supported"),
            );
        }
    }
    (Some(identity), result::success())
}

/// DNs of up to two entries matching `filter` (two are enough to tell one
/// from several), searched as the root DN.
fn find_dns(
    dir: &crate::directory::Directory,
    base: Dn,
    scope: Scope,
    filter: &LdapFilter,
) -> Vec<String> {
    let root = Identity {
        root: true,
        ..Identity::anonymous()
    };
    let no_attrs = ["1.1".to_string()];
    let req = SearchRequest {
        base,
        scope,
        filter,
        attrs: &no_attrs,
        types_only: true,
        size_limit: 2,
        time_limit: 10,
        page: None,
        lookthrough_limit: 0,
    };
    let mut found = Vec::new();
    let _ = dir.search(&root, &req, &|| false, &mut |e| found.push(e.dn));
    found
}

/// Who a local user is on ldapi:// (the rule OpenLDAP and 389-ds admins
/// know): uid 0 is the root DN; any other uid is the one posixAccount entry
/// under the suffixes whose uidNumber is that uid.
pub fn map_local_user(dir: &crate::directory::Directory, uid: u32) -> Result<Identity, String> {
    if uid == 0 {
        let dn = dir.config().root_dn.clone();
        return Ok(Identity {
            norm: dir.normalize_dn(&dn),
            dn: Some(dn),
            root: true,
        });
    }
    let filter = LdapFilter::And(vec![
        LdapFilter::Equality("objectClass".into(), "posixAccount".into()),
        LdapFilter::Equality("uidNumber".into(), uid.to_string()),
    ]);
    let mut found = Vec::new();
    for base in dir.config().suffixes.clone() {
        found.extend(find_dns(dir, base, Scope::Sub, &filter));
    }
    match found.as_slice() {
        [one] => {
            let dn = Dn::parse(one).map_err(|e| format!("mapped entry DN: {e}"))?;
            Ok(Identity {
                norm: dir.normalize_dn(&dn),
                root: dir.is_root_dn(&dn),
                dn: Some(dn),
            })
        }
        [] => Err(format!(
            "no posixAccount entry has uidNumber {uid} (ldapi EXTERNAL maps uid 0 to the root DN and other users to the posixAccount with their uidNumber)"
        )),
        _ => Err(format!(
            "several posixAccount entries have uidNumber {uid}; the mapping must name one entry"
        )),
    }
}

/// Finds the entry a certificate subject stands for: the entry with that DN,
/// else (with `attr`) the one entry under the suffixes with attr=CN.
pub fn map_certificate(
    dir: &crate::directory::Directory,
    subject: &str,
    cn: Option<&str>,
    attr: Option<&str>,
) -> Result<Identity, String> {
    let identity_for = |dn: Dn| {
        let norm = dir.normalize_dn(&dn);
        let is_root = dir.is_root_dn(&dn);
        Identity {
            dn: Some(dn),
            norm,
            root: is_root,
        }
    };
    let find = |base: Dn, scope: Scope, filter: &LdapFilter| find_dns(dir, base, scope, filter);
    if let Ok(dn) = Dn::parse(subject) {
        if dir.is_root_dn(&dn) {
            return Ok(identity_for(dn));
        }
        let present = LdapFilter::Present("objectClass".into());
        if let Some(found) = find(dn, Scope::Base, &present).into_iter().next() {
            if let Ok(d) = Dn::parse(&found) {
                return Ok(identity_for(d));
            }
        }
    }
    let (Some(attr), Some(cn)) = (attr, cn) else {
        return Err(format!(
            "no entry has the certificate subject DN {subject:?}"
        ));
    };
    let filter = LdapFilter::Equality(attr.to_string(), cn.to_string());
    let mut matches = Vec::new();
    for suffix in &dir.config().suffixes {
        matches.extend(find(suffix.clone(), Scope::Sub, &filter));
    }
    match matches.as_slice() {
        [one] => Dn::parse(one)
            .map(identity_for)
            .map_err(|e| format!("mapped entry DN {one:?}: {e}")),
        [] => Err(format!(
            "no entry has the certificate subject DN {subject:?} or {attr}={cn:?}"
        )),
        _ => Err(format!(
            "several entries have {attr}={cn:?}; the certificate cannot be mapped"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_binds_need_encryption_off_loopback() {
        let remote = BindContext {
            require_secure_binds: true,
            ..BindContext::default()
        };
        assert!(confidentiality_required(&remote, true));
        assert!(
            !confidentiality_required(&remote, false),
            "anonymous binds stay allowed"
        );
        let tls = BindContext {
            encrypted: true,
            ..remote.clone()
        };
        assert!(!confidentiality_required(&tls, true));
        let local = BindContext {
            peer_is_loopback: true,
            ..remote.clone()
        };
        assert!(!confidentiality_required(&local, true));
        let off = BindContext {
            require_secure_binds: false,
            ..remote
        };
        assert!(!confidentiality_required(&off, true));
    }
}
