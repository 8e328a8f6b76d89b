//! The one place where directory errors become LDAP results (RFC 4511 §4.1.9).

use crate::directory::DirError;
use crate::schema::ViolationKind;
use ldap3_proto::proto::{LdapResult, LdapResultCode};

pub fn result(code: LdapResultCode, message: impl Into<String>) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.into(),
        referral: Vec::new(),
    }
}

pub fn success() -> LdapResult {
    result(LdapResultCode::Success, "")
}

pub fn code_of(e: &DirError) -> LdapResultCode {
    use LdapResultCode as C;
    match e {
        DirError::NoSuchObject { .. } => C::NoSuchObject,
        DirError::AlreadyExists(_) => C::EntryAlreadyExists,
        DirError::NotAllowedOnNonLeaf(_) => C::NotAllowedOnNonLeaf,
        DirError::Schema(v) => match v.kind {
            ViolationKind::UndefinedAttributeType => C::UndefinedAttributeType,
            ViolationKind::InappropriateMatching => C::InappropriateMatching,
            ViolationKind::ConstraintViolation => C::ConstraintViolation,
            ViolationKind::InvalidAttributeSyntax => C::InvalidAttributeSyntax,
            ViolationKind::ObjectClassViolation => C::ObjectClassViolation,
            ViolationKind::NamingViolation => C::NamingViolation,
            ViolationKind::ObjectClassModsProhibited => C::ObjectClassModsProhibited,
        },
        DirError::InvalidDn(_) => C::InvalidDNSyntax,
        DirError::UndefinedAttributeType(_) => C::UndefinedAttributeType,
        DirError::NoSuchAttribute(_) => C::NoSuchAttribute,
        DirError::AttributeOrValueExists(_) => C::AttributeOrValueExists,
        DirError::NotAllowedOnRdn(_) => C::NotALlowedOnRDN,
        DirError::ConstraintViolation(_) | DirError::PasswordPolicy { .. } => {
            C::ConstraintViolation
        }
        DirError::InvalidSyntax(_) => C::InvalidAttributeSyntax,
        DirError::InappropriateMatching(_) => C::InappropriateMatching,
        DirError::InsufficientAccess(_) => C::InsufficentAccessRights,
        DirError::UnwillingToPerform(_) => C::UnwillingToPerform,
        DirError::InvalidCredentials => C::InvalidCredentials,
        DirError::AffectsMultipleDsas(_) => C::AffectsMultipleDSAs,
        DirError::Protocol(_) => C::ProtocolError,
        DirError::Busy(_) => C::Busy,
        DirError::AssertionFailed(_) => C::AssertionFailed,
        DirError::Store(_) => C::Other,
    }
}

/// The LDAP result for a failed operation, with matchedDN for noSuchObject.
pub fn from_error(e: &DirError) -> LdapResult {
    let mut r = result(code_of(e), e.to_string());
    if let DirError::NoSuchObject {
        matched: Some(m), ..
    } = e
    {
        r.matcheddn = m.to_string();
    }
    if let DirError::Store(inner) = e {
        tracing::error!("storage error: {inner}");
    }
    r
}
