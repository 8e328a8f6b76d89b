//! The ACI text syntax (a subset of 389-ds'):
//!
//! ```text
//! aci      = *target "(" "version" "3.0" ";" "acl" quoted ";" 1*(perm bindrule ";") ")"
//! target   = "(" ("target" | "targetattr" | "targetfilter") ("=" | "!=") quoted ")"
//! perm     = ("allow" | "deny") "(" right *("," right) ")"
//! bindrule = term *(("and" | "or") term)       ; "and" binds tighter than "or"
//! term     = "not" term | "(" bindrule ")" | ("userdn" | "groupdn") ("=" | "!=") quoted
//! ```
//!
//! Parsing resolves attribute names through the schema and turns every DN
//! into its DN-index key, so evaluation compares bytes only.

use super::filter::parse_filter;
use crate::model::Dn;
use crate::schema::Schema;
use ldap3_proto::proto::LdapFilter;
use std::sync::Arc;

/// What a parse needs: the schema (attribute names, DN normalisation) and
/// the directory's DN-key function.
#[derive(Clone, Copy)]
pub struct Resolver<'a> {
    pub schema: &'a Schema,
    pub dn_key: &'a dyn Fn(&Dn) -> Vec<u8>,
    /// Values of computed attributes (memberOf) for targetfilters; None:
    /// a targetfilter sees stored attributes only.
    pub computed: Option<&'a crate::query::filter::ComputedValues<'a>>,
}

/// A syntax error in an ACI: what is wrong and where (character offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at offset {offset})")]
pub struct AciError {
    pub offset: usize,
    pub message: String,
}

/// Access rights, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights(pub u16);

impl Rights {
    pub const READ: Rights = Rights(1);
    pub const SEARCH: Rights = Rights(1 << 1);
    pub const COMPARE: Rights = Rights(1 << 2);
    pub const WRITE: Rights = Rights(1 << 3);
    pub const SELFWRITE: Rights = Rights(1 << 4);
    pub const ADD: Rights = Rights(1 << 5);
    pub const DELETE: Rights = Rights(1 << 6);
    /// Accepted for compatibility; ferrodir has no proxied authorisation, so it grants nothing.
    pub const PROXY: Rights = Rights(1 << 7);
    /// `all`: everything but proxy, as in 389-ds.
    pub const ALL: Rights = Rights(0x7f);

    pub fn contains_any(self, other: Rights) -> bool {
        self.0 & other.0 != 0
    }

    fn from_word(w: &str) -> Option<Rights> {
        Some(match w.to_ascii_lowercase().as_str() {
            "read" => Rights::READ,
            "search" => Rights::SEARCH,
            "compare" => Rights::COMPARE,
            "write" => Rights::WRITE,
            "selfwrite" => Rights::SELFWRITE,
            "add" => Rights::ADD,
            "delete" => Rights::DELETE,
            "proxy" => Rights::PROXY,
            "all" => Rights::ALL,
            _ => return None,
        })
    }
}

impl std::ops::BitOr for Rights {
    type Output = Rights;
    fn bitor(self, rhs: Rights) -> Rights {
        Rights(self.0 | rhs.0)
    }
}

/// `target`: the subtree of a DN (or, negated, everything outside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDn {
    pub dn: Dn,
    pub key: Vec<u8>,
    pub negate: bool,
}

/// `targetattr`: primary attribute names, lowercased and sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAttr {
    /// `*`: every attribute.
    pub all: bool,
    pub names: Vec<String>,
    pub negate: bool,
}

impl TargetAttr {
    /// Whether the attribute (any case, primary name) is targeted.
    pub fn covers(&self, attr: &str) -> bool {
        let listed = self.all
            || self
                .names
                .binary_search_by(|n| n.bytes().cmp(attr.bytes().map(|b| b.to_ascii_lowercase())))
                .is_ok();
        listed != self.negate
    }

