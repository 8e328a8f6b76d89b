//! RFC 4512 schema: attribute types, object classes, syntaxes and matching
//! rules, loaded from schema/*.ldif; entry checks and value matching.
//!
//! CONTRACT: the signatures in this file are used by `directory/` and `ops/`.
//! Implementations may add items but must keep these.

use crate::model::{Dn, Entry};
use std::cmp::Ordering;
use std::sync::Arc;

/// What kind of failure a schema check found; mapped to an LDAP result code by `ops/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// 17
    UndefinedAttributeType,
    /// 18
    InappropriateMatching,
    /// 19
    ConstraintViolation,
    /// 21
    InvalidAttributeSyntax,
    /// 65
    ObjectClassViolation,
    /// 64
    NamingViolation,
    /// 69
    ObjectClassModsProhibited,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct SchemaViolation {
    pub kind: ViolationKind,
    pub message: String,
}

/// A schema file that could not be loaded (names file and line).
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SchemaError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    UserApplications,
    DirectoryOperation,
    DistributedOperation,
    DsaOperation,
}

#[derive(Debug, Clone)]
pub struct AttributeType {
    pub oid: String,
    pub names: Vec<String>,
    pub desc: Option<String>,
    pub obsolete: bool,
    pub sup: Option<String>,
    /// Matching rule names (resolved through SUP when not given directly).
    pub equality: Option<String>,
    pub ordering: Option<String>,
    pub substr: Option<String>,
    /// Syntax OID (resolved through SUP).
    pub syntax: Option<String>,
    pub single_value: bool,
    pub collective: bool,
    pub no_user_modification: bool,
    pub usage: Usage,
    /// The definition as RFC 4512 text, as served in cn=schema.
    pub definition: String,
}

impl AttributeType {
    /// Primary name (first NAME, else the OID).
    pub fn name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or(&self.oid)
    }
    pub fn is_operational(&self) -> bool {
        self.usage != Usage::UserApplications
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectClassKind {
    Abstract,
    Structural,
    Auxiliary,
}

#[derive(Debug, Clone)]
pub struct ObjectClass {
    pub oid: String,
    pub names: Vec<String>,
    pub desc: Option<String>,
    pub obsolete: bool,
    pub sup: Vec<String>,
    pub kind: ObjectClassKind,
    pub must: Vec<String>,
    pub may: Vec<String>,
    pub definition: String,
}

impl ObjectClass {
    pub fn name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or(&self.oid)
    }
}

/// The loaded schema. Cheap to share (`Arc<Schema>`); immutable once built.
#[derive(Debug, Default)]
pub struct Schema {
    _private: (),
}

impl Schema {
    /// Loads the schema files shipped in the binary (schema/*.ldif at build time).
    pub fn builtin() -> Result<Schema, SchemaError> {
        todo!()
    }
    /// Loads from `(file name, LDIF text)` pairs, in order (later files may use earlier definitions).
    pub fn from_texts(files: &[(&str, &str)]) -> Result<Schema, SchemaError> {
        let _ = files;
        todo!()
    }
    /// Looks up by any NAME (case-insensitive) or OID.
    pub fn attribute(&self, name_or_oid: &str) -> Option<Arc<AttributeType>> {
        let _ = name_or_oid;
        todo!()
    }
    pub fn object_class(&self, name_or_oid: &str) -> Option<Arc<ObjectClass>> {
        let _ = name_or_oid;
        todo!()
    }
    /// All attribute types (for `*`/`+` decisions and cn=schema).
    pub fn attributes(&self) -> Vec<Arc<AttributeType>> {
        todo!()
    }
    /// Checks the whole entry: object class rules (exactly one structural chain,
    /// superclasses present or implied, MUST present, only MUST/MAY attributes
    /// unless extensibleObject, auxiliary classes), known attribute types,
    /// SINGLE-VALUE, value syntax, no duplicate values, RDN values present.
    /// Operational attributes are allowed on any entry.
    pub fn check_entry(&self, entry: &Entry) -> Result<(), SchemaViolation> {
        let _ = entry;
        todo!()
    }
    /// The name of the entry's structural object class (most specific in its chain).
    pub fn structural_class(&self, entry: &Entry) -> Result<String, SchemaViolation> {
        let _ = entry;
        todo!()
    }
    /// Validates one value against the attribute's syntax (21 on failure).
    pub fn check_syntax(&self, at: &AttributeType, value: &[u8]) -> Result<(), SchemaViolation> {
        let _ = (at, value);
        todo!()
    }
    /// Normalised value under the attribute's equality rule, for equality
    /// comparisons and index keys. Err(InappropriateMatching) when the type
    /// has no equality rule; Err(InvalidAttributeSyntax) when the value cannot be normalised.
    pub fn eq_normalize(
        &self,
        at: &AttributeType,
        value: &[u8],
    ) -> Result<Vec<u8>, SchemaViolation> {
        let _ = (at, value);
        todo!()
    }
    /// Ordering per the attribute's ORDERING rule (None: no ordering rule, or values not comparable).
    pub fn compare(&self, at: &AttributeType, a: &[u8], b: &[u8]) -> Option<Ordering> {
        let _ = (at, a, b);
        todo!()
    }
    /// Normalises a substring assertion component under the SUBSTR rule
    /// (None: no substring rule). Also used to build substring index keys.
    pub fn substr_normalize(&self, at: &AttributeType, value: &[u8]) -> Option<Vec<u8>> {
        let _ = (at, value);
        todo!()
    }
    /// Evaluates an extensible match (RFC 4511 §4.5.1.7.7) of `assertion` against
    /// `value` using `rule` (name or OID; None = the attribute's equality rule).
    /// None = Undefined (unknown rule, rule not applicable to the syntax).
    pub fn extensible_match(
        &self,
        rule: Option<&str>,
        at: &AttributeType,
        assertion: &[u8],
        value: &[u8],
    ) -> Option<bool> {
        let _ = (rule, at, assertion, value);
        todo!()
    }
    /// Whether a matching rule name/OID is known.
    pub fn has_matching_rule(&self, rule: &str) -> bool {
        let _ = rule;
        todo!()
    }
    /// Normalised DN string: attribute types as lowercased primary names, values
    /// under their equality rule (unknown types fall back to caseIgnore), RDN
    /// components sorted. Equal DNs give equal strings.
    pub fn normalize_dn(&self, dn: &Dn) -> String {
        let _ = dn;
        todo!()
    }
    /// Attributes of the subschema subentry (cn=schema): attributeTypes,
    /// objectClasses, ldapSyntaxes, matchingRules, matchingRuleUse (RFC 4512 text values).
    pub fn subschema_attributes(&self) -> Vec<(String, Vec<Vec<u8>>)> {
        todo!()
    }
}
