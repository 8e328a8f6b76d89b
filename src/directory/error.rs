//! Errors of directory operations. Each variant maps to exactly one LDAP
//! result code in `ops::result` (the single place where that mapping lives).

use crate::model::Dn;
use crate::schema::SchemaViolation;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("no such entry: {dn}")]
    NoSuchObject { dn: String, matched: Option<Dn> },
    #[error("entry already exists: {0}")]
    AlreadyExists(String),
    #[error("entry {0} has subordinates")]
    NotAllowedOnNonLeaf(String),
    #[error("{0}")]
    Schema(#[from] SchemaViolation),
    #[error("{0}")]
    InvalidDn(String),
    #[error("{0}")]
    UndefinedAttributeType(String),
    #[error("{0}")]
    NoSuchAttribute(String),
    #[error("{0}")]
    AttributeOrValueExists(String),
    #[error("{0}")]
    NotAllowedOnRdn(String),
    #[error("{0}")]
    ConstraintViolation(String),
    /// A password change the password policy refuses: constraintViolation,
    /// with the draft-behera error the response control reports.
    #[error("{message}")]
    PasswordPolicy {
        error: super::policy::PolicyError,
        message: String,
    },
    #[error("{0}")]
    InvalidSyntax(String),
    #[error("{0}")]
    InappropriateMatching(String),
    #[error("{0}")]
    InsufficientAccess(String),
    #[error("{0}")]
    UnwillingToPerform(String),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("{0}")]
    AffectsMultipleDsas(String),
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    Busy(String),
    /// The assertion control's filter did not match (RFC 4528).
    #[error("{0}")]
    AssertionFailed(String),
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
}

pub type DirResult<T> = Result<T, DirError>;

impl From<crate::acl::AclError> for DirError {
    fn from(e: crate::acl::AclError) -> DirError {
        use crate::acl::AclError;
        match e {
            AclError::InsufficientAccess(m) => DirError::InsufficientAccess(m),
            AclError::InvalidSyntax(m) => DirError::InvalidSyntax(m),
            AclError::Store(e) => DirError::Store(e),
        }
    }
}