    /// Whether the ACI speaks about whole entries (add, delete): `*` or a negation.
    pub fn covers_entry(&self) -> bool {
        (self.all && !self.negate) || (self.negate && !self.all)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetFilter {
    pub filter: LdapFilter,
    pub negate: bool,
}

/// One `userdn` alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// Everybody, anonymous included.
    Anyone,
    /// Any authenticated identity.
    All,
    /// The identity whose DN is the target entry's.
    SelfDn,
    /// The replication identities configured on the server.
    Replication,
    /// One DN (its DN-index key).
    Dn(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindRule {
    And(Box<BindRule>, Box<BindRule>),
    Or(Box<BindRule>, Box<BindRule>),
    Not(Box<BindRule>),
    User {
        negate: bool,
        refs: Vec<UserRef>,
    },
    /// Members (member / uniqueMember) of any of these groups (DN keys).
    Group {
        negate: bool,
        groups: Vec<Vec<u8>>,
    },
}

impl BindRule {
    /// Whether the rule can depend on the target entry (`self`).
    pub fn mentions_self(&self) -> bool {
        match self {
            BindRule::And(a, b) | BindRule::Or(a, b) => a.mentions_self() || b.mentions_self(),
            BindRule::Not(a) => a.mentions_self(),
            BindRule::User { refs, .. } => refs.contains(&UserRef::SelfDn),
            BindRule::Group { .. } => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub allow: bool,
    pub rights: Rights,
    pub subject: BindRule,
}

/// A parsed access control instruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Aci {
    pub name: String,
    pub target: Option<TargetDn>,
    /// None: the ACI targets entries only (add, delete), no attributes.
    pub targetattr: Option<Arc<TargetAttr>>,
    pub targetfilter: Option<TargetFilter>,
    pub permissions: Vec<Permission>,
}

/// Parses one `aci` value.
pub fn parse_aci(text: &str, res: &Resolver<'_>) -> Result<Aci, AciError> {
    let mut p = Parser {
        s: text,
        pos: 0,
        res,
    };
    p.aci()
}

struct Parser<'a, 'r> {
    s: &'a str,
    pos: usize,
    res: &'r Resolver<'r>,
}

const UNSUPPORTED_BIND_KEYWORDS: &[&str] = &[
    "userattr",
    "roledn",
    "ip",
    "dns",
    "authmethod",
    "dayofweek",
    "timeofday",
    "ssf",
];

const UNSUPPORTED_TARGET_KEYWORDS: &[&str] = &[
    "targattrfilters",
    "target_to",
    "target_from",
    "targetscope",
    "targetcontrol",
    "extop",
];

impl Parser<'_, '_> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, AciError> {
        Err(AciError {
            offset: self.pos,
            message: message.into(),
        })
    }

    fn rest(&self) -> &str {
        self.s.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), AciError> {
        if self.eat(c) {
            Ok(())
        } else {
            match self.peek() {
                Some(found) => self.err(format!("expected '{c}' {what}, found '{found}'")),
                None => self.err(format!("expected '{c}' {what}, found the end of the ACI")),
            }
        }
    }

    /// A keyword: letters, digits, '_' and '.'.
    fn word(&mut self) -> String {
        self.skip_ws();
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(self.rest().len());
        let w = self.rest().get(..len).unwrap_or_default().to_string();
        self.pos += len;
        w
    }

    /// `=` or `!=`; returns whether it is a negation.
    fn operator(&mut self, keyword: &str) -> Result<bool, AciError> {
        self.skip_ws();
        if self.rest().starts_with("!=") {
            self.pos += 2;
            Ok(true)
        } else if self.rest().starts_with('=') {
            self.pos += 1;
            Ok(false)
        } else {
            self.err(format!("expected '=' or '!=' after '{keyword}'"))
        }
    }

    /// A double-quoted string. A backslash protects the next character from
    /// ending the string; both are kept (DN and filter escapes stay intact).
    fn quoted(&mut self, what: &str) -> Result<String, AciError> {
        self.skip_ws();
        if self.peek() != Some('"') {
            return self.err(format!("{what} must be in double quotes"));
        }
        let start = self.pos + 1;
        let mut escaped = false;
        for (i, c) in self.s.get(start..).unwrap_or_default().char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                let value = self.s.get(start..start + i).unwrap_or_default().to_string();
                self.pos = start + i + 1;
                return Ok(value);
            }
        }
        self.err(format!("unterminated quoted string in {what}"))
    }

    fn aci(&mut self) -> Result<Aci, AciError> {
        let mut target = None;
        let mut targetattr = None;
        let mut targetfilter = None;
        loop {
            self.expect('(', "to open a target or the ACI body")?;
            let kw_at = self.pos;
            let kw = self.word();
            let lower = kw.to_ascii_lowercase();
            if lower == "version" {
                break;
            }
            let negate = self.operator(&kw)?;
            match lower.as_str() {
                "target" => {
                    if target.is_some() {
                        return self.err("'target' appears twice");
                    }
                    let v = self.quoted("the target")?;
                    target = Some(self.target_dn(&v, negate)?);
                }
                "targetattr" => {
                    if targetattr.is_some() {
                        return self.err("'targetattr' appears twice");
                    }
                    let v = self.quoted("the targetattr list")?;
                    targetattr = Some(Arc::new(self.target_attr(&v, negate)?));
                }
                "targetfilter" => {
                    if targetfilter.is_some() {
                        return self.err("'targetfilter' appears twice");
                    }
                    let v = self.quoted("the targetfilter")?;
                    let filter = parse_filter(&v).map_err(|m| AciError {
                        offset: self.pos,
                        message: format!("invalid targetfilter: {m}"),
                    })?;
                    targetfilter = Some(TargetFilter { filter, negate });
                }
                _ if UNSUPPORTED_TARGET_KEYWORDS.contains(&lower.as_str()) => {
                    self.pos = kw_at;
                    return self.err(format!("target keyword '{kw}' is not supported"));
                }
                "" => return self.err("expected a target keyword or 'version'"),
                _ => {
                    self.pos = kw_at;
                    return self.err(format!(
                        "unknown target keyword '{kw}' (expected target, targetattr, targetfilter or version)"
                    ));
                }
            }
            self.expect(')', "to close the target")?;
        }
        self.skip_ws();
        let version = self.word();
        if version != "3.0" {
            return self.err(format!(
                "unsupported ACI version '{version}' (expected 3.0)"
            ));
        }
        self.expect(';', "after the version")?;
        let kw = self.word();
        if !kw.eq_ignore_ascii_case("acl") {
            return self.err("expected 'acl \"<name>\"' after the version");
        }
        let name = self.quoted("the ACL name")?;
        self.expect(';', "after the ACL name")?;
        let mut permissions = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(')') {
                self.pos += 1;
                break;
            }
            permissions.push(self.permission()?);
            self.expect(';', "after the bind rule")?;
        }
        if permissions.is_empty() {
            return self.err("the ACI grants or denies nothing: add 'allow (...) <bind rule>;'");
        }
        self.skip_ws();
        if !self.rest().is_empty() {
            return self.err("unexpected text after the end of the ACI");
        }
        Ok(Aci {
            name,
            target,
            targetattr,
            targetfilter,
            permissions,
        })
    }

    fn target_dn(&self, v: &str, negate: bool) -> Result<TargetDn, AciError> {
        let dn = self.ldap_url_dn(v, "target")?;
        let key = (self.res.dn_key)(&dn);
        Ok(TargetDn { dn, key, negate })
    }

    fn ldap_url_dn(&self, v: &str, what: &str) -> Result<Dn, AciError> {
        let v = v.trim();
        let Some(rest) = strip_prefix_ci(v, "ldap:///") else {
            return self.err(format!(
                "{what} must be an LDAP URL 'ldap:///<dn>', got '{v}'"
            ));
        };
        if rest.contains('?') {
            return self.err(format!(
                "{what}: LDAP URLs with attributes, scope or filter are not supported"
            ));
        }
        if rest.contains('*') {
            return self.err(format!("{what}: wildcards in DNs are not supported"));
        }
        Dn::parse(rest).map_or_else(
            |e| self.err(format!("{what}: invalid DN '{rest}': {e}")),
            Ok,
        )
    }

    fn target_attr(&self, v: &str, negate: bool) -> Result<TargetAttr, AciError> {
        let mut names = Vec::new();
        let mut all = false;
        for raw in v.split("||") {
            let name = raw.trim();
            if name.is_empty() {
                return self.err("empty attribute name in targetattr");
            }
            if name == "*" {
                all = true;
                continue;
            }
            let base = crate::query::filter::base_attr_name(name);
            let Some(at) = self.res.schema.attribute(base) else {
                return self.err(format!("unknown attribute type '{name}' in targetattr"));
            };
            names.push(at.name().to_ascii_lowercase());
        }
        if all && !names.is_empty() {
            return self.err("targetattr: '*' cannot be combined with attribute names");
        }
        names.sort();
        names.dedup();
        Ok(TargetAttr { all, names, negate })
    }

    fn permission(&mut self) -> Result<Permission, AciError> {
        let at = self.pos;
        let kw = self.word();
        let allow = match kw.to_ascii_lowercase().as_str() {
            "allow" => true,
            "deny" => false,
            "" => return self.err("expected 'allow' or 'deny' (or ')' to end the ACI)"),
            _ => {
                self.pos = at;
                return self.err(format!("expected 'allow' or 'deny', found '{kw}'"));
            }
        };
        self.expect('(', "before the list of rights")?;
        let mut rights = Rights::default();
        loop {
            let r_at = self.pos;
            let w = self.word();
            if w.is_empty() {
                return self.err("expected a right (read, search, compare, write, selfwrite, add, delete, proxy, all)");
            }
            match Rights::from_word(&w) {
                Some(r) => rights = rights | r,
                None => {
                    self.pos = r_at;
                    return self.err(format!(
                        "unknown right '{w}' (expected read, search, compare, write, selfwrite, add, delete, proxy or all)"
                    ));
                }
            }
            if self.eat(',') {
                continue;
            }
            self.expect(')', "after the list of rights")?;
            break;
        }
        let subject = self.bind_or()?;
        Ok(Permission {
            allow,
            rights,
            subject,
        })
    }

    fn bind_or(&mut self) -> Result<BindRule, AciError> {
        let mut left = self.bind_and()?;
        loop {
            let save = self.pos;
            let w = self.word();
            if w.eq_ignore_ascii_case("or") {
                let right = self.bind_and()?;
                left = BindRule::Or(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn bind_and(&mut self) -> Result<BindRule, AciError> {
        let mut left = self.bind_term(0)?;
        loop {
            let save = self.pos;
            let w = self.word();
            if w.eq_ignore_ascii_case("and") {
                let right = self.bind_term(0)?;
                left = BindRule::And(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn bind_term(&mut self, depth: usize) -> Result<BindRule, AciError> {
        if depth > 16 {
            return self.err("bind rule nested too deeply");
        }
        if self.eat('(') {
            let inner = self.bind_or()?;
            self.expect(')', "to close the bind rule group")?;
            return Ok(inner);
        }
        let at = self.pos;
        let kw = self.word();
        let lower = kw.to_ascii_lowercase();
        match lower.as_str() {
            "not" => Ok(BindRule::Not(Box::new(self.bind_term(depth + 1)?))),
            "userdn" => {
                let negate = self.operator(&kw)?;
                let v = self.quoted("the userdn value")?;
                let mut refs = Vec::new();
                for part in v.split("||") {
                    refs.push(self.user_ref(part)?);
                }
                Ok(BindRule::User { negate, refs })
            }
            "groupdn" => {
                let negate = self.operator(&kw)?;
                let v = self.quoted("the groupdn value")?;
                let mut groups = Vec::new();
                for part in v.split("||") {
                    let dn = self.ldap_url_dn(part, "groupdn")?;
                    groups.push((self.res.dn_key)(&dn));
                }
                Ok(BindRule::Group { negate, groups })
            }
            "" => self.err("expected a bind rule (userdn=\"...\" or groupdn=\"...\")"),
            _ if UNSUPPORTED_BIND_KEYWORDS.contains(&lower.as_str()) => {
                self.pos = at;
                self.err(format!("bind rule keyword '{kw}' is not supported"))
            }
            _ => {
                self.pos = at;
                self.err(format!(
                    "unknown bind rule keyword '{kw}' (expected userdn or groupdn)"
                ))
            }
        }
    }

    fn user_ref(&self, part: &str) -> Result<UserRef, AciError> {
        let v = part.trim();
        let Some(rest) = strip_prefix_ci(v, "ldap:///") else {
            return self.err(format!(
                "userdn must be an LDAP URL 'ldap:///<dn>', got '{v}'"
            ));
        };
        match rest.trim().to_ascii_lowercase().as_str() {
            "anyone" => return Ok(UserRef::Anyone),
            "all" => return Ok(UserRef::All),
            "self" => return Ok(UserRef::SelfDn),
            "replication" => return Ok(UserRef::Replication),
            "parent" => return self.err("userdn: 'ldap:///parent' is not supported"),
            _ => {}
        }
        let dn = self.ldap_url_dn(v, "userdn")?;
        Ok(UserRef::Dn((self.res.dn_key)(&dn)))
    }
}

fn strip_prefix_ci<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}
